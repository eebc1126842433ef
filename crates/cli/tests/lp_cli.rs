//! `convex-outer lp` and `bound --lp` end to end: golden LP values, the chain per target,
//! LP-all >= LP-last, and HiGHS either agreeing with microlp (built with it) or answering
//! that it is not compiled in.

use std::process::Command;

use serde_json::Value;

fn testdata(p: &str) -> String {
    format!("{}/../../testdata/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (bool, Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_convex-outer"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (
        o.status.success(),
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        err,
    )
}

/// Writes golden case `i`'s model and input as files; returns their paths and the case.
fn golden_case(i: usize) -> (String, String, Value) {
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("golden.json")).unwrap()).unwrap();
    let case = g["cases"][i].clone();
    let dir = std::env::temp_dir().join(format!("convex-outer-lpcli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = case["model"].clone();
    m["format"] = "convex-outer-model".into();
    m["version"] = 1.into();
    let (mp, ip) = (
        dir.join(format!("m{i}.json")),
        dir.join(format!("x{i}.json")),
    );
    std::fs::write(&mp, m.to_string()).unwrap();
    std::fs::write(&ip, case["x"].to_string()).unwrap();
    (mp.display().to_string(), ip.display().to_string(), case)
}

#[test]
fn lp_reproduces_golden_values_and_the_chain() {
    for i in 0..5 {
        let (mp, ip, case) = golden_case(i);
        let eps = case["eps"].to_string();
        for solver in ["microlp", "clarabel"] {
            let (ok, out, err) = run(&[
                "lp", "--model", &mp, "--input", &ip, "--eps", &eps, "--solver", solver,
            ]);
            assert!(ok, "{err}");
            let want = case["lp19_algorithm1_bounds"].as_array().unwrap();
            for row in out["targets"].as_array().unwrap() {
                let t = row["target"].as_u64().unwrap() as usize;
                let (lp, j, fx) = (
                    row["lp"].as_f64().unwrap(),
                    row["J"].as_f64().unwrap(),
                    row["value_at_lp_point"].as_f64().unwrap(),
                );
                let w = want[t].as_f64().unwrap();
                // 1e-6: clarabel's stated accuracy (see crates/lp/tests/chain.rs).
                let tol = 1e-6 * w.abs().max(1.0);
                assert!(
                    (lp - w).abs() <= tol,
                    "case {i} {solver} t{t}: {lp} vs golden {w}"
                );
                assert!(
                    j <= lp + tol && lp <= fx + tol,
                    "case {i} {solver} t{t}: J {j}, LP {lp}, f(x'_LP) {fx}"
                );
            }
            assert_eq!(out["method"]["lp"]["solver"], solver);
        }
    }
}

#[test]
fn lp_all_is_at_least_lp_last_through_the_cli() {
    let (mp, ip, case) = golden_case(4);
    let eps = case["eps"].to_string();
    let (_, last, _) = run(&[
        "lp", "--model", &mp, "--input", &ip, "--eps", &eps, "--solver", "microlp",
    ]);
    let (ok, all, err) = run(&[
        "lp", "--model", &mp, "--input", &ip, "--eps", &eps, "--solver", "microlp", "--bounds",
        "lp-all",
    ]);
    assert!(ok, "{err}");
    assert_eq!(all["lp"]["bounds"], "lp-all");
    for (a, l) in all["targets"]
        .as_array()
        .unwrap()
        .iter()
        .zip(last["targets"].as_array().unwrap())
    {
        let (a, l) = (a["lp"].as_f64().unwrap(), l["lp"].as_f64().unwrap());
        assert!(a >= l - 1e-7 * l.abs().max(1.0), "LP-all {a} < LP-last {l}");
    }
}

#[test]
fn bound_with_lp_adds_the_lp_column() {
    let (ok, out, err) = run(&[
        "bound",
        "--model",
        &testdata("valid_small.json"),
        "--input",
        &testdata("input_small.json"),
        "--eps",
        "0.1",
        "--lp",
        "--solver",
        "microlp",
    ]);
    assert!(ok, "{err}");
    let o = &out["objectives"][0];
    assert!(o["J"].as_f64().unwrap() <= o["lp"].as_f64().unwrap() + 1e-9);
    assert_eq!(o["status"], "ProvenOptimal");
    assert!(out["lp"]["variables"].as_u64().unwrap() > 0);
}

#[test]
fn highs_agrees_or_says_it_is_not_compiled() {
    let (mp, ip, case) = golden_case(3);
    let eps = case["eps"].to_string();
    let (ok, out, err) = run(&[
        "lp", "--model", &mp, "--input", &ip, "--eps", &eps, "--solver", "highs",
    ]);
    if !ok {
        assert!(
            err.contains("built without HiGHS; rebuild with --features highs"),
            "{err}"
        );
        return;
    }
    let (_, m, _) = run(&[
        "lp", "--model", &mp, "--input", &ip, "--eps", &eps, "--solver", "microlp",
    ]);
    for (h, m) in out["targets"]
        .as_array()
        .unwrap()
        .iter()
        .zip(m["targets"].as_array().unwrap())
    {
        let (h, m) = (h["lp"].as_f64().unwrap(), m["lp"].as_f64().unwrap());
        assert!(
            (h - m).abs() <= 1e-7 * m.abs().max(1.0),
            "HiGHS {h} vs microlp {m}"
        );
    }
}

#[test]
fn lp_flag_errors_are_clear() {
    let small = testdata("valid_small.json");
    let x = testdata("input_small.json");
    let (ok, _, err) = run(&[
        "lp", "--model", &small, "--input", &x, "--eps", "0.1", "--solver", "glpk",
    ]);
    assert!(!ok && err.contains("unknown solver \"glpk\""), "{err}");
    let (ok, _, err) = run(&[
        "lp", "--model", &small, "--input", &x, "--eps", "0.1", "--bounds", "exact",
    ]);
    assert!(
        !ok && err.contains("--bounds must be algorithm1 or lp-all"),
        "{err}"
    );
    let (ok, _, err) = run(&[
        "lp",
        "--model",
        &small,
        "--input",
        &x,
        "--eps",
        "0.1",
        "--time-limit",
        "-1",
    ]);
    assert!(!ok && err.contains("--time-limit"), "{err}");
}
