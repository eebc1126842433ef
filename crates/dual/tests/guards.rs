//! The guards a real bug could remove without any sampling test noticing (the mutation
//! audit of the mutation-testing issue): alpha validation, the box intersection, the
//! certificate rule, NaN handling and the stability thresholds at exact zeros.

mod common;

use network::{as_row, DMatrix, DVector};
use std::cmp::Ordering;

use dual::{
    algorithm1, certifies, dual_objective, min_over_targets, stability, unit_stability, AlphaRule,
    BoundSource, DualError, InputDomain, LayerBounds, Stability,
};
use network::{objective_exact, Architecture, Init, Layer, Model, Shape};

fn net() -> Model {
    Architecture::mlp(&[2, 4, 2]).init(Init::Paper, 3).unwrap()
}

/// Any alpha in [0, 1] is dual feasible; outside it J is not a bound (with alpha in
/// {-1, 2, 5} J exceeded the sampled minimum by up to 0.15). So it is refused, as is NaN.
#[test]
fn alpha_outside_the_unit_interval_is_refused() {
    let model = net();
    let dom = InputDomain::new([0.1, -0.2], 0.5, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let c = DMatrix::from_row_slice(1, 2, &[1.0, -1.0]);
    for bad in [-1.0, -1e-12, 1.0 + 1e-12, 2.0, 5.0, f64::NAN, f64::INFINITY] {
        let alpha = AlphaRule::PerUnit(vec![DVector::from_element(4, bad)]);
        let err = dual_objective(&model, &dom, &b, &c, &alpha).unwrap_err();
        assert!(
            matches!(err, DualError::Alpha { layer: 0, .. })
                && err.to_string().contains("outside [0, 1]"),
            "alpha {bad}: {err}"
        );
    }
    for ok in [0.0, 0.5, 1.0] {
        let alpha = AlphaRule::PerUnit(vec![DVector::from_element(4, ok)]);
        dual_objective(&model, &dom, &b, &c, &alpha).unwrap();
    }
}

/// The ball intersected with a box is the box with the clipped corners, exactly; and an
/// affine-only net's proven J over it is its exact minimum over those corners (to
/// rounding), so a domain with the right radius but the wrong centre fails.
#[test]
fn the_box_intersection_has_the_exact_clipped_corners() {
    let dom = InputDomain::new([0.9, 0.05, 0.5], 0.2, Some((0.0, 1.0))).unwrap();
    let (lo, hi) = (dom.lower(), dom.upper());
    let want_lo = [0.7, 0.0, 0.3];
    let want_hi = [1.0, 0.25, 0.7];
    for i in 0..3 {
        assert!((lo[i] - want_lo[i]).abs() <= 1e-15, "lower {lo:?}");
        assert!((hi[i] - want_hi[i]).abs() <= 1e-15, "upper {hi:?}");
        assert!(
            dom.center[i] - dom.radius[i] <= want_lo[i]
                && want_hi[i] <= dom.center[i] + dom.radius[i]
        );
    }
    // f(x) = W2 relu(W1 x + b1) + b2 with every unit stably on over the box: affine.
    let model = Model::new(
        Shape::Flat(3),
        vec![
            Layer::Dense {
                weight: vec![1.0, -2.0, 0.5, -0.5, 1.0, 3.0],
                bias: vec![10.0, 10.0],
                out_features: 2,
                in_features: 3,
            },
            Layer::Relu,
            Layer::Dense {
                weight: vec![1.0, 0.0, 0.0, 1.0],
                bias: vec![0.0, 0.0],
                out_features: 2,
                in_features: 2,
            },
        ],
    )
    .unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let c = DMatrix::from_row_slice(1, 2, &[1.0, -1.0]);
    let j = dual_objective(&model, &dom, &b, &c, &AlphaRule::Paper)
        .unwrap()
        .values[0];
    // The exact minimum of c^T f over the clipped box is at a corner.
    let mut min: Option<network::Dyadic> = None;
    for mask in 0..8 {
        let x: Vec<f64> = (0..3)
            .map(|i| {
                if mask >> i & 1 == 1 {
                    want_hi[i]
                } else {
                    want_lo[i]
                }
            })
            .collect();
        let v = objective_exact(&model, &x, c.as_slice()).unwrap();
        min = Some(match min {
            Some(m) if m <= v => m,
            _ => v,
        });
    }
    let min = min.unwrap();
    assert_ne!(
        min.cmp_f64(j),
        Some(Ordering::Less),
        "J {j} above the exact minimum"
    );
    assert!(
        (min.to_f64() - j).abs() <= 1e-12,
        "J {j} vs exact minimum {}",
        min.to_f64()
    );
}

/// Corollary 1 needs every margin bound > 0: a zero bound is a tie, a NaN is nothing, and
/// an empty target set certifies nothing.
#[test]
fn the_certificate_rule_is_strict_and_nan_safe() {
    assert!(certifies([1.0, 0.0, 0.5], 1));
    assert!(!certifies([0.0, 0.0, 0.5], 1), "a tie certified");
    assert!(!certifies([1.0, 0.0, -0.0], 1));
    assert!(!certifies([f64::NAN, 0.0, 0.5], 1), "a NaN certified");
    assert!(!certifies([0.0], 0), "no target certified");
    assert!(!certifies([], usize::MAX));
    assert!(min_over_targets([1.0, f64::NAN, 0.5], 0).is_nan());
    assert_eq!(min_over_targets([1.0, 3.0, 0.5], 0), 0.5);
}

/// The index sets at exact zeros: `u <= 0` is off (I-), `l >= 0` on (I+), only
/// `l < 0 < u` unstable (I). Counts and LP sizes depend on the boundary cases.
#[test]
fn stability_at_exact_zeros() {
    assert_eq!(stability(0.0, 0.0), Stability::Off);
    assert_eq!(stability(-1.0, 0.0), Stability::Off);
    assert_eq!(stability(0.0, 1.0), Stability::On);
    assert_eq!(stability(-1e-300, 1e-300), Stability::Unstable);
    let b = LayerBounds {
        lower: vec![DVector::from_vec(vec![0.0, -1.0, -1.0, 0.0])],
        upper: vec![DVector::from_vec(vec![1.0, 0.0, 1.0, 0.0])],
        source: BoundSource::Given,
    };
    let model = Architecture::mlp(&[2, 4, 2]).init(Init::Paper, 0).unwrap();
    let c = b.counts(&model)[0];
    assert_eq!((c.off, c.on, c.unstable, c.linear), (2, 1, 1, 0));
    // The same bounds on a layer whose last two units are linear: those count as linear
    // whatever their bounds, and never as I-, I+ or I.
    assert_eq!(unit_stability(2, 1, -1.0, 0.0), Stability::Off);
    assert_eq!(unit_stability(2, 2, -1.0, 1.0), Stability::Linear);
    assert_eq!(unit_stability(2, 3, 0.0, 0.0), Stability::Linear);
}

/// Bounds handed to the dual must fit the model and be ordered finite numbers; each
/// defect is an error naming the layer (the LP refuses the same bounds through this).
#[test]
fn layer_bounds_are_validated() {
    let model = Architecture::mlp(&[2, 3, 4, 2])
        .init(Init::Paper, 1)
        .unwrap();
    let good = || LayerBounds {
        lower: vec![
            DVector::from_element(3, -1.0),
            DVector::from_element(4, -1.0),
        ],
        upper: vec![DVector::from_element(3, 1.0), DVector::from_element(4, 1.0)],
        source: BoundSource::Given,
    };
    good().validate(&model).unwrap();
    // A degenerate unit (l == u, e.g. a constant input) is valid.
    let mut tie = good();
    tie.lower[0][1] = 0.5;
    tie.upper[0][1] = 0.5;
    tie.validate(&model).unwrap();
    let mut with_output = good();
    with_output.lower.push(DVector::from_element(2, -1.0));
    with_output.upper.push(DVector::from_element(2, 1.0));
    with_output.validate(&model).unwrap();
    type Edit = Box<dyn Fn(&mut LayerBounds)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "missing layer",
            Box::new(|b| {
                b.lower.pop();
                b.upper.pop();
            }),
        ),
        (
            "lower/upper count",
            Box::new(|b| {
                b.upper.pop();
            }),
        ),
        (
            "too many layers",
            Box::new(|b| {
                for _ in 0..2 {
                    b.lower.push(DVector::zeros(2));
                    b.upper.push(DVector::zeros(2));
                }
            }),
        ),
        (
            "lower length",
            Box::new(|b| b.lower[1] = DVector::from_element(5, -1.0)),
        ),
        (
            "upper length",
            Box::new(|b| b.upper[0] = DVector::from_element(2, 1.0)),
        ),
        ("l > u", Box::new(|b| b.lower[1][2] = 2.0)),
        ("NaN lower", Box::new(|b| b.lower[0][1] = f64::NAN)),
        ("NaN upper", Box::new(|b| b.upper[1][0] = f64::NAN)),
        (
            "infinite upper",
            Box::new(|b| b.upper[0][2] = f64::INFINITY),
        ),
        (
            "infinite lower",
            Box::new(|b| b.lower[1][3] = f64::NEG_INFINITY),
        ),
    ];
    for (what, edit) in cases {
        let mut b = good();
        edit(&mut b);
        let err = b.validate(&model).expect_err(what);
        assert!(matches!(err, DualError::Bounds { .. }), "{what}: {err}");
    }
    // The layer named is the one at fault.
    let mut b = good();
    b.lower[1][2] = 2.0;
    let err = b.validate(&model).unwrap_err().to_string();
    assert!(
        err.contains("hidden layer 1") && err.contains("unit 2"),
        "{err}"
    );
}

/// The names written into results files and JSON.
#[test]
fn sources_and_rules_have_their_names() {
    assert_eq!(BoundSource::Interval.name(), "interval");
    assert_eq!(BoundSource::Algorithm1.name(), "algorithm1");
    assert_eq!(BoundSource::LpAll.name(), "lp-all");
    assert_eq!(BoundSource::Crown.name(), "crown");
    assert_eq!(BoundSource::Given.name(), "given");
    assert_eq!(AlphaRule::Paper.name(), "paper");
    assert_eq!(AlphaRule::PerUnit(vec![]).name(), "per-unit");
}

/// Algorithm 1's work counts: through the first layer, the offset column (its input
/// columns `W e_j` are copied, not multiplied) and one column per input coordinate; then
/// the offset column and every column that existed before the layer just bounded (whose
/// unstable units add columns `d_j W e_j`, copied), each costing the layer's multiply-adds
/// per column.
#[test]
fn algorithm1_counts_its_columns_and_work() {
    use dual::algorithm1_with_stats;
    let model = Architecture::mlp(&[3, 5, 4, 2])
        .init(Init::Paper, 2)
        .unwrap();
    let dom = InputDomain::new([0.3, 0.9, -0.2], 0.4, None).unwrap();
    let (b, stats) = algorithm1_with_stats(&model, &dom).unwrap();
    let u = b.counts(&model);
    assert!(
        u[0].unstable > 0 && u[1].unstable > 0,
        "no unstable units: the counts are not exercised"
    );
    // Layer t multiplies the columns that existed before the layer just bounded added its
    // unstable units' columns (those are copied in as `d_j W e_j`).
    assert_eq!(stats.columns, vec![4, 3 + 1, 3 + u[0].unstable + 1]);
    let aff = model.affine();
    let want = aff[0].op.macs_per_column()
        + (1..3)
            .map(|t| stats.columns[t] * aff[t].op.macs_per_column())
            .sum::<usize>();
    assert_eq!(stats.macs, want as u64);
}

/// An overflow in the first layer's bounds is an overflow of that layer, not a bound
/// with an infinite end nor an error further on. (Both ends overflow together: the
/// rounding allowance of each grows with `|psi| + width`, which is what overflows.)
#[test]
fn a_first_layer_overflow_names_its_layer() {
    // x in [0, 2] (centre 1): 1e308 x reaches 2e308 > f64::MAX.
    let model = common::scalar_margin_net(1e308, 0.0);
    let dom = InputDomain::new([1.0], 1.0, None).unwrap();
    for e in [
        algorithm1(&model, &dom).unwrap_err(),
        dual::interval_bounds(&model, &dom).unwrap_err(),
    ] {
        assert!(matches!(e, DualError::Overflow { layer: 0, .. }), "{e}");
    }
}

/// An objective matrix must hold whole rows of finite numbers; a bad one is an error
/// naming the output layer.
#[test]
fn objective_matrices_are_checked() {
    let model = net();
    let dom = InputDomain::new([0.1, -0.2], 0.5, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    // No rows; three columns for two outputs (a row of the wrong length is never read
    // as part of another row).
    for bad in [
        DMatrix::zeros(0, 2),
        DMatrix::from_row_slice(1, 3, &[1.0, -1.0, 0.5]),
        DMatrix::from_row_slice(2, 1, &[1.0, -1.0]),
    ] {
        let e = dual_objective(&model, &dom, &b, &bad, &AlphaRule::Paper).unwrap_err();
        assert!(
            matches!(e, DualError::ObjectiveShape { n_out: 2, .. }),
            "{e}"
        );
        // Every method refuses it the same way.
        for m in dual::Method::ALL {
            let e =
                dual::bound_with_method(&model, &dom, &bad, m, &Default::default()).unwrap_err();
            assert!(
                matches!(e, DualError::ObjectiveShape { n_out: 2, .. }),
                "{m}: {e}"
            );
        }
    }
    let e = dual_objective(
        &model,
        &dom,
        &b,
        as_row(&[1.0, f64::NAN]),
        &AlphaRule::Paper,
    )
    .unwrap_err();
    assert!(
        matches!(e, DualError::ObjectiveNotFinite { row: 0, col: 1, value } if value.is_nan()),
        "{e}"
    );
    // The entry is named by its row and column of C (the second row's first entry here),
    // by every method.
    let c = DMatrix::from_row_slice(2, 2, &[1.0, -1.0, f64::INFINITY, 0.0]);
    let e = dual_objective(&model, &dom, &b, &c, &AlphaRule::Paper).unwrap_err();
    assert!(
        e.to_string()
            .contains("entry at row 1, column 0 is inf; every entry of C must be a finite"),
        "{e}"
    );
    for m in dual::Method::ALL {
        let e = dual::bound_with_method(&model, &dom, &c, m, &Default::default()).unwrap_err();
        assert!(
            matches!(e, DualError::ObjectiveNotFinite { row: 1, col: 0, .. }),
            "{m}: {e}"
        );
    }
}
