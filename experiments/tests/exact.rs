//! `exact` on a tiny setting (two digits per model, short budgets): its CSV has every
//! column needed to re-derive a row, each outcome agrees with the row's numbers (an
//! attacked digit has a point with margin <= 0 and no positive bound; a certified one a
//! positive bound of its kind), and both figures are written.

use std::process::Command;

#[test]
fn exact_writes_results_and_figures() {
    let dir = std::env::temp_dir().join(format!("convex-outer-exact-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_exact"))
        .args([
            "--digits",
            "2",
            "--timeout",
            "2",
            "--max-nodes",
            "20",
            "--out-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| model | digits |") && stdout.contains("4.38%"),
        "{stdout}"
    );
    let mut r = csv::Reader::from_path(dir.join("results/exact.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |c: &str| {
        header
            .iter()
            .position(|h| h == c)
            .unwrap_or_else(|| panic!("missing column {c}"))
    };
    for c in [
        "model",
        "digit",
        "label",
        "predicted",
        "outcome",
        "eps",
        "timeout_s",
        "max_nodes",
        "seed",
        "nodes",
        "ms",
    ] {
        col(c);
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 4, "2 models x 2 digits");
    let num = |x: &csv::StringRecord, c: &str| -> f64 { x[col(c)].parse().unwrap() };
    for x in &rows {
        let outcome = &x[col("outcome")];
        let (wk, crown, ex, at) = (
            num(x, "wk_min_margin"),
            num(x, "crown_min_margin"),
            num(x, "exact_lower_min_margin"),
            num(x, "attack_min_margin"),
        );
        match outcome {
            "misclassified" => assert_ne!(x[col("label")], x[col("predicted")]),
            "attacked by PGD" | "attacked by branch and bound" => {
                // CROWN is not computed (NaN) once PGD attacks the digit.
                assert!(
                    at <= 0.0 && wk <= 0.0 && (crown.is_nan() || crown <= 0.0) && ex <= 0.0,
                    "{x:?}"
                )
            }
            "certified by WK" => assert!(wk > 0.0 && wk <= at, "{x:?}"),
            "certified by CROWN" => assert!(crown > 0.0 && wk <= 0.0, "{x:?}"),
            "proven by branch and bound" => assert!(ex > 0.0 && crown <= 0.0, "{x:?}"),
            "undecided" => assert!(ex <= 0.0 && at > 0.0, "{x:?}"),
            o => panic!("unknown outcome {o}"),
        }
    }
    for f in ["figures/exact.png", "figures/exact.svg"] {
        assert!(
            std::fs::metadata(dir.join(f)).unwrap().len() > 1000,
            "{f} is empty"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
