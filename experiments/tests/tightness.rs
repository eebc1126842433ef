//! `tightness` on tiny settings: it writes its CSV (every column needed to re-derive a
//! row) and both figures, prints its summary, its rows obey dual <= LP <= the sampled
//! minimum, an LP over the size limit is reported as not solved (never as a value), and a
//! missing model file is a clear error.

mod common;

use std::path::PathBuf;
use std::process::Output;

fn run(name: &str, args: &[&str]) -> (PathBuf, Output) {
    common::run(
        env!("CARGO_BIN_EXE_tightness"),
        &format!("tightness-{name}"),
        args,
    )
}

fn read(dir: &std::path::Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_path(dir.join("results/tightness.csv")).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    (header, r.records().map(|x| x.unwrap()).collect())
}

#[test]
fn tightness_writes_results_figures_and_summary() {
    // The random model at a small eps (few unstable units): 9 LPs of a few seconds.
    let (dir, o) = run(
        "tiny",
        &[
            "--models",
            "random",
            "--eps",
            "0.004",
            "--samples",
            "20",
            "--seed",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("| model | eps | pairs |"), "{stdout}");
    assert!(stdout.contains("| random | 0.004 | 9 | 9 |"), "{stdout}");
    let (header, rows) = read(&dir);
    for col in [
        "model",
        "model_source",
        "seed",
        "image",
        "label",
        "eps",
        "target",
        "alpha_rule",
        "bound_source",
        "dual_J",
        "lp_value",
        "lp_solver",
        "lp_status",
        "lp_ms",
        "dual_ms",
        "min_sampled_margin",
    ] {
        assert!(header.iter().any(|h| h == col), "missing column {col}");
    }
    assert_eq!(rows.len(), 9, "one image x 9 targets");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut targets = Vec::new();
    for r in &rows {
        let j: f64 = r[col("dual_J")].parse().unwrap();
        let lp: f64 = r[col("lp_value")].parse().unwrap();
        let sampled: f64 = r[col("min_sampled_margin")].parse().unwrap();
        let tol = 1e-6 * lp.abs().max(1.0);
        assert!(j <= lp + tol && lp <= sampled + tol, "{r:?}");
        // The preferred solver: HiGHS when the build has it (CI's second pass), else
        // clarabel; each reports its own optimal status.
        match &r[col("lp_solver")] {
            "clarabel" => assert_eq!(&r[col("lp_status")], "Solved"),
            "highs" => assert_eq!(&r[col("lp_status")], "Optimal"),
            other => panic!("unexpected solver {other}"),
        }
        assert_eq!(&r[col("model_source")], "mnist-conv, standard init, seed 2");
        targets.push(r[col("target")].to_string());
        assert_ne!(r[col("target")], r[col("label")]);
    }
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), 9);
    for f in [
        "tightness.png",
        "tightness.svg",
        "tightness_gap.png",
        "tightness_gap.svg",
    ] {
        let p = dir.join("figures").join(f);
        assert!(
            std::fs::metadata(&p)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{}",
            p.display()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_lp_over_the_size_limit_is_reported_not_solved() {
    // The committed standard model, and the same file standing in for the robust one.
    let standard = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/mnist_conv_standard.json"
    );
    let (dir, o) = run(
        "limit",
        &[
            "--models",
            "standard,robust",
            "--robust",
            standard,
            "--eps",
            "0.01",
            "--samples",
            "10",
            "--max-lp-vars",
            "100",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("LPs not solved"), "{stdout}");
    let (header, rows) = read(&dir);
    assert_eq!(rows.len(), 18);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for r in &rows {
        assert_eq!(
            &r[col("lp_value")],
            "",
            "a skipped LP must not carry a value"
        );
        assert!(r[col("lp_status")].starts_with("not solved:"), "{r:?}");
        assert!(r[col("dual_J")].parse::<f64>().unwrap().is_finite());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_model_file_is_a_clear_error() {
    let (_, o) = run(
        "missing",
        &["--models", "robust", "--robust", "no/such/model.json"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no/such/model.json") && err.contains("does not exist"),
        "{err}"
    );
}
