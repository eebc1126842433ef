//! Bounds on every pre-activation `zhat_2, .., zhat_k`, where they came from, and the
//! interval ("layerwise", eq. 42) bounds.

use network::Model;

use crate::domain::InputDomain;
use crate::error::{DualError, Result};

/// How a set of pre-activation bounds was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundSource {
    /// Interval arithmetic, layer by layer (eq. 42).
    Interval,
    /// The dual network with the paper's alpha, layer by layer (Algorithm 1).
    Algorithm1,
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
            BoundSource::LpAll => "lp-all",
            BoundSource::Given => "given",
        }
    }
}

/// Status of one ReLU unit given bounds `l <= zhat <= u`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    /// `u <= 0`: the unit is always off (the paper's I-).
    Off,
    /// `l >= 0`: the unit is always on (I+).
    On,
    /// `l < 0 < u` (I).
    Unstable,
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

/// Counts of the index sets of one hidden layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexCounts {
    pub off: usize,
    pub on: usize,
    pub unstable: usize,
}

/// Lower and upper bounds on `zhat_{i+2}` for every affine layer `i` (the last entry
/// bounds the logits), with their source.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBounds {
    pub lower: Vec<Vec<f64>>,
    pub upper: Vec<Vec<f64>>,
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

    /// Counts of I-, I+ and I for each hidden layer.
    pub fn counts(&self, hidden_layers: usize) -> Vec<IndexCounts> {
        (0..hidden_layers.min(self.lower.len()))
            .map(|i| {
                let mut c = IndexCounts::default();
                for (&l, &u) in self.lower[i].iter().zip(&self.upper[i]) {
                    match stability(l, u) {
                        Stability::Off => c.off += 1,
                        Stability::On => c.on += 1,
                        Stability::Unstable => c.unstable += 1,
                    }
                }
                c
            })
            .collect()
    }
}

/// Interval bounds (eq. 42): push the box through each layer as centre and radius,
/// `W c + b +- |W| r`, clamping at every ReLU.
pub fn interval_bounds(model: &Model, domain: &InputDomain) -> Result<LayerBounds> {
    model.check_input(&domain.x)?;
    let aff = model.affine();
    let mut c = domain.center.clone();
    let mut r = domain.radius.clone();
    let mut lower = Vec::with_capacity(aff.len());
    let mut upper = Vec::with_capacity(aff.len());
    for (i, a) in aff.iter().enumerate() {
        let n = a.op.n_out();
        let mut cn = vec![0.0; n];
        let mut rn = vec![0.0; n];
        a.op.apply(&c, 1, &mut cn);
        a.op.abs().apply(&r, 1, &mut rn);
        let l: Vec<f64> = (0..n).map(|j| cn[j] + a.bias[j] - rn[j]).collect();
        let u: Vec<f64> = (0..n).map(|j| cn[j] + a.bias[j] + rn[j]).collect();
        if i + 1 < aff.len() {
            c = l
                .iter()
                .zip(&u)
                .map(|(a, b)| 0.5 * (a.max(0.0) + b.max(0.0)))
                .collect();
            r = l
                .iter()
                .zip(&u)
                .map(|(a, b)| 0.5 * (b.max(0.0) - a.max(0.0)))
                .collect();
        }
        lower.push(l);
        upper.push(u);
    }
    Ok(LayerBounds {
        lower,
        upper,
        source: BoundSource::Interval,
    })
}
