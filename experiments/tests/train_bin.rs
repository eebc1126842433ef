//! The `train` binary end to end on a tiny setting: it writes a loadable model whose
//! metadata carries every setting, the learning curve and the Table 1 row; a run can be
//! continued (`--resume`), monitored on test digits (`--monitor`) and stopped early
//! (`--patience`).
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

fn train_bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_train"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn train_resumes_monitors_and_stops_early() {
    let dir =
        std::env::temp_dir().join(format!("convex-outer-train-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = dir.join("first.json");
    let second = dir.join("second.json");
    let (first_s, second_s) = (first.to_str().unwrap(), second.to_str().unwrap());
    let toy = [
        "--arch",
        "mlp:2-20-20-2",
        "--data",
        "toy2d",
        "--mode",
        "robust",
        "--eps",
        "0.08",
        "--batch",
        "12",
        "--seed",
        "1",
    ];
    let o = train_bin(
        &[
            &toy[..],
            &[
                "--epochs",
                "2",
                "--eps-start",
                "0.02",
                "--monitor",
                "12",
                "--out",
                first_s,
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta = |p: &std::path::Path| {
        network::model_from_json(&std::fs::read_to_string(p).unwrap(), "m")
            .unwrap()
            .1
    };
    let m1 = meta(&first);
    assert_eq!(m1["complete"], true);
    assert_eq!(m1["monitor"]["test_examples"], 12);
    for h in m1["history"].as_array().unwrap() {
        let r = h["test_robust_error"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&r), "{h}");
        assert!(
            h["test_error"].as_f64().unwrap() <= r,
            "clean error above the bound: {h}"
        );
    }
    // Continue for two epochs with no other flag: numbered 2 and 3, every setting of the
    // first run (toy data, batch, eps and its ramp of 0.02 over 1 epoch, monitor).
    let o = train_bin(&["--epochs", "2", "--resume", first_s, "--out", second_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m2 = meta(&second);
    let h2 = m2["history"].as_array().unwrap();
    assert_eq!(
        h2.iter()
            .map(|h| h["epoch"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        &h2[..2],
        m1["history"].as_array().unwrap().as_slice(),
        "the first run's history is kept"
    );
    for key in [
        "data_arg",
        "batch",
        "eps",
        "eps_start",
        "ramp_epochs",
        "seed",
        "mode",
        "arch",
        "init",
        "lr",
    ] {
        assert_eq!(m2[key], m1[key], "{key}");
    }
    assert_eq!(m2["monitor"]["test_examples"], 12);
    assert!(
        h2[3]["test_robust_error"].is_f64(),
        "the monitor carries on"
    );
    assert_eq!(h2[3]["eps"], 0.08);
    assert_eq!(m2["epochs"], 4);
    assert_eq!(m2["resumed_from"]["file"], first_s);
    assert_eq!(m2["resumed_from"]["command"], m1["command"]);
    assert!(m2["resumed_from"].get("history").is_none());
    // A chain keeps its first command; --epochs 0 only evaluates.
    let third = dir.join("third.json");
    let o = train_bin(&[
        "--epochs",
        "0",
        "--resume",
        second_s,
        "--out",
        third.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m3 = meta(&third);
    assert_eq!(m3["resumed_from"]["resumed_from"]["command"], m1["command"]);
    assert_eq!(m3["history"], m2["history"]);
    assert_eq!(m3["complete"], true);
    // No temporary file is left where the checkpoints were written.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Patience counts over the resumed history: with a learning rate too small to change
    // a certificate, the first new epoch is no better than the best of the first run's
    // two, so --patience 1 stops after it, or before training when the first run's
    // second epoch was already no better than its first.
    let r: Vec<f64> = m1["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["test_robust_error"].as_f64().unwrap())
        .collect();
    let spent = r[1] >= r[0];
    let o = train_bin(&[
        "--epochs",
        "10",
        "--lr",
        "1e-12",
        "--resume",
        first_s,
        "--patience",
        "1",
        "--out",
        second_s,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let said = if spent {
        "stopping before training"
    } else {
        "stopping: no better robust-error bound in 1 epochs"
    };
    assert!(err.contains(said), "{r:?}: {err}");
    let trained = if spent { 2 } else { 3 };
    assert_eq!(meta(&second)["history"].as_array().unwrap().len(), trained);
    // That run's patience is spent: resuming it trains no epoch; --monitor 0 clears the
    // inherited monitor and patience together.
    let third = dir.join("third.json");
    let third_s = third.to_str().unwrap();
    let o = train_bin(&["--epochs", "3", "--resume", second_s, "--out", third_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.contains("stopping before training"),
        "{err}"
    );
    assert_eq!(meta(&third)["history"].as_array().unwrap().len(), trained);
    let o = train_bin(&[
        "--epochs",
        "1",
        "--resume",
        second_s,
        "--monitor",
        "0",
        "--out",
        third_s,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = meta(&third);
    assert_eq!(m["history"].as_array().unwrap().len(), trained + 1);
    assert!(m["monitor"].is_null(), "{}", m["monitor"]);
    // A resumed run cannot change its mode.
    let o = train_bin(&["--resume", first_s, "--mode", "standard", "--out", second_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("cannot change mode"),
        "{err}"
    );
    // Clear errors.
    for (args, msg) in [
        (vec!["--patience", "2"], "--patience needs --monitor"),
        (
            vec!["--patience", "0", "--monitor", "5"],
            "--patience must be at least 1",
        ),
        (
            vec!["--train-count", "0"],
            "--train-count must be at least 1",
        ),
        (vec!["--eval-count", "0"], "--eval-count must be at least 1"),
        (
            vec!["--epochs", "0"],
            "--epochs 0 only evaluates a resumed run",
        ),
    ] {
        let o = train_bin(&[&toy[..], &args[..], &["--out", second_s]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(msg), "{args:?}: {err}");
    }
    let bare = dir.join("bare.json");
    let model = network::load_model(&first).unwrap();
    network::save_model(&model, None, &bare).unwrap();
    let o = train_bin(
        &[
            &toy[..],
            &["--resume", bare.to_str().unwrap(), "--out", second_s],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("no metadata.history"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
