//! The status rules as functions, over every status each solver defines (an exhaustive
//! match: a solver upgrade that adds a status fails to compile here until it is placed),
//! the LP's shape at exact-zero bounds, and faer's supernodal LDL compiled into clarabel.

use dual::{stability, BoundSource, InputDomain, LayerBounds, Stability};
use good_lp::solvers::SolutionStatus;
use lp::{clarabel_status_is_value, good_lp_status_is_value, Lp19};
use network::{Layer, Model, Shape};

#[test]
fn microlp_only_optimal_is_a_value() {
    for s in [
        SolutionStatus::Optimal,
        SolutionStatus::TimeLimit,
        SolutionStatus::GapLimit,
    ] {
        let want = match s {
            SolutionStatus::Optimal => true,
            // A MIP incumbent at a time or gap limit: not an LP optimum.
            SolutionStatus::TimeLimit | SolutionStatus::GapLimit => false,
        };
        assert_eq!(good_lp_status_is_value(s), want, "{s:?}");
    }
}

#[test]
fn clarabel_only_solved_is_a_value() {
    use clarabel::solver::SolverStatus as S;
    let all = [
        S::Unsolved,
        S::Solved,
        S::PrimalInfeasible,
        S::DualInfeasible,
        S::AlmostSolved,
        S::AlmostPrimalInfeasible,
        S::AlmostDualInfeasible,
        S::MaxIterations,
        S::MaxTime,
        S::NumericalError,
        S::InsufficientProgress,
        S::CallbackTerminated,
    ];
    for s in all {
        let want = match s {
            S::Solved => true,
            // Reduced accuracy is not an optimum.
            S::AlmostSolved => false,
            S::Unsolved
            | S::PrimalInfeasible
            | S::DualInfeasible
            | S::AlmostPrimalInfeasible
            | S::AlmostDualInfeasible
            | S::MaxIterations
            | S::MaxTime
            | S::NumericalError
            | S::InsufficientProgress
            | S::CallbackTerminated => false,
        };
        assert_eq!(clarabel_status_is_value(&format!("{s:?}")), want, "{s:?}");
    }
}

#[cfg(feature = "highs")]
#[test]
fn highs_only_optimal_is_a_value() {
    use highs::HighsModelStatus as H;
    let all = [
        H::NotSet,
        H::LoadError,
        H::ModelError,
        H::PresolveError,
        H::SolveError,
        H::PostsolveError,
        H::ModelEmpty,
        H::Infeasible,
        H::UnboundedOrInfeasible,
        H::Unbounded,
        H::Optimal,
        H::ObjectiveBound,
        H::ObjectiveTarget,
        H::ReachedTimeLimit,
        H::ReachedIterationLimit,
        H::Unknown,
        H::ReachedSolutionLimit,
        H::ReachedInterrupt,
        H::ReachedMemoryLimit,
    ];
    for s in all {
        let want = matches!(s, H::Optimal);
        assert_eq!(lp::highs_status_is_value(s), want, "{s:?}");
    }
}

/// With given bounds at exact zeros, a unit with `u = 0` is off (no variable, no rows),
/// `l = 0` on (its pre-activation variable reused), and only `l < 0 < u` adds a `z` and
/// two rows: the LP's size says which rule was applied.
#[test]
fn exact_zero_bounds_give_the_stated_lp_shape() {
    let model = Model::new(
        Shape::Flat(1),
        vec![
            Layer::Dense {
                weight: vec![1.0, 1.0, 1.0],
                bias: vec![0.0, 0.0, 0.0],
                out_features: 3,
                in_features: 1,
            },
            Layer::Relu,
            Layer::Dense {
                weight: vec![1.0, 1.0, 1.0],
                bias: vec![0.0],
                out_features: 1,
                in_features: 3,
            },
        ],
    )
    .unwrap();
    let dom = InputDomain::new([0.0], 1.0, None).unwrap();
    let b = LayerBounds {
        lower: vec![network::DVector::from_vec(vec![-1.0, 0.0, -1.0])],
        upper: vec![network::DVector::from_vec(vec![0.0, 1.0, 1.0])],
        source: BoundSource::Given,
    };
    assert_eq!(stability(-1.0, 0.0), Stability::Off);
    assert_eq!(stability(0.0, 1.0), Stability::On);
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let s = lp.size();
    // z_1, zhat of units 1 and 2, z of unit 2, the logit: 5 variables; rows: two
    // affine rows of layer 0, two ReLU rows of unit 2, one output row.
    assert_eq!((s.variables, s.rows), (5, 5), "{s:?}");
}

/// The default build's clarabel has faer's supernodal LDL (feature `faer-sparse`, which
/// its automatic choice takes on the MNIST conv LPs): without the feature clarabel
/// refuses the method's name.
#[test]
fn clarabel_has_faers_supernodal_factorisation() {
    let mut b = clarabel::solver::DefaultSettingsBuilder::<f64>::default();
    b.direct_solve_method("faer".to_string());
    assert!(
        b.validate().is_ok(),
        "clarabel compiled without faer-sparse: {:?}",
        b.validate()
    );
    b.direct_solve_method("no-such-method".to_string());
    assert!(b.validate().is_err(), "an unknown method is refused");
}
