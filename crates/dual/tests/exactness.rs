//! Exactness and cross-checks between independent computations:
//!
//! * eps = 0 gives J = c^T f(x) (1e-12 relative);
//! * on a net with no unstable unit, J equals the exact minimum over the ball, found by
//!   enumerating every corner of the ball with the real forward pass (1e-12 relative);
//! * Algorithm 1's forward columns equal the backward dual network (eq. 7) with
//!   C = +-I over the truncated network (1e-10 relative);
//! * the conv dual equals the dual of the same net with each conv written out as a
//!   dense matrix (lowered here, in the test only) (1e-10 relative);
//! * Algorithm 1 with local (windowed) columns through the convolutions equals Algorithm 1
//!   with dense columns (1e-12 relative) on conv nets of several geometries, clipped boxes
//!   and a residual graph, and spends fewer multiply-adds;
//! * the transposed convolution is the adjoint of the convolution, including strides
//!   that need output padding;
//! * a bound shrunk by a little is caught by the sampling check (the check can fail).
//!
//! 1e-12 and 1e-10: the two sides sum the same O(1) products in a different order over
//! at most a few thousand terms, so they differ by rounding only (~1e-14 relative).

mod common;

use dual::{
    algorithm1, algorithm1_in, dual_objective, margin_objectives, AlphaRule, BoundSource,
    ColumnForm, InputDomain, LayerBounds,
};
use network::{Architecture, Init, Layer, LinearOp, Model, Shape};
use network::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1.0)
}

fn conv_model(
    input: Shape,
    convs: &[(usize, usize, usize, usize)],
    dense: &[usize],
    seed: u64,
) -> Model {
    Architecture::conv_net(input, convs, dense)
        .init(Init::Paper, seed)
        .unwrap()
}

#[test]
fn eps_zero_gives_the_exact_value() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let models = [
        Architecture::mlp(&[2, 100, 100, 100, 100, 2])
            .init(Init::Paper, 1)
            .unwrap(),
        Architecture::mlp(&[10, 30, 30, 5])
            .init(Init::Paper, 2)
            .unwrap(),
        conv_model(
            Shape::Image { c: 1, h: 8, w: 8 },
            &[(4, 4, 2, 1), (8, 4, 2, 1)],
            &[10],
            3,
        ),
    ];
    for model in &models {
        let x: Vec<f64> = (0..model.input_len()).map(|_| rng.random()).collect();
        let dom = InputDomain::new(&x, 0.0, None).unwrap();
        let b = algorithm1(model, &dom).unwrap();
        let f = model.forward(&x).unwrap();
        for y in 0..model.output_len() {
            let c = margin_objectives(model.output_len(), y).unwrap();
            let j = dual_objective(model, &dom, &b, &c, &AlphaRule::Paper).unwrap();
            for t in 0..model.output_len() {
                let exact = f[y] - f[t];
                // The nominal J is eq. 6 in floating point: equal to the forward pass to
                // rounding (1e-12 relative).
                assert!(
                    rel(j.nominal[t], exact) <= 1e-12,
                    "{}: nominal J {} vs {exact}",
                    model.describe(),
                    j.nominal[t]
                );
                // The proven J is rounded down by the a priori error bound: below the
                // exact value (the forward pass's own rounding, ~1e-15 relative, allowed
                // for), and within 1e-10 relative of it (the bound's budget here is about
                // gamma_100 * 4 layers * the terms' magnitudes, ~1e-12 relative).
                assert!(
                    j.values[t] <= exact + 1e-14 * exact.abs().max(1.0),
                    "{}: proven J {} above the exact value {exact}",
                    model.describe(),
                    j.values[t]
                );
                assert!(
                    rel(j.values[t], exact) <= 1e-10,
                    "{}: proven J {} vs {exact}",
                    model.describe(),
                    j.values[t]
                );
            }
        }
    }
}

#[test]
fn no_unstable_units_gives_the_exact_minimum() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut checked = 0;
    for seed in 0..40 {
        let model = Architecture::mlp(&[5, 12, 12, 3])
            .init(Init::Paper, seed)
            .unwrap();
        let x: Vec<f64> = (0..5).map(|_| rng.random()).collect();
        let eps = 0.01;
        let dom = InputDomain::new(&x, eps, None).unwrap();
        let b = algorithm1(&model, &dom).unwrap();
        if b.counts(&model).iter().any(|c| c.unstable > 0) {
            continue;
        }
        // The net is affine on the ball: its minimum is at one of the 32 corners.
        let corners: Vec<f64> = (0..32usize)
            .flat_map(|m| (0..5).map(move |i| if m >> i & 1 == 1 { eps } else { -eps }))
            .zip(x.iter().cycle())
            .map(|(d, xi)| xi + d)
            .collect();
        let out = model
            .forward_batch(network::DMatrixView::from_slice(
                &corners,
                model.input_len(),
                32,
            ))
            .unwrap();
        let c = margin_objectives(3, 0).unwrap();
        let j = dual_objective(&model, &dom, &b, &c, &AlphaRule::Paper).unwrap();
        for t in 1..3 {
            let exact = out
                .column_iter()
                .map(|f| f[0] - f[t])
                .fold(f64::INFINITY, f64::min);
            assert!(
                rel(j.values[t], exact) <= 1e-12,
                "seed {seed} target {t}: J {} vs exact {exact}",
                j.values[t]
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} nets without unstable units; the test needs more"
    );
}

/// Bounds of every layer from the backward dual network with C = +-I over the network
/// truncated after that layer, using the earlier layers' bounds from `b`.
fn backward_bounds(
    model: &Model,
    dom: &InputDomain,
    b: &LayerBounds,
) -> (Vec<DVector<f64>>, Vec<DVector<f64>>) {
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for (t, a) in model.affine().iter().enumerate() {
        let truncated = Model::new(
            model.input_shape(),
            model.layers()[..=a.layer_index].to_vec(),
        )
        .unwrap();
        let n = a.op.n_out();
        let eye = DMatrix::<f64>::identity(n, n);
        let neg = -&eye;
        let prefix = LayerBounds {
            lower: b.lower[..t].to_vec(),
            upper: b.upper[..t].to_vec(),
            source: BoundSource::Given,
        };
        let l = dual_objective(&truncated, dom, &prefix, &eye, &AlphaRule::Paper)
            .unwrap()
            .values;
        let u = dual_objective(&truncated, dom, &prefix, &neg, &AlphaRule::Paper)
            .unwrap()
            .values
            .map(|v| -v);
        lo.push(l);
        hi.push(u);
    }
    (lo, hi)
}

#[test]
fn algorithm1_equals_the_backward_dual_network() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let models = [
        Architecture::mlp(&[2, 100, 100, 100, 100, 2])
            .init(Init::Paper, 4)
            .unwrap(),
        conv_model(
            Shape::Image { c: 1, h: 6, w: 6 },
            &[(3, 3, 2, 1), (4, 3, 2, 1)],
            &[12, 4],
            5,
        ),
    ];
    for model in &models {
        for eps in [0.05, 0.25] {
            let x: Vec<f64> = (0..model.input_len()).map(|_| rng.random()).collect();
            let dom = InputDomain::new(&x, eps, None).unwrap();
            let b = algorithm1(model, &dom).unwrap();
            let (lo, hi) = backward_bounds(model, &dom, &b);
            for t in 0..lo.len() {
                for k in 0..lo[t].len() {
                    assert!(
                        rel(lo[t][k], b.lower[t][k]) <= 1e-10,
                        "layer {t} unit {k}: {} vs {}",
                        lo[t][k],
                        b.lower[t][k]
                    );
                    assert!(
                        rel(hi[t][k], b.upper[t][k]) <= 1e-10,
                        "layer {t} unit {k}: {} vs {}",
                        hi[t][k],
                        b.upper[t][k]
                    );
                }
            }
        }
    }
}

/// The same network with every conv written out as a dense matrix, built column by
/// column from `W e_j` through the model's own `apply` (lowering in tests only).
fn lowered(model: &Model) -> Model {
    let mut layers = vec![Layer::Flatten];
    for (i, a) in model.affine().iter().enumerate() {
        let (ni, no) = (a.op.n_in(), a.op.n_out());
        let mut cols = vec![0.0; ni * no];
        let mut unit = vec![0.0; ni];
        for j in 0..ni {
            unit.iter_mut().for_each(|v| *v = 0.0);
            unit[j] = 1.0;
            a.op.apply(&unit, 1, &mut cols[j * no..(j + 1) * no]);
        }
        let mut weight = vec![0.0; ni * no];
        for j in 0..ni {
            for r in 0..no {
                weight[r * ni + j] = cols[j * no + r];
            }
        }
        if i > 0 {
            layers.push(Layer::Relu);
        }
        layers.push(Layer::Dense {
            weight,
            bias: a.bias.clone(),
            out_features: no,
            in_features: ni,
        });
    }
    Model::new(Shape::Flat(model.input_len()), layers).unwrap()
}

#[test]
fn conv_dual_equals_the_lowered_dense_dual() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let models = [
        conv_model(
            Shape::Image { c: 1, h: 8, w: 8 },
            &[(4, 4, 2, 1), (8, 4, 2, 1)],
            &[10],
            9,
        ),
        conv_model(
            Shape::Image { c: 1, h: 6, w: 6 },
            &[(3, 3, 2, 1), (4, 3, 2, 1)],
            &[12, 4],
            10,
        ),
        conv_model(
            Shape::Image { c: 2, h: 9, w: 7 },
            &[(3, 3, 2, 0), (5, 2, 1, 1)],
            &[6],
            11,
        ),
    ];
    for model in &models {
        let dense = lowered(model);
        for eps in [0.02, 0.1, 0.25] {
            let x: Vec<f64> = (0..model.input_len()).map(|_| rng.random()).collect();
            let dc = InputDomain::new(&x, eps, None).unwrap();
            let bc = algorithm1(model, &dc).unwrap();
            let bd = algorithm1(&dense, &dc).unwrap();
            for t in 0..bc.lower.len() {
                for k in 0..bc.lower[t].len() {
                    assert!(rel(bc.lower[t][k], bd.lower[t][k]) <= 1e-10);
                    assert!(rel(bc.upper[t][k], bd.upper[t][k]) <= 1e-10);
                }
            }
            let y = model.predict(&x).unwrap();
            let c = margin_objectives(model.output_len(), y).unwrap();
            let alpha = AlphaRule::PerUnit(
                model.affine()[..model.hidden_layers()]
                    .iter()
                    .map(|a| DVector::from_fn(a.op.n_out(), |_, _| rng.random()))
                    .collect(),
            );
            for al in [AlphaRule::Paper, alpha] {
                let jc = dual_objective(model, &dc, &bc, &c, &al).unwrap();
                let jd = dual_objective(&dense, &dc, &bd, &c, &al).unwrap();
                for (a, b) in jc.values.iter().zip(&jd.values) {
                    assert!(
                        rel(*a, *b) <= 1e-10,
                        "{}: conv J {a} vs dense J {b}",
                        model.describe()
                    );
                }
            }
        }
    }
}

#[test]
fn conv_transpose_is_the_adjoint() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (h, w, k, s, p) in [
        (6, 6, 3, 2, 1),
        (7, 5, 3, 2, 0),
        (8, 8, 4, 2, 1),
        (5, 5, 2, 3, 1),
        (28, 28, 4, 2, 1),
    ] {
        let model = conv_model(Shape::Image { c: 2, h, w }, &[(3, k, s, p)], &[2], 12);
        let op: &LinearOp = &model.affine()[0].op;
        let (ni, no) = (op.n_in(), op.n_out());
        let x: Vec<f64> = (0..ni * 3).map(|_| rng.random::<f64>() - 0.5).collect();
        let y: Vec<f64> = (0..no * 3).map(|_| rng.random::<f64>() - 0.5).collect();
        let mut wx = vec![0.0; no * 3];
        let mut wty = vec![0.0; ni * 3];
        op.apply(&x, 3, &mut wx);
        op.apply_transpose(&y, 3, &mut wty);
        let lhs: f64 = wx.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&wty).map(|(a, b)| a * b).sum();
        assert!(
            rel(lhs, rhs) <= 1e-12,
            "{h}x{w} k{k} s{s} p{p}: <Wx,y> {lhs} vs <x,W^T y> {rhs}"
        );
    }
}

#[test]
fn the_sampling_check_catches_a_bound_that_is_too_tight() {
    // The soundness tests' own checker (`common::check_inside` with `common::sample_points`)
    // must reject Algorithm 1 bounds of the last hidden layer shrunk by 5% of their
    // width, or the soundness tests could never fail; the unshrunk bounds must pass.
    let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2])
        .init(Init::Paper, 1)
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let x = [0.4, 0.6];
    let dom = InputDomain::new(x, 0.1, None).unwrap();
    let good = algorithm1(&model, &dom).unwrap();
    let pts = common::sample_points(&dom, 2000, &mut rng);
    let npts = pts.len() / 2;
    let pre = common::preactivations(&model, &pts);
    common::check_inside("proven", &good, &pre, npts).unwrap();
    let mut b = good.clone();
    let last = model.hidden_layers() - 1;
    for k in 0..b.lower[last].len() {
        let w = b.upper[last][k] - b.lower[last][k];
        b.lower[last][k] += 0.05 * w;
        b.upper[last][k] -= 0.05 * w;
    }
    let err = common::check_inside("shrunk", &b, &pre, npts)
        .expect_err("no sample left bounds shrunk by 5%: the sampling check would be blind");
    assert!(err.contains(&format!("layer {last}")), "{err}");
}

#[test]
fn local_columns_equal_dense_columns() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let img = |c, h, w| Shape::Image { c, h, w };
    let models = [
        // The paper's architecture, scaled down: 4x4 stride-2 convolutions.
        conv_model(img(1, 12, 12), &[(4, 4, 2, 1), (8, 4, 2, 1)], &[20, 10], 1),
        // Stride 1 and three convolutions: windows grow to the whole layer.
        conv_model(
            img(2, 7, 6),
            &[(3, 3, 1, 1), (4, 3, 1, 0), (3, 2, 1, 0)],
            &[5],
            2,
        ),
        // Stride larger than the kernel: some inputs are read by no output.
        conv_model(img(1, 9, 9), &[(2, 2, 3, 0), (3, 2, 1, 1)], &[4], 3),
        // One convolution straight into the logits' dense layer.
        conv_model(img(3, 6, 5), &[(4, 3, 2, 1)], &[3], 4),
        // A residual graph: a conv stem, then blocks the local form does not handle
        // (it turns dense there).
        network::residual_net(img(1, 6, 6), 3, 1, 4, false, Init::Paper, 5).unwrap(),
    ];
    let mut compared = 0;
    for (i, model) in models.iter().enumerate() {
        for (eps, clip) in [
            (0.01, None),
            (0.1, None),
            (0.3, Some((0.0, 1.0))),
            (2.0, None),
        ] {
            let x: Vec<f64> = (0..model.input_len()).map(|_| rng.random()).collect();
            let dom = InputDomain::new(&x, eps, clip).unwrap();
            let (bl, sl) = algorithm1_in(model, &dom, ColumnForm::Local).unwrap();
            let (bd, sd) = algorithm1_in(model, &dom, ColumnForm::Dense).unwrap();
            assert_eq!(sl.columns, sd.columns, "model {i} eps {eps}: columns");
            assert!(
                sl.macs <= sd.macs,
                "model {i} eps {eps}: local work {} > dense {}",
                sl.macs,
                sd.macs
            );
            for t in 0..bl.lower.len() {
                for k in 0..bl.lower[t].len() {
                    let (a, b) = (bl.lower[t][k], bd.lower[t][k]);
                    assert!(
                        rel(a, b) <= 1e-12,
                        "model {i} eps {eps} layer {t} unit {k}: lower {a} vs {b}"
                    );
                    let (a, b) = (bl.upper[t][k], bd.upper[t][k]);
                    assert!(
                        rel(a, b) <= 1e-12,
                        "model {i} eps {eps} layer {t} unit {k}: upper {a} vs {b}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1000, "{compared} bounds compared");
    // The paper's net at the scale it is used: most of the dense work is saved.
    let model = Architecture::mnist_conv().init(Init::Paper, 7).unwrap();
    let x: Vec<f64> = (0..784).map(|_| rng.random()).collect();
    let dom = InputDomain::new(&x, 0.05, Some((0.0, 1.0))).unwrap();
    let (bl, sl) = algorithm1_in(&model, &dom, ColumnForm::Local).unwrap();
    let (bd, sd) = algorithm1_in(&model, &dom, ColumnForm::Dense).unwrap();
    assert!(
        sl.macs * 4 < sd.macs,
        "local {} vs dense {} multiply-adds",
        sl.macs,
        sd.macs
    );
    for t in 0..bl.lower.len() {
        for k in 0..bl.lower[t].len() {
            assert!(rel(bl.lower[t][k], bd.lower[t][k]) <= 1e-12);
            assert!(rel(bl.upper[t][k], bd.upper[t][k]) <= 1e-12);
        }
    }
}

mod local_columns {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Random conv geometries (kernels 1-5, strides 1-3, padding 0-2, images 1-10 a
        /// side, up to three convolutions, a box or not): local and dense columns give the
        /// same bounds (1e-12 relative), and the local form never does more work.
        #[test]
        fn local_and_dense_columns_agree_on_random_geometries(
            c in 1usize..4,
            h in 1usize..11,
            w in 1usize..11,
            convs in proptest::collection::vec((1usize..5, 1usize..6, 1usize..4, 0usize..3), 1..4),
            head in 1usize..6,
            eps in 0.0f64..1.0,
            clip in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let arch = Architecture::conv_net(Shape::Image { c, h, w }, &convs, &[head]);
            let model = arch.init(Init::Paper, seed);
            // Kernels that do not fit the image are refused by the model, not tested here.
            prop_assume!(model.is_ok());
            let model = model.unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let x: Vec<f64> = (0..model.input_len()).map(|_| rng.random()).collect();
            let dom = InputDomain::new(&x, eps, clip.then_some((0.0, 1.0))).unwrap();
            let (bl, sl) = algorithm1_in(&model, &dom, ColumnForm::Local).unwrap();
            let (bd, sd) = algorithm1_in(&model, &dom, ColumnForm::Dense).unwrap();
            prop_assert!(sl.macs <= sd.macs, "local work {} > dense {}", sl.macs, sd.macs);
            for t in 0..bl.lower.len() {
                for k in 0..bl.lower[t].len() {
                    prop_assert!(rel(bl.lower[t][k], bd.lower[t][k]) <= 1e-12,
                        "layer {t} unit {k}: lower {} vs {}", bl.lower[t][k], bd.lower[t][k]);
                    prop_assert!(rel(bl.upper[t][k], bd.upper[t][k]) <= 1e-12,
                        "layer {t} unit {k}: upper {} vs {}", bl.upper[t][k], bd.upper[t][k]);
                }
            }
        }
    }
}
