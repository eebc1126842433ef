//! HiGHS (feature `highs`, run by CI): agrees with microlp to 1e-7 relative (the issue's
//! requirement; both are simplex codes at ~1e-9 feasibility), warm re-solves over the
//! targets of one image give the cold values, and limits give errors with HiGHS' status.
#![cfg(feature = "highs")]

use dual::{algorithm1, margin_objectives, InputDomain};
use lp::{lp_all_bounds, solve, solve_many, Lp19, LpError, LpOptions, Solver};
use network::{Architecture, Init, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1.0)
}

#[test]
fn highs_agrees_with_microlp_and_warm_equals_cold() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let conv = Architecture::conv_net(Shape::Image { c: 1, h: 8, w: 8 }, &[(4, 4, 2, 1)], &[10]);
    let models = [
        Architecture::mlp(&[2, 100, 100, 100, 100, 2])
            .init(Init::Paper, 0)
            .unwrap(),
        Architecture::mlp(&[20, 50, 50, 10])
            .init(Init::Paper, 1)
            .unwrap(),
        conv.init(Init::Paper, 2).unwrap(),
    ];
    for model in &models {
        for eps in [0.05, 0.1, 0.25] {
            let x: Vec<f64> = (0..model.input_len()).map(|_| rng.random()).collect();
            let dom = InputDomain::new(&x, eps, None).unwrap();
            let b = algorithm1(model, &dom).unwrap();
            let lp = Lp19::new(model, &dom, &b).unwrap();
            let n = model.output_len();
            let y = model.predict(&x).unwrap();
            let others: Vec<usize> = (0..n).filter(|&t| t != y).collect();
            let cs = margin_objectives(n, y).unwrap().select_rows(&others);
            let warm = solve_many(&lp, &cs, Solver::Highs, &LpOptions::default(), true).unwrap();
            let cold = solve_many(&lp, &cs, Solver::Highs, &LpOptions::default(), false).unwrap();
            for (k, c) in cs.row_iter().enumerate() {
                let m = solve(&lp, c.transpose(), Solver::Microlp, &LpOptions::default()).unwrap();
                assert!(
                    rel(warm[k].value, m.value) <= 1e-7,
                    "{}: HiGHS {} vs microlp {}",
                    model.describe(),
                    warm[k].value,
                    m.value
                );
                assert!(rel(warm[k].value, cold[k].value) <= 1e-7);
                assert!(lp.max_violation(&warm[k].values) <= 1e-7);
                assert_eq!(warm[k].warm, k > 0);
            }
        }
    }
}

#[test]
fn highs_lp_all_matches_microlp_lp_all() {
    let model = Architecture::mlp(&[2, 30, 30, 30, 2])
        .init(Init::Paper, 4)
        .unwrap();
    let dom = InputDomain::new([0.4, 0.6], 0.2, None).unwrap();
    let a = lp_all_bounds(&model, &dom, Solver::Highs, &LpOptions::default()).unwrap();
    let b = lp_all_bounds(&model, &dom, Solver::Microlp, &LpOptions::default()).unwrap();
    for (la, lb) in a.lower.iter().zip(&b.lower) {
        for (p, q) in la.iter().zip(lb) {
            assert!(rel(*p, *q) <= 1e-7, "{p} vs {q}");
        }
    }
}

#[test]
fn highs_iteration_limit_is_an_error_with_the_status() {
    let model = Architecture::mlp(&[10, 60, 60, 60, 3])
        .init(Init::Paper, 5)
        .unwrap();
    let x: Vec<f64> = (0..10).map(|i| i as f64 / 10.0).collect();
    let dom = InputDomain::new(&x, 0.2, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let opts = LpOptions {
        iteration_limit: Some(1),
        ..LpOptions::default()
    };
    match solve(&lp, [1.0, -1.0, 0.0], Solver::Highs, &opts) {
        Err(LpError::NotOptimal { solver, status, .. }) => {
            assert_eq!(solver, "highs");
            assert!(status.contains("IterationLimit"), "{status}");
        }
        other => panic!("expected NotOptimal, got {other:?}"),
    }
}
