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

/// Writes golden case `i`'s model and input as files (a fresh folder per call); returns
/// their paths and the case.
fn golden_case(i: usize) -> (String, String, Value) {
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("golden.json")).unwrap()).unwrap();
    let case = g["cases"][i].clone();
    // A folder per call: tests run in parallel threads of one process, and a file that
    // another test is rewriting can be read half-written.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("convex-outer-lpcli-{}-{call}", std::process::id()));
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
                let (lp, j, fx, proven) = (
                    row["lp_solver_value"].as_f64().unwrap(),
                    row["J"].as_f64().unwrap(),
                    row["value_at_lp_point_upper"].as_f64().unwrap(),
                    row["lp_proven_lower"].as_f64().unwrap(),
                );
                assert_eq!(row["lp_verdict"], "optimum", "case {i} {solver} t{t}");
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
                // Proven numbers: J <= proven LP lower bound <= golden LP (no tolerance:
                // the golden value is an LP optimum, the proven bound is below it unless
                // rounding was mishandled; 1e-12 relative allows for the golden file's own
                // 1e-9-agreement).
                assert!(
                    j <= proven,
                    "case {i} {solver} t{t}: J {j} > proven {proven}"
                );
                assert!(
                    proven <= w + 1e-9 * w.abs().max(1.0),
                    "case {i} {solver} t{t}: proven {proven} above golden {w}"
                );
            }
            assert_eq!(out["method"]["lp"]["solvers"][0], solver);
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
        let (a, l) = (
            a["lp_solver_value"].as_f64().unwrap(),
            l["lp_solver_value"].as_f64().unwrap(),
        );
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
    assert!(o["J"].as_f64().unwrap() <= o["lp_solver_value"].as_f64().unwrap() + 1e-9);
    assert!(o["J"].as_f64().unwrap() <= o["lp_proven_lower"].as_f64().unwrap());
    assert_eq!(o["status"], "ProvenOptimal");
    assert_eq!(o["lp_verdict"], "optimum");
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
        let (h, m) = (
            h["lp_solver_value"].as_f64().unwrap(),
            m["lp_solver_value"].as_f64().unwrap(),
        );
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
    // clap's usage error lists the solvers.
    assert!(
        !ok && err.contains("'glpk'") && err.contains("microlp, clarabel, highs, all"),
        "{err}"
    );
    let (ok, _, err) = run(&[
        "lp", "--model", &small, "--input", &x, "--eps", "0.1", "--bounds", "exact",
    ]);
    assert!(
        !ok && err.contains("'exact'") && err.contains("algorithm1, lp-all"),
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

fn proven(name: &str) -> String {
    format!(
        "{}/../../testdata/proven/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn input_file(name: &str, x: &str) -> String {
    let p = std::env::temp_dir().join(format!("convex-outer-lpcli-{}-{name}", std::process::id()));
    std::fs::write(&p, x).unwrap();
    p.display().to_string()
}

/// Issue inputs 2 and 3 through the CLI: clarabel's `Solved` value above the optimum is
/// not called the optimum, microlp's spurious `Infeasible` is retried, and every attempt
/// is listed.
#[test]
fn lp_reports_an_enclosure_and_every_attempt() {
    let x = input_file("x05.json", "[0.5]");
    let (ok, out, err) = run(&[
        "lp",
        "--model",
        &proven("clarabel_gap.json"),
        "--input",
        &x,
        "--eps",
        "0.01",
        "--label",
        "0",
        "--solver",
        "clarabel",
    ]);
    assert!(ok, "{err}");
    let row = &out["targets"][0];
    assert!(row["lp_proven_lower"].as_f64().unwrap() <= -1.000051e12);
    let attempts = row["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["solver"], "clarabel");
    if row["lp_verdict"] == "optimum" {
        let v = row["lp_solver_value"].as_f64().unwrap();
        assert!((v + 1.000051e12).abs() <= 1e-6 * 1.000051e12, "{v}");
    }
    let x = input_file("x08.json", "[-0.8]");
    let (ok, out, err) = run(&[
        "lp",
        "--model",
        &proven("microlp_infeasible.json"),
        "--input",
        &x,
        "--eps",
        "0.09",
        "--label",
        "0",
        "--solver",
        "microlp",
    ]);
    assert!(ok, "{err}");
    let row = &out["targets"][0];
    let attempts = row["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["solver"], "microlp");
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(row["lp_verdict"], "optimum");
}

/// `--solver all` solves with every compiled solver and reports their agreement.
#[test]
fn solver_all_compares_every_compiled_solver() {
    let (mp, ip, case) = golden_case(1);
    let eps = case["eps"].to_string();
    let (ok, out, err) = run(&[
        "lp", "--model", &mp, "--input", &ip, "--eps", &eps, "--solver", "all",
    ]);
    assert!(ok, "{err}");
    let n = out["method"]["lp"]["solvers"].as_array().unwrap().len();
    assert!(n >= 2);
    for row in out["targets"].as_array().unwrap() {
        assert_eq!(row["solvers"].as_array().unwrap().len(), n);
        let agree = &row["solver_agreement"];
        let scale = row["lp_solver_value"].as_f64().unwrap().abs().max(1.0);
        assert!(
            agree["max_minus_min"].as_f64().unwrap() <= 1e-6 * scale,
            "{agree}"
        );
        assert_eq!(agree["all_optimum"], true);
    }
}

/// Issue inputs 1 and 4 through the CLI.
#[test]
fn overflow_and_one_output_models_get_clear_answers() {
    let x = input_file("x0.json", "[0]");
    let (ok, _, err) = run(&[
        "radius",
        "--model",
        &proven("nan_radius.json"),
        "--input",
        &x,
    ]);
    assert!(
        !ok && err.contains("overflow") && err.contains("layer 2"),
        "{err}"
    );
    let (ok, _, err) = run(&[
        "bound",
        "--model",
        &proven("nan_radius.json"),
        "--input",
        &x,
        "--eps",
        "0.01",
    ]);
    assert!(!ok && err.contains("overflow"), "{err}");
    let x = input_file("x2.json", "[0.3, -0.2]");
    let (ok, out, err) = run(&[
        "bound",
        "--model",
        &proven("one_output.json"),
        "--input",
        &x,
        "--eps",
        "0.1",
    ]);
    assert!(ok, "{err}");
    let (lo, hi) = (
        out["output_bounds"]["lower"].as_f64().unwrap(),
        out["output_bounds"]["upper"].as_f64().unwrap(),
    );
    assert!(lo <= 0.75 && 0.75 <= hi && hi - lo < 1.0, "[{lo}, {hi}]");
    assert!(out["certified"].is_null());
    let (ok, _, err) = run(&[
        "bound",
        "--model",
        &proven("one_output.json"),
        "--input",
        &x,
        "--eps",
        "0.1",
        "--targets",
        "1",
    ]);
    assert!(!ok && err.contains("one output"), "{err}");
    let (ok, _, err) = run(&[
        "radius",
        "--model",
        &proven("one_output.json"),
        "--input",
        &x,
    ]);
    assert!(!ok && err.contains("at least 2 outputs"), "{err}");
}

#[test]
fn bound_with_lp_uses_the_methods_own_intermediate_bounds() {
    // LP (19) over the bounds the method's J used: J <= LP for every method (to the
    // solver's confirmation tolerance, 1e-7 relative), and the output names those bounds.
    for i in 0..5 {
        let (mp, ip, case) = golden_case(i);
        let eps = case["eps"].to_string();
        for (method, source) in [
            ("interval", "interval"),
            ("wk", "algorithm1"),
            ("crown", "crown"),
            ("alpha", "crown"),
        ] {
            let (ok, out, err) = run(&[
                "bound", "--model", &mp, "--input", &ip, "--eps", &eps, "--method", method, "--lp",
                "--solver", "microlp",
            ]);
            assert!(ok, "case {i} {method}: {err}");
            assert_eq!(out["lp"]["bounds"], source, "case {i} {method}");
            for o in out["objectives"].as_array().unwrap() {
                let (j, v) = (
                    o["J"].as_f64().unwrap(),
                    o["lp_solver_value"].as_f64().unwrap(),
                );
                assert!(
                    j <= v + 1e-7 * v.abs().max(1.0),
                    "case {i} {method}: J {j} > LP {v}"
                );
                // The proven lower end is at least the method's own J (a dual point of
                // the same LP), whatever the solver did.
                let proven = o["lp_proven_lower"].as_f64().unwrap();
                assert!(j <= proven, "case {i} {method}: J {j} > proven LP {proven}");
            }
            // With no time to solve, the proven end falls back to a J: for CROWN, its own
            // (above the paper's J that the LP module falls back to).
            if method == "crown" {
                let (ok, out, err) = run(&[
                    "bound",
                    "--model",
                    &mp,
                    "--input",
                    &ip,
                    "--eps",
                    &eps,
                    "--method",
                    method,
                    "--lp",
                    "--solver",
                    "clarabel",
                    "--time-limit",
                    "1e-9",
                ]);
                assert!(ok, "case {i}: {err}");
                for o in out["objectives"].as_array().unwrap() {
                    let (j, proven) = (
                        o["J"].as_f64().unwrap(),
                        o["lp_proven_lower"].as_f64().unwrap(),
                    );
                    assert!(
                        j <= proven,
                        "case {i} no time: J {j} > proven LP {proven}: {o}"
                    );
                }
            }
        }
    }
}
