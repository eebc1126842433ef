//! The mixed-integer program of the network over the input set (Tjeng et al. 2019,
//! *Evaluating robustness of neural networks with mixed integer programming*, the
//! MIPVerify formulation), solved by HiGHS's branch and cut (feature `highs`).
//!
//! LP (19) is built with the tightest proven bounds at hand (CROWN's, or LP-all's when
//! given); each unstable unit gets a binary `a` and the rows `z <= zhat - l (1 - a)` and
//! `z <= u a` beside the relaxation's (big-M from the proven `l, u`). Stable units are
//! exact already. The result is an independent cross-check of branch and bound: its
//! optimal input is re-run through the network (`dual::value_upper_bound`, proven), but
//! HiGHS's optimum and dual bound are the solver's numbers, not proofs.

use dual::InputDomain;
use network::{AsVector, DVector, Model};
use serde::Serialize;

use crate::error::Result;

/// Settings of the MILP solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MilpOptions {
    /// HiGHS' time limit in seconds.
    pub time_limit: Option<f64>,
    /// HiGHS' relative MIP gap at which it stops (`mip_rel_gap`).
    pub rel_gap: f64,
    /// HiGHS threads (1: reproducible).
    pub threads: u32,
}

impl Default for MilpOptions {
    fn default() -> MilpOptions {
        MilpOptions {
            time_limit: Some(60.0),
            rel_gap: 1e-9,
            threads: 1,
        }
    }
}

/// HiGHS's answer to the MILP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MilpResult {
    /// HiGHS' model status (`Optimal`, `ReachedTimeLimit`, ...).
    pub status: String,
    /// HiGHS' objective value (the solver's number).
    pub value: Option<f64>,
    /// HiGHS' dual bound on the minimum (the solver's number, not proven).
    pub dual_bound: Option<f64>,
    /// HiGHS' relative gap.
    pub mip_gap: Option<f64>,
    /// The optimal input, clamped into the input set's inner box.
    #[serde(serialize_with = "network::vector::serialize_opt_vector")]
    pub point: Option<DVector<f64>>,
    /// Proven upper bound: the network at `point`.
    pub upper: Option<f64>,
    /// Binary variables (unstable units).
    pub binaries: usize,
    pub time_s: f64,
}

/// Solves the MILP of `min c . f(x)` over `domain` with big-M from `bounds` (proven
/// intermediate bounds, e.g. `dual::crown_bounds`).
///
/// Errors: [`crate::ExactError::NotCompiled`] without the `highs` feature; bad bounds,
/// overflow. A solver that stops short is a result with its status, not an error.
pub fn milp_minimum(
    model: &Model,
    domain: &InputDomain,
    bounds: &dual::LayerBounds,
    c: impl AsVector,
    opts: &MilpOptions,
) -> Result<MilpResult> {
    let c = c.as_values();
    // HiGHS keeps one task scheduler per calling thread, created with the thread count of
    // that thread's first solve; a later solve asking for another count (this MILP's
    // `threads`, after an LP with HiGHS's default) fails with "Option 'threads' is set to 1
    // but global scheduler has already been initialized" (HiGHS issue threads: jump-dev/
    // HiGHS.jl#130). A thread of its own gives the MILP a scheduler of its own.
    std::thread::scope(|s| {
        s.spawn(|| imp::milp_minimum(model, domain, bounds, c, opts))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Whether this build can solve the MILP (compiled with the `highs` feature).
pub const MILP_COMPILED: bool = cfg!(feature = "highs");

#[cfg(not(feature = "highs"))]
mod imp {
    use super::*;
    pub fn milp_minimum(
        _: &Model,
        _: &InputDomain,
        _: &dual::LayerBounds,
        _: &[f64],
        _: &MilpOptions,
    ) -> Result<MilpResult> {
        Err(crate::ExactError::NotCompiled(
            "the MILP needs HiGHS: this build was not compiled with the `highs` feature \
             (cargo build --release --features highs; needs cmake and libclang)"
                .into(),
        ))
    }
}

#[cfg(feature = "highs")]
mod imp {
    use super::*;
    use crate::error::ExactError;
    use dual::{unit_stability, Stability};
    use highs::{HighsModelStatus, RowProblem, Sense};
    use lp::{Lp19, ZVar};
    use std::time::Instant;

    pub fn milp_minimum(
        model: &Model,
        domain: &InputDomain,
        bounds: &dual::LayerBounds,
        c: &[f64],
        opts: &MilpOptions,
    ) -> Result<MilpResult> {
        let t0 = Instant::now();
        if c.len() != model.output_len() || c.iter().any(|v| !v.is_finite()) {
            return Err(ExactError::Options(format!(
                "the objective needs {} finite weights, got {} values",
                model.output_len(),
                c.len()
            )));
        }
        let lp = Lp19::new(model, domain, bounds)?;
        let mut pb = RowProblem::default();
        let mut obj = vec![0.0; lp.var_lo.len()];
        for (i, v) in lp.objective_coefficients(c) {
            obj[i] += v;
        }
        let cols: Vec<highs::Col> = lp
            .var_lo
            .iter()
            .zip(&lp.var_hi)
            .zip(&obj)
            .map(|((&lo, &hi), &o)| pb.add_column(o, lo..=hi))
            .collect();
        for r in 0..lp.row_lo.len() {
            let (s, e) = (lp.row_start[r], lp.row_start[r + 1]);
            pb.add_row(
                lp.row_lo[r]..=lp.row_hi[r],
                (s..e).map(|k| (cols[lp.row_idx[k]], lp.row_val[k])),
            );
        }
        let mut binaries = 0;
        for (t, zs) in lp.z.iter().enumerate() {
            let (l, u) = (&lp.bounds.lower[t], &lp.bounds.upper[t]);
            for (j, zv) in zs.iter().enumerate() {
                let (ZVar::Var(z), Some(zh)) = (*zv, lp.zhat[t][j]) else {
                    continue;
                };
                // Linear units (graph models) have z = zhat and need no binary.
                if unit_stability(model.relu_units(t), j, l[j], u[j]) != Stability::Unstable {
                    continue;
                }
                binaries += 1;
                let a = pb.add_integer_column(0.0, 0.0..=1.0);
                // z - zhat - l a <= -l   (z <= zhat - l (1 - a))
                pb.add_row(
                    f64::NEG_INFINITY..=-l[j],
                    [(cols[z], 1.0), (cols[zh], -1.0), (a, -l[j])],
                );
                // z - u a <= 0
                pb.add_row(f64::NEG_INFINITY..=0.0, [(cols[z], 1.0), (a, -u[j])]);
            }
        }
        let mut m = pb.optimise(Sense::Minimise);
        m.make_quiet();
        m.set_option("mip_rel_gap", opts.rel_gap);
        m.set_option("threads", opts.threads.max(1) as i32);
        if let Some(t) = opts.time_limit {
            m.set_option("time_limit", t);
        }
        let solved = m
            .try_solve()
            .map_err(|e| ExactError::Milp(format!("HiGHS could not run: {e:?}")))?;
        let status = solved.status();
        let has_point = matches!(
            status,
            HighsModelStatus::Optimal
                | HighsModelStatus::ReachedTimeLimit
                | HighsModelStatus::ReachedIterationLimit
        ) && solved.primal_solution_status()
            == highs::HighsSolutionStatus::Feasible;
        let (value, point, upper) = if has_point {
            let sol = solved.get_solution();
            let vals = sol.columns();
            let x: Vec<f64> = lp.z1.iter().map(|&v| vals[v]).collect();
            let x = crate::pgd::into_inner_box(domain, &x);
            let up = dual::value_upper_bound(model, &x, c)?;
            (Some(solved.objective_value()), Some(x), Some(up))
        } else {
            (None, None, None)
        };
        let dual_bound = solved.double_info_value(c"mip_dual_bound").ok();
        let mip_gap = solved.double_info_value(c"mip_gap").ok();
        Ok(MilpResult {
            status: format!("{status:?}"),
            value,
            dual_bound,
            mip_gap,
            point,
            upper,
            binaries,
            time_s: t0.elapsed().as_secs_f64(),
        })
    }
}
