//! End to end: a solve stopped by an iteration or time limit is an error carrying the
//! solver's status (good_lp reports these stops as errors before our status rules run;
//! the rules themselves are tested over every status in `status.rs`); bounds with l > u
//! are refused before any solver runs; HiGHS answers "built without" when off.

use dual::{algorithm1, InputDomain, LayerBounds};
use lp::{solve, Lp19, LpError, LpOptions, Solver};
use network::{Architecture, Init};

fn case() -> (network::Model, InputDomain) {
    let model = Architecture::mlp(&[10, 60, 60, 60, 3])
        .init(Init::Paper, 5)
        .unwrap();
    let x: Vec<f64> = (0..10).map(|i| i as f64 / 10.0).collect();
    let dom = InputDomain::new(&x, 0.2, None).unwrap();
    (model, dom)
}

#[test]
fn a_tiny_iteration_limit_is_an_error_with_the_status() {
    let (model, dom) = case();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let opts = LpOptions {
        iteration_limit: Some(1),
        ..LpOptions::default()
    };
    match solve(&lp, [1.0, -1.0, 0.0], Solver::Clarabel, &opts) {
        Err(LpError::NotOptimal { solver, status, .. }) => {
            assert_eq!(solver, "clarabel");
            assert!(status.contains("Max iterations"), "{status}");
        }
        other => panic!("expected NotOptimal, got {other:?}"),
    }
}

#[test]
fn a_zero_time_limit_is_an_error_with_the_status() {
    let (model, dom) = case();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let opts = LpOptions {
        time_limit: Some(0.0),
        ..LpOptions::default()
    };
    for solver in [Solver::Microlp, Solver::Clarabel] {
        match solve(&lp, [1.0, -1.0, 0.0], solver, &opts) {
            Err(LpError::NotOptimal { status, .. }) => {
                assert!(
                    status.to_lowercase().contains("time"),
                    "{}: {status}",
                    solver.name()
                );
            }
            other => panic!("{}: expected NotOptimal, got {other:?}", solver.name()),
        }
    }
}

#[test]
fn inconsistent_bounds_are_refused_before_solving() {
    let (model, dom) = case();
    let mut b: LayerBounds = algorithm1(&model, &dom).unwrap();
    b.lower[1][7] = b.upper[1][7] + 1.0;
    let err = Lp19::new(&model, &dom, &b).unwrap_err().to_string();
    assert!(
        err.contains("hidden layer 1") && err.contains("unit 7") && err.contains("l <= u"),
        "{err}"
    );
    let mut b = algorithm1(&model, &dom).unwrap();
    b.upper[0][3] = f64::NAN;
    assert!(Lp19::new(&model, &dom, &b).is_err());
    let mut b = algorithm1(&model, &dom).unwrap();
    b.lower[2][0] = f64::NEG_INFINITY;
    let err = Lp19::new(&model, &dom, &b).unwrap_err().to_string();
    assert!(err.contains("must be finite"), "{err}");
}

#[test]
fn an_objective_of_the_wrong_length_is_refused() {
    let (model, dom) = case();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let err = solve(&lp, [1.0, -1.0], Solver::Microlp, &LpOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains(
            "objective matrix is 1 x 2; it needs at least one row and one column per output (3)"
        ),
        "{err}"
    );
}

#[cfg(not(feature = "highs"))]
#[test]
fn highs_says_it_is_not_compiled() {
    let (model, dom) = case();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let err = solve(&lp, [1.0, -1.0, 0.0], Solver::Highs, &LpOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "built without HiGHS; rebuild with --features highs"
    );
    assert!(!Solver::Highs.available());
    assert_eq!(Solver::preferred(), Solver::Clarabel);
}

#[test]
fn lp_size_counts_rows_and_nonzeros() {
    let (model, dom) = case();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let s = lp.size();
    let counts = b.counts(&model);
    let unstable: usize = counts.iter().map(|c| c.unstable).sum();
    let off: usize = counts.iter().map(|c| c.off).sum();
    assert!(off > 0, "the case should have stably-off units");
    // 10 inputs, 60 + 60 + 60 + 3 pre-activations less the stably-off ones (dropped with
    // their rows), one z per unstable unit.
    assert_eq!(s.variables, 10 + 183 - off + unstable);
    assert_eq!(s.rows, 183 - off + 2 * unstable);
    assert!(s.nonzeros > 183);
}
