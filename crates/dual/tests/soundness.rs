//! Soundness of every bound against sampled forward passes, on random dense and conv
//! nets (the paper's random init) at several eps up to 0.25.
//!
//! For each case >= 1,000 points of the input set (all corners when there are at most
//! 2^9 of them, then random corners and uniform draws) are pushed through the real
//! network. Every pre-activation must lie inside the interval and the Algorithm 1
//! bounds, and `c^T f(x')` must be >= J for every target, with the paper's alpha and
//! with random alpha in [0, 1].
//!
//! Tolerance: `1e-9 * max(1, |value|)`. The bounds and the forward pass are sums of at
//! most a few thousand f64 products of O(1) values, whose rounding is below 1e-12
//! relative; 1e-9 leaves room for that and nothing else.

use dual::{
    algorithm1, dual_objective, interval_bounds, margin_objectives, AlphaRule, InputDomain,
};
use network::{Architecture, Init, Layer, Model, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

use common::{check_inside, sample_points, tol};

fn random_alpha(model: &Model, rng: &mut impl Rng) -> AlphaRule {
    let aff = model.affine();
    AlphaRule::PerUnit(
        aff[..aff.len() - 1]
            .iter()
            .map(|a| network::DVector::from_fn(a.op.n_out(), |_, _| rng.random()))
            .collect(),
    )
}

/// The full check of one (model, x, eps, box) case.
pub fn check_case(
    name: &str,
    model: &Model,
    x: &[f64],
    eps: f64,
    bx: Option<(f64, f64)>,
    rng: &mut impl Rng,
) {
    let dom = InputDomain::new(x, eps, bx).unwrap();
    let ib = interval_bounds(model, &dom).unwrap();
    let ab = algorithm1(model, &dom).unwrap();
    let npts = 1000;
    let pts = sample_points(&dom, npts, rng);
    let npts = pts.len() / x.len();
    let pre = common::preactivations(model, &pts);
    check_inside(name, &ib, &pre, npts).unwrap();
    check_inside(name, &ab, &pre, npts).unwrap();
    let n_out = model.output_len();
    let y = model.predict(x).unwrap();
    let c = margin_objectives(n_out, y).unwrap();
    let logits = pre.last().unwrap();
    for alpha in [
        AlphaRule::Paper,
        random_alpha(model, rng),
        random_alpha(model, rng),
    ] {
        let j = dual_objective(model, &dom, &ab, &c, &alpha).unwrap();
        for (t, (&jt, &nom)) in j.values.iter().zip(&j.nominal).enumerate() {
            // The proven J is the nominal one less a rounding allowance far below 1e-9.
            assert!(
                jt <= nom && nom - jt <= tol(nom),
                "{name} alpha {}: target {t}: proven {jt} vs nominal {nom}",
                alpha.name()
            );
        }
        for (t, &jt) in j.values.iter().enumerate() {
            let row = &c.row(t).transpose();
            for (p, f) in logits.as_slice().chunks(n_out).enumerate() {
                let v: f64 = row.iter().zip(f).map(|(a, b)| a * b).sum();
                assert!(
                    jt <= v + tol(v),
                    "{name} alpha {}: target {t}, point {p}: J = {jt} > c^T f(x') = {v}",
                    alpha.name()
                );
            }
        }
    }
}

fn random_input(n: usize, rng: &mut impl Rng) -> Vec<f64> {
    (0..n).map(|_| rng.random()).collect()
}

#[test]
fn dense_nets_are_sound() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let widths: &[&[usize]] = &[
        &[2, 16, 16, 2],
        &[5, 20, 20, 20, 3],
        &[2, 100, 100, 100, 100, 2],
        &[10, 50, 50, 10],
    ];
    for (s, w) in widths.iter().enumerate() {
        let model = Architecture::mlp(w)
            .init(Init::Paper, 100 + s as u64)
            .unwrap();
        for eps in [0.01, 0.05, 0.1, 0.25] {
            let x = random_input(w[0], &mut rng);
            check_case(
                &format!("mlp {w:?} eps {eps}"),
                &model,
                &x,
                eps,
                None,
                &mut rng,
            );
        }
    }
}

#[test]
fn conv_nets_are_sound() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let cases = [
        Architecture::conv_net(
            Shape::Image { c: 1, h: 8, w: 8 },
            &[(4, 4, 2, 1), (8, 3, 1, 1)],
            &[10],
        ),
        // 3x3 stride 2 on 6x6: (6 + 2 - 3) is not a multiple of 2 (output padding case).
        Architecture::conv_net(
            Shape::Image { c: 1, h: 6, w: 6 },
            &[(3, 3, 2, 1), (4, 3, 2, 1)],
            &[12, 4],
        ),
        Architecture::conv_net(Shape::Image { c: 2, h: 7, w: 7 }, &[(4, 3, 1, 0)], &[8, 3]),
    ];
    for (s, arch) in cases.iter().enumerate() {
        for init in [Init::Paper, Init::Standard] {
            let model = arch.init(init, 200 + s as u64).unwrap();
            for eps in [0.01, 0.1, 0.25] {
                let x = random_input(model.input_len(), &mut rng);
                check_case(
                    &format!("conv case {s} {init:?} eps {eps}"),
                    &model,
                    &x,
                    eps,
                    None,
                    &mut rng,
                );
            }
        }
    }
}

#[test]
fn input_box_is_sound() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let model = Architecture::mlp(&[6, 30, 30, 4])
        .init(Init::Paper, 7)
        .unwrap();
    for eps in [0.05, 0.25] {
        // Coordinates near the box's edges so that the intersection clips.
        let x: Vec<f64> = (0..6)
            .map(|i| if i % 2 == 0 { 0.02 } else { rng.random() })
            .collect();
        check_case(
            &format!("box eps {eps}"),
            &model,
            &x,
            eps,
            Some((0.0, 1.0)),
            &mut rng,
        );
    }
}

#[test]
fn a_layer_list_with_flatten_between_dense_layers_is_sound() {
    // Flatten in odd places is a reshape: the bound must not care.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let m = Architecture::mlp(&[3, 8, 2]).init(Init::Paper, 1).unwrap();
    let mut layers = vec![Layer::Flatten];
    layers.extend(m.layers().iter().cloned());
    let model = Model::new(Shape::Flat(3), layers).unwrap();
    check_case(
        "flatten first",
        &model,
        &[0.3, 0.6, 0.9],
        0.2,
        None,
        &mut rng,
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        /// Random depth, widths, eps and seed; shrinking finds the smallest failing net.
        #[test]
        fn random_mlps_are_sound(
            widths in proptest::collection::vec(1usize..24, 3..6),
            eps in 0.0f64..0.3,
            seed in 0u64..1000,
        ) {
            let model = Architecture::mlp(&widths).init(Init::Paper, seed).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let x = random_input(widths[0], &mut rng);
            check_case("proptest", &model, &x, eps, None, &mut rng);
        }
    }
}
