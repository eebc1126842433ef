//! `radius` on a tiny setting (two digits per model): its CSV has every column needed to
//! re-derive a row, each radius is positive or the digit is not certified at 0, the
//! bracket is within the tolerance, and both figures are written.

use std::process::Command;

#[test]
fn radius_writes_results_and_figures() {
    let dir = std::env::temp_dir().join(format!("convex-outer-radius-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_radius"))
        .args(["--digits", "2", "--out-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| model | digits |") && stdout.contains("0.007"),
        "{stdout}"
    );
    let mut r = csv::Reader::from_path(dir.join("results/radius.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |c: &str| {
        header
            .iter()
            .position(|h| h == c)
            .unwrap_or_else(|| panic!("missing column {c}"))
    };
    for c in [
        "model",
        "split_seed",
        "test_index",
        "label",
        "predicted",
        "correct",
        "method",
        "stop",
        "evaluations",
        "time_ms",
    ] {
        col(c);
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 4, "2 models x 2 digits");
    for x in &rows {
        let radius: f64 = x[col("radius")].parse().unwrap();
        let stop = &x[col("stop")];
        if stop == "Converged" {
            let up: f64 = x[col("first_failing_eps")].parse().unwrap();
            assert!(
                radius > 0.0 && up > radius && up - radius <= 1e-3 * radius,
                "{x:?}"
            );
        } else {
            assert!(stop == "NotCertifiedAtZero" && radius == 0.0, "{x:?}");
        }
    }
    for f in ["figures/radius.png", "figures/radius.svg"] {
        assert!(
            std::fs::metadata(dir.join(f)).unwrap().len() > 1000,
            "{f} is empty"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
