//! The exact minimum by enumeration of activation patterns: every sign pattern of the
//! units left unstable by CROWN's bounds, one LP (19) per pattern with every such unit
//! split (so the LP is the network on that pattern's region). The reference branch and
//! bound and the MILP are checked against, for small networks only (`2^k` LPs for `k`
//! unstable units).
//!
//! Not a proof: a pattern whose LP the solver reports infeasible is skipped on the
//! solver's word. The lower end is proven over the patterns that were solved.

use dual::{split_bounds, unit_stability, InputDomain, Phase, Split, SplitBounds, Stability};
use lp::{Lp19, LpOptions, Solver, VerifyOptions};
use network::Model;
use network::{as_row, AsVector, DVector};
use serde::Serialize;

use crate::error::{ExactError, Result};

/// The minimum over every activation pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternMinimum {
    /// The smallest solver optimum over the patterns (not proven).
    pub value: f64,
    /// The smallest proven lower bound over the patterns with an optimum.
    pub lower: f64,
    /// The smallest proven upper bound (the network at a pattern's optimal input).
    pub upper: f64,
    /// The input where `upper` was found.
    #[serde(serialize_with = "network::vector::serialize_vector")]
    pub point: DVector<f64>,
    /// Units unstable under CROWN's bounds (`2^unstable` patterns).
    pub unstable: usize,
    /// Patterns whose LP had an optimum.
    pub feasible: usize,
    /// Patterns the solver reported without an optimum (infeasible regions, mostly).
    pub skipped: usize,
}

/// Enumerates the activation patterns of the units CROWN leaves unstable (at most
/// `max_unstable` of them, else an error) and solves one LP per pattern.
pub fn enumerate_patterns(
    model: &Model,
    domain: &InputDomain,
    c: impl AsVector,
    solver: Solver,
    max_unstable: usize,
) -> Result<PatternMinimum> {
    let c = c.as_values();
    let root = split_bounds(model, domain, &[], None, SplitBounds::Crown)?
        .expect("no splits: never empty");
    let nh = model.affine().len() - 1;
    let mut units = Vec::new();
    for t in 0..nh {
        for (j, (l, u)) in root.lower[t].iter().zip(&root.upper[t]).enumerate() {
            if unit_stability(model.relu_units(t), j, *l, *u) == Stability::Unstable {
                units.push((t, j));
            }
        }
    }
    if units.len() > max_unstable.min(24) {
        return Err(ExactError::Options(format!(
            "{} unstable units: 2^{} patterns is more than this enumeration allows ({})",
            units.len(),
            units.len(),
            max_unstable.min(24)
        )));
    }
    let mut out = PatternMinimum {
        value: f64::INFINITY,
        lower: f64::INFINITY,
        upper: f64::INFINITY,
        point: domain.center.clone(),
        unstable: units.len(),
        feasible: 0,
        skipped: 0,
    };
    let verify = VerifyOptions {
        tolerance: 1e-7,
        ..VerifyOptions::default()
    };
    for mask in 0u64..(1u64 << units.len()) {
        let splits: Vec<Split> = units
            .iter()
            .enumerate()
            .map(|(i, &(layer, unit))| Split {
                layer,
                unit,
                phase: if mask >> i & 1 == 1 {
                    Phase::Active
                } else {
                    Phase::Inactive
                },
            })
            .collect();
        let lp = Lp19::with_splits(model, domain, &root, &splits)?;
        let enc = lp::solve_verified(
            &lp,
            as_row(c),
            solver,
            &LpOptions::default(),
            false,
            &verify,
        )?
        .pop()
        .expect("one row");
        match (&enc.solution, enc.is_optimum) {
            (Some(sol), true) => {
                out.feasible += 1;
                out.value = out.value.min(sol.value);
                out.lower = out.lower.min(enc.proven_lower);
                let x = sol.input_point(&lp);
                let v = dual::value_upper_bound(model, &x, c)?;
                if v < out.upper {
                    out.upper = v;
                    out.point = x;
                }
            }
            _ => out.skipped += 1,
        }
    }
    Ok(out)
}
