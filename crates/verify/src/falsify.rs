//! Falsification: points of the property's input box that reach its unsafe region.
//!
//! Candidates are the box centre, its corners (up to 2^12 of them) and projected
//! gradient descent (PGD, Madry et al. 2018) with random restarts on the violation
//! `max_k (c_k . f(x) - rhs_k)` of one conjunction of the unsafe region, with the
//! network's gradient written out by hand (the transpose of each affine map and the
//! ReLU masks). A candidate counts only when it is confirmed in exact arithmetic: it
//! lies in the box's inner rounding (inside the file's exact box) and `c_k . f(x) <=
//! rhs_k` holds exactly for every constraint (with `rhs_lo`, below the file's exact
//! right-hand side).

use network::grad::{dot, gradient_at as gradient};
use network::{objective_exact, AsVector, DVector, DVectorView, Model};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use vnnlib::OutputConstraint;

/// True when `x` (one entry per input) reaches every constraint of `conj`, in exact
/// arithmetic.
pub fn confirms(
    model: &Model,
    x: impl network::AsVector,
    conj: &[OutputConstraint],
) -> network::Result<bool> {
    for k in conj {
        let v = objective_exact(model, &x, &k.coef)?;
        match v.cmp_f64(k.rhs_lo) {
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The violation `max_k (c_k . f(x) - rhs_lo_k)` (<= 0: the point looks unsafe) and the
/// gradient of its largest term.
fn violation(
    model: &Model,
    x: &[f64],
    conj: &[OutputConstraint],
) -> network::Result<(f64, Vec<f64>)> {
    // One forward pass; the backward pass of the largest term only.
    let z = model.preactivations_batch(network::as_column(x))?;
    let y = z.last().expect("one affine layer");
    let mut best: Option<(f64, &OutputConstraint)> = None;
    for k in conj {
        let d = dot(&k.coef, y.as_slice()) - k.rhs_lo;
        if best.is_none_or(|(b, _)| d > b) {
            best = Some((d, k));
        }
    }
    Ok(match best {
        Some((d, k)) => (d, gradient(model, &z, &k.coef).data.into()),
        None => (f64::NEG_INFINITY, vec![0.0; x.len()]),
    })
}

/// Settings of the falsifier.
#[derive(Debug, Clone)]
pub struct FalsifyOptions {
    /// PGD runs from random points (besides one from the centre).
    pub restarts: usize,
    /// Signed-gradient steps per run.
    pub steps: usize,
    /// Corners are tried when the input has at most this many coordinates.
    pub max_corner_dims: usize,
    /// While the input box is split: PGD restarts on the whole box between two batches
    /// of halves (0: none).
    pub restarts_per_batch: usize,
    /// While the input box is split: more restarts between batches (on every core) until
    /// the restarts have taken this share of the wall time since the split began (0:
    /// only `restarts_per_batch`; at most 0.9 is used; ignored when `restarts_per_batch`
    /// is 0). A counterexample in a thin region (ACAS Xu property 8 on 2_9: about 15,000
    /// restarts) is found by the restarts, not by the boxes. The number of restarts
    /// depends on the machine's speed, so a witness found this way may differ between
    /// machines for the same seed (set 0 for runs that must repeat exactly).
    pub time_share: f64,
}

impl Default for FalsifyOptions {
    fn default() -> FalsifyOptions {
        FalsifyOptions {
            restarts: 10,
            steps: 50,
            max_corner_dims: 12,
            restarts_per_batch: 4,
            time_share: 0.25,
        }
    }
}

/// Looks for a confirmed point of `[lo, hi]` (inside the file's exact box; one entry per
/// input) that reaches `conj`. Returns the point and the number of points evaluated.
///
/// Errors: corners of the wrong length for the model, non-finite corners.
pub fn falsify(
    model: &Model,
    lo: impl AsVector,
    hi: impl AsVector,
    conj: &[OutputConstraint],
    opts: &FalsifyOptions,
    rng: &mut ChaCha8Rng,
) -> network::Result<(Option<DVector<f64>>, usize)> {
    falsify_from(model, lo, hi, conj, None, opts, rng)
}

/// As [`falsify`], with the first PGD run started from `start` (clamped into the box)
/// instead of the centre, e.g. the corner where a linear lower bound is smallest.
pub fn falsify_from(
    model: &Model,
    lo: impl AsVector,
    hi: impl AsVector,
    conj: &[OutputConstraint],
    start: Option<DVectorView<'_, f64>>,
    opts: &FalsifyOptions,
    rng: &mut ChaCha8Rng,
) -> network::Result<(Option<DVector<f64>>, usize)> {
    let (lo, hi) = (lo.as_values(), hi.as_values());
    let (x, evaluated) = search(
        model,
        lo,
        hi,
        conj,
        start.as_ref().map(|s| s.as_values()),
        opts,
        None,
        rng,
    )?;
    Ok((x.map(DVector::from_vec), evaluated))
}

/// A uniform point of the box `[lo, hi]` (a coordinate of zero width at its value).
pub(crate) fn random_point(lo: &[f64], hi: &[f64], rng: &mut ChaCha8Rng) -> Vec<f64> {
    lo.iter()
        .zip(hi)
        .map(|(&a, &b)| if a < b { rng.random_range(a..=b) } else { a })
        .collect()
}

/// [`falsify_from`] on slices (what the verifier's own search calls), stopping at
/// `deadline` (checked before each corner and each PGD run after the first, so it is
/// passed by at most the centre and one run: `steps + 2` evaluations).
#[allow(clippy::too_many_arguments)]
pub(crate) fn search(
    model: &Model,
    lo: &[f64],
    hi: &[f64],
    conj: &[OutputConstraint],
    start: Option<&[f64]>,
    opts: &FalsifyOptions,
    deadline: Option<Instant>,
    rng: &mut ChaCha8Rng,
) -> network::Result<(Option<Vec<f64>>, usize)> {
    let late = || deadline.is_some_and(|d| Instant::now() >= d);
    let n = lo.len();
    let mut evaluated = 0;
    let center: Vec<f64> = lo
        .iter()
        .zip(hi)
        .map(|(a, b)| (0.5 * a + 0.5 * b).clamp(*a, *b))
        .collect();
    let first: Vec<f64> = match start {
        Some(x) => x
            .iter()
            .zip(lo.iter().zip(hi))
            .map(|(v, (a, b))| v.clamp(*a, *b))
            .collect(),
        None => center.clone(),
    };
    let try_point = |x: &[f64], evaluated: &mut usize| -> network::Result<bool> {
        *evaluated += 1;
        let (v, _) = violation(model, x, conj)?;
        // A float margin of a few ulps either way: the exact check decides.
        Ok(v <= 1e-9 * (1.0 + v.abs()) && confirms(model, x, conj)?)
    };
    if try_point(&center, &mut evaluated)? {
        return Ok((Some(center), evaluated));
    }
    if n <= opts.max_corner_dims {
        for mask in 0u64..(1u64 << n) {
            if late() {
                return Ok((None, evaluated));
            }
            let x: Vec<f64> = (0..n)
                .map(|i| if mask >> i & 1 == 1 { hi[i] } else { lo[i] })
                .collect();
            if try_point(&x, &mut evaluated)? {
                return Ok((Some(x), evaluated));
            }
        }
    }
    for run in 0..=opts.restarts {
        if run > 0 && late() {
            break;
        }
        let mut x: Vec<f64> = if run == 0 {
            first.clone()
        } else {
            random_point(lo, hi, rng)
        };
        for step in 0..opts.steps {
            let (v, g) = violation(model, &x, conj)?;
            evaluated += 1;
            if v <= 1e-9 * (1.0 + v.abs()) && confirms(model, &x, conj)? {
                return Ok((Some(x), evaluated));
            }
            // Step sizes shrink from a quarter of the box to 1/400 of it.
            let frac = 0.25 * (0.01f64).powf(step as f64 / opts.steps.max(1) as f64);
            for i in 0..n {
                let s = g[i].signum() * frac * (hi[i] - lo[i]);
                if g[i] != 0.0 {
                    x[i] = (x[i] - s).clamp(lo[i], hi[i]);
                }
            }
        }
        if try_point(&x, &mut evaluated)? {
            return Ok((Some(x), evaluated));
        }
    }
    Ok((None, evaluated))
}
