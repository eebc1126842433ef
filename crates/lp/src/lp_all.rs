//! "LP-all" intermediate bounds: each pre-activation's minimum and maximum by LP (19),
//! layer by layer, over the relaxation built from the LP-all bounds of earlier layers.
//!
//! The first layer's bounds are exact interval bounds (an affine map of a box). For a
//! deeper layer only the units that Algorithm 1 leaves unstable are solved: LP-all bounds
//! are never looser than Algorithm 1's (the dual is a lower bound of the same LP over a
//! looser relaxation), so a unit Algorithm 1 proves stable is stable for LP-all too, and
//! a stable unit's bound values never enter the relaxation. Each LP value is loosened by
//! the solver's tolerance (`1e-9 * max(1, |v|)`, plus the duality gap for an interior
//! point) before use, so that solver round-off can only loosen, never invalidate, a bound.

use rayon::prelude::*;

use dual::{
    algorithm1, interval_bounds, stability, BoundSource, InputDomain, LayerBounds, Stability,
};
use network::Model;

use crate::build::Lp19;
use crate::error::{LpError, Result};
use crate::solve::{solve, solve_many, LpOptions, LpSolution, Solver};

/// How much a solved bound is loosened before use.
pub const BOUND_SLACK: f64 = 1e-9;

fn slack(s: &LpSolution) -> f64 {
    BOUND_SLACK * s.value.abs().max(1.0) + s.ipm_gap.unwrap_or(0.0)
}

/// LP-all bounds on every hidden layer (see the module docs).
pub fn lp_all_bounds(
    model: &Model,
    domain: &InputDomain,
    solver: Solver,
    opts: &LpOptions,
) -> Result<LayerBounds> {
    let aff = model.affine();
    let nh = aff.len() - 1;
    let alg1 = algorithm1(model, domain)?;
    let first = interval_bounds(model, domain)?;
    let mut lower = vec![first.lower[0].clone()];
    let mut upper = vec![first.upper[0].clone()];
    for (t, a) in aff.iter().enumerate().take(nh).skip(1) {
        let truncated = Model::new(
            model.input_shape(),
            model.layers()[..=a.layer_index].to_vec(),
        )
        .map_err(dual::DualError::from)?;
        let so_far = LayerBounds {
            lower: lower.clone(),
            upper: upper.clone(),
            source: BoundSource::LpAll,
        };
        let lp = Lp19::new(&truncated, domain, &so_far)?;
        let n = a.op.n_out();
        let (mut l, mut u) = (alg1.lower[t].clone(), alg1.upper[t].clone());
        let todo: Vec<usize> = (0..n)
            .filter(|&j| stability(l[j], u[j]) == Stability::Unstable)
            .collect();
        let mut cs = vec![0.0; 2 * todo.len() * n];
        for (k, &j) in todo.iter().enumerate() {
            cs[(2 * k) * n + j] = 1.0;
            cs[(2 * k + 1) * n + j] = -1.0;
        }
        let sols: Vec<LpSolution> = if solver == Solver::Highs {
            if todo.is_empty() {
                Vec::new()
            } else {
                solve_many(&lp, &cs, solver, opts, true)?
            }
        } else {
            cs.par_chunks(n)
                .map(|c| solve(&lp, c, solver, opts))
                .collect::<Result<_, LpError>>()?
        };
        for (k, &j) in todo.iter().enumerate() {
            let (lo, hi) = (&sols[2 * k], &sols[2 * k + 1]);
            l[j] = l[j].max(lo.value - slack(lo));
            u[j] = u[j].min(-hi.value + slack(hi));
        }
        lower.push(l);
        upper.push(u);
    }
    Ok(LayerBounds {
        lower,
        upper,
        source: BoundSource::LpAll,
    })
}
