//! Proven numbers: bounds that hold in exact arithmetic, whatever the rounding.
//!
//! The reference is `network::exact`, the forward pass in exact dyadic arithmetic, so
//! "inside the bound" here means inside it for the real numbers the stored weights
//! define, not for another floating-point evaluation. The models of the verified-numbers
//! issue live in `testdata/proven/`.

use network::DMatrix;
use std::cmp::Ordering;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use dual::{
    algorithm1, certified_radius, certify, dual_objective, interval_bounds, margin_objectives,
    AlphaRule, DualError, InputDomain, RadiusOptions, RadiusStop,
};
use network::{load_model, objective_exact, preactivations_exact, Architecture, Init, Model};

fn testdata(name: &str) -> Model {
    load_model(format!(
        "{}/../../testdata/proven/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Issue input 1: `[[-1e308], [1e308]]` makes the margin's dual `inf - inf`. Before,
/// the NaN was skipped by a min over targets and the radius came out as 10 (certified
/// everywhere); the true radius is about 5e-308. Now: an error naming the overflow.
#[test]
fn an_overflowing_margin_is_an_error_not_a_radius() {
    let model = testdata("nan_radius.json");
    let err = certified_radius(&model, [0.0], 0, None, RadiusOptions::default()).unwrap_err();
    assert!(
        matches!(err, DualError::Overflow { layer: 2, .. }),
        "expected an overflow at layer 2, got {err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("overflow") && msg.contains("layer 2"), "{msg}");
    for eps in [1e-300, 0.01, 1.0] {
        assert!(
            matches!(
                certify(&model, [0.0], 0, eps, None),
                Err(DualError::Overflow { .. })
            ),
            "eps {eps} must not certify"
        );
    }
}

/// A network whose nominal floating-point J is +0.25 while the exact J (and the exact
/// margin) is -0.25: `1e16 + 1.5` rounds to `1e16 + 2`. The proven J must not certify.
#[test]
fn cancellation_between_huge_terms_does_not_certify() {
    let model = testdata("cancellation.json");
    let x = [1.0];
    let exact = objective_exact(&model, x, [1.0, -1.0]).unwrap();
    assert_eq!(exact.cmp_f64(-0.25), Some(Ordering::Equal));
    // The floating-point forward pass is wrong, and so is the nominal J.
    let f = model.forward(x).unwrap();
    assert_eq!(f[0] - f[1], 0.25);
    let cert = certify(&model, x, 0, 0.0, None).unwrap();
    assert_eq!(cert.bound.nominal[1], 0.25, "the nominal J is fooled");
    assert!(
        cert.bound.values[1] <= -0.25,
        "proven J {} above the exact margin -0.25",
        cert.bound.values[1]
    );
    assert!(!cert.certified);
    let r = certified_radius(&model, x, 0, None, RadiusOptions::default()).unwrap();
    assert_eq!(r.stop, RadiusStop::NotCertifiedAtZero);
    assert_eq!(r.radius, 0.0);
    // Interval and Algorithm 1 bounds on logit 0 contain the exact -0.25.
    let dom = InputDomain::new(x, 0.0, None).unwrap();
    for b in [
        interval_bounds(&model, &dom).unwrap(),
        algorithm1(&model, &dom).unwrap(),
    ] {
        let (l, u) = (b.lower[1][0], b.upper[1][0]);
        assert!(l <= -0.25 && -0.25 <= u, "{:?}: [{l}, {u}]", b.source);
    }
}

/// Issue input 4: a one-output model has no margin; certify says so, and the output
/// itself is bounded with c = +1 and c = -1.
#[test]
fn a_one_output_model_has_no_certificate_but_has_bounds() {
    let model = testdata("one_output.json");
    let x = [0.3, -0.2];
    let err = certify(&model, x, 0, 0.1, None).unwrap_err();
    assert!(matches!(err, DualError::NoTargets { n_out: 1 }), "{err}");
    assert!(err.to_string().contains("at least 2 outputs"), "{err}");
    let dom = InputDomain::new(x, 0.1, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let j = dual_objective(
        &model,
        &dom,
        &b,
        &DMatrix::from_row_slice(2, 1, &[1.0, -1.0]),
        &AlphaRule::Paper,
    )
    .unwrap();
    let (lo, hi) = (j.values[0], -j.values[1]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..2000 {
        let xs: Vec<f64> = x.iter().map(|v| v + rng.random_range(-0.1..=0.1)).collect();
        let e = objective_exact(&model, &xs, [1.0]).unwrap();
        assert_ne!(e.cmp_f64(lo), Some(Ordering::Less), "below {lo} at {xs:?}");
        assert_ne!(
            e.cmp_f64(hi),
            Some(Ordering::Greater),
            "above {hi} at {xs:?}"
        );
    }
    // margin_objectives for one class is a zero row: nothing to certify.
    assert_eq!(margin_objectives(1, 0).unwrap(), DMatrix::zeros(1, 1));
}

/// Sample `s` of a box: its 8 corners first (3 inputs), then uniform draws.
fn sample(
    s: usize,
    lo: &network::DVector<f64>,
    hi: &network::DVector<f64>,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    (0..lo.len())
        .map(|i| match s {
            0..8 => {
                if (s >> i) & 1 == 1 {
                    hi[i]
                } else {
                    lo[i]
                }
            }
            _ => rng.random_range(lo[i]..=hi[i]),
        })
        .collect()
}

/// Scales every weight and bias of a model by per-layer factors.
fn scaled(model: &Model, scales: &[(f64, f64)]) -> Model {
    model
        .map_parameters(|k, w, b| {
            let (sw, sb) = scales[k];
            w.iter_mut().for_each(|v| *v *= sw);
            b.iter_mut().for_each(|v| *v *= sb);
        })
        .unwrap()
}

/// Random dense nets with weights and biases scaled from 1e-6 to 1e6 per layer: every
/// exact pre-activation of sampled inputs (corners and uniform) lies inside the proven
/// interval and Algorithm 1 bounds (f64 and f32 columns), and every exact margin is >= the
/// proven J of both. Checked in
/// exact arithmetic, so a bound off by one rounding fails.
#[test]
fn proven_bounds_hold_in_exact_arithmetic_across_scales() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut checked = 0usize;
    for case in 0..24 {
        let widths = [3, 6 + case % 5, 5, 3];
        let base = Architecture::mlp(&widths)
            .init(Init::Paper, case as u64)
            .unwrap();
        let scales: Vec<(f64, f64)> = (0..3)
            .map(|_| {
                (
                    10f64.powf(rng.random_range(-6.0..6.0)),
                    10f64.powf(rng.random_range(-6.0..6.0)),
                )
            })
            .collect();
        let model = scaled(&base, &scales);
        let x: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let eps = [0.0, 1e-9, 0.01, 0.3][case % 4];
        let input_box = (case % 3 == 0).then_some((-0.5, 0.8));
        let Ok(dom) = InputDomain::new(&x, eps, input_box) else {
            continue;
        };
        let ib = interval_bounds(&model, &dom).unwrap();
        let ab = algorithm1(&model, &dom).unwrap();
        let intermediate = dual::AlphaOptions {
            intermediate: true,
            ..Default::default()
        };
        let alb = dual::alpha_bounds(&model, &dom, &intermediate).unwrap();
        let (a32, _) =
            dual::algorithm1_with(&model, &dom, dual::ColumnForm::Local, dual::Precision::F32)
                .unwrap();
        let c = margin_objectives(3, 0).unwrap();
        let j = dual_objective(&model, &dom, &ab, &c, &AlphaRule::Paper).unwrap();
        let j32 = dual_objective(&model, &dom, &a32, &c, &AlphaRule::Paper).unwrap();
        let (lo, hi) = (dom.lower(), dom.upper());
        for s in 0..60 {
            let xs = sample(s, &lo, &hi, &mut rng);
            let pre = preactivations_exact(&model, &xs).unwrap();
            for b in [&ib, &ab, &alb, &a32] {
                for (layer, zs) in pre.iter().enumerate() {
                    for (k, z) in zs.iter().enumerate() {
                        assert_ne!(
                            z.cmp_f64(b.lower[layer][k]),
                            Some(Ordering::Less),
                            "case {case} {:?} layer {layer} unit {k}: exact {} below {}",
                            b.source,
                            z.to_f64(),
                            b.lower[layer][k]
                        );
                        assert_ne!(
                            z.cmp_f64(b.upper[layer][k]),
                            Some(Ordering::Greater),
                            "case {case} {:?} layer {layer} unit {k}: exact {} above {}",
                            b.source,
                            z.to_f64(),
                            b.upper[layer][k]
                        );
                    }
                }
            }
            for t in 1..3 {
                let m = objective_exact(&model, &xs, c.row(t).transpose()).unwrap();
                for jt in [j.values[t], j32.values[t]] {
                    assert_ne!(
                        m.cmp_f64(jt),
                        Some(Ordering::Less),
                        "case {case} target {t}: exact margin {} below proven J {}",
                        m.to_f64(),
                        jt
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 2000, "only {checked} margins checked");
}

/// The same on graph models (an input normalisation feeding the stem with no ReLU
/// between, and residual blocks: linear units, whose error terms in J are bounded over
/// `[l, u]` of either sign): exact pre-activations inside every method's proven bounds and
/// exact margins above every method's proven J, with layers scaled from 1e-6 to 1e6.
#[test]
fn proven_bounds_hold_on_graph_models_across_scales() {
    use dual::{bound_with_method, AlphaOptions, Method};
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut checked = 0usize;
    for case in 0..16 {
        let base = network::residual_net(
            network::Shape::Flat(3),
            4 + case % 3,
            1 + case % 2,
            3,
            true,
            Init::Paper,
            case as u64,
        )
        .unwrap();
        let n_dense = base
            .layers()
            .iter()
            .filter(|l| matches!(l, network::Layer::Dense { .. }))
            .count();
        let scales: Vec<(f64, f64)> = (0..n_dense)
            .map(|_| {
                (
                    10f64.powf(rng.random_range(-6.0..6.0)),
                    10f64.powf(rng.random_range(-6.0..6.0)),
                )
            })
            .collect();
        let model = scaled(&base, &scales);
        let x: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let eps = [0.0, 1e-9, 0.01, 0.3][case % 4];
        let dom = InputDomain::new(&x, eps, None).unwrap();
        let c = margin_objectives(3, 0).unwrap();
        let intermediate = AlphaOptions {
            intermediate: true,
            ..Default::default()
        };
        let bounds: Vec<_> = Method::ALL
            .iter()
            .map(|&m| bound_with_method(&model, &dom, &c, m, &AlphaOptions::default()).unwrap())
            .chain([bound_with_method(&model, &dom, &c, Method::Alpha, &intermediate).unwrap()])
            .collect();
        let (lo, hi) = (dom.lower(), dom.upper());
        for s in 0..30 {
            let xs = sample(s, &lo, &hi, &mut rng);
            let pre = preactivations_exact(&model, &xs).unwrap();
            for b in &bounds {
                for (layer, zs) in pre.iter().enumerate() {
                    for (k, z) in zs.iter().enumerate() {
                        assert!(
                            z.cmp_f64(b.bounds.lower[layer][k]) != Some(Ordering::Less)
                                && z.cmp_f64(b.bounds.upper[layer][k]) != Some(Ordering::Greater),
                            "case {case} {}: layer {layer} unit {k}: exact {} outside [{}, {}]",
                            b.method,
                            z.to_f64(),
                            b.bounds.lower[layer][k],
                            b.bounds.upper[layer][k]
                        );
                    }
                }
                for t in 1..3 {
                    let m = objective_exact(&model, &xs, c.row(t).transpose()).unwrap();
                    assert_ne!(
                        m.cmp_f64(b.values[t]),
                        Some(Ordering::Less),
                        "case {case} {} target {t}: exact margin {} below proven J {}",
                        b.method,
                        m.to_f64(),
                        b.values[t]
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 3000, "only {checked} margins checked");
}

/// The helpers the LP's proof uses: `enclosing_box` contains the input set,
/// `affine_over_box` contains the exact image of every corner of a box, and
/// `value_upper_bound` is above the exact value at a point and within rounding of it.
#[test]
fn proof_helpers_contain_the_exact_values() {
    use dual::{affine_over_box, value_upper_bound};
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let model = Architecture::mlp(&[3, 5, 4]).init(Init::Paper, 2).unwrap();
    for input_box in [None, Some((-0.3, 0.4))] {
        let x = [0.1, -0.2, 0.35];
        let dom = InputDomain::new(x, 0.25, input_box).unwrap();
        let (lo, hi) = dom.enclosing_box();
        let (nlo, nhi) = (dom.lower(), dom.upper());
        for i in 0..3 {
            assert!(lo[i] <= nlo[i] && nhi[i] <= hi[i], "{lo:?} {hi:?}");
            assert!(
                hi[i] - lo[i] <= 2.0 * dom.radius[i] + 1e-15,
                "{lo:?} {hi:?}"
            );
        }
    }
    let a = &model.affine()[0];
    let (blo, bhi) = (vec![-0.5, 0.0, 0.2], vec![0.5, 0.3, 0.2]);
    let (l, u) = affine_over_box(a, &blo, &bhi).unwrap();
    assert_eq!((l.len(), u.len()), (5, 5));
    let first = Model::new(model.input_shape(), model.layers()[..1].to_vec()).unwrap();
    for mask in 0..8 {
        let z: Vec<f64> = (0..3)
            .map(|i| if mask >> i & 1 == 1 { bhi[i] } else { blo[i] })
            .collect();
        let exact = preactivations_exact(&first, &z).unwrap().pop().unwrap();
        for k in 0..5 {
            assert_ne!(
                exact[k].cmp_f64(l[k]),
                Some(Ordering::Less),
                "corner {mask} unit {k}"
            );
            assert_ne!(
                exact[k].cmp_f64(u[k]),
                Some(Ordering::Greater),
                "corner {mask} unit {k}"
            );
            // Tight: the box's corners attain each bound up to rounding.
        }
    }
    for k in 0..5 {
        let w: f64 = (0..3)
            .map(|i| {
                let wk = match &a.op {
                    network::LinearOp::Dense { weight, cols, .. } => weight[k * cols + i],
                    _ => unreachable!(),
                };
                wk.abs() * (bhi[i] - blo[i])
            })
            .sum();
        assert!(
            ((u[k] - l[k]) - w).abs() <= 1e-12,
            "unit {k}: width {} vs {w}",
            u[k] - l[k]
        );
    }
    for _ in 0..20 {
        let xs: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let c = [1.0, -2.0, 0.0, 0.5];
        let up = value_upper_bound(&model, &xs, c).unwrap();
        let exact = objective_exact(&model, &xs, c).unwrap();
        assert_ne!(
            exact.cmp_f64(up),
            Some(Ordering::Greater),
            "exact above {up}"
        );
        assert!(
            up - exact.to_f64() <= 1e-12 * up.abs().max(1.0),
            "{up} vs {}",
            exact.to_f64()
        );
        let neg: Vec<f64> = c.iter().map(|v| -v).collect();
        let up_neg = value_upper_bound(&model, &xs, &neg).unwrap();
        assert!((up_neg + exact.to_f64()).abs() <= 1e-12 * up.abs().max(1.0));
    }
    assert!(
        value_upper_bound(&model, [0.0; 3], [1.0]).is_err(),
        "wrong objective length"
    );
}

/// Products that underflow: the first two layers scaled so that the products of their
/// weights (the entries of Algorithm 1's columns after the second layer, about 1e-330)
/// are below the smallest subnormal and round to 0 or a few `2^-1074`, where a rounding
/// error is absolute (up to `2^-1075` per product) rather than relative; the input radius
/// (1e8 to 1e12) makes the lost products matter (about 1e-320 over the ball), and the last
/// layer, scaled up by 1e300, carries them to its bounds. Dense and conv nets (the local
/// columns' kernels); every method and both column forms of Algorithm 1: exact
/// pre-activations inside the proven bounds, exact margins above the proven J.
#[test]
fn proven_bounds_hold_where_products_underflow() {
    use dual::{algorithm1_in, bound_with_method, AlphaOptions, ColumnForm, Method};
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut checked = 0usize;
    for case in 0..12 {
        let (base, n_in) = if case % 2 == 0 {
            (
                Architecture::mlp(&[4, 6, 5, 3])
                    .init(Init::Paper, case as u64)
                    .unwrap(),
                4,
            )
        } else {
            (
                Architecture::conv_net(
                    network::Shape::Image { c: 1, h: 5, w: 5 },
                    &[(2, 3, 1, 1), (2, 3, 2, 1)],
                    &[3],
                )
                .init(Init::Paper, case as u64)
                .unwrap(),
                25,
            )
        };
        let eps = [1e8, 1e10, 1e12][case % 3];
        // Layer 1's outputs are about s1 * eps, layer 2's about s1 * s2 * eps = 1e-319
        // (+-1 decade); biases of the same size as the layer's outputs.
        let s1 = 10f64.powf(-170.0 + rng.random_range(-1.0..1.0));
        let s2 = 10f64.powf(-319.0 + rng.random_range(-1.0..1.0)) / (s1 * eps);
        let s3 = 10f64.powf(300.0 + rng.random_range(-1.0..1.0));
        let model = scaled(
            &base,
            &[(s1, s1 * eps * 0.1), (s2, s1 * s2 * eps * 0.1), (s3, 1.0)],
        );
        let x: Vec<f64> = (0..n_in).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, eps, None).unwrap();
        let c = margin_objectives(3, 0).unwrap();
        let mut bounds: Vec<(String, dual::LayerBounds, Option<Vec<f64>>)> = Method::ALL
            .iter()
            .map(|&m| {
                let b = bound_with_method(&model, &dom, &c, m, &AlphaOptions::default()).unwrap();
                (
                    b.method.to_string(),
                    b.bounds,
                    Some(b.values.iter().copied().collect()),
                )
            })
            .collect();
        let (dense, _) = algorithm1_in(&model, &dom, ColumnForm::Dense).unwrap();
        let j = dual_objective(&model, &dom, &dense, &c, &AlphaRule::Paper).unwrap();
        bounds.push((
            "algorithm1 dense".into(),
            dense,
            Some(j.values.iter().copied().collect()),
        ));
        let (lo, hi) = (dom.lower(), dom.upper());
        for s in 0..40 {
            let xs: Vec<f64> = if s < 8 {
                // corners of the first three coordinates, the rest at the lower end
                (0..n_in)
                    .map(|i| {
                        if i < 3 && (s >> i) & 1 == 1 {
                            hi[i]
                        } else {
                            lo[i]
                        }
                    })
                    .collect()
            } else {
                (0..n_in).map(|i| rng.random_range(lo[i]..=hi[i])).collect()
            };
            let pre = preactivations_exact(&model, &xs).unwrap();
            for (name, b, values) in &bounds {
                for (layer, zs) in pre.iter().enumerate() {
                    for (k, z) in zs.iter().enumerate() {
                        assert!(
                            z.cmp_f64(b.lower[layer][k]) != Some(Ordering::Less)
                                && z.cmp_f64(b.upper[layer][k]) != Some(Ordering::Greater),
                            "case {case} {name}: layer {layer} unit {k}: exact {:e} outside [{:e}, {:e}]",
                            z.to_f64(),
                            b.lower[layer][k],
                            b.upper[layer][k]
                        );
                    }
                }
                if let Some(v) = values {
                    for (t, &vt) in v.iter().enumerate().skip(1) {
                        let m = objective_exact(&model, &xs, c.row(t).transpose()).unwrap();
                        assert_ne!(
                            m.cmp_f64(vt),
                            Some(Ordering::Less),
                            "case {case} {name} target {t}: exact margin {:e} below proven J {:e}",
                            m.to_f64(),
                            vt
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 2000, "only {checked} margins checked");
}

/// The underflow allowance itself does not overflow: tiny weights over a huge ball (radius
/// 1e307, 16 inputs) have finite bounds (the allowance scales its sum of ranges before adding them;
/// `2 n (1 + sum_c w_c) 2^-1074` evaluated in that order overflowed to an error).
#[test]
fn a_huge_ball_over_tiny_weights_has_finite_bounds() {
    use dual::{algorithm1_in, ColumnForm};
    let base = Architecture::mlp(&[16, 8, 8, 3])
        .init(Init::Paper, 5)
        .unwrap();
    let model = scaled(&base, &[(1e-300, 1e-10), (1.0, 1e-10), (1.0, 1e-10)]);
    let x = [0.5; 16];
    let dom = InputDomain::new(x, 1e307, None).unwrap();
    for form in [ColumnForm::Local, ColumnForm::Dense] {
        let (b, _) = algorithm1_in(&model, &dom, form).unwrap();
        for (lo, hi) in b.lower.iter().zip(&b.upper) {
            assert!(lo.iter().chain(hi.iter()).all(|v| v.is_finite()), "{b:?}");
        }
        let pre = preactivations_exact(&model, dom.lower().as_slice()).unwrap();
        for (layer, zs) in pre.iter().enumerate() {
            for (k, z) in zs.iter().enumerate() {
                assert_ne!(z.cmp_f64(b.lower[layer][k]), Some(Ordering::Less));
                assert_ne!(z.cmp_f64(b.upper[layer][k]), Some(Ordering::Greater));
            }
        }
    }
}

/// An unstable unit whose upper slope `u / (u - l)` underflows to 0: pre-activation
/// `-8 x0 + 2^-1074 x1` over `[0, 1]^2` has the exact range `[-8, 2^-1074]`, and the
/// bounds handed to the methods, `[-8, 2^-1073]` (valid; the interval bound's rounding
/// allowance would make `u` 1e-15 and the slope 1e-16, so they are set by hand, as a
/// caller of `bound_given` or `dual_objective` may), give `u / (u - l) = 2^-1076`,
/// which rounds to 0. The nominal duals then treat the unit as off, but the proven J
/// evaluates each unit's term over the triangle's vertices, so it must stay below the
/// exact margins, which the last layer (weights 1e300) makes depend on that unit. Every
/// method, and Algorithm 1's J; exact margins on a grid of the box.
#[test]
fn an_unstable_unit_whose_upper_slope_underflows_stays_sound() {
    use dual::{bound_given, AlphaOptions, Method};
    use network::{Layer, Shape};
    let tiny = f64::from_bits(1); // 2^-1074
    let model = Model::new(
        Shape::Flat(2),
        vec![
            Layer::Dense {
                weight: vec![-8.0, tiny, 1.0, -1.0],
                bias: vec![0.0, 0.0],
                out_features: 2,
                in_features: 2,
            },
            Layer::Relu,
            Layer::Dense {
                weight: vec![0.0, 0.0, 1e300, 1.0, -1e300, -1.0],
                bias: vec![0.0, 0.0, 0.0],
                out_features: 3,
                in_features: 2,
            },
        ],
    )
    .unwrap();
    let dom = InputDomain::new([0.5, 0.5], 0.5, None).unwrap();
    let mut bounds = interval_bounds(&model, &dom).unwrap();
    bounds.lower[0][0] = -8.0;
    bounds.upper[0][0] = 2.0 * tiny;
    let (l, u) = (bounds.lower[0][0], bounds.upper[0][0]);
    assert!(u / (u - l) == 0.0, "[{l:e}, {u:e}]");
    let c = margin_objectives(3, 0).unwrap();
    let mut values: Vec<(String, Vec<f64>)> = Method::ALL
        .iter()
        .map(|&m| {
            let b = bound_given(
                &model,
                &dom,
                bounds.clone(),
                &c,
                m,
                &AlphaOptions::default(),
            )
            .unwrap();
            (b.method.to_string(), b.values.iter().copied().collect())
        })
        .collect();
    let j = dual_objective(&model, &dom, &bounds, &c, &AlphaRule::Paper).unwrap();
    values.push(("dual_objective".into(), j.values.iter().copied().collect()));
    let mut checked = 0usize;
    for a in 0..=8 {
        for b in 0..=8 {
            let xs = [a as f64 / 8.0, b as f64 / 8.0];
            for (name, v) in &values {
                for (t, &vt) in v.iter().enumerate().skip(1) {
                    let m = objective_exact(&model, xs, c.row(t).transpose()).unwrap();
                    assert_ne!(
                        m.cmp_f64(vt),
                        Some(Ordering::Less),
                        "{name} target {t} at {xs:?}: exact margin {:e} below proven J {vt:e}",
                        m.to_f64()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 81 * 2 * values.len());
}

/// The exact linear map of an all-active network up to each layer, in f64: `maps[t]` is
/// `W_t ... W_1` (row-major, `n_t x n_in`), from which each unit's extreme corners follow.
fn linear_maps(model: &Model) -> Vec<Vec<f64>> {
    let n_in = model.affine()[0].op.n_in();
    let mut cols: Vec<Vec<f64>> = (0..n_in)
        .map(|j| (0..n_in).map(|i| f64::from(i == j)).collect())
        .collect();
    let mut maps = Vec::new();
    for a in model.affine() {
        cols = cols
            .iter()
            .map(|c| {
                let mut out = vec![0.0; a.op.n_out()];
                a.op.apply(c, 1, &mut out);
                out
            })
            .collect();
        let n = a.op.n_out();
        maps.push(
            (0..n)
                .flat_map(|k| cols.iter().map(move |c| c[k]).collect::<Vec<_>>())
                .collect(),
        );
    }
    maps
}

/// Every unit's exact range over the box at its two extreme corners (all units active, so
/// the network is affine and Algorithm 1's bounds are its exact range): the proven f32
/// bounds must contain both corners' exact pre-activations. Returns the units checked.
fn check_corners(name: &str, model: &Model, dom: &InputDomain, b: &dual::LayerBounds) -> usize {
    let maps = linear_maps(model);
    let (lo, hi) = (dom.lower(), dom.upper());
    let n_in = lo.len();
    let mut checked = 0;
    for (t, map) in maps.iter().enumerate() {
        if t + 1 < maps.len() {
            assert!(
                b.lower[t].iter().all(|&l| l > 0.0),
                "{name}: layer {t} not all active (the test's premise)"
            );
        }
        for k in 0..b.lower[t].len() {
            let row = &map[k * n_in..(k + 1) * n_in];
            for up in [false, true] {
                let x: Vec<f64> = (0..n_in)
                    .map(|j| if (row[j] > 0.0) == up { hi[j] } else { lo[j] })
                    .collect();
                let z = &preactivations_exact(model, &x).unwrap()[t][k];
                assert!(
                    z.cmp_f64(b.lower[t][k]) != Some(Ordering::Less)
                        && z.cmp_f64(b.upper[t][k]) != Some(Ordering::Greater),
                    "{name}: layer {t} unit {k}: exact {:e} outside the f32 bounds [{:e}, {:e}]",
                    z.to_f64(),
                    b.lower[t][k],
                    b.upper[t][k]
                );
                checked += 1;
            }
        }
    }
    checked
}

/// The sound f32 path (`Precision::F32`) where f32's rounding decides: networks whose
/// every unit is active are affine, so Algorithm 1's bounds are their exact range and the
/// extreme corners attain it; the f32 columns (weights not representable in f32) are off
/// by about 1e-7 relative, so a bound without its f32 allowance (the first layer's rounded
/// columns, the products' `gamma_{n+6}` for `u = 2^-24`) leaves some corner outside.
/// Dense and conv nets, both column forms. Then weights below f32's range (1e-46, which
/// round to 0) after weights of 1e30: the second layer's true range (about 1e-16) is
/// entirely in the flushed weights' term. And a weight beyond f32's range is an overflow
/// error naming f32, not a bound. On random nets the first layer's allowance (`2u` times
/// the magnitudes the later products multiply) covers those products' errors, so a sum
/// built to lose its small terms in f32 checks the products' own `gamma_{n+6}`. (Checked
/// to fail with the first-layer term, the columns' gamma or the flushed weights' term
/// removed.)
#[test]
fn f32_columns_give_proven_bounds_where_f32_rounding_decides() {
    use dual::{algorithm1_with, ColumnForm, Precision};
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut checked = 0;
    for case in 0..8 {
        let base = if case % 2 == 0 {
            Architecture::mlp(&[6, 24, 20, 8])
                .init(Init::Paper, case as u64)
                .unwrap()
        } else {
            Architecture::conv_net(
                network::Shape::Image { c: 1, h: 6, w: 6 },
                &[(3, 3, 1, 1), (4, 3, 2, 1)],
                &[8],
            )
            .init(Init::Paper, case as u64)
            .unwrap()
        };
        // Biases of 1e3, 1e5, 1e7 keep every unit active over the box.
        let model = base
            .map_parameters(|k, _, b| {
                b.iter_mut()
                    .for_each(|v| *v += 10f64.powi(3 + 2 * k as i32))
            })
            .unwrap();
        let n_in = model.affine()[0].op.n_in();
        let x: Vec<f64> = (0..n_in).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, 0.3, None).unwrap();
        for form in [ColumnForm::Dense, ColumnForm::Local] {
            let (b, _) = algorithm1_with(&model, &dom, form, Precision::F32).unwrap();
            checked += check_corners(&format!("case {case} {form:?}"), &model, &dom, &b);
        }
    }
    assert!(checked >= 1000, "only {checked} corners checked");

    // Weights 1e30, then 1e-46 (0 in f32), then 1.
    let dense = |w: Vec<f64>, b: Vec<f64>, o: usize, i: usize| network::Layer::Dense {
        weight: w,
        bias: b,
        out_features: o,
        in_features: i,
    };
    let signs = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f64> {
        (0..n)
            .map(|_| rng.random_range(0.5..1.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 })
            .collect()
    };
    let w1: Vec<f64> = signs(12, &mut rng).iter().map(|v| v * 1e30).collect();
    let w2: Vec<f64> = signs(12, &mut rng).iter().map(|v| v * 1e-46).collect();
    let w3 = signs(6, &mut rng);
    let model = Model::new(
        network::Shape::Flat(3),
        vec![
            dense(w1, vec![1e31; 4], 4, 3),
            network::Layer::Relu,
            dense(w2, vec![1e-13; 3], 3, 4),
            network::Layer::Relu,
            dense(w3, vec![0.0; 2], 2, 3),
        ],
    )
    .unwrap();
    let dom = InputDomain::new([0.2, -0.4, 0.7], 1.0, None).unwrap();
    let (b, _) = algorithm1_with(&model, &dom, ColumnForm::Dense, Precision::F32).unwrap();
    let (b64, _) = algorithm1_with(&model, &dom, ColumnForm::Dense, Precision::F64).unwrap();
    for k in 0..3 {
        // The premise: the f64 bounds see the flushed weights' range (~1e-16 wide).
        assert!(b64.upper[1][k] - b64.lower[1][k] > 1e-17, "unit {k}");
    }
    check_corners("flushed weights", &model, &dom, &b);

    // Adversarial accumulation: a column 1, then 599 entries of 0.4 2^-23, each below
    // half an f32 ulp of 1, summed by a row of ones: in f32 the tiny terms added after the
    // 1 are lost (about 30 2^-23 here, 60 u), far beyond the first layer's allowance (2u):
    // only the products' own `gamma_{n+6}` covers them.
    let tiny = 0.4 * 2f64.powi(-23);
    let w1: Vec<f64> = (0..600).map(|j| if j == 0 { 1.0 } else { tiny }).collect();
    let sums = Model::new(
        network::Shape::Flat(1),
        vec![
            dense(w1, vec![2.0; 600], 600, 1),
            network::Layer::Relu,
            dense(vec![1.0; 600], vec![0.0], 1, 600),
        ],
    )
    .unwrap();
    let dom1 = InputDomain::new([0.0], 1.0, None).unwrap();
    let (b, _) = algorithm1_with(&sums, &dom1, ColumnForm::Dense, Precision::F32).unwrap();
    check_corners("accumulation", &sums, &dom1, &b);

    let huge = scaled(&model, &[(1e9, 1.0), (1.0, 1.0), (1.0, 1.0)]);
    match algorithm1_with(&huge, &dom, ColumnForm::Dense, Precision::F32) {
        Err(DualError::Overflow { what, .. }) => assert!(what.contains("f32"), "{what}"),
        other => panic!("a weight of 1e39 in f32 gave {other:?}"),
    }
    assert!(algorithm1_with(&huge, &dom, ColumnForm::Dense, Precision::F64).is_ok());
}
