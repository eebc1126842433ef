//! The hand-written gradient of `c . f(x)` (`network::grad`) against central finite
//! differences on random networks (dense and conv), at random points away from ReLU
//! kinks (a point is skipped when a pre-activation is within 1e-5 of 0, where the
//! difference quotient crosses a kink). Tolerance: 1e-5 relative to max(1, |g|) (the
//! step is 1e-6; the networks are piecewise linear, so away from kinks the quotient is
//! exact up to rounding of O(1e-10 / 1e-6)).

use network::grad::{dot, gradient_at, value_and_gradient};
use network::{Architecture, Init, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn the_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let archs = [
        Architecture::mlp(&[3, 7, 5, 2]),
        Architecture::mlp(&[4, 6, 3]),
        Architecture::conv_net(Shape::Image { c: 1, h: 5, w: 5 }, &[(2, 3, 1, 1)], &[4, 3]),
    ];
    let mut checked = 0;
    for (k, arch) in archs.iter().enumerate() {
        let model = arch.init(Init::Paper, k as u64).unwrap();
        let n = model.input_len();
        let m = model.output_len();
        for _ in 0..20 {
            let x: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let c: Vec<f64> = (0..m).map(|_| rng.random_range(-1.0..1.0)).collect();
            let pre = model.preactivations_batch(network::as_column(&x)).unwrap();
            if pre[..pre.len() - 1]
                .iter()
                .flatten()
                .any(|v| v.abs() < 1e-5)
            {
                continue;
            }
            let (v, g) = value_and_gradient(&model, &x, &c).unwrap();
            assert_eq!(g, gradient_at(&model, &pre, &c));
            assert!((v - dot(&c, pre.last().unwrap().as_slice())).abs() <= 1e-12 * (1.0 + v.abs()));
            let h = 1e-6;
            for i in 0..n {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let fp = dot(&c, model.forward(&xp).unwrap());
                let fm = dot(&c, model.forward(&xm).unwrap());
                let fd = (fp - fm) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() <= 1e-5 * g[i].abs().max(1.0),
                    "arch {k} coordinate {i}: gradient {} vs finite difference {fd}",
                    g[i]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} coordinates checked");
}

#[test]
fn an_inactive_unit_passes_no_gradient() {
    // One hidden unit, off at x = -1 (pre-activation -1): the gradient is 0 there and
    // the output weight times the input weight where the unit is on.
    let model = network::Model::new(
        Shape::Flat(1),
        vec![
            network::Layer::Dense {
                weight: vec![1.0],
                bias: vec![0.0],
                out_features: 1,
                in_features: 1,
            },
            network::Layer::Relu,
            network::Layer::Dense {
                weight: vec![3.0],
                bias: vec![0.5],
                out_features: 1,
                in_features: 1,
            },
        ],
    )
    .unwrap();
    assert_eq!(
        value_and_gradient(&model, [-1.0], [1.0]).unwrap(),
        (0.5, network::DVector::from_vec(vec![0.0]))
    );
    assert_eq!(
        value_and_gradient(&model, [0.0], [1.0]).unwrap(),
        (0.5, network::DVector::from_vec(vec![0.0]))
    );
    assert_eq!(
        value_and_gradient(&model, [2.0], [2.0]).unwrap(),
        (13.0, network::DVector::from_vec(vec![6.0]))
    );
}
