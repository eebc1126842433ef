//! `toy2d` on a tiny setting (20 epochs): it writes the learning-curve CSV with every
//! setting, the three figures, and its summary table.
#![cfg(feature = "training")]

use std::process::Command;

#[test]
fn toy2d_writes_curves_figures_and_summary() {
    let dir = std::env::temp_dir().join(format!("convex-outer-toy2d-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_toy2d"))
        .args([
            "--epochs",
            "20",
            "--eval-every",
            "5",
            "--grid",
            "21",
            "--directions",
            "16",
            "--out-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| standard | 20 |") && stdout.contains("| robust | 20 |"),
        "{stdout}"
    );
    let mut r = csv::Reader::from_path(dir.join("results/toy2d.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "data_seed",
        "arch",
        "mode",
        "eps",
        "lr",
        "batch",
        "epoch",
        "loss",
        "error",
        "train_bound_robust_error",
        "certified_robust_error",
        "bound",
    ] {
        assert!(header.iter().any(|h| h == col), "missing column {col}");
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 40, "2 models x 20 epochs");
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    // Certified every 5 epochs and at the last; the training bound only for robust.
    let certified = rows
        .iter()
        .filter(|r| !r[col("certified_robust_error")].is_empty())
        .count();
    assert_eq!(certified, 2 * 5);
    for r in &rows {
        let robust = &r[col("mode")] == "robust";
        assert_eq!(!r[col("train_bound_robust_error")].is_empty(), robust);
    }
    for f in ["toy2d", "toy2d_polytope", "toy2d_curves"] {
        for ext in ["png", "svg"] {
            let p = dir.join("figures").join(format!("{f}.{ext}"));
            assert!(
                std::fs::metadata(&p)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{}",
                p.display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
