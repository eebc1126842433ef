//! `curves` (Fig. 4) on the committed models: one CSV row per model and epoch, equal to
//! the history each model file carries, the robust model's rows with a robust error and
//! the standard model's without; both figures written; a model with no history is an
//! error naming the file.

mod common;

use common::Csv;

fn history(file: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(file);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["metadata"]["history"].as_array().unwrap().clone()
}

#[test]
fn curves_writes_the_histories_and_figures() {
    let (dir, stdout) = common::run_into_temp(env!("CARGO_BIN_EXE_curves"), "curves", &[]);
    assert!(
        stdout.contains("standard: ") && stdout.contains("5.82%"),
        "{stdout}"
    );
    let csv = Csv::read(&dir, "curves");
    let col = |c: &str| csv.col(c);
    for c in [
        "model",
        "file",
        "epoch",
        "eps",
        "loss",
        "error",
        "robust_error",
        "test_error",
        "test_robust_error",
        "seconds",
        "mode",
        "train_bound",
        "data",
        "batch",
        "lr",
        "seed",
    ] {
        col(c);
    }
    for (name, file) in [
        ("standard", "mnist_conv_standard.json"),
        ("robust", "mnist_conv_robust.json"),
    ] {
        let h = history(file);
        let rows: Vec<_> = csv
            .rows
            .iter()
            .filter(|r| &r[col("model")] == name)
            .collect();
        assert_eq!(rows.len(), h.len(), "{name}: one row per epoch");
        for (r, e) in rows.iter().zip(&h) {
            let num = |c: &str| r[col(c)].parse::<f64>().unwrap();
            assert_eq!(num("loss"), e["loss"].as_f64().unwrap(), "{name} {r:?}");
            assert_eq!(num("error"), e["error"].as_f64().unwrap(), "{name} {r:?}");
            assert_eq!(num("eps"), e["eps"].as_f64().unwrap(), "{name} {r:?}");
            for key in ["robust_error", "test_error", "test_robust_error"] {
                match e.get(key).and_then(serde_json::Value::as_f64) {
                    Some(v) => assert_eq!(num(key), v, "{name} {key} {r:?}"),
                    None => assert_eq!(&r[col(key)], "", "{name} {key} {r:?}"),
                }
            }
        }
    }
    common::check_figures_and_clean(&dir, "curves");
}

#[test]
fn a_failed_run_leaves_the_last_results_untouched() {
    // The CSV is written only at the end: a bad second model keeps the first run's file.
    let (dir, _) = common::run_into_temp(env!("CARGO_BIN_EXE_curves"), "curves-keep", &[]);
    let csv = dir.join("results/curves.csv");
    let before = std::fs::read(&csv).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_curves"))
        .args(["--robust", "/nonexistent/robust.json", "--out-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_without_history_is_an_error_naming_it() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/valid_small.json");
    let err = common::run_failing(
        env!("CARGO_BIN_EXE_curves"),
        "curves-bad",
        &["--standard", model],
    );
    assert!(
        err.contains("valid_small.json") && err.contains("no metadata.history"),
        "{err}"
    );
}
