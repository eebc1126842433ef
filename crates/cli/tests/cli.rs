//! End-to-end tests of the `convex-outer` binary: JSON answers that match the golden
//! fixtures, and a clear error (exit code 1, no panic) for every malformed input.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_convex-outer"))
}

fn testdata(p: &str) -> String {
    format!("{}/../../testdata/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("convex-outer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn fails_with(args: &[&str], fragments: &[&str]) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?}: expected exit 1, stderr {err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for f in fragments {
        assert!(err.contains(f), "{args:?}: stderr {err:?} lacks {f:?}");
    }
}

#[test]
fn bound_reproduces_the_golden_values() {
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("golden.json")).unwrap()).unwrap();
    for case in g["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut m = case["model"].clone();
        m["format"] = "convex-outer-model".into();
        m["version"] = 1.into();
        let mp = tmp(&format!("{name}.json"));
        std::fs::write(&mp, m.to_string()).unwrap();
        let ip = tmp(&format!("{name}.input.json"));
        std::fs::write(&ip, case["x"].to_string()).unwrap();
        let eps = case["eps"].to_string();
        let out = ok_json(&[
            "bound",
            "--model",
            mp.to_str().unwrap(),
            "--input",
            ip.to_str().unwrap(),
            "--eps",
            &eps,
        ]);
        assert_eq!(out["input"]["label_source"], "predicted");
        assert_eq!(out["predicted"], case["predicted"]);
        let want = case["J_paper_alpha"].as_array().unwrap();
        for o in out["objectives"].as_array().unwrap() {
            let t = o["target"].as_u64().unwrap() as usize;
            let (got, w) = (o["J"].as_f64().unwrap(), want[t].as_f64().unwrap());
            assert!(
                (got - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{name} target {t}: {got} vs {w}"
            );
        }
        let counts = case["index_set_counts"].as_array().unwrap();
        for (i, c) in counts.iter().enumerate() {
            assert_eq!(out["algorithm1"][i]["I"], c["I"], "{name} layer {i}");
            assert_eq!(
                out["algorithm1"][i]["I_minus"], c["I_minus"],
                "{name} layer {i}"
            );
        }
        assert_eq!(out["method"]["intermediate"], "algorithm1");
        assert_eq!(out["method"]["alpha"], "paper");
    }
}

#[test]
fn init_bound_certify_radius_on_mnist() {
    let mp = tmp("mnist.json");
    let mps = mp.to_str().unwrap();
    ok_json(&[
        "init",
        "--arch",
        "mnist-conv",
        "--init",
        "standard",
        "--seed",
        "1",
        "--out",
        mps,
    ]);
    let b = ok_json(&[
        "bound",
        "--model",
        mps,
        "--input",
        "mnist:test:3",
        "--eps",
        "0.01",
        "--targets",
        "4",
        "--box",
        "0,1",
    ]);
    assert_eq!(b["objectives"].as_array().unwrap().len(), 1);
    assert_eq!(b["algorithm1"].as_array().unwrap().len(), 4);
    assert_eq!(b["input"]["label_source"], "dataset");
    for m in ["wk", "interval"] {
        let c = ok_json(&[
            "certify", "--model", mps, "--eps", "0.0", "--count", "5", "--method", m,
        ]);
        assert_eq!(c["rows"].as_array().unwrap().len(), 5);
        assert_eq!(c["method"]["name"], m);
        // At eps 0 the certificate holds exactly for the correctly classified examples.
        assert_eq!(c["clean_error"], c["robust_error_bound"]);
    }
    // --every: every K-th example from --start; the shipped test split is sorted by
    // class, so 10 examples 100 apart cover all ten classes.
    let c = ok_json(&[
        "certify", "--model", mps, "--eps", "0.0", "--count", "10", "--every", "100", "--start",
        "3", "--method", "interval",
    ]);
    let rows = c["rows"].as_array().unwrap();
    let idx: Vec<u64> = rows.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, (0..10).map(|i| 3 + 100 * i).collect::<Vec<u64>>());
    let mut labels: Vec<u64> = rows.iter().map(|r| r["label"].as_u64().unwrap()).collect();
    labels.sort_unstable();
    assert_eq!(labels, (0..10).collect::<Vec<u64>>());
    for (args, msg) in [
        (
            ["--every", "0", "--count", "2"],
            "--every must be at least 1",
        ),
        (["--every", "500", "--count", "3"], "out of range"),
    ] {
        let mut a = vec!["certify", "--model", mps, "--eps", "0.0"];
        a.extend(args);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_convex-outer"))
            .args(&a)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{a:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(msg), "{a:?}");
    }
    let small = testdata("valid_small.json");
    let r = ok_json(&[
        "radius",
        "--model",
        &small,
        "--input",
        &testdata("input_small.json"),
    ]);
    let row = &r["rows"][0];
    assert_eq!(row["stop"], "Converged");
    assert!(row["radius"].as_f64().unwrap() > 0.0);
}

/// The proven J of every objective of a `bound` answer.
fn objective_js(b: &serde_json::Value) -> Vec<f64> {
    b["objectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["J"].as_f64().unwrap())
        .collect()
}

/// `--method` on bound, certify and radius: every method named in the output, alpha
/// never below CROWN (it starts there), and a bad name refused with the list.
#[test]
fn every_method_runs_from_the_command_line() {
    let small = testdata("valid_small.json");
    let input = testdata("input_small.json");
    let mut j = std::collections::HashMap::new();
    for m in ["interval", "wk", "crown", "alpha"] {
        let b = ok_json(&[
            "bound", "--model", &small, "--input", &input, "--eps", "0.1", "--method", m,
        ]);
        assert_eq!(b["method"]["name"], m);
        let v = objective_js(&b);
        assert_eq!(
            b.get("crown").is_some(),
            m == "crown" || m == "alpha",
            "{m}"
        );
        j.insert(m, v);
    }
    for (a, c) in j["alpha"].iter().zip(&j["crown"]) {
        assert!(a >= c, "alpha {a} below crown {c}");
    }
    let b = ok_json(&[
        "bound",
        "--model",
        &small,
        "--input",
        &input,
        "--eps",
        "0.1",
        "--method",
        "alpha",
        "--alpha-steps",
        "5",
    ]);
    assert!(b["method"]["optimiser"]["steps"].as_u64().unwrap() <= 5);
    // The flag belongs to alpha: with another method it is an error, not ignored.
    for cmd in [
        vec![
            "bound", "--model", &small, "--input", &input, "--eps", "0.1",
        ],
        vec!["radius", "--model", &small, "--input", &input],
    ] {
        let mut args = cmd.clone();
        args.extend(["--method", "crown", "--alpha-intermediate"]);
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("--alpha-intermediate applies to --method alpha only"),
            "{err}"
        );
    }
    // alpha-CROWN's own intermediate bounds, by flag: named, and inside CROWN's.
    let crown = ok_json(&[
        "bound", "--model", &small, "--input", &input, "--eps", "0.3", "--method", "crown",
    ]);
    let b = ok_json(&[
        "bound",
        "--model",
        &small,
        "--input",
        &input,
        "--eps",
        "0.3",
        "--method",
        "alpha",
        "--alpha-intermediate",
    ]);
    assert_eq!(b["method"]["intermediate"], "alpha-crown");
    assert_eq!(b["method"]["optimiser"]["intermediate"], true);
    assert!(b.get("crown").is_none());
    let layers = b["alpha-crown"].as_array().unwrap();
    assert_eq!(layers.len(), crown["crown"].as_array().unwrap().len());
    for (a, c) in layers.iter().zip(crown["crown"].as_array().unwrap()) {
        let f = |v: &serde_json::Value, k: &str| -> Vec<f64> {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        for (x, y) in f(a, "lower").iter().zip(f(c, "lower")) {
            assert!(*x >= y, "{a} {c}");
        }
        for (x, y) in f(a, "upper").iter().zip(f(c, "upper")) {
            assert!(*x <= y, "{a} {c}");
        }
    }
    // The sound f32 path of Algorithm 1 (wk only): named in the output, J on the safe
    // side of f64's and within f32 rounding of it; refused with another method.
    let b64 = ok_json(&[
        "bound", "--model", &small, "--input", &input, "--eps", "0.1",
    ]);
    let b32 = ok_json(&[
        "bound",
        "--model",
        &small,
        "--input",
        &input,
        "--eps",
        "0.1",
        "--precision",
        "f32",
    ]);
    assert_eq!(b64["method"]["precision"], "f64");
    assert_eq!(b32["method"]["precision"], "f32");
    let (j64, j32) = (objective_js(&b64), objective_js(&b32));
    for (a, b) in j64.iter().zip(&j32) {
        assert!(
            b <= a && a - b <= 1e-4 * a.abs().max(1.0),
            "f64 {a}, f32 {b}"
        );
    }
    // Computed in f32, not only labelled so (a user trial found `bound` reusing f64).
    assert_ne!(j64, j32, "f32 J equal to f64's everywhere");
    assert_ne!(b64["algorithm1"], b32["algorithm1"]);
    let o = run(&[
        "bound",
        "--model",
        &small,
        "--input",
        &input,
        "--eps",
        "0.1",
        "--method",
        "crown",
        "--precision",
        "f32",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--precision applies to --method wk only"),
        "{err}"
    );
    let r = ok_json(&[
        "radius", "--model", &small, "--input", &input, "--method", "crown",
    ]);
    assert_eq!(r["method"]["name"], "crown");
    assert_eq!(r["rows"][0]["stop"], "Converged");
    // A usage error (clap: exit 2) that lists the methods.
    let o = run(&[
        "bound", "--model", &small, "--input", &input, "--eps", "0.1", "--method", "fast-lin",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for w in ["fast-lin", "interval", "wk", "crown", "alpha"] {
        assert!(err.contains(w), "{err}");
    }
}

#[test]
fn help_shows_examples() {
    let o = run(&["bound", "--help"]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("Examples:")
            && s.contains("convex-outer bound --model model.json --input mnist:test:17")
    );
}

#[test]
fn every_malformed_model_is_a_clear_error() {
    for entry in std::fs::read_dir(testdata("malformed")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("input_") {
            continue;
        }
        fails_with(
            &[
                "bound",
                "--model",
                p.to_str().unwrap(),
                "--input",
                "mnist:test:0",
                "--eps",
                "0.1",
            ],
            &["cannot load the model", &name],
        );
    }
}

#[test]
fn bad_inputs_and_flags_are_clear_errors() {
    let small = testdata("valid_small.json");
    let good = testdata("input_small.json");
    let m = |f: &str| testdata(&format!("malformed/{f}"));
    fails_with(
        &[
            "bound",
            "--model",
            &small,
            "--input",
            &m("input_wrong_length.json"),
            "--eps",
            "0.1",
        ],
        &["input has length 3 but the model expects 4"],
    );
    fails_with(
        &[
            "bound",
            "--model",
            &small,
            "--input",
            &m("input_null.json"),
            "--eps",
            "0.1",
        ],
        &["input_null.json", "entry 1 is null"],
    );
    fails_with(
        &[
            "bound",
            "--model",
            &small,
            "--input",
            &m("input_inf.json"),
            "--eps",
            "0.1",
        ],
        &["input_inf.json", "not valid JSON"],
    );
    fails_with(
        &[
            "bound",
            "--model",
            &small,
            "--input",
            &m("input_truncated.json"),
            "--eps",
            "0.1",
        ],
        &["input_truncated.json", "not valid JSON"],
    );
    fails_with(
        &[
            "bound",
            "--model",
            &small,
            "--input",
            "mnist:test:0",
            "--eps",
            "0.1",
        ],
        &["input has length 784 but the model expects 4"],
    );
    fails_with(
        &[
            "bound",
            "--model",
            &small,
            "--input",
            "mnist:test:5000",
            "--eps",
            "0.1",
        ],
        &["out of range"],
    );
    fails_with(
        &[
            "bound", "--model", &small, "--input", &good, "--eps", "-0.1",
        ],
        &["--eps must be a finite number >= 0"],
    );
    fails_with(
        &["bound", "--model", &small, "--input", &good, "--eps", "NaN"],
        &["--eps must be a finite number >= 0"],
    );
    fails_with(
        &[
            "bound",
            "--model",
            &small,
            "--input",
            &good,
            "--eps",
            "0.1",
            "--targets",
            "9",
        ],
        &["out of range"],
    );
    fails_with(
        &[
            "bound", "--model", &small, "--input", &good, "--eps", "0.1", "--box", "2,3",
        ],
        &["does not meet the box"],
    );
    fails_with(
        &[
            "bound",
            "--model",
            "/nonexistent/model.json",
            "--input",
            &good,
            "--eps",
            "0.1",
        ],
        &["/nonexistent/model.json"],
    );
    fails_with(
        &[
            "certify",
            "--model",
            &small,
            "--eps",
            "0.1",
            "--data",
            "idx:/no/img,/no/lab",
        ],
        &["/no/img"],
    );
    // clap's own errors (bad box syntax) exit with 2 and a message, also without a panic.
    let o = run(&[
        "bound", "--model", &small, "--input", &good, "--eps", "0.1", "--box", "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected lo,hi"));
}

/// `property` prints a VNN-COMP property as the verifier reads it, and names the line and
/// column of anything outside the dialect.
#[test]
fn property_prints_boxes_and_unsafe_regions() {
    let p = ok_json(&[
        "property",
        "--property",
        &testdata("vnncomp2021/acasxu/prop_6.vnnlib"),
    ]);
    assert_eq!(
        (p["inputs"].as_u64(), p["outputs"].as_u64()),
        (Some(5), Some(5))
    );
    let cases = p["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0]["unsafe_region"].as_array().unwrap().len(), 4);
    let bad = tmp("bad.vnnlib");
    std::fs::write(
        &bad,
        "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (<= X_0 Y_0))\n",
    )
    .unwrap();
    fails_with(
        &["property", "--property", bad.to_str().unwrap()],
        &["bad.vnnlib:3:9", "relates an input"],
    );
    fails_with(
        &["property", "--property", "/nonexistent/p.vnnlib"],
        &["/nonexistent/p.vnnlib"],
    );
}

/// A residual network (a graph model) end to end: `init` writes a version-2 file,
/// `bound` counts its linear units, `exact` closes the enclosure with the chain in order,
/// `export` writes ONNX that `verify` reads back and decides both ways.
#[test]
fn graph_models_end_to_end() {
    let model = tmp("graph_e2e_model.json");
    let onnx = tmp("graph_e2e_model.onnx");
    let input = tmp("graph_e2e_x.json");
    let (m, o, x) = (
        model.to_str().unwrap(),
        onnx.to_str().unwrap(),
        input.to_str().unwrap(),
    );
    ok_json(&[
        "init",
        "--arch",
        "residual-normalised:4-8-2-3",
        "--seed",
        "1",
        "--out",
        m,
    ]);
    assert!(std::fs::read_to_string(&model)
        .unwrap()
        .contains("\"version\":2"));
    std::fs::write(&input, "[0.1, 0.2, -0.3, 0.4]").unwrap();
    let b = ok_json(&["bound", "--model", m, "--input", x, "--eps", "0.05"]);
    let a1 = b["algorithm1"].as_array().unwrap();
    assert_eq!(a1[0]["linear"], 4, "the normalised input is 4 linear units");
    assert!(a1
        .iter()
        .skip(1)
        .any(|l| l["linear"].as_u64().unwrap_or(0) > 0));
    let e = ok_json(&[
        "exact",
        "--model",
        m,
        "--input",
        x,
        "--eps",
        "0.05",
        "--targets",
        "0",
    ]);
    let t = &e["objectives"][0];
    assert_eq!(t["exact"]["status"], "closed");
    let (j, lo, hi) = (
        t["J_wk"].as_f64().unwrap(),
        t["exact"]["lower"].as_f64().unwrap(),
        t["exact"]["upper"].as_f64().unwrap(),
    );
    assert!(
        j <= lo && lo <= hi && hi - lo <= 1e-6 * (1.0 + hi.abs()),
        "{t}"
    );
    ok_json(&["export", "--model", m, "--out", o]);
    // The model predicts class 2 at x by a margin of about 4 over class 0.
    let prop = |unsafe_atom: &str| {
        let mut s = String::new();
        for i in 0..4 {
            s.push_str(&format!("(declare-const X_{i} Real)\n"));
        }
        for i in 0..3 {
            s.push_str(&format!("(declare-const Y_{i} Real)\n"));
        }
        for (i, c) in [0.1, 0.2, -0.3, 0.4].iter().enumerate() {
            s.push_str(&format!("(assert (>= X_{i} {}))\n", c - 0.05));
            s.push_str(&format!("(assert (<= X_{i} {}))\n", c + 0.05));
        }
        s.push_str(unsafe_atom);
        s
    };
    for (name, atom, verdict, code) in [
        ("graph_unsat.vnnlib", "(assert (>= Y_0 Y_2))\n", "unsat", 0),
        ("graph_sat.vnnlib", "(assert (>= Y_2 Y_0))\n", "sat", 10),
    ] {
        let p = tmp(name);
        std::fs::write(&p, prop(atom)).unwrap();
        let out = run(&[
            "verify",
            "--model",
            o,
            "--property",
            p.to_str().unwrap(),
            "--timeout",
            "10",
        ]);
        assert_eq!(out.status.code(), Some(code), "{name}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["verdict"], verdict, "{name}");
    }
}
