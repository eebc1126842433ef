//! ReLU splits for branch and bound: hidden units fixed to one side of their ReLU, and the
//! proven intermediate bounds of the sub-domain they define.
//!
//! A split `(layer, unit, Active)` restricts the input set to the points where
//! `zhat_{layer+2, unit} >= 0` (`Inactive`: `<= 0`); a set of splits is the intersection.
//! Bounds over that sub-domain are computed layer by layer as over the whole input set
//! (interval or CROWN), and after each layer the split units' bounds are clamped
//! (`l := max(l, 0)` for Active, `u := min(u, 0)` for Inactive) and intersected with a
//! parent's bounds (the sub-domain lies inside the parent's, so the parent's proven
//! bounds hold on it). A clamped `l > u` proves the sub-domain empty. The clamped units
//! are then stable, so every method's J and LP (19) over these bounds is a bound over the
//! sub-domain: sound, though the constraint `zhat >= 0` itself enters only LP (19) with
//! splits (`lp::Lp19::with_splits`), not J (beta-CROWN's multipliers would add it).

use network::DVector;
use network::Model;

use crate::bounds::{interval_step, relu_box, stability, BoundSource, LayerBounds, Stability};
use crate::domain::InputDomain;
use crate::error::{DualError, Result};
use crate::methods::{crown_slope_rows, unit_rows, units_per_batch};
use crate::objective::objective_over;

/// The side of a ReLU a split keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `zhat <= 0`: the unit outputs 0.
    Inactive,
    /// `zhat >= 0`: the unit passes its input.
    Active,
}

/// One split: unit `unit` of hidden layer `layer` (the output of affine layer `layer`,
/// `zhat_{layer+2}` in the paper's numbering) on side `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Split {
    pub layer: usize,
    pub unit: usize,
    pub phase: Phase,
}

/// How intermediate bounds of a sub-domain are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitBounds {
    /// Interval arithmetic (eq. 42), cheap and loose.
    Interval,
    /// CROWN, layer by layer (the bounds of [`crate::crown_bounds`]).
    Crown,
}

/// Checks that every split names a hidden unit of `model`.
pub fn check_splits(model: &Model, splits: &[Split]) -> Result<()> {
    let aff = model.affine();
    let nh = aff.len() - 1;
    for s in splits {
        if s.layer >= nh || s.unit >= aff[s.layer].op.n_out() {
            return Err(DualError::Bounds {
                layer: s.layer,
                msg: format!(
                    "split of unit {} of hidden layer {}, but the model has {nh} hidden layer(s){}",
                    s.unit,
                    s.layer,
                    if s.layer < nh {
                        format!(" and this one has {} units", aff[s.layer].op.n_out())
                    } else {
                        String::new()
                    }
                ),
            });
        }
    }
    Ok(())
}

/// Clamps the bounds `l, u` of layer `layer` by the splits on it and intersects them with
/// `parent`'s (when given). Returns false when some unit's interval becomes empty: the
/// sub-domain has no point.
fn clamp_layer(
    layer: usize,
    l: &mut [f64],
    u: &mut [f64],
    splits: &[Split],
    parent: Option<&LayerBounds>,
) -> bool {
    if let Some(p) = parent.filter(|p| layer < p.lower.len()) {
        for j in 0..l.len() {
            l[j] = l[j].max(p.lower[layer][j]);
            u[j] = u[j].min(p.upper[layer][j]);
        }
    }
    for s in splits.iter().filter(|s| s.layer == layer) {
        match s.phase {
            Phase::Active => l[s.unit] = l[s.unit].max(0.0),
            Phase::Inactive => u[s.unit] = u[s.unit].min(0.0),
        }
    }
    l.iter().zip(u.iter()).all(|(a, b)| a <= b)
}

/// Proven bounds on every pre-activation (the logits last) over the sub-domain of
/// `domain` that `splits` define, or `None` when they prove it empty. `parent`: bounds
/// proven over a set that contains the sub-domain (e.g. the parent node's), intersected
/// layer by layer; it may cover the hidden layers only.
///
/// Errors: a split outside the model, bounds of the wrong shape, overflow.
pub fn split_bounds(
    model: &Model,
    domain: &InputDomain,
    splits: &[Split],
    parent: Option<&LayerBounds>,
    how: SplitBounds,
) -> Result<Option<LayerBounds>> {
    model.check_input(&domain.x)?;
    check_splits(model, splits)?;
    if let Some(p) = parent {
        p.validate(model)?;
    }
    let aff = model.affine();
    let (mut l0, mut u0) =
        interval_step(&aff[0], domain.center.as_slice(), domain.radius.as_slice())?;
    if !clamp_layer(0, &mut l0, &mut u0, splits, parent) {
        return Ok(None);
    }
    let mut lower = vec![DVector::from_vec(l0)];
    let mut upper = vec![DVector::from_vec(u0)];
    for k in 1..aff.len() {
        let (mut l, mut u) = match how {
            SplitBounds::Interval => {
                let (c, r) = relu_box(
                    lower[k - 1].as_slice(),
                    upper[k - 1].as_slice(),
                    model.relu_units(k - 1),
                );
                interval_step(&aff[k], &c, &r)?
            }
            SplitBounds::Crown => crown_layer(aff, model.relu_all(), domain, &lower, &upper, k)?,
        };
        if !clamp_layer(k, &mut l, &mut u, splits, parent) {
            return Ok(None);
        }
        lower.push(DVector::from_vec(l));
        upper.push(DVector::from_vec(u));
    }
    Ok(Some(LayerBounds {
        lower,
        upper,
        source: match how {
            SplitBounds::Interval => BoundSource::Interval,
            SplitBounds::Crown => BoundSource::Crown,
        },
    }))
}

/// Proven bounds over the sub-domain of a branch-and-bound child: the sub-domain over
/// which `parent` was proven (every split of the parent node already clamped in it, as
/// [`split_bounds`] or this function return them) intersected with `split`'s side.
///
/// The same bounds as [`split_bounds`] with `SplitBounds::Crown`, all the parent's
/// splits and `split`, and `parent`, on every unit that can change a bound of the
/// child: the layers up to `split.layer` keep the parent's bounds (their CROWN bounds
/// depend only on earlier layers, which the split does not change), with `split`'s unit
/// clamped; in each later hidden layer only the units the current bounds leave unstable
/// get new CROWN bounds (intersected with the parent's). A stable unit's bounds enter no
/// J and no relaxation (its ReLU is the identity or zero), so they keep the parent's,
/// which hold on the child; so do the logits'. Cost: rows `+-e_j` for the unstable units
/// after the split's layer only, against every unit of every layer for [`split_bounds`].
///
/// Returns `None` when a clamped or intersected interval is empty (the child has no
/// point). Errors: a split outside the model, `parent` of the wrong shape, overflow.
pub fn child_bounds(
    model: &Model,
    domain: &InputDomain,
    parent: &LayerBounds,
    split: Split,
) -> Result<Option<LayerBounds>> {
    model.check_input(&domain.x)?;
    check_splits(model, &[split])?;
    parent.validate(model)?;
    let aff = model.affine();
    let relu = model.relu_all();
    let nh = aff.len() - 1;
    let mut b = parent.clone();
    let (l, u) = (
        &mut b.lower[split.layer][split.unit],
        &mut b.upper[split.layer][split.unit],
    );
    match split.phase {
        Phase::Active => *l = l.max(0.0),
        Phase::Inactive => *u = u.min(0.0),
    }
    if !nonempty(*l, *u) {
        return Ok(None);
    }
    // The layers after the split's (those up to it keep the parent's bounds).
    for k in (split.layer..nh).skip(1) {
        let units: Vec<usize> = (0..relu[k])
            .filter(|&j| stability(b.lower[k][j], b.upper[k][j]) == Stability::Unstable)
            .collect();
        if units.is_empty() {
            continue;
        }
        let (nl, nu) = crown_units(aff, relu, domain, &b.lower[..k], &b.upper[..k], k, &units)?;
        for (i, &j) in units.iter().enumerate() {
            let (l, u) = (&mut b.lower[k][j], &mut b.upper[k][j]);
            *l = l.max(nl[i]);
            *u = u.min(nu[i]);
            if !nonempty(*l, *u) {
                return Ok(None);
            }
        }
    }
    Ok(Some(b))
}

/// `[l, u]` holds a number (false for `l > u` or a NaN).
fn nonempty(l: f64, u: f64) -> bool {
    l <= u
}

/// CROWN's proven bounds on the outputs of affine layer `k` from the bounds of the layers
/// before it: J of the rows `+-e_j` through `aff[..=k]` with CROWN's slopes.
pub(crate) fn crown_layer(
    aff: &[network::Affine],
    relu: &[usize],
    domain: &InputDomain,
    lower: &[DVector<f64>],
    upper: &[DVector<f64>],
    k: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let all: Vec<usize> = (0..aff[k].op.n_out()).collect();
    crown_units(aff, relu, domain, lower, upper, k, &all)
}

/// [`crown_layer`] for the units `units` of layer `k` only: their lower and upper
/// bounds, in the order of `units`.
fn crown_units(
    aff: &[network::Affine],
    relu: &[usize],
    domain: &InputDomain,
    lower: &[DVector<f64>],
    upper: &[DVector<f64>],
    k: usize,
    units: &[usize],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let alpha = crown_slope_rows(lower, upper);
    let n = aff[k].op.n_out();
    // About 2^22 objective entries per batch.
    let chunk = units_per_batch(n, 22);
    let mut l = Vec::with_capacity(units.len());
    let mut u = Vec::with_capacity(units.len());
    for js in units.chunks(chunk) {
        let c = unit_rows(js.iter().copied(), n);
        let (vals, _) = objective_over(
            &aff[..=k],
            &relu[..k],
            domain.center.as_slice(),
            domain.radius.as_slice(),
            (lower, upper),
            &c,
            Some(&alpha),
        )?;
        for i in 0..js.len() {
            l.push(vals[2 * i]);
            u.push(-vals[2 * i + 1]);
        }
    }
    Ok((l, u))
}
