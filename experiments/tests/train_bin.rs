//! The `train` binary end to end on a tiny setting: it writes a loadable model whose
//! metadata carries every setting, the learning curve and the Table 1 row.
#![cfg(feature = "training")]

use std::process::Command;

#[test]
fn train_writes_a_model_with_its_settings() {
    let out = std::env::temp_dir().join(format!("convex-outer-train-{}.json", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "--arch",
            "mlp:2-20-20-2",
            "--data",
            "toy2d",
            "--mode",
            "robust",
            "--eps",
            "0.08",
            "--epochs",
            "3",
            "--batch",
            "12",
            "--seed",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let (model, meta) = network::model_from_json(&text, "trained").unwrap();
    assert_eq!(model.layer_sizes(), vec![2, 20, 20, 2]);
    assert_eq!(meta["mode"], "robust");
    assert_eq!(meta["seed"], 1);
    assert_eq!(meta["history"].as_array().unwrap().len(), 3);
    let t = &meta["table1"];
    assert!(t["pgd_error"].as_f64().unwrap() <= t["robust_error_bound"].as_f64().unwrap());
    std::fs::remove_file(&out).ok();
    // Bad flags are clear errors.
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["--mode", "adversarial", "--out", "x.json"])
        .output()
        .unwrap();
    // A usage error (clap: exit 2) naming the flag and listing the values.
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--mode")
            && err.contains("adversarial")
            && err.contains("[possible values: standard, robust]"),
        "{err}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["--device", "cuda", "--out", "x.json"])
        .output()
        .unwrap();
    if !cfg!(feature = "cuda") {
        assert!(String::from_utf8_lossy(&o.stderr)
            .contains("built without CUDA; rebuild with --features cuda"));
    }
}
