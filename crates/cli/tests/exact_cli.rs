//! `convex-outer exact`: the README's worked example (a seeded 4-24-24-3 model at eps 0.3)
//! closes every enclosure with the chain holding and the numbers in the README's order,
//! decision mode reports the best proven bound of the run, and bad flags or an input set
//! that is empty in exact arithmetic are clear errors.

mod common;

use common::{json, run, tmp};

/// The README's model and input, in files of their own per test (the tests run in
/// parallel: a shared file could be read while another test rewrites it).
fn setup(tag: &str) -> (String, String) {
    let model = tmp(&format!("{tag}-s.json"));
    let o = run(&[
        "init",
        "--arch",
        "mlp:4-24-24-3",
        "--seed",
        "1",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = tmp(&format!("{tag}-x.json"));
    std::fs::write(&x, r#"{"x": [0.1, -0.3, 0.5, 0.2]}"#).unwrap();
    (model.to_str().unwrap().into(), x.to_str().unwrap().into())
}

#[test]
fn the_readme_example_closes_with_the_chain() {
    let (m, x) = setup("readme");
    let o = run(&["exact", "--model", &m, "--input", &x, "--eps", "0.3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    assert_eq!(v["chain_holds"], true);
    assert!(v["verdict"].as_str().unwrap().starts_with("robust"), "{v}");
    let objs = v["objectives"].as_array().unwrap();
    assert_eq!(objs.len(), 2);
    for ob in objs {
        let e = &ob["exact"];
        let (lo, up) = (e["lower"].as_f64().unwrap(), e["upper"].as_f64().unwrap());
        assert_eq!(e["status"], "closed");
        assert!(up - lo <= 1e-6 * (1.0 + up.abs()), "{ob}");
        let j = ob["J_wk"].as_f64().unwrap();
        let last = ob["lp_last"]["proven_lower"].as_f64().unwrap();
        let all = ob["lp_all"]["proven_lower"].as_f64().unwrap();
        let pgd = ob["pgd_upper"].as_f64().unwrap();
        assert!(
            j <= last && last <= all + 1e-6 && all <= lo && lo <= up && up <= pgd,
            "{ob}"
        );
        assert!(ob["chain"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["holds"] == true));
        assert_eq!(e["point"].as_array().unwrap().len(), 4);
    }
    // The README's numbers (first target).
    let first = &objs[0]["exact"];
    assert!(
        (first["upper"].as_f64().unwrap() - 3.14807964).abs() < 1e-7,
        "{first}"
    );
}

#[test]
fn decision_mode_reports_the_best_proven_bound() {
    let (m, x) = setup("decide");
    let o = run(&[
        "exact", "--model", &m, "--input", &x, "--eps", "0.3", "--decide",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    for ob in v["objectives"].as_array().unwrap() {
        let e = &ob["exact"];
        assert_eq!(e["status"], "proved");
        let all = ob["lp_all"]["proven_lower"].as_f64().unwrap();
        assert!(e["lower"].as_f64().unwrap() >= all, "{ob}");
    }
}

#[test]
fn bad_flags_and_empty_input_sets_are_errors() {
    let (m, x) = setup("bad");
    let x4 = tmp("x4.json");
    std::fs::write(&x4, "[0.1, 0.1, 0.1, 0.1]").unwrap();
    for (args, want) in [
        (vec!["--eps", "0.3", "--tol", "-1"], "--tol"),
        (vec!["--eps", "0.3", "--timeout", "0"], "--timeout"),
        (vec!["--eps", "0.3", "--solver", "all"], "one LP solver"),
        (vec!["--eps", "-0.1"], "eps"),
        (
            vec!["--eps", "0.3", "--max-nodes", "0"],
            "--max-nodes must be at least 1",
        ),
        (vec!["--eps", "0.3", "--time-limit", "0"], "--time-limit"),
    ] {
        let mut a = vec!["exact", "--model", &m, "--input", &x];
        a.extend(args);
        let o = run(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{a:?}: {err}");
    }
    // 0.1 + 0.3 < 0.4 exactly, though the rounded sum is 0.4: the ball misses the box.
    let o = run(&[
        "exact",
        "--model",
        &m,
        "--input",
        x4.to_str().unwrap(),
        "--eps",
        "0.3",
        "--box",
        "0.4,1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("does not meet the box"), "{err}");
}

/// The node budget is a bound on the nodes bounded (a split's two children are not
/// bounded past it), and `--milp` either runs or, without HiGHS, is refused before any
/// work with the reason.
#[test]
fn node_budget_is_kept_and_milp_without_highs_is_refused() {
    let (m, x) = setup("budget");
    for budget in [1usize, 2, 3, 6] {
        let b = budget.to_string();
        let o = run(&[
            "exact",
            "--model",
            &m,
            "--input",
            &x,
            "--eps",
            "0.3",
            "--targets",
            "0",
            "--max-nodes",
            &b,
            "--skip-lp-all",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v = json(&o);
        let e = &v["objectives"][0]["exact"];
        let nodes = e["nodes"].as_u64().unwrap() as usize;
        // The README's example needs 15 nodes for this target's enclosure to close.
        assert!(nodes <= budget, "budget {budget}: {nodes} nodes");
        assert_eq!(
            e["status"].as_str().unwrap(),
            "node-budget",
            "budget {budget}: {e}"
        );
    }
    let o = run(&[
        "exact",
        "--model",
        &m,
        "--input",
        &x,
        "--eps",
        "0.3",
        "--milp",
        "--skip-lp-all",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        assert!(
            err.contains("--milp needs HiGHS") && o.stdout.is_empty(),
            "{err}"
        );
    } else {
        let v = json(&o);
        assert!(v["objectives"][0]["milp"].get("error").is_none(), "{v}");
    }
}
