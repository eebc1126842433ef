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
//!
//! For low-dimensional inputs (ACAS Xu: 5), two searches use that a ReLU network is
//! piecewise linear along any segment: [`line_minimum`] finds the exact minimiser of the
//! violation on a segment (up to the rounding of its breakpoints) by inserting every
//! ReLU's zero crossing, layer by layer. The *edge search* minimises along every edge of
//! the box (`n 2^(n-1)` segments; a counterexample near the box's boundary, as in ACAS
//! Xu property 7 on 1_9, lies on or near one), and the *polish* runs coordinate descent
//! with that exact line search from the end of each PGD run, which reaches thin unsafe
//! regions that signed-gradient steps jump over.

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

/// The violation `max_k (c_k . f(x) - rhs_lo_k)` of the logits `y` (<= 0: the point
/// looks unsafe) and the term that attains it (`None` for an empty conjunction: `-inf`).
fn worst_term<'c>(y: &[f64], conj: &'c [OutputConstraint]) -> (f64, Option<&'c OutputConstraint>) {
    let mut best: (f64, Option<&OutputConstraint>) = (f64::NEG_INFINITY, None);
    for k in conj {
        let d = dot(&k.coef, y) - k.rhs_lo;
        if best.1.is_none() || d > best.0 {
            best = (d, Some(k));
        }
    }
    best
}

/// The violation at `x`: one forward pass, no gradient.
fn violation_value(model: &Model, x: &[f64], conj: &[OutputConstraint]) -> network::Result<f64> {
    let y = model.forward(x)?;
    Ok(worst_term(y.as_slice(), conj).0)
}

/// Whether the violation `v` at `x` says unsafe: a float margin of a few ulps either way,
/// then the exact check decides.
fn reached(model: &Model, x: &[f64], v: f64, conj: &[OutputConstraint]) -> network::Result<bool> {
    Ok(v <= 1e-9 * (1.0 + v.abs()) && confirms(model, x, conj)?)
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
    Ok(match worst_term(y.as_slice(), conj) {
        (d, Some(k)) => (d, gradient(model, &z, &k.coef).data.into()),
        (d, None) => (d, vec![0.0; x.len()]),
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
    /// Coordinate descent with exact line searches ([`line_minimum`]) after each PGD run
    /// when the box has at most this many coordinates of positive width (0: never).
    pub polish_dims: usize,
    /// The edge search (every edge of the box, exact line search) when the box has at
    /// most this many coordinates of positive width (0: never); `n 2^(n-1)` segments for
    /// `n` of them.
    pub edge_dims: usize,
}

impl Default for FalsifyOptions {
    fn default() -> FalsifyOptions {
        FalsifyOptions {
            restarts: 10,
            steps: 50,
            max_corner_dims: 12,
            restarts_per_batch: 4,
            time_share: 0.25,
            polish_dims: 8,
            edge_dims: 6,
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

/// The coordinates of positive width of the box `[lo, hi]` (the limits of the edge
/// search, the polish, `ReluSplit::Auto` and `LpRung::Auto` count these).
pub(crate) fn wide_coordinates(lo: &[f64], hi: &[f64]) -> usize {
    lo.iter().zip(hi).filter(|(l, u)| u > l).count()
}

/// A uniform point of the box `[lo, hi]` (a coordinate of zero width at its value), as
/// `(1 - t) lo + t hi` with `t` uniform in [0, 1], so that a box wider than the largest
/// double (`hi - lo` overflows) still gives a point of the box.
pub(crate) fn random_point(lo: &[f64], hi: &[f64], rng: &mut ChaCha8Rng) -> Vec<f64> {
    lo.iter()
        .zip(hi)
        .map(|(&a, &b)| {
            if a < b {
                let t: f64 = rng.random_range(0.0..=1.0);
                ((1.0 - t) * a + t * b).clamp(a, b)
            } else {
                a
            }
        })
        .collect()
}

/// [`falsify_from`] on slices (what the verifier's own search calls), stopping at
/// `deadline` (checked before each corner, each edge, each PGD run after the first and
/// each line search of a polish, so it is passed by at most one PGD run, `steps + 2`
/// evaluations, or one exact line search).
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
        reached(model, x, violation_value(model, x, conj)?, conj)
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
    // Coordinates of positive width: the others are fixed, and neither the edge count
    // nor the polish's limit counts them.
    let fixed: u64 = (0..n.min(64))
        .filter(|&k| lo[k] >= hi[k])
        .fold(0, |m, k| m | 1 << k);
    if wide_coordinates(lo, hi) <= opts.edge_dims && n < 64 {
        // Every edge: coordinate i free, the others at a corner (mask over all n bits,
        // bit i and the fixed coordinates' bits clear, so each edge once).
        let mut best: Option<(f64, Vec<f64>)> = None;
        for i in 0..n {
            if lo[i] >= hi[i] {
                continue;
            }
            for mask in (0u64..(1u64 << n)).filter(|m| m >> i & 1 == 0 && m & fixed == 0) {
                if late() {
                    return Ok((None, evaluated));
                }
                let a: Vec<f64> = (0..n)
                    .map(|k| if mask >> k & 1 == 1 { hi[k] } else { lo[k] })
                    .collect();
                let mut b = a.clone();
                b[i] = hi[i];
                let (x, v) = line_minimum(model, &a, &b, conj, &mut evaluated)?;
                if reached(model, &x, v, conj)? {
                    return Ok((Some(x), evaluated));
                }
                if best.as_ref().is_none_or(|(bv, _)| v < *bv) {
                    best = Some((v, x));
                }
            }
        }
        if let Some((_, x)) = best {
            if let Some(x) = polish(model, lo, hi, conj, x, opts, deadline, &mut evaluated)? {
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
            if reached(model, &x, v, conj)? {
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
        if let Some(x) = polish(model, lo, hi, conj, x, opts, deadline, &mut evaluated)? {
            return Ok((Some(x), evaluated));
        }
    }
    Ok((None, evaluated))
}

/// Coordinate descent on the violation from `x`, each step an exact line search
/// ([`line_minimum`]) along one coordinate over the whole box, until a sweep improves
/// nothing (at most 4 sweeps) or `deadline` passes. Returns a confirmed point when it
/// reaches the unsafe region; does nothing when the input has more than
/// `opts.polish_dims` coordinates.
#[allow(clippy::too_many_arguments)]
fn polish(
    model: &Model,
    lo: &[f64],
    hi: &[f64],
    conj: &[OutputConstraint],
    mut x: Vec<f64>,
    opts: &FalsifyOptions,
    deadline: Option<Instant>,
    evaluated: &mut usize,
) -> network::Result<Option<Vec<f64>>> {
    let n = x.len();
    if wide_coordinates(lo, hi) > opts.polish_dims {
        return Ok(None);
    }
    let mut v = violation_value(model, &x, conj)?;
    *evaluated += 1;
    for _ in 0..4 {
        let before = v;
        for i in 0..n {
            if lo[i] >= hi[i] {
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] = lo[i];
            b[i] = hi[i];
            let (y, vy) = line_minimum(model, &a, &b, conj, evaluated)?;
            if vy < v {
                (x, v) = (y, vy);
            }
            if reached(model, &x, v, conj)? {
                return Ok(Some(x));
            }
        }
        if v >= before {
            break;
        }
    }
    Ok(None)
}

/// The minimum of the violation `max_k (c_k . f(x) - rhs_lo_k)` over the segment from
/// `a` to `b` (points of the input box), and a point where it is reached: a ReLU network
/// is linear between consecutive zero crossings of its ReLUs' inputs along the segment,
/// so the crossings are inserted layer by layer (a crossing of layer `i` is found from
/// the values at the points that already cut layers `1..i` into linear pieces), and
/// on each final piece the violation, a convex maximum of linear functions, is smallest
/// at an end or where its active term turns from falling to rising (found by bisection).
/// The crossings are rounded, so the result is exact up to that rounding; callers
/// confirm a point in exact arithmetic. Adds the points evaluated (one forward pass
/// each) to `evaluated`. The point returned is `(1 - t) a + t b` clamped between `a` and
/// `b` coordinate-wise, with its float violation. Errors: ends whose length is not the
/// model's input length, or not finite.
pub fn line_minimum(
    model: &Model,
    a: &[f64],
    b: &[f64],
    conj: &[OutputConstraint],
    evaluated: &mut usize,
) -> network::Result<(Vec<f64>, f64)> {
    model.check_input(a)?;
    model.check_input(b)?;
    let n = a.len();
    // (1 - t) p + t q: no overflow for ends of any finite size (q - p may overflow).
    let at = |t: f64| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(&p, &q)| {
                let v = (1.0 - t) * p + t * q;
                v.clamp(p.min(q), p.max(q))
            })
            .collect()
    };
    // Pre-activations of every layer at the points `ts` (sorted).
    let eval = |ts: &[f64], evaluated: &mut usize| -> network::Result<Vec<Vec<DVector<f64>>>> {
        let mut cols = Vec::with_capacity(ts.len() * n);
        for &t in ts {
            cols.extend(at(t));
        }
        *evaluated += ts.len();
        let m = network::DMatrix::from_vec(n, ts.len(), cols);
        let pre = model.preactivations_batch(&m)?;
        Ok((0..ts.len())
            .map(|j| pre.iter().map(|l| l.column(j).into_owned()).collect())
            .collect())
    };
    let mut ts = vec![0.0, 1.0];
    let mut pre = eval(&ts, evaluated)?;
    let hidden = model.affine().len() - 1;
    for layer in 0..hidden {
        let relu = model.relu_units(layer);
        let mut cuts: Vec<f64> = Vec::new();
        for j in 0..ts.len() - 1 {
            let (p, q) = (&pre[j][layer], &pre[j + 1][layer]);
            for k in 0..relu {
                let (u, v) = (p[k], q[k]);
                if (u < 0.0 && v > 0.0) || (u > 0.0 && v < 0.0) {
                    let t = ts[j] + (ts[j + 1] - ts[j]) * (u / (u - v));
                    if t > ts[j] && t < ts[j + 1] {
                        cuts.push(t);
                    }
                }
            }
        }
        if cuts.is_empty() {
            continue;
        }
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let new = eval(&cuts, evaluated)?;
        // Merge the two sorted lists.
        let mut merged_t = Vec::with_capacity(ts.len() + cuts.len());
        let mut merged_p = Vec::with_capacity(ts.len() + cuts.len());
        let (mut i, mut j) = (0, 0);
        let mut old = pre.into_iter();
        let mut new = new.into_iter();
        while i < ts.len() || j < cuts.len() {
            if j == cuts.len() || (i < ts.len() && ts[i] <= cuts[j]) {
                merged_t.push(ts[i]);
                merged_p.push(old.next().expect("one per point"));
                i += 1;
            } else {
                merged_t.push(cuts[j]);
                merged_p.push(new.next().expect("one per cut"));
                j += 1;
            }
        }
        ts = merged_t;
        pre = merged_p;
    }
    // The violation's terms at every point: g[j][k] = c_k . y(t_j) - rhs_lo_k.
    let g: Vec<Vec<f64>> = pre
        .iter()
        .map(|p| {
            let y = p.last().expect("one affine layer");
            conj.iter()
                .map(|k| dot(&k.coef, y.as_slice()) - k.rhs_lo)
                .collect()
        })
        .collect();
    // On piece j the violation is h(s) = max_k (g0_k + s (g1_k - g0_k)), s in [0, 1]:
    // convex, so its minimum is at an end unless the steepest-rising active term at s = 0
    // falls and the one at s = 1 rises; then bisection on the sign of the active slope
    // (O(K) per step for K constraints) finds the crossing where the minimum lies.
    let active = |g0: &[f64], g1: &[f64], s: f64| -> (f64, f64) {
        // (value, slope) of the maximising term, ties to the larger slope at s.
        let mut best = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for (p, q) in g0.iter().zip(g1) {
            let (v, d) = ((1.0 - s) * p + s * q, q - p);
            if v > best.0 || (v == best.0 && d > best.1) {
                best = (v, d);
            }
        }
        best
    };
    let (mut best_t, mut best_v) = (0.0, f64::INFINITY);
    for j in 0..ts.len() {
        let (v, _) = active(&g[j], &g[j], 0.0);
        if v < best_v {
            (best_t, best_v) = (ts[j], v);
        }
        if j + 1 == ts.len() || conj.len() < 2 {
            // One term: linear on the piece, smallest at an end.
            continue;
        }
        let (g0, g1) = (&g[j], &g[j + 1]);
        if active(g0, g1, 0.0).1 >= 0.0 {
            continue;
        }
        // The slope just before s = 1: the active term at 1 with ties to the smaller
        // slope, i.e. minus the steepest-falling one seen from the right.
        let (v1, _) = active(g0, g1, 1.0);
        let falls_at_end = g0.iter().zip(g1).any(|(p, q)| *q == v1 && q - p <= 0.0);
        if falls_at_end {
            continue;
        }
        let (mut lo_s, mut hi_s) = (0.0f64, 1.0f64);
        for _ in 0..64 {
            let mid = 0.5 * (lo_s + hi_s);
            if mid <= lo_s || mid >= hi_s {
                break;
            }
            if active(g0, g1, mid).1 > 0.0 {
                hi_s = mid;
            } else {
                lo_s = mid;
            }
        }
        for s in [lo_s, hi_s] {
            let (v, _) = active(g0, g1, s);
            if v < best_v {
                (best_t, best_v) = (ts[j] + s * (ts[j + 1] - ts[j]), v);
            }
        }
    }
    let x = at(best_t);
    let v = violation_value(model, &x, conj)?;
    *evaluated += 1;
    Ok((x, v))
}
