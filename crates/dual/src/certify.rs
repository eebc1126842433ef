//! Certificates (Corollary 1), detection (Corollary 2), robust error over a dataset and
//! the certified radius (eq. 17).
//!
//! A class `y` is certified at `x` for `eps` when `J(c_t) > 0` for every target `t != y`
//! with `c_t = e_y - e_t` (Algorithm 1 bounds, the paper's alpha). A zero bound is not a
//! certificate: at a tie the argmax is not guaranteed to be `y`.

use network::{AsVector, DVector};
use rayon::prelude::*;

use network::{argmax, Dataset, Model};

use crate::algorithm1::algorithm1;
use crate::domain::InputDomain;
use crate::error::Result;
use crate::methods::{certify_with, AlphaOptions, Method};
use crate::objective::{dual_objective, margin_objectives, AlphaRule, DualBound};

/// The margins bound `J(e_y - e_t)` for every target `t` (entry `y` is 0) and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// The class being certified.
    pub class: usize,
    /// The ball's radius.
    pub eps: f64,
    /// `J(e_class - e_t)` for every `t`, with provenance.
    pub bound: DualBound,
    /// True when every proven entry but `class` is > 0.
    pub certified: bool,
}

impl Certificate {
    /// The smallest proven bound over targets `t != class` (NaN if any is NaN: a NaN is
    /// never skipped).
    pub fn min_margin(&self) -> f64 {
        min_over_targets(&self.bound.values, self.class)
    }
}

/// `min_{t != y} v_t`, NaN if any of them is NaN (`f64::min` would skip it).
pub fn min_over_targets(values: impl AsVector, y: usize) -> f64 {
    values
        .as_values()
        .iter()
        .enumerate()
        .filter(|&(t, _)| t != y)
        .map(|(_, &v)| v)
        .fold(f64::INFINITY, |m, v| {
            if v.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.min(v)
            }
        })
}

/// Corollary 1's test on proven margin bounds: every `v_t` with `t != y` is a number
/// `> 0` (a tie, a NaN or an empty target set certifies nothing).
pub fn certifies(values: impl AsVector, y: usize) -> bool {
    let mut any = false;
    for (t, &v) in values.as_values().iter().enumerate() {
        if t == y {
            continue;
        }
        any = true;
        if v.is_nan() || v <= 0.0 {
            return false;
        }
    }
    any
}

/// Bounds the margins of class `y` over the input set (Corollary 1).
pub fn certify(
    model: &Model,
    x: impl AsVector,
    y: usize,
    eps: f64,
    input_box: Option<(f64, f64)>,
) -> Result<Certificate> {
    let domain = InputDomain::new(x, eps, input_box)?;
    certify_domain(model, &domain, y)
}

/// As [`certify`] for a prepared input set.
pub fn certify_domain(model: &Model, domain: &InputDomain, y: usize) -> Result<Certificate> {
    let n = model.output_len();
    if n < 2 {
        return Err(crate::DualError::NoTargets { n_out: n });
    }
    let c = margin_objectives(n, y)?;
    let bounds = algorithm1(model, domain)?;
    let bound = dual_objective(model, domain, &bounds, &c, &AlphaRule::Paper)?;
    let certified = certifies(&bound.values, y);
    Ok(Certificate {
        class: y,
        eps: domain.eps,
        bound,
        certified,
    })
}

/// Detection (Corollary 2): certify the *predicted* class; a point whose prediction is
/// not certified is flagged as possibly adversarial.
pub fn detect(
    model: &Model,
    x: impl AsVector,
    eps: f64,
    input_box: Option<(f64, f64)>,
) -> Result<Certificate> {
    let y = model.predict(&x)?;
    certify(model, x, y, eps, input_box)
}

/// Clean and robust error over examples of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct RobustErrorReport {
    pub eps: f64,
    /// Indices of the examples evaluated.
    pub indices: Vec<usize>,
    /// Per example: predicted class.
    pub predicted: Vec<usize>,
    /// Per example: certified for its label.
    pub certified: Vec<bool>,
    /// Per example: the smallest margin bound.
    pub min_margin: DVector<f64>,
    /// Fraction misclassified.
    pub clean_error: f64,
    /// Fraction not certified for the true label (the robust error bound).
    pub robust_error: f64,
}

/// Certifies the examples `indices` of `data` in parallel (the paper's bound: `wk`).
pub fn robust_error(
    model: &Model,
    data: &Dataset,
    indices: &[usize],
    eps: f64,
    input_box: Option<(f64, f64)>,
) -> Result<RobustErrorReport> {
    robust_error_with(
        model,
        data,
        indices,
        eps,
        input_box,
        Method::Wk,
        &AlphaOptions::default(),
    )
}

/// As [`robust_error`], certifying with any bound method.
pub fn robust_error_with(
    model: &Model,
    data: &Dataset,
    indices: &[usize],
    eps: f64,
    input_box: Option<(f64, f64)>,
    method: Method,
    opts: &AlphaOptions,
) -> Result<RobustErrorReport> {
    let rows: Vec<(usize, bool, f64)> = indices
        .par_iter()
        .map(|&i| {
            let (x, y) = data.get(i)?;
            let pred = argmax(&model.forward(x)?);
            let domain = InputDomain::new(x, eps, input_box)?;
            let b = certify_with(model, &domain, y, method, opts)?;
            Ok((
                pred,
                certifies(&b.values, y),
                min_over_targets(&b.values, y),
            ))
        })
        .collect::<Result<_>>()?;
    let n = rows.len().max(1) as f64;
    let labels: Vec<usize> = indices.iter().map(|&i| data.labels[i]).collect();
    Ok(RobustErrorReport {
        eps,
        indices: indices.to_vec(),
        clean_error: rows
            .iter()
            .zip(&labels)
            .filter(|((p, _, _), &y)| *p != y)
            .count() as f64
            / n,
        robust_error: rows.iter().filter(|(_, c, _)| !c).count() as f64 / n,
        predicted: rows.iter().map(|r| r.0).collect(),
        certified: rows.iter().map(|r| r.1).collect(),
        min_margin: DVector::from_iterator(rows.len(), rows.iter().map(|r| r.2)),
    })
}

/// Why the radius search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadiusStop {
    /// The bracket `[radius, upper]` is narrower than the relative tolerance.
    Converged,
    /// `x` itself is not classified as `y` with a positive margin: the radius is 0.
    NotCertifiedAtZero,
    /// The certificate still held at `max_eps`; the radius is at least that.
    ReachedMaxEps,
    /// The step budget ran out; the radius is the largest certified eps seen.
    MaxSteps,
}

/// One evaluation of the search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadiusStep {
    pub eps: f64,
    /// `min_{t != y} J_t(eps)`.
    pub margin: f64,
    /// "newton", "secant" (false position on the bracket), "bisect" or "expand": how
    /// this eps was chosen.
    pub kind: &'static str,
}

/// Options of the certified radius search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadiusOptions {
    /// First eps tried.
    pub initial: f64,
    /// Stop when `(upper - radius) <= rel_tol * radius`.
    pub rel_tol: f64,
    /// Largest eps considered.
    pub max_eps: f64,
    /// Evaluation budget.
    pub max_steps: usize,
}

impl Default for RadiusOptions {
    fn default() -> Self {
        RadiusOptions {
            initial: 0.01,
            rel_tol: 1e-3,
            max_eps: 10.0,
            max_steps: 60,
        }
    }
}

/// The certified radius and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct RadiusResult {
    /// The largest eps found at which the certificate holds (0 if none).
    pub radius: f64,
    /// The smallest eps found at which it fails (`None` if none was found).
    pub upper: Option<f64>,
    pub steps: Vec<RadiusStep>,
    pub stop: RadiusStop,
}

/// The certified radius of eq. 17: the largest eps with `min_{t != y} J_t(eps) > 0`.
///
/// The margin `g(eps)` is decreasing in eps. Until a failing eps is found the search
/// takes Newton steps with the slope of the last two evaluations (aiming half the
/// tolerance past the predicted root, growing at most 8x a step); then it keeps the
/// bracket `[certified, not certified]` and steps by false position with Illinois
/// weights (a guard below the prediction after a failing step, half the tolerance above
/// it after a certified one), bisecting when the failing end's margin is NaN. It
/// returns the certified end, so the certificate always holds at the returned radius
/// ([`radius_search`]).
pub fn certified_radius(
    model: &Model,
    x: impl AsVector,
    y: usize,
    input_box: Option<(f64, f64)>,
    opts: RadiusOptions,
) -> Result<RadiusResult> {
    radius_search(
        |eps| Ok(certify(model, &x, y, eps, input_box)?.min_margin()),
        opts,
    )
}

/// As [`certified_radius`], with the margins of any bound method.
pub fn certified_radius_with(
    model: &Model,
    x: impl AsVector,
    y: usize,
    input_box: Option<(f64, f64)>,
    method: Method,
    alpha: &AlphaOptions,
    opts: RadiusOptions,
) -> Result<RadiusResult> {
    radius_search(
        |eps| {
            let domain = InputDomain::new(&x, eps, input_box)?;
            let b = certify_with(model, &domain, y, method, alpha)?;
            Ok(min_over_targets(&b.values, y))
        },
        opts,
    )
}

/// The search of [`certified_radius`] for any margin `g(eps)` that is decreasing in
/// eps, certified where `g > 0` (NaN counts as not certified) and evaluated once per
/// step: the largest eps found with `g > 0`, the bracket, every step and why it stopped.
/// Used by every bound method's radius (`g` = its proven margin).
///
/// Errors: the first error `g` returns.
pub fn radius_search(
    mut g: impl FnMut(f64) -> Result<f64>,
    opts: RadiusOptions,
) -> Result<RadiusResult> {
    if !(opts.rel_tol > 0.0 && opts.rel_tol < 1.0) {
        return Err(crate::DualError::Options(format!(
            "the radius search's rel_tol must be in (0, 1), got {}",
            opts.rel_tol
        )));
    }
    if !(opts.initial > 0.0
        && opts.initial.is_finite()
        && opts.max_eps > 0.0
        && opts.max_eps.is_finite())
    {
        return Err(crate::DualError::Options(format!(
            "the radius search needs finite initial > 0 and max_eps > 0, got {} and {}",
            opts.initial, opts.max_eps
        )));
    }
    let mut steps = Vec::new();
    let g0 = g(0.0)?;
    steps.push(RadiusStep {
        eps: 0.0,
        margin: g0,
        kind: "start",
    });
    if g0.is_nan() || g0 <= 0.0 {
        return Ok(RadiusResult {
            radius: 0.0,
            upper: Some(0.0),
            steps,
            stop: RadiusStop::NotCertifiedAtZero,
        });
    }
    let (mut lo, mut glo) = (0.0f64, g0);
    let mut hi: Option<(f64, f64)> = None;
    let mut prev = (0.0f64, g0);
    let mut eps = opts.initial.min(opts.max_eps).max(f64::MIN_POSITIVE);
    let mut kind = "expand";
    // Illinois weights of the bracket's ends: an end kept by two steps in a row has its
    // margin halved in the false-position formula, so neither end stalls.
    let (mut w_lo, mut w_hi) = (1.0f64, 1.0f64);
    let mut last_moved: Option<bool> = None; // Some(true): the certified end moved.
    while steps.len() < opts.max_steps {
        let ge = g(eps)?;
        steps.push(RadiusStep {
            eps,
            margin: ge,
            kind,
        });
        let certified = ge > 0.0;
        if certified {
            lo = eps;
            glo = ge;
            w_lo = 1.0;
        } else {
            hi = Some((eps, ge));
            w_hi = 1.0;
        }
        if hi.is_some() {
            if last_moved == Some(certified) {
                // The other end was kept twice in a row.
                if certified {
                    w_hi *= 0.5;
                } else {
                    w_lo *= 0.5;
                }
            }
            last_moved = Some(certified);
        }
        if let Some((h, _)) = hi {
            if h - lo <= opts.rel_tol * lo.max(f64::MIN_POSITIVE) {
                return Ok(RadiusResult {
                    radius: lo,
                    upper: Some(h),
                    steps,
                    stop: RadiusStop::Converged,
                });
            }
        } else if lo >= opts.max_eps {
            return Ok(RadiusResult {
                radius: lo,
                upper: None,
                steps,
                stop: RadiusStop::ReachedMaxEps,
            });
        }
        let (next, k) = match hi {
            None => {
                // Newton step from the newest point with the secant slope of the last two
                // points.
                let slope = (ge - prev.1) / (eps - prev.0);
                prev = (eps, ge);
                let newton = if slope < 0.0 && slope.is_finite() {
                    eps - ge / slope
                } else {
                    f64::NAN
                };
                if newton.is_finite() && newton > lo {
                    // Aim slightly past the predicted root so the bracket closes: half the
                    // tolerance above it, so that the next step (a guard of a quarter
                    // below it) leaves a bracket narrower than the tolerance.
                    // A margin flat at 0 predicts a root far out: grow by at most 8x a step
                    // so that one bad prediction cannot leave a bracket 50x too wide.
                    let aim = (newton * (1.0 + 0.5 * opts.rel_tol)).min(8.0 * lo);
                    (aim.min(opts.max_eps), "newton")
                } else {
                    ((2.0 * lo).min(opts.max_eps), "expand")
                }
            }
            Some((h, gh)) => {
                // False position on the bracket's ends with Illinois weights.
                let (a, b) = (w_lo * glo, w_hi * gh);
                let secant = if a > 0.0 && b <= 0.0 && (a - b).is_finite() {
                    lo + a * (h - lo) / (a - b)
                } else {
                    f64::NAN
                };
                // Keep the step off the bracket's ends so the bracket shrinks (relative to
                // the radius, or to the prediction while nothing above 0 is certified).
                let guard = 0.25 * opts.rel_tol * if lo > 0.0 { lo } else { secant };
                // (A margin of exactly 0 at the failing end puts the prediction on that
                // end: the clamp below steps just inside it.)
                if secant.is_finite() && secant > lo && secant <= h && lo + guard < h - guard {
                    // After a failing step, aim a guard below the predicted root, on the
                    // certified side (a root that rounding puts a hair lower still gives
                    // a certified point); after a certified one, half the tolerance above
                    // it, so that the root is bracketed from both sides.
                    let aim = if certified {
                        secant + 0.5 * opts.rel_tol * lo
                    } else {
                        secant - guard
                    };
                    (aim.clamp(lo + guard, h - guard), "secant")
                } else {
                    // No usable margin at the failing end (NaN, or not below 0): halve.
                    (0.5 * (lo + h), "bisect")
                }
            }
        };
        eps = next;
        kind = k;
    }
    Ok(RadiusResult {
        radius: lo,
        upper: hi.map(|h| h.0),
        steps,
        stop: RadiusStop::MaxSteps,
    })
}
