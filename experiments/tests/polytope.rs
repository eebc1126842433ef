//! `polytope` on a tiny setting: CSV columns, both figures, and the chain per direction.

use std::process::Command;

#[test]
fn polytope_writes_results_and_figures() {
    let dir = std::env::temp_dir().join(format!("convex-outer-polytope-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_polytope"))
        .args([
            "--nets",
            "1",
            "--eps",
            "0.05,0.2",
            "--directions",
            "16",
            "--grid",
            "21",
            "--solver",
            "microlp",
            "--out-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = csv::Reader::from_path(dir.join("results/polytope.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "net_seed",
        "x0",
        "x1",
        "eps",
        "direction",
        "c0",
        "c1",
        "method",
        "alpha_rule",
        "bound_source",
        "solver",
        "status",
        "value",
        "time_ms_all_directions",
    ] {
        assert!(header.iter().any(|h| h == col), "missing column {col}");
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 2 * 16 * 2, "2 eps x 16 directions x (lp, dual)");
    let vcol = header.iter().position(|h| h == "value").unwrap();
    for pair in rows.chunks(2) {
        let (lp, du): (f64, f64) = (
            pair[0][vcol].parse().unwrap(),
            pair[1][vcol].parse().unwrap(),
        );
        assert_eq!((&pair[0][7], &pair[1][7]), ("lp19", "dual"));
        assert!(du <= lp + 1e-7 * lp.abs().max(1.0), "dual {du} > LP {lp}");
    }
    for f in ["figures/polytope.png", "figures/polytope.svg"] {
        assert!(
            std::fs::metadata(dir.join(f)).unwrap().len() > 1000,
            "{f} is empty"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
