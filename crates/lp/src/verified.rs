//! Verified LP values: LP (19) reported as an enclosure, never as a trusted float.
//!
//! A solver's status proves nothing (clarabel has reported `Solved` for a value above the
//! true optimum; microlp has reported `Infeasible` for a feasible LP). What is proven:
//!
//! * **a lower bound** (Neumaier & Shcherbina, *Safe bounds in linear and mixed-integer
//!   programming*, Math. Prog. 99, 2004; Jansson 2004): every variable of LP (19) has
//!   finite proven bounds `lo <= x <= hi` ([`Lp19::proof_lo`]), so for *any* row
//!   multipliers `y` (sign-corrected: `y <= 0` on `<=` rows, `y >= 0` on `>=` rows)
//!
//!   ```text
//!   min c^T x  >=  y^T rhs + sum_j min(r_j lo_j, r_j hi_j),   r = c - A^T y,
//!   ```
//!
//!   evaluated here with every rounding bounded (`dual::rounding`). With the solver's
//!   own multipliers this is as tight as the solver was accurate. The Wong-Kolter `J`
//!   (proven, paper alpha, same intermediate bounds) is another lower bound on the same
//!   LP, so the enclosure's lower end is the larger of the two;
//! * **an upper bound on the exact minimum** over the input set: the network's value at
//!   the LP's input point, evaluated with proven interval arithmetic.
//!
//! The solver's value sits between the proven lower bound and the optimum only if the
//! solver was right; it is called *the LP optimum* only when it is within
//! [`VerifyOptions::tolerance`] of the proven lower bound and its primal point violates
//! no row by more than that (relative). Otherwise the other solvers are tried, and every
//! attempt is reported.
//!
//! The proven lower bound is for LP (19) with the box `l <= zhat <= u` added, which has
//! the same optimum whenever `l, u` come from Algorithm 1, interval arithmetic or LP-all
//! (the relaxation implies them).

use std::time::{Duration, Instant};

use dual::rounding::{error_bound, mul_down, RoundedSum};
use dual::{dual_objective, value_upper_bound, AlphaRule};

use crate::build::Lp19;
use crate::error::{LpError, Result};
use crate::solve::{solve, solve_rows, LpOptions, LpSolution, Solver};
use network::{AsVector, DMatrixView};

/// When an LP value counts as the optimum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifyOptions {
    /// Relative tolerance: `value - proven_lower <= tolerance * max(1, |value|)` and
    /// the primal point's worst scaled row violation `<= tolerance`.
    pub tolerance: f64,
    /// Try the other compiled solvers when the first does not give an optimum.
    pub fallback: bool,
    /// Wall-clock limit (seconds) of each fallback attempt when the caller set none: a
    /// solver tried because another failed must not hang the run (microlp has been seen
    /// to cycle on LPs with coefficients near 1e155).
    pub fallback_time_limit: Option<f64>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            tolerance: 1e-6,
            fallback: true,
            fallback_time_limit: Some(120.0),
        }
    }
}

/// One solver's try at one objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub solver: Solver,
    /// The solver's raw status, or the error it stopped with.
    pub status: String,
    /// The solver's value (not proven).
    pub value: Option<f64>,
    /// The proven lower bound from this solver's multipliers (None: no multipliers, or
    /// no value).
    pub proven_lower: Option<f64>,
    /// Worst scaled row/bound violation of the primal point.
    pub max_violation: Option<f64>,
    pub time: Duration,
}

/// LP (19) for one objective, as an enclosure (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct LpEnclosure {
    /// Proven lower bound on the LP optimum, hence on the exact minimum over the input set.
    pub proven_lower: f64,
    /// What proved it: `"dual of <solver> (Neumaier-Shcherbina)"` or
    /// `"Wong-Kolter J (paper alpha)"`.
    pub proven_lower_source: String,
    /// The accepted solver solution (the optimum when `is_optimum`, else the last one
    /// that gave a value).
    pub solution: Option<LpSolution>,
    /// The solution's worst scaled violation.
    pub max_violation: Option<f64>,
    /// Proven upper bound on the exact minimum: the network at the LP's input point.
    pub upper_at_input: Option<f64>,
    /// True when the solver's value is within the tolerance of the proven lower bound.
    pub is_optimum: bool,
    /// The tolerance used.
    pub tolerance: f64,
    /// Every solver tried, in order.
    pub attempts: Vec<Attempt>,
}

/// The options of a fallback solve: the caller's, with `verify.fallback_time_limit` when
/// the caller set no time limit (a fallback solver must not hang where the first one
/// failed: microlp was seen to cycle on 1e155-scaled LPs).
pub fn fallback_options(opts: &LpOptions, verify: &VerifyOptions) -> LpOptions {
    LpOptions {
        time_limit: opts.time_limit.or(verify.fallback_time_limit),
        ..*opts
    }
}

impl LpEnclosure {
    /// The solver's value, if any solver gave one.
    pub fn value(&self) -> Option<f64> {
        self.solution.as_ref().map(|s| s.value)
    }

    /// The accepted solution's raw status (else the last attempt's).
    pub fn status(&self) -> String {
        match (&self.solution, self.attempts.last()) {
            (Some(s), _) => s.status.clone(),
            (None, Some(a)) => a.status.clone(),
            (None, None) => "not solved".into(),
        }
    }

    /// The solver of the accepted solution (else of the last attempt).
    pub fn solver_name(&self) -> &'static str {
        match (&self.solution, self.attempts.last()) {
            (Some(s), _) => s.solver.name(),
            (None, Some(a)) => a.solver.name(),
            (None, None) => "none",
        }
    }

    /// One word for reports: `"optimum"` (within tolerance), `"lower bound only"` (a
    /// value exists but is not confirmed), `"no solver value"`.
    pub fn verdict(&self) -> &'static str {
        match (&self.solution, self.is_optimum) {
            (Some(_), true) => "optimum",
            (Some(_), false) => "lower bound only",
            (None, _) => "no solver value",
        }
    }
}

/// The proven lower bound on `min c^T zhat_k` over LP (19) (with its proof box) from any
/// row multipliers `y` (one per row, shadow-price sign convention); `None` if it is not
/// finite. See the module docs.
pub fn proven_lower_bound(lp: &Lp19<'_>, c: impl AsVector, y: impl AsVector) -> Option<f64> {
    let y = y.as_values();
    let nv = lp.var_lo.len();
    if y.len() != lp.row_lo.len() {
        return None;
    }
    let mut obj = vec![0.0; nv];
    for (i, v) in lp.objective_coefficients(c) {
        obj[i] += v;
    }
    let mut aty = vec![0.0; nv];
    let mut aty_abs = vec![0.0; nv];
    let mut count = vec![0usize; nv];
    let mut total = RoundedSum::new();
    for (r, &y0) in y.iter().enumerate() {
        let (lo, hi) = (lp.row_lo[r], lp.row_hi[r]);
        let mut yr = if y0.is_finite() { y0 } else { 0.0 };
        // Sign-correct: a `<=` row needs y <= 0, a `>=` row y >= 0.
        if lo != hi {
            if !lo.is_finite() {
                yr = yr.min(0.0);
            }
            if !hi.is_finite() {
                yr = yr.max(0.0);
            }
        }
        if yr == 0.0 {
            continue;
        }
        total.add_product(yr, lp.row_rhs(r, yr));
        for k in lp.row_start[r]..lp.row_start[r + 1] {
            let j = lp.row_idx[k];
            let t = lp.row_val[k] * yr;
            aty[j] += t;
            aty_abs[j] += t.abs();
            count[j] += 1;
        }
    }
    for j in 0..nv {
        let r = obj[j] - aty[j];
        let e = error_bound(count[j] + 2, obj[j].abs() + aty_abs[j]);
        let (r_lo, r_hi) = ((r - e).next_down(), (r + e).next_up());
        let (x_lo, x_hi) = (lp.proof_lo[j], lp.proof_hi[j]);
        if r_lo == 0.0 && r_hi == 0.0 {
            continue;
        }
        let worst = [
            mul_down(r_lo, x_lo),
            mul_down(r_lo, x_hi),
            mul_down(r_hi, x_lo),
            mul_down(r_hi, x_hi),
        ]
        .into_iter()
        .fold(
            f64::INFINITY,
            |m, v| if v.is_nan() { f64::NAN } else { m.min(v) },
        );
        total.add_exact(worst);
    }
    total.lower()
}

/// Solves LP (19) for every objective row of `cs` (`rows x n_out`, one objective per row) and
/// returns one verified enclosure per row. `solver` is tried first (warm re-solves for
/// HiGHS when `warm`); with `verify.fallback`, a row it does not settle is retried with
/// the other compiled solvers. Solver failures are attempts, not errors; errors are
/// only a bad objective or a bound that cannot be computed (overflow).
pub fn solve_verified<'c>(
    lp: &Lp19<'_>,
    cs: impl Into<DMatrixView<'c, f64>>,
    solver: Solver,
    opts: &LpOptions,
    warm: bool,
    verify: &VerifyOptions,
) -> Result<Vec<LpEnclosure>> {
    let view = cs.into();
    let n_out = lp.model.output_len();
    let rows = dual::objective_rows(view, n_out)?;
    let cs = &rows[..];
    let j = dual_objective(lp.model, &lp.domain, &lp.bounds, view, &AlphaRule::Paper)?;
    // The first solver over every row (HiGHS keeps its basis between rows).
    let t = Instant::now();
    let first: Vec<Result<LpSolution>> = match solve_rows(lp, cs, solver, opts, warm) {
        Ok(v) => v.into_iter().map(Ok).collect(),
        // One failure stops a warm HiGHS sequence (or a batch): solve each row alone.
        Err(_) => cs
            .chunks(n_out)
            .map(|c| solve(lp, c, solver, opts))
            .collect(),
    };
    let first_time = t.elapsed() / (cs.len() / n_out) as u32;
    let mut out = Vec::with_capacity(cs.len() / n_out);
    for (k, (c, res)) in cs.chunks(n_out).zip(first).enumerate() {
        let mut enc = LpEnclosure {
            proven_lower: j.values[k],
            proven_lower_source: "Wong-Kolter J (paper alpha)".into(),
            solution: None,
            max_violation: None,
            upper_at_input: None,
            is_optimum: false,
            tolerance: verify.tolerance,
            attempts: Vec::new(),
        };
        let mut sols = Vec::new();
        record(lp, c, &mut enc, &mut sols, solver, res, first_time)?;
        settle(&mut enc, &sols, verify);
        if verify.fallback {
            for other in Solver::ALL {
                if enc.is_optimum {
                    break;
                }
                if other == solver || !other.available() {
                    continue;
                }
                let t = Instant::now();
                let res = solve(lp, c, other, &fallback_options(opts, verify));
                record(lp, c, &mut enc, &mut sols, other, res, t.elapsed())?;
                settle(&mut enc, &sols, verify);
            }
        }
        out.push(enc);
    }
    Ok(out)
}

impl LpEnclosure {
    /// Raises the proven lower bound with one proven elsewhere for the same LP (e.g. by
    /// another solver's multipliers) and re-checks the solver's value against it.
    pub fn tighten(&mut self, proven_lower: f64, source: &str) {
        if proven_lower > self.proven_lower {
            self.proven_lower = proven_lower;
            self.proven_lower_source = source.to_string();
        }
        if let Some(sol) = &self.solution {
            self.is_optimum = within(
                sol.value,
                self.max_violation,
                self.proven_lower,
                self.tolerance,
            );
        }
    }
}

/// Whether a solver's value is within the tolerance of the proven lower bound, from
/// either side, with a primal point that violates nothing beyond it.
fn within(value: f64, violation: Option<f64>, proven_lower: f64, tol: f64) -> bool {
    let scale = value.abs().max(1.0);
    value.is_finite()
        && violation.is_some_and(|v| v <= tol)
        && (value - proven_lower) <= tol * scale
        && (proven_lower - value) <= tol * scale
}

/// Picks the accepted solution: the first attempt (in order) whose value the best proven
/// lower bound confirms, else the last attempt with a value.
fn settle(enc: &mut LpEnclosure, sols: &[(LpSolution, f64)], verify: &VerifyOptions) {
    let pick = sols
        .iter()
        .find(|(s, v)| within(s.value, Some(*v), enc.proven_lower, verify.tolerance))
        .or(sols.last());
    if let Some((s, v)) = pick {
        enc.is_optimum = within(s.value, Some(*v), enc.proven_lower, verify.tolerance);
        enc.max_violation = Some(*v);
        enc.solution = Some(s.clone());
    }
}

/// Adds one attempt to an enclosure and raises its proven ends.
fn record(
    lp: &Lp19<'_>,
    c: &[f64],
    enc: &mut LpEnclosure,
    sols: &mut Vec<(LpSolution, f64)>,
    solver: Solver,
    res: Result<LpSolution>,
    time: Duration,
) -> Result<()> {
    match res {
        Err(e) => {
            let status = match &e {
                LpError::NotOptimal { status, detail, .. } => match detail {
                    Some(d) => format!("{status} ({d})"),
                    None => status.clone(),
                },
                other => other.to_string(),
            };
            enc.attempts.push(Attempt {
                solver,
                status,
                value: None,
                proven_lower: None,
                max_violation: None,
                time,
            });
        }
        Ok(sol) => {
            let proven = sol
                .row_duals
                .as_ref()
                .and_then(|y| proven_lower_bound(lp, c, y));
            let viol = lp.max_violation(&sol.values);
            if let Some(p) = proven {
                if p > enc.proven_lower {
                    enc.proven_lower = p;
                    enc.proven_lower_source =
                        format!("dual of {} (Neumaier-Shcherbina)", solver.name());
                }
            }
            let x = sol.input_point(lp);
            let upper = value_upper_bound(lp.model, &x, c)?;
            enc.upper_at_input = Some(enc.upper_at_input.map_or(upper, |u: f64| u.min(upper)));
            enc.attempts.push(Attempt {
                solver,
                status: sol.status.clone(),
                value: Some(sol.value),
                proven_lower: proven,
                max_violation: Some(viol),
                time,
            });
            sols.push((sol, viol));
        }
    }
    Ok(())
}
