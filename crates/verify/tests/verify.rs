//! `verify` on the VNN-COMP 2021 instances (the competition's verdicts are the
//! reference) and on small networks where the answer is known by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use network::{Layer, Model, Shape};
use verify::{confirms, verify, Verdict, VerifyOptions};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vnncomp2021")
}

fn expected(bench: &str, onnx: &str, vnnlib: &str) -> Verdict {
    let text = std::fs::read_to_string(root().join("verdicts.csv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{bench},{onnx},{vnnlib},")))
        .unwrap_or_else(|| panic!("{onnx} {vnnlib} not in verdicts.csv"));
    match line.split(',').nth(3).unwrap() {
        "sat" => Verdict::Sat,
        "unsat" => Verdict::Unsat,
        v => panic!("verdict {v}"),
    }
}

fn check(bench: &str, onnx: &str, vnnlib: &str) -> verify::Report {
    let model = onnx_io::load_onnx(root().join(bench).join(onnx))
        .unwrap()
        .model;
    let prop = vnnlib::read_property(root().join(bench).join(vnnlib)).unwrap();
    let opts = VerifyOptions {
        timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let r = verify(&model, &prop, &opts).unwrap();
    assert_eq!(
        r.verdict,
        expected(bench, onnx, vnnlib),
        "{onnx} {vnnlib}: {r:?}"
    );
    if let Some(w) = &r.witness {
        // The witness is in the file's exact box and reaches its conjunction exactly.
        let case = &prop.cases[w.case];
        for i in 0..w.x.len() {
            assert!(w.x[i] >= case.input.inner_lower[i] && w.x[i] <= case.input.inner_upper[i]);
        }
        assert!(confirms(&model, w.x.as_slice(), &case.unsafe_region[w.conjunction]).unwrap());
        assert_eq!(w.y, model.forward(&w.x).unwrap());
    }
    r
}

#[test]
fn the_competition_test_instances() {
    for (o, p) in [
        ("test_nano.onnx", "test_nano.vnnlib"),
        ("test_tiny.onnx", "test_tiny.vnnlib"),
        ("test_small.onnx", "test_small.vnnlib"),
        ("test_sat.onnx", "test_prop.vnnlib"),
        ("test_unsat.onnx", "test_prop.vnnlib"),
    ] {
        check("test", o, p);
    }
}

#[test]
fn acas_xu_instances_sat_and_unsat() {
    // Property 1 (one constraint, split), 2 (sat: a counterexample), 3, 4 and 10
    // (several constraints in one conjunction; 10 needs thousands of boxes).
    for (o, p) in [
        ("ACASXU_run2a_1_1_batch_2000.onnx", "prop_1.vnnlib"),
        ("ACASXU_run2a_1_2_batch_2000.onnx", "prop_2.vnnlib"),
        ("ACASXU_run2a_2_1_batch_2000.onnx", "prop_3.vnnlib"),
        ("ACASXU_run2a_3_3_batch_2000.onnx", "prop_4.vnnlib"),
        ("ACASXU_run2a_4_5_batch_2000.onnx", "prop_10.vnnlib"),
    ] {
        check("acasxu", o, p);
    }
}

/// `f(x) = w * x + b` on one input.
fn line(w: f64, b: f64) -> Model {
    Model::new(
        Shape::Flat(1),
        vec![Layer::Dense {
            weight: vec![w],
            bias: vec![b],
            out_features: 1,
            in_features: 1,
        }],
    )
    .unwrap()
}

fn prop(text: &str) -> vnnlib::Property {
    vnnlib::parse_property(text, "inline").unwrap()
}

fn run(model: &Model, text: &str) -> verify::Report {
    verify(model, &prop(text), &VerifyOptions::default()).unwrap()
}

#[test]
fn the_boundary_is_reached_and_just_below_it_is_not() {
    let m = line(1.0, 0.0);
    let head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0))\n(assert (<= X_0 1))\n";
    // min f = 0 is in the closed region Y_0 <= 0: sat at x = 0.
    let r = run(&m, &format!("{head}(assert (<= Y_0 0))"));
    assert_eq!(r.verdict, Verdict::Sat);
    assert_eq!(r.witness.unwrap().x.as_slice(), [0.0]);
    // Y_0 <= -1e-300 is out of reach: unsat, proven on the whole box.
    let r = run(&m, &format!("{head}(assert (<= Y_0 -0.000000000001))"));
    assert_eq!(r.verdict, Verdict::Unsat);
    assert_eq!(r.conjunctions[0].status, "excluded");
    assert_eq!(r.conjunctions[0].boxes, 1);
    // Y_0 >= 1 reached at the other corner.
    let r = run(&m, &format!("{head}(assert (>= Y_0 1))"));
    assert_eq!(r.verdict, Verdict::Sat);
    assert_eq!(r.witness.unwrap().x.as_slice(), [1.0]);
}

#[test]
fn witnesses_stay_inside_the_files_exact_box() {
    // 0.1 is not a double: the box is rounded outwards for bounds, inwards for witnesses.
    let m = line(1.0, 0.0);
    let head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0.1))\n(assert (<= X_0 0.3))\n";
    let r = run(&m, &format!("{head}(assert (<= Y_0 0.2))"));
    assert_eq!(r.verdict, Verdict::Sat);
    let x = r.witness.unwrap().x[0];
    let tenth = vnnlib::Decimal::parse("0.1").unwrap();
    let fifth = vnnlib::Decimal::parse("0.2").unwrap();
    // 0.1 <= x and f(x) = x <= 0.2, exactly.
    assert_ne!(tenth.cmp_f64(x), std::cmp::Ordering::Greater, "x = {x:e}");
    assert_ne!(fifth.cmp_f64(x), std::cmp::Ordering::Less, "x = {x:e}");
    // Y_0 <= 0.1 is reached in the reals only at x = 0.1, which is not a double: no
    // witness exists, and the region is not unreachable either: never sat, never unsat.
    let r = verify(
        &m,
        &prop(&format!("{head}(assert (<= Y_0 0.1))")),
        &VerifyOptions {
            timeout: Duration::from_secs(5),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        matches!(r.verdict, Verdict::Unknown | Verdict::Timeout),
        "{r:?}"
    );
}

#[test]
fn a_region_reached_only_between_the_rounded_ends_is_not_claimed() {
    // Exact box [0.1, 0.3]; Y_0 = X_0 <= 0.09999999999999999 (the double below 0.1) is
    // only reachable by the outward rounding of 0.1, not by the file's box: never sat.
    let m = line(1.0, 0.0);
    let below = 0.1f64.next_down();
    let text = format!("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0.1))\n(assert (<= X_0 0.3))\n(assert (<= Y_0 {below:.17}))");
    let r = verify(
        &m,
        &prop(&text),
        &VerifyOptions {
            timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(r.verdict, Verdict::Sat, "{r:?}");
}

/// A random 1-20-20-1 network on [-1, 1], its minimum on a grid of 200,001 points (a
/// piecewise linear function of one variable: the true minimum is within Lipschitz *
/// grid step of the grid's), a threshold just below every value (unreachable), and the
/// property's header.
fn relu_case() -> (Model, f64, f64, &'static str) {
    let m = network::Architecture::parse("mlp:1-20-20-1")
        .unwrap()
        .init(network::Init::Standard, 3)
        .unwrap();
    let n = 200_000;
    let xs: Vec<f64> = (0..=n).map(|i| -1.0 + 2.0 * i as f64 / n as f64).collect();
    let ys = m
        .forward_batch(network::DMatrixView::from_slice(
            &xs,
            m.input_len(),
            xs.len(),
        ))
        .unwrap();
    let min = ys.iter().cloned().fold(f64::INFINITY, f64::min);
    let lipschitz = ys
        .as_slice()
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f64::max)
        * n as f64
        / 2.0;
    let below = min - 2.0 * lipschitz / n as f64 - 1e-3;
    let head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 -1))\n(assert (<= X_0 1))\n";
    (m, min, below, head)
}

/// The falsifier skips a conjunction that CROWN excludes on the whole box (no point
/// reaches it) and searches one that CROWN does not exclude, unsat or not.
#[test]
fn the_falsifier_skips_what_crown_excludes() {
    let (m, min, below, head) = relu_case();
    // Far below every bound: CROWN excludes it, no point is evaluated.
    let r = run(&m, &format!("{head}(assert (<= Y_0 {:.17e}))", min - 1e6));
    assert_eq!(r.verdict, Verdict::Unsat, "{r:?}");
    assert_eq!(r.falsify_points, 0, "{r:?}");
    // Just below the minimum: unsat too, but beyond CROWN on the whole box, so searched.
    let r = run(&m, &format!("{head}(assert (<= Y_0 {below:.17e}))"));
    assert_eq!(r.verdict, Verdict::Unsat, "{r:?}");
    assert!(r.falsify_points > 0, "{r:?}");
}

#[test]
fn a_relu_network_needs_splitting() {
    // The region just below the minimum is unreachable but beyond every bound on the
    // whole box, and the region just above it is reached.
    let (m, min, below, head) = relu_case();
    let text = format!("{head}(assert (<= Y_0 {below:.17e}))");
    let r = run(&m, &text);
    assert_eq!(r.verdict, Verdict::Unsat, "{r:?}");
    assert_eq!(
        r.conjunctions[0].method.as_deref(),
        Some("crown+split"),
        "{r:?}"
    );
    assert!(r.conjunctions[0].boxes >= 3, "{r:?}");
    // The whole box is counted once, though both the ladder and the splitting bound it.
    assert_eq!(
        r.boxes,
        r.conjunctions.iter().map(|c| c.boxes).sum::<usize>(),
        "{r:?}"
    );
    let r = verify(
        &m,
        &prop(&text),
        &VerifyOptions {
            split: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.conjunctions[0].status, "open");
    let r = run(&m, &format!("{head}(assert (<= Y_0 {:.17e}))", min + 1e-3));
    assert_eq!(r.verdict, Verdict::Sat, "{r:?}");
}

#[test]
fn timeout_and_mismatch() {
    let model = onnx_io::load_onnx(root().join("acasxu/ACASXU_run2a_1_1_batch_2000.onnx"))
        .unwrap()
        .model;
    let p = vnnlib::read_property(root().join("acasxu/prop_1.vnnlib")).unwrap();
    let r = verify(
        &model,
        &p,
        &VerifyOptions {
            timeout: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Timeout);
    // The LP rung keeps to the deadline (each row gets the time left) and a property cut
    // short there is a timeout, not unknown, also without splitting. (Before, every row
    // got the whole budget: 20 s for this property with a 1 s timeout.)
    let p2 = vnnlib::read_property(root().join("acasxu/prop_2.vnnlib")).unwrap();
    for lp in [verify::LpRung::Last, verify::LpRung::All] {
        let r = verify(
            &model,
            &p2,
            &VerifyOptions {
                timeout: Duration::from_secs(2),
                split: false,
                lp,
                // No search beyond the centre and corners: without splitting the
                // falsifier may take the whole timeout, and on a loaded machine (a debug
                // build beside the other tests) it did, leaving the LP rung nothing.
                falsify: verify::FalsifyOptions {
                    restarts: 0,
                    edge_dims: 0,
                    polish_dims: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
        // The rung ran (its first row at least) and stopped near the deadline.
        let rows: Vec<Vec<&str>> = r
            .conjunctions
            .iter()
            .flat_map(|c| &c.root_bounds)
            .map(|b| b.lower.iter().map(|(n, _)| n.as_str()).collect())
            .collect();
        assert!(
            rows.iter().any(|r| r.contains(&"lp-last")),
            "{lp:?}: {rows:?}"
        );
        // Without splitting, one box per conjunction, whatever the rungs that bounded it
        // (it read 4 for interval, CROWN, alpha and LP-last on one box).
        assert_eq!(r.boxes, r.conjunctions.len(), "{lp:?}: {r:?}");
        // Whether 2 s suffice for the rung depends on the machine (a fast one solves the
        // four LP-last rows in 1.9 s): a run cut short must say timeout; `unknown` only
        // when every row got every LP of the rung.
        let last = if lp == verify::LpRung::All {
            "lp-all"
        } else {
            "lp-last"
        };
        let complete = rows.iter().all(|r| r.contains(&last));
        match r.verdict {
            Verdict::Timeout => {}
            Verdict::Unknown => assert!(complete, "{lp:?}: unknown with rows cut: {r:?}"),
            v => panic!("{lp:?}: {v:?}: {r:?}"),
        }
        // A generous multiple of the timeout: the check is that rows stop at the deadline
        // rather than each taking the whole budget (20 s here before the fix).
        assert!(r.time_s < 8.0, "{lp:?}: {} s for a 2 s timeout", r.time_s);
    }
    // The falsifier keeps to the deadline too: a million PGD restarts on property 2 (an
    // unsat instance: none succeeds) stop at the timeout (before, the restarts ran to
    // their end: 97 s for a 40 s timeout with 20,000 of them on ACAS Xu property 8).
    let r = verify(
        &model,
        &p2,
        &VerifyOptions {
            timeout: Duration::from_secs(1),
            split: false,
            lp: verify::LpRung::Off,
            falsify: verify::FalsifyOptions {
                restarts: 1_000_000,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Timeout, "{r:?}");
    assert!(r.time_s < 4.0, "{} s for a 1 s timeout", r.time_s);
    let e = verify(&line(1.0, 0.0), &p, &VerifyOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("declares 5 inputs") && e.contains("takes 1 inputs"),
        "{e}"
    );
}

#[test]
fn the_sum_of_a_conjunctions_constraints_excludes_it_when_no_single_one_does() {
    // y0 = x, y1 = -x on [-1, 1]; unsafe: y0 <= -0.5 and y1 <= -0.5 (x <= -0.5 and
    // x >= 0.5): empty. Each constraint alone is reachable (min -1), their sum y0 + y1 = 0
    // is above -1: excluded on the whole box by the first method, without splitting.
    let m = Model::new(
        Shape::Flat(1),
        vec![Layer::Dense {
            weight: vec![1.0, -1.0],
            bias: vec![0.0, 0.0],
            out_features: 2,
            in_features: 1,
        }],
    )
    .unwrap();
    let text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (<= Y_0 -0.5))\n(assert (<= Y_1 -0.5))";
    let r = run(&m, text);
    assert_eq!(r.verdict, Verdict::Unsat, "{r:?}");
    let c = &r.conjunctions[0];
    assert_eq!(
        (c.method.as_deref(), c.boxes),
        (Some("interval"), 1),
        "{r:?}"
    );
    // The single constraints' own bounds are reported, each below its threshold.
    for rb in &c.root_bounds {
        assert!(rb.lower[0].1 <= rb.rhs_hi, "{rb:?}");
    }
    // Shifted so that the sum is exactly at its threshold: y0 <= 0, y1 <= 0 is reached
    // at x = 0 (sat), and the sum's bound 0 must not exclude it.
    let text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (<= Y_0 0))\n(assert (<= Y_1 0))";
    let r = run(&m, text);
    assert_eq!(r.verdict, Verdict::Sat, "{r:?}");
    assert_eq!(r.witness.unwrap().x.as_slice(), [0.0]);
}

#[test]
fn a_pairwise_combination_excludes_what_singles_and_the_sum_do_not() {
    // y0 = x, y1 = -x, y2 = -5 on [-1, 1]; unsafe: y0 <= -0.5, y1 <= -0.5, y2 <= 0. Each
    // constraint alone is reachable, and so is the sum (y0 + y1 + y2 = -5 <= -1); the pair
    // y0/2 + y1/2 = 0 > -0.5 excludes it on the whole box.
    let m = Model::new(
        Shape::Flat(1),
        vec![Layer::Dense {
            weight: vec![1.0, -1.0, 0.0],
            bias: vec![0.0, 0.0, -5.0],
            out_features: 3,
            in_features: 1,
        }],
    )
    .unwrap();
    let text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (<= Y_0 -0.5))\n(assert (<= Y_1 -0.5))\n(assert (<= Y_2 0))";
    let r = verify(
        &m,
        &prop(text),
        &VerifyOptions {
            split: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Unsat, "{r:?}");
    assert_eq!(r.conjunctions[0].boxes, 1, "{r:?}");
}

#[test]
fn relu_branch_and_bound_decides_the_whole_box() {
    // The network and thresholds of `a_relu_network_needs_splitting`, with branch and
    // bound on ReLU splits from the whole box (depth 0): the same verdicts, and the unsat
    // one without splitting the input.
    let (m, min, below, head) = relu_case();
    let opts = VerifyOptions {
        relu_split: verify::ReluSplit::Depth(0),
        ..Default::default()
    };
    let r = verify(
        &m,
        &prop(&format!("{head}(assert (<= Y_0 {below:.17e}))")),
        &opts,
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Unsat, "{r:?}");
    assert_eq!(
        r.conjunctions[0].boxes, 1,
        "excluded by branch and bound on the root: {r:?}"
    );
    let r = verify(
        &m,
        &prop(&format!("{head}(assert (<= Y_0 {:.17e}))", min + 1e-3)),
        &opts,
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Sat, "{r:?}");
}

/// The proven lower bounds of `min Y_0` on `[-1, 1]^2` by alpha, LP-last and LP-all.
fn ladder_values(m: &Model) -> (f64, f64, f64) {
    use dual::{bound_given, method_bounds, AlphaOptions, InputDomain, Method};
    let root = InputDomain::from_box([-1.0, -1.0], [1.0, 1.0]).unwrap();
    let crown = method_bounds(m, &root, Method::Crown).unwrap();
    let alpha = bound_given(
        m,
        &root,
        crown.clone(),
        network::as_row(&[1.0]),
        Method::Alpha,
        &AlphaOptions::default(),
    )
    .unwrap()
    .values[0];
    let lp_value = |lb: &dual::LayerBounds| {
        let lp19 = lp::Lp19::new(m, &root, lb).unwrap();
        let opts = lp::LpOptions::default();
        let e = lp::solve_verified(
            &lp19,
            network::as_row(&[1.0]),
            lp::Solver::preferred(),
            &opts,
            false,
            &Default::default(),
        )
        .unwrap();
        assert!(e[0].is_optimum, "{:?}", e[0]);
        e[0].proven_lower
    };
    let all = lp::lp_all_bounds(m, &root, lp::Solver::preferred(), &Default::default()).unwrap();
    (alpha, lp_value(&crown), lp_value(&all))
}

#[test]
fn lp_all_on_the_whole_box_excludes_what_alpha_and_lp_last_do_not() {
    // A random 2-20-20-1 net whose LP-all bound is above alpha's and LP-last's: a
    // threshold between them is excluded by the `lp-all` rung alone (no splitting).
    let (m, (alpha, last, all)) = (0..40)
        .map(|seed| {
            let m = network::Architecture::parse("mlp:2-20-20-1")
                .unwrap()
                .init(network::Init::Standard, seed)
                .unwrap();
            let v = ladder_values(&m);
            (m, v)
        })
        .find(|(_, (a, l, all))| *all - a.max(*l) > 1e-3 * (1.0 + all.abs()))
        .expect("some seed has a gap between LP-all and LP-last");
    let rhs = 0.5 * (all + alpha.max(last));
    let text = format!(
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n\
         (assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n\
         (assert (<= Y_0 {rhs:.17e}))"
    );
    let opts = |lp| VerifyOptions {
        split: false,
        lp,
        ..Default::default()
    };
    let r = verify(&m, &prop(&text), &opts(verify::LpRung::All)).unwrap();
    assert_eq!(
        r.verdict,
        Verdict::Unsat,
        "alpha {alpha} last {last} all {all}: {r:?}"
    );
    assert_eq!(r.conjunctions[0].method.as_deref(), Some("lp-all"), "{r:?}");
    let names: Vec<&str> = r.conjunctions[0].root_bounds[0]
        .lower
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["interval", "crown", "alpha", "lp-last", "lp-all"]);
    let rungs = |r: &verify::Report| -> Vec<String> {
        r.conjunctions[0].root_bounds[0]
            .lower
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    };
    for (lp, last) in [
        (verify::LpRung::Last, true),
        (verify::LpRung::Auto, true),
        (verify::LpRung::Off, false),
    ] {
        let r = verify(&m, &prop(&text), &opts(lp)).unwrap();
        assert_eq!(r.verdict, Verdict::Unknown, "{lp:?}: {r:?}");
        assert_eq!(
            rungs(&r).contains(&"lp-last".to_string()),
            last,
            "{lp:?}: {r:?}"
        );
    }
    // With splitting on, the default ladder (auto: no LP on two inputs) and input
    // splitting decide it.
    let r = verify(&m, &prop(&text), &VerifyOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Unsat, "{r:?}");
    assert_eq!(
        r.conjunctions[0].method.as_deref(),
        Some("crown+split"),
        "{r:?}"
    );
    assert!(!rungs(&r).contains(&"lp-last".to_string()), "{r:?}");
}

/// The falsifier as a library call, with nalgebra vectors or slices: on `y = 2x - 1` over
/// [0, 1], `y <= -0.5` is reached (a confirmed point at most 0.25), `y <= -2` is not; a
/// start point outside the box is clamped into it.
#[test]
fn the_falsifier_alone() {
    use rand::SeedableRng;
    let m = line(2.0, -1.0);
    let k = |rhs: f64| vnnlib::OutputConstraint {
        coef: network::DVector::from_vec(vec![1.0]),
        rhs_lo: rhs,
        rhs_hi: rhs,
        line: 1,
        col: 1,
    };
    let opts = verify::FalsifyOptions::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (x, n) = verify::falsify(&m, [0.0], [1.0], &[k(-0.5)], &opts, &mut rng).unwrap();
    let x = x.expect("reached");
    assert!(x[0] <= 0.25 && x[0] >= 0.0 && n >= 1, "{x}");
    assert!(confirms(&m, &x, &[k(-0.5)]).unwrap());
    let (x, _) = verify::falsify(&m, [0.0], [1.0], &[k(-2.0)], &opts, &mut rng).unwrap();
    assert!(x.is_none());
    let start = network::DVector::from_vec(vec![5.0]);
    let (x, _) = verify::falsify_from(
        &m,
        network::DVector::from_vec(vec![0.0]),
        [1.0],
        &[k(-0.5)],
        Some(start.as_view()),
        &opts,
        &mut rng,
    )
    .unwrap();
    assert!(x.unwrap()[0] <= 0.25);
}

/// `ReluSplit::Auto` (the default): the ReLU branch and bound from depth 20 on boxes of
/// at most 12 coordinates of positive width (ACAS Xu's 5), never on wider ones (MNIST's
/// 784); an explicit depth applies to every box.
#[test]
fn relu_split_auto_depends_on_the_boxs_width() {
    use verify::{ReluSplit, AUTO_LP_DIMS, AUTO_RELU_SPLIT_DEPTH};
    assert_eq!(VerifyOptions::default().relu_split, ReluSplit::Auto);
    assert_eq!(ReluSplit::Auto.depth(5), Some(AUTO_RELU_SPLIT_DEPTH));
    assert_eq!(ReluSplit::Auto.depth(AUTO_LP_DIMS), Some(20));
    assert_eq!(ReluSplit::Auto.depth(AUTO_LP_DIMS + 1), None);
    assert_eq!(ReluSplit::Auto.depth(784), None);
    assert_eq!(ReluSplit::Off.depth(5), None);
    assert_eq!(ReluSplit::Depth(3).depth(784), Some(3));
    assert_eq!(
        [ReluSplit::Off, ReluSplit::Auto, ReluSplit::Depth(7)].map(|r| r.word()),
        ["off", "auto", "7"]
    );
}

#[test]
fn a_wide_box_gets_relu_branch_and_bound_over_the_whole_box() {
    // Random 16-16-16-1 nets on [-1, 1]^16 (16 inputs of positive width > AUTO_LP_DIMS:
    // no input splitting under `ReluSplit::Auto`). The exact minimum m of Y_0, enclosed by
    // `exact::minimise`: `Y_0 <= m - 0.02` is unsat and `Y_0 <= m + 0.02` sat. At least
    // one case must be excluded by the whole-box ReLU branch and bound (`relu-bab`, with
    // its nodes counted) where the ladder (interval, CROWN, alpha, LP-last) is not enough;
    // the seeds stop at the first such case (the test's cost).
    use verify::{ReluSplit, AUTO_LP_DIMS};
    assert!(ReluSplit::Auto.whole_box(AUTO_LP_DIMS + 1) && !ReluSplit::Auto.whole_box(5));
    assert!(!ReluSplit::Off.whole_box(784) && !ReluSplit::Depth(0).whole_box(784));
    let n = 16;
    let mut head = String::new();
    for i in 0..n {
        head += &format!("(declare-const X_{i} Real)\n");
    }
    head += "(declare-const Y_0 Real)\n";
    for i in 0..n {
        head += &format!("(assert (>= X_{i} -1))\n(assert (<= X_{i} 1))\n");
    }
    let mut by_bab = 0;
    for seed in 0..6 {
        let m = network::Architecture::parse("mlp:16-16-16-1")
            .unwrap()
            .init(network::Init::Standard, seed)
            .unwrap();
        let dom = dual::InputDomain::from_box(vec![-1.0; n], vec![1.0; n]).unwrap();
        let e = exact::minimise(&m, &dom, [1.0], &exact::BabOptions::default()).unwrap();
        assert_eq!(e.status, exact::BabStatus::Closed, "seed {seed}: {e:?}");
        let opts = VerifyOptions {
            timeout: Duration::from_secs(60),
            ..Default::default()
        };
        let below = prop(&format!("{head}(assert (<= Y_0 {:.17e}))", e.lower - 0.02));
        let r = verify(&m, &below, &opts).unwrap();
        assert_eq!(r.verdict, Verdict::Unsat, "seed {seed}: {r:?}");
        let c = &r.conjunctions[0];
        if c.method.as_deref() == Some("relu-bab") {
            assert!(c.nodes > 0 && r.nodes == c.nodes, "seed {seed}: {r:?}");
            by_bab += 1;
        } else {
            assert_eq!(c.nodes, 0, "seed {seed}: {r:?}");
        }
        let above = prop(&format!("{head}(assert (<= Y_0 {:.17e}))", e.upper + 0.02));
        let r = verify(&m, &above, &opts).unwrap();
        assert_eq!(r.verdict, Verdict::Sat, "seed {seed}: {r:?}");
        if by_bab > 0 {
            break;
        }
    }
    assert!(
        by_bab > 0,
        "the ladder excluded every case: relu-bab not exercised"
    );
}
