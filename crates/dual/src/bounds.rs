//! Bounds on every pre-activation `zhat_2, .., zhat_k`, where they came from, and the
//! interval ("layerwise", eq. 42) bounds.

use network::Model;
use network::{AsVector, DVector};

use crate::domain::InputDomain;
use crate::error::{DualError, Result};
use crate::rounding::{error_bound, gamma};

/// How a set of pre-activation bounds was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundSource {
    /// Interval arithmetic, layer by layer (eq. 42).
    Interval,
    /// The dual network with the paper's alpha, layer by layer (Algorithm 1).
    Algorithm1,
    /// CROWN (Zhang et al. 2018): each layer by the dual bound of rows `+-e_j` with
    /// CROWN's lower slopes on the earlier layers' bounds.
    Crown,
    /// alpha-CROWN (Xu et al. 2021): CROWN's, then the rows `+-e_j` of every unstable
    /// unit with lower slopes optimised per row (`dual::alpha_bounds`).
    AlphaCrown,
    /// Each bound the optimum of an LP over the relaxation built from earlier LP bounds.
    LpAll,
    /// Given by the caller.
    Given,
}

impl BoundSource {
    /// Short name used in results files and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            BoundSource::Interval => "interval",
            BoundSource::Algorithm1 => "algorithm1",
            BoundSource::Crown => "crown",
            BoundSource::AlphaCrown => "alpha-crown",
            BoundSource::LpAll => "lp-all",
            BoundSource::Given => "given",
        }
    }
}

/// Status of one hidden unit given bounds `l <= zhat <= u`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    /// `u <= 0`: the ReLU is always off (the paper's I-).
    Off,
    /// `l >= 0`: the ReLU is always on (I+).
    On,
    /// `l < 0 < u` (I).
    Unstable,
    /// Not a ReLU: a linear unit of a graph model (`z = zhat`, see `network::graph`),
    /// whatever its bounds; never relaxed, never split.
    Linear,
}

/// Classifies a unit (NaN bounds are rejected before this is called).
pub fn stability(l: f64, u: f64) -> Stability {
    if u <= 0.0 {
        Stability::Off
    } else if l >= 0.0 {
        Stability::On
    } else {
        Stability::Unstable
    }
}

/// The status of unit `j` of a hidden layer whose first `relu_units` units are ReLUs
/// ([`network::Model::relu_units`]): [`Stability::Linear`] beyond them, else by its
/// bounds.
pub fn unit_stability(relu_units: usize, j: usize, l: f64, u: f64) -> Stability {
    if j >= relu_units {
        Stability::Linear
    } else {
        stability(l, u)
    }
}

/// Counts of the index sets of one hidden layer (ReLU units), and its linear units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexCounts {
    pub off: usize,
    pub on: usize,
    pub unstable: usize,
    /// Linear units (graph models only).
    pub linear: usize,
}

/// Lower and upper bounds on `zhat_{i+2}` for every affine layer `i` (the last entry
/// bounds the logits), with their source. Entry `i` has `n_out` of affine layer `i`
/// entries.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBounds {
    pub lower: Vec<DVector<f64>>,
    pub upper: Vec<DVector<f64>>,
    pub source: BoundSource,
}

impl LayerBounds {
    /// Checks that the bounds fit the model (one entry per affine layer, or per hidden
    /// layer only; the right sizes) and are ordered, finite numbers.
    pub fn validate(&self, model: &Model) -> Result<()> {
        let aff = model.affine();
        let nh = aff.len() - 1;
        if self.lower.len() != self.upper.len()
            || self.lower.len() < nh
            || self.lower.len() > aff.len()
        {
            return Err(DualError::Bounds {
                layer: 0,
                msg: format!(
                    "{} lower and {} upper vectors for a model with {nh} hidden layers",
                    self.lower.len(),
                    self.upper.len()
                ),
            });
        }
        for (i, (l, u)) in self.lower.iter().zip(&self.upper).enumerate() {
            let n = aff[i].op.n_out();
            if l.len() != n || u.len() != n {
                return Err(DualError::Bounds {
                    layer: i,
                    msg: format!(
                        "lengths {} and {} but the layer has {n} units",
                        l.len(),
                        u.len()
                    ),
                });
            }
            for (j, (&a, &b)) in l.iter().zip(u).enumerate() {
                if !a.is_finite() || !b.is_finite() || a > b {
                    return Err(DualError::Bounds {
                        layer: i,
                        msg: format!(
                            "unit {j} has l = {a} and u = {b}; bounds must be finite with l <= u"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts of I-, I+ and I (and linear units) for each hidden layer of `model`.
    pub fn counts(&self, model: &Model) -> Vec<IndexCounts> {
        (0..model.hidden_layers().min(self.lower.len()))
            .map(|i| {
                let mut c = IndexCounts::default();
                let r = model.relu_units(i);
                for (j, (&l, &u)) in self.lower[i].iter().zip(&self.upper[i]).enumerate() {
                    match unit_stability(r, j, l, u) {
                        Stability::Off => c.off += 1,
                        Stability::On => c.on += 1,
                        Stability::Unstable => c.unstable += 1,
                        Stability::Linear => c.linear += 1,
                    }
                }
                c
            })
            .collect()
    }
}

/// Interval bounds (eq. 42): push the box through each layer as centre and radius,
/// `W c + b +- |W| r`, clamping at every ReLU.
///
/// Proven: each bound is widened by the rounding error of its dot products
/// (`gamma_n |W| (|c| + r) + ...`, see [`crate::rounding`]) and rounded outwards, so it
/// holds in exact arithmetic for the stored weights. An overflow is
/// [`DualError::Overflow`] naming the layer.
pub fn interval_bounds(model: &Model, domain: &InputDomain) -> Result<LayerBounds> {
    model.check_input(&domain.x)?;
    let aff = model.affine();
    let mut c = domain.center.as_slice().to_vec();
    let mut r = domain.radius.as_slice().to_vec();
    let mut lower = Vec::with_capacity(aff.len());
    let mut upper = Vec::with_capacity(aff.len());
    for (i, a) in aff.iter().enumerate() {
        let (l, u) = interval_step(a, &c, &r)?;
        if i + 1 < aff.len() {
            (c, r) = relu_box(&l, &u, model.relu_units(i));
        }
        lower.push(DVector::from_vec(l));
        upper.push(DVector::from_vec(u));
    }
    Ok(LayerBounds {
        lower,
        upper,
        source: BoundSource::Interval,
    })
}

/// The box `c +- r` after the activation of a hidden layer applied to `[l, u]` (its
/// first `relu_units` units ReLUs, the rest linear), rounded so that it contains
/// `[max(l, 0), max(u, 0)]` (linear units: `[l, u]`) exactly.
pub(crate) fn relu_box(l: &[f64], u: &[f64], relu_units: usize) -> (Vec<f64>, Vec<f64>) {
    center_radius(l.iter().zip(u).enumerate().map(|(j, (&a, &b))| {
        if j < relu_units {
            (a.max(0.0), b.max(0.0))
        } else {
            (a, b)
        }
    }))
}

/// Centre and radius of boxes `[a, b]`, the radius rounded up so that `c +- r`
/// contains `[a, b]` in exact arithmetic.
fn center_radius(ends: impl Iterator<Item = (f64, f64)>) -> (Vec<f64>, Vec<f64>) {
    ends.map(|(a, b)| {
        let mid = 0.5 * (a + b);
        (mid, (b - mid).max(mid - a).next_up().max(0.0))
    })
    .unzip()
}

/// Proven interval bounds of one affine layer `W x + b` over the box `c +- r`.
pub(crate) fn interval_step(
    a: &network::Affine,
    c: &[f64],
    r: &[f64],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = a.op.n_out();
    let abs = &a.abs_op;
    let mut cn = vec![0.0; n];
    let mut rn = vec![0.0; n];
    let mut mag = vec![0.0; n];
    a.op.apply(c, 1, &mut cn);
    abs.apply(r, 1, &mut rn);
    let c_abs_plus_r: Vec<f64> = c.iter().zip(r).map(|(c, r)| c.abs() + r).collect();
    abs.apply(&c_abs_plus_r, 1, &mut mag);
    let len = a.op.dot_len() + 3;
    let mut l = Vec::with_capacity(n);
    let mut u = Vec::with_capacity(n);
    for j in 0..n {
        // |W| (|c| + r) is itself rounded: inflate it before using it as a magnitude.
        let m = mag[j] * (1.0 + gamma(len)) + a.bias[j].abs() + rn[j];
        let err = error_bound(len, m);
        let mid = cn[j] + a.bias[j];
        l.push((mid - rn[j] - err).next_down());
        u.push((mid + rn[j] + err).next_up());
    }
    if let Some(j) = (0..n).find(|&j| !l[j].is_finite() || !u[j].is_finite()) {
        return Err(DualError::Overflow {
            layer: a.layer_index,
            what: "interval bounds",
            detail: format!("unit {j} of {n} has bounds [{}, {}]", l[j], u[j]),
        });
    }
    Ok((l, u))
}

/// Proven bounds of one affine layer `W z + b` over the box `lo <= z <= hi` (e.g. the
/// logits from the last hidden layer's bounds through a ReLU). `lo`, `hi`: `n_in` of
/// the layer; the results `n_out`. Errors: overflow.
pub fn affine_over_box(
    a: &network::Affine,
    lo: impl AsVector,
    hi: impl AsVector,
) -> Result<(DVector<f64>, DVector<f64>)> {
    let (lo, hi) = (lo.as_values(), hi.as_values());
    let (c, r) = center_radius(lo.iter().copied().zip(hi.iter().copied()));
    let (l, u) = interval_step(a, &c, &r)?;
    Ok((l.into(), u.into()))
}

/// A proven upper bound on `c^T f(x)` for one input: the network at a point, evaluated
/// with proven interval bounds (radius 0) and rounded up. This is what makes "the network's
/// value at an adversarial candidate" a true upper bound on the exact minimum.
pub fn value_upper_bound(model: &Model, x: impl AsVector, c: impl AsVector) -> Result<f64> {
    let c = c.as_values();
    let dom = InputDomain::new(x, 0.0, None)?;
    let b = interval_bounds(model, &dom)?;
    let (l, u) = (
        b.lower.last().expect("logits"),
        b.upper.last().expect("logits"),
    );
    crate::objective::objective_rows(network::as_row(c), l.len())?;
    let mut s = crate::rounding::RoundedSum::new();
    for ((&ci, &lk), &uk) in c.iter().zip(l).zip(u) {
        // max of ci * f_k over [lk, uk], as a lower bound of its negation.
        s.add_exact(crate::rounding::mul_down(
            -ci,
            if ci >= 0.0 { uk } else { lk },
        ));
    }
    s.lower().map(|v| -v).ok_or_else(|| DualError::Overflow {
        layer: model.affine().last().expect("logits").layer_index,
        what: "the network's value at a point",
        detail: "c^T f(x) is not finite".into(),
    })
}
