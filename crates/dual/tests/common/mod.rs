//! Helpers shared by the soundness and exactness tests: the ball sampler and the check
//! that sampled pre-activations lie inside a set of bounds.

#![allow(dead_code)]

use dual::{InputDomain, LayerBounds};
use rand::Rng;

/// Tolerance of the sampled checks: `1e-9 * max(1, |value|)`. The bounds are proven, but
/// the sampled forward passes are floating point: sums of at most a few thousand f64
/// products of O(1) values, whose rounding is below 1e-12 relative.
pub const TOL: f64 = 1e-9;

/// The pre-activations of sampled points `pts` (one input after another, as from
/// [`sample_points`]): entry `i` is layer `i`'s, one column per point.
pub fn preactivations(model: &network::Model, pts: &[f64]) -> Vec<network::DMatrix<f64>> {
    let n = model.input_len();
    model
        .preactivations_batch(network::DMatrixView::from_slice(pts, n, pts.len() / n))
        .unwrap()
}

/// `TOL * max(1, |v|)`.
pub fn tol(v: f64) -> f64 {
    TOL * v.abs().max(1.0)
}

/// At least `n` points of the domain's box: every corner if there are few, then random
/// corners and uniform draws, alternating.
pub fn sample_points(dom: &InputDomain, n: usize, rng: &mut impl Rng) -> Vec<f64> {
    let (lo, hi) = (dom.lower(), dom.upper());
    let d = lo.len();
    let mut pts = Vec::with_capacity(n * d);
    let mut count = 0;
    if d <= 9 {
        for mask in 0..(1usize << d) {
            for i in 0..d {
                pts.push(if mask >> i & 1 == 1 { hi[i] } else { lo[i] });
            }
            count += 1;
        }
    }
    while count < n {
        let corner = count % 2 == 0;
        for i in 0..d {
            let t: f64 = if corner {
                f64::from(rng.random_range(0..2u8))
            } else {
                rng.random()
            };
            pts.push(lo[i] + t * (hi[i] - lo[i]));
        }
        count += 1;
    }
    pts
}

/// Every sampled pre-activation inside the bounds (tolerance [`tol`]); an error names
/// the first point outside.
pub fn check_inside(
    name: &str,
    b: &LayerBounds,
    pre: &[network::DMatrix<f64>],
    npts: usize,
) -> Result<(), String> {
    for (layer, (vals, (l, u))) in pre.iter().zip(b.lower.iter().zip(&b.upper)).enumerate() {
        let n = l.len();
        assert_eq!(vals.len(), n * npts);
        for (p, col) in vals.as_slice().chunks(n).enumerate() {
            for k in 0..n {
                let v = col[k];
                if !(v >= l[k] - tol(l[k]) && v <= u[k] + tol(u[k])) {
                    return Err(format!(
                        "{name} ({} bounds): point {p}, layer {layer}, unit {k}: {v} outside [{}, {}]",
                        b.source.name(),
                        l[k],
                        u[k]
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `x -> relu(w x + b)` followed by the two logits `(h, -h)`: a one-input, one-unit net
/// whose margin `f_0 - f_1 = 2 relu(w x + b)`.
pub fn scalar_margin_net(w: f64, b: f64) -> network::Model {
    use network::{Layer, Model, Shape};
    Model::new(
        Shape::Flat(1),
        vec![
            Layer::Dense {
                weight: vec![w],
                bias: vec![b],
                out_features: 1,
                in_features: 1,
            },
            Layer::Relu,
            Layer::Dense {
                weight: vec![1.0, -1.0],
                bias: vec![0.0, 0.0],
                out_features: 2,
                in_features: 1,
            },
        ],
    )
    .unwrap()
}
