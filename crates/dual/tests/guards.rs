//! The guards a real bug could remove without any sampling test noticing (the mutation
//! audit of the mutation-testing issue): alpha validation, the box intersection, the
//! certificate rule, NaN handling and the stability thresholds at exact zeros.

use std::cmp::Ordering;

use dual::{
    algorithm1, certifies, dual_objective, min_over_targets, stability, AlphaRule, BoundSource,
    DualError, InputDomain, LayerBounds, Stability,
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
    let dom = InputDomain::new(&[0.1, -0.2], 0.5, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let c = [1.0, -1.0];
    for bad in [-1.0, -1e-12, 1.0 + 1e-12, 2.0, 5.0, f64::NAN, f64::INFINITY] {
        let alpha = AlphaRule::PerUnit(vec![vec![bad; 4]]);
        let err = dual_objective(&model, &dom, &b, &c, &alpha).unwrap_err();
        assert!(
            matches!(err, DualError::Alpha { layer: 0, .. })
                && err.to_string().contains("outside [0, 1]"),
            "alpha {bad}: {err}"
        );
    }
    for ok in [0.0, 0.5, 1.0] {
        let alpha = AlphaRule::PerUnit(vec![vec![ok; 4]]);
        dual_objective(&model, &dom, &b, &c, &alpha).unwrap();
    }
}

/// The ball intersected with a box is the box with the clipped corners, exactly; and an
/// affine-only net's proven J over it is its exact minimum over those corners (to
/// rounding), so a domain with the right radius but the wrong centre fails.
#[test]
fn the_box_intersection_has_the_exact_clipped_corners() {
    let dom = InputDomain::new(&[0.9, 0.05, 0.5], 0.2, Some((0.0, 1.0))).unwrap();
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
    let c = [1.0, -1.0];
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
        let v = objective_exact(&model, &x, &c).unwrap();
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
    assert!(certifies(&[1.0, 0.0, 0.5], 1));
    assert!(!certifies(&[0.0, 0.0, 0.5], 1), "a tie certified");
    assert!(!certifies(&[1.0, 0.0, -0.0], 1));
    assert!(!certifies(&[f64::NAN, 0.0, 0.5], 1), "a NaN certified");
    assert!(!certifies(&[0.0], 0), "no target certified");
    assert!(!certifies(&[], usize::MAX));
    assert!(min_over_targets(&[1.0, f64::NAN, 0.5], 0).is_nan());
    assert_eq!(min_over_targets(&[1.0, 3.0, 0.5], 0), 0.5);
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
        lower: vec![vec![0.0, -1.0, -1.0, 0.0]],
        upper: vec![vec![1.0, 0.0, 1.0, 0.0]],
        source: BoundSource::Given,
    };
    let c = b.counts(1)[0];
    assert_eq!((c.off, c.on, c.unstable), (2, 1, 1));
}
