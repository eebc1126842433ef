//! Upper bounds on the exact minimum: projected gradient descent (PGD, Madry et al. 2018)
//! on `c . f(x)` over the input set's inner box, from its centre and random points, with
//! the hand-written gradient of `network::grad`. Every point it returns lies in the
//! inner box (so in the exact input set); its value is made an upper bound by
//! [`dual::value_upper_bound`] (the network at the point with every rounding bounded).

use dual::InputDomain;
use network::Model;
use network::{AsVector, DVector};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;

/// Settings of the PGD search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PgdOptions {
    /// Runs from random points of the box, besides the one from its centre.
    pub restarts: usize,
    /// Signed-gradient steps per run; the step shrinks from a quarter of the box's width
    /// to 1/400 of it.
    pub steps: usize,
}

impl Default for PgdOptions {
    fn default() -> PgdOptions {
        PgdOptions {
            restarts: 10,
            steps: 50,
        }
    }
}

/// Clamps `x` into the inner box of `domain` (coordinate by coordinate; a point of another
/// length gives the clamped common prefix, which the model then refuses by its length).
pub fn into_inner_box(domain: &InputDomain, x: impl AsVector) -> DVector<f64> {
    let x = x.as_values();
    let clamped: Vec<f64> = x
        .iter()
        .zip(domain.inner_lower.iter().zip(&domain.inner_upper))
        .map(|(v, (lo, hi))| v.clamp(*lo, *hi))
        .collect();
    DVector::from_vec(clamped)
}

/// PGD runs from `starts` (each clamped into the inner box) and `opts.restarts` random
/// points: the point with the smallest floating-point `c . f(x)` found, and that value
/// (not a bound).
pub fn pgd(
    model: &Model,
    domain: &InputDomain,
    c: impl AsVector,
    starts: &[DVector<f64>],
    opts: &PgdOptions,
    rng: &mut ChaCha8Rng,
) -> Result<(DVector<f64>, f64)> {
    let c = c.as_values();
    let (lo, hi) = (&domain.inner_lower, &domain.inner_upper);
    let n = lo.len();
    let mut runs: Vec<DVector<f64>> = starts.iter().map(|s| into_inner_box(domain, s)).collect();
    for _ in 0..opts.restarts {
        runs.push(DVector::from_fn(n, |i, _| {
            if lo[i] < hi[i] {
                rng.random_range(lo[i]..=hi[i])
            } else {
                lo[i]
            }
        }));
    }
    let mut best: Option<(DVector<f64>, f64)> = None;
    for mut x in runs {
        for step in 0..=opts.steps {
            let (v, g) = network::value_and_gradient(model, &x, c)?;
            if best.as_ref().is_none_or(|(_, b)| v < *b) {
                best = Some((x.clone(), v));
            }
            if step == opts.steps {
                break;
            }
            let frac = 0.25 * (0.01f64).powf(step as f64 / opts.steps.max(1) as f64);
            for i in 0..n {
                if g[i] != 0.0 {
                    x[i] = (x[i] - g[i].signum() * frac * (hi[i] - lo[i])).clamp(lo[i], hi[i]);
                }
            }
        }
    }
    Ok(best.unwrap_or_else(|| {
        let x = into_inner_box(domain, &domain.center);
        (x, f64::INFINITY)
    }))
}
