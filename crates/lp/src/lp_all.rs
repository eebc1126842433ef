//! "LP-all" intermediate bounds: each pre-activation's minimum and maximum by LP (19),
//! layer by layer, over the relaxation built from the LP-all bounds of earlier layers.
//!
//! The first layer's bounds are exact interval bounds (an affine map of a box). For a
//! deeper layer only the units that Algorithm 1 leaves unstable are solved: LP-all bounds
//! are never looser than Algorithm 1's (the dual is a lower bound of the same LP over a
//! looser relaxation), so a unit Algorithm 1 proves stable is stable for LP-all too, and
//! a stable unit's bound values never enter the relaxation. A solver's value is never
//! used as a bound: each bound is the *proven* lower end of the LP's enclosure
//! ([`crate::verified`]: the Neumaier-Shcherbina bound from the solver's multipliers, or
//! the proven dual `J`), so that solver round-off can only loosen, never invalidate, a
//! bound.

use network::DMatrix;
use rayon::prelude::*;

use dual::{
    algorithm1, interval_bounds, unit_stability, BoundSource, InputDomain, LayerBounds, Stability,
};
use network::Model;

use crate::build::Lp19;
use crate::error::{LpError, Result};
use crate::solve::{LpOptions, Solver};
use crate::verified::{solve_verified, LpEnclosure, VerifyOptions};

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
        let truncated = model.truncated(t);
        let so_far = LayerBounds {
            lower: lower.clone(),
            upper: upper.clone(),
            source: BoundSource::LpAll,
        };
        let lp = Lp19::new(&truncated, domain, &so_far)?;
        let n = a.op.n_out();
        let (mut l, mut u) = (alg1.lower[t].clone(), alg1.upper[t].clone());
        let todo: Vec<usize> = (0..n)
            .filter(|&j| unit_stability(model.relu_units(t), j, l[j], u[j]) == Stability::Unstable)
            .collect();
        let mut cs = DMatrix::zeros(2 * todo.len(), n);
        for (k, &j) in todo.iter().enumerate() {
            cs[(2 * k, j)] = 1.0;
            cs[(2 * k + 1, j)] = -1.0;
        }
        let verify = VerifyOptions::default();
        let encs: Vec<LpEnclosure> = if todo.is_empty() {
            Vec::new()
        } else if solver == Solver::Highs {
            solve_verified(&lp, &cs, solver, opts, true, &verify)?
        } else {
            (0..cs.nrows())
                .into_par_iter()
                .map(|r| {
                    solve_verified(&lp, cs.rows(r, 1), solver, opts, false, &verify)
                        .map(|mut v| v.remove(0))
                })
                .collect::<Result<_, LpError>>()?
        };
        for (k, &j) in todo.iter().enumerate() {
            let (lo, hi) = (&encs[2 * k], &encs[2 * k + 1]);
            l[j] = l[j].max(lo.proven_lower);
            u[j] = u[j].min(-hi.proven_lower);
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
