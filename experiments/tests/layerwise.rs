//! `layerwise` on a tiny setting: it writes its CSV (with every column needed to re-derive
//! a row) and both figures, and the ranges it reports are ordered as the chain says.

use std::process::Command;

#[test]
fn layerwise_writes_results_and_figures() {
    let dir = std::env::temp_dir().join(format!("convex-outer-layerwise-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_layerwise"))
        .args([
            "--nets",
            "1",
            "--grid",
            "21",
            "--seed",
            "3",
            "--solver",
            "microlp",
            "--out-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("| net seed | output |") && stdout.contains("[1.81, 1.85]"));
    let mut r = csv::Reader::from_path(dir.join("results/layerwise.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "net_seed",
        "x0",
        "x1",
        "eps",
        "output",
        "method",
        "alpha_rule",
        "bound_source",
        "solver",
        "status",
        "lower",
        "upper",
        "time_ms",
    ] {
        assert!(header.iter().any(|h| h == col), "missing column {col}");
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 8, "2 outputs x 4 methods");
    let get = |m: &str, out: &str, col: usize| -> f64 {
        rows.iter().find(|x| &x[5] == m && &x[4] == out).unwrap()[col]
            .parse()
            .unwrap()
    };
    let (lo, hi) = (
        header.iter().position(|h| h == "lower").unwrap(),
        header.iter().position(|h| h == "upper").unwrap(),
    );
    for out in ["0", "1"] {
        assert!(get("dual (Algorithm 1)", out, lo) <= get("LP (19)", out, lo) + 1e-7);
        assert!(get("LP (19)", out, lo) <= get("true (grid)", out, lo) + 1e-7);
        assert!(get("true (grid)", out, hi) <= get("LP (19)", out, hi) + 1e-7);
        assert!(get("LP (19)", out, hi) <= get("dual (Algorithm 1)", out, hi) + 1e-7);
    }
    for f in ["figures/layerwise.png", "figures/layerwise.svg"] {
        assert!(
            std::fs::metadata(dir.join(f)).unwrap().len() > 1000,
            "{f} is empty"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
