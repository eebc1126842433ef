//! `methods` on a tiny setting (one MNIST digit per model, one random net of each kind): it
//! writes its CSV with every column needed to re-derive a row and both figures, prints the
//! summary table, and its rows obey the chain (alpha >= crown; every method <= LP-all, to
//! the LP tolerance: LP-all's proven value is a lower bound of the LP optimum, which
//! alpha-CROWN with optimised intermediate bounds can exceed by rounding).

use std::process::Command;

#[test]
fn methods_writes_results_and_figures() {
    let dir = std::env::temp_dir().join(format!("convex-outer-methods-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_methods"))
        .args([
            "--digits",
            "1",
            "--nets",
            "1",
            "--alpha-steps",
            "5",
            "--solver",
            "clarabel",
            "--out-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| subjects | method | examples | certified |"),
        "{stdout}"
    );
    for m in ["interval", "wk", "crown", "alpha", "alpha-int"] {
        assert!(stdout.contains(&format!("| {m} |")), "{stdout}");
    }
    let mut r = csv::Reader::from_path(dir.join("results/methods.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |c: &str| {
        header
            .iter()
            .position(|h| h == c)
            .unwrap_or_else(|| panic!("missing column {c}"))
    };
    let (subject, method, target, j, lp_all) = (
        col("subject"),
        col("method"),
        col("target"),
        col("proven_J"),
        col("lp_all_proven"),
    );
    for c in [
        "eps",
        "example",
        "class",
        "intermediate",
        "alpha_steps",
        "certified",
        "time_ms",
        "seed",
    ] {
        col(c);
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    // 4 MNIST models (standard, robust, random, random residual) x 1 digit x 5 methods x 9
    // targets + 2 nets (dense, residual) x 5 methods x 1 target.
    assert_eq!(rows.len(), 4 * 5 * 9 + 2 * 5);
    let get = |s: &str, m: &str, t: &str| -> f64 {
        rows.iter()
            .find(|x| x[subject].starts_with(s) && &x[method] == m && &x[target] == t)
            .unwrap()[j]
            .parse()
            .unwrap()
    };
    for t in (0..10).map(|t| t.to_string()) {
        if rows
            .iter()
            .any(|x| x[subject].starts_with("robust") && x[target] == *t)
        {
            assert!(get("robust", "alpha", &t) >= get("robust", "crown", &t));
        }
    }
    let mut with_lp = 0;
    for x in rows.iter().filter(|x| &x[lp_all] != "-") {
        let (v, l): (f64, f64) = (x[j].parse().unwrap(), x[lp_all].parse().unwrap());
        assert!(
            v <= l + 1e-6 * l.abs().max(1.0),
            "{} {} {v} above LP-all {l}",
            &x[subject],
            &x[method]
        );
        with_lp += 1;
    }
    assert_eq!(with_lp, 2 * 5);
    for f in ["figures/methods.png", "figures/methods.svg"] {
        assert!(
            std::fs::metadata(dir.join(f)).unwrap().len() > 1000,
            "{f} is empty"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
