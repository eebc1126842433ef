//! The dual network (Theorem 1, eq. 7) and the objective J (eq. 6) for any objective
//! matrix C, with the paper's alpha or any alpha in [0, 1] per unit.
//!
//! For each row `c` of C: `nu_k = -c`; `nuhat_i = W_i^T nu_{i+1}`; for hidden layers
//! `nu_ij = 0` (u <= 0), `nuhat_ij` (l >= 0), `u/(u-l) [nuhat_ij]_+ - alpha_ij [nuhat_ij]_-`
//! (l < 0 < u), and
//!
//! ```text
//! J = -sum_i nu_{i+1}^T b_i - center^T nuhat_1 - sum_j radius_j |nuhat_1j|
//!     + sum_{i>=2} sum_{j in I_i} l_ij [nu_ij]_+   <=  min over the input set of c^T zhat_k
//! ```
//!
//! (with no input box, `center = x` and `radius = eps`: the paper's eq. 6). The rows of C
//! travel together as the columns of one batch through the transposed layers.

use network::Model;

use crate::bounds::{stability, BoundSource, LayerBounds, Stability};
use crate::domain::InputDomain;
use crate::error::{DualError, Result};

/// The choice of alpha for unstable units.
#[derive(Debug, Clone, PartialEq)]
pub enum AlphaRule {
    /// `alpha = u/(u-l)`, the paper's choice (Wong & Kolter; "LP-greedy").
    Paper,
    /// One alpha in [0, 1] per unit of every hidden layer (entries of stable units are
    /// ignored), shared by every row of C.
    PerUnit(Vec<Vec<f64>>),
}

impl AlphaRule {
    /// Short name used in results files and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            AlphaRule::Paper => "paper",
            AlphaRule::PerUnit(_) => "per-unit",
        }
    }

    fn validate(&self, model: &Model) -> Result<()> {
        let AlphaRule::PerUnit(a) = self else {
            return Ok(());
        };
        let aff = model.affine();
        if a.len() != aff.len() - 1 {
            return Err(DualError::Alpha {
                layer: 0,
                msg: format!(
                    "{} vectors given for {} hidden layers",
                    a.len(),
                    aff.len() - 1
                ),
            });
        }
        for (i, v) in a.iter().enumerate() {
            let n = aff[i].op.n_out();
            if v.len() != n {
                return Err(DualError::Alpha {
                    layer: i,
                    msg: format!("length {} but the layer has {n} units", v.len()),
                });
            }
            if let Some(j) = v.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return Err(DualError::Alpha {
                    layer: i,
                    msg: format!("unit {j} has alpha {}, outside [0, 1]", v[j]),
                });
            }
        }
        Ok(())
    }
}

/// A lower bound on `c^T zhat_k` for each row `c` of an objective matrix, with how it was
/// obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct DualBound {
    /// `J` for each row of C, in order.
    pub values: Vec<f64>,
    /// Always "wong-kolter-dual".
    pub method: &'static str,
    /// The alpha rule ("paper" or "per-unit").
    pub alpha: &'static str,
    /// Where the intermediate bounds `l, u` came from.
    pub intermediate: BoundSource,
}

/// J (eq. 6) for every row of `c` (row-major, `rows x n_out`), given intermediate bounds
/// on every hidden layer (as from [`crate::algorithm1`]) and an alpha rule.
pub fn dual_objective(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    c: &[f64],
    alpha: &AlphaRule,
) -> Result<DualBound> {
    model.check_input(&domain.x)?;
    bounds.validate(model)?;
    alpha.validate(model)?;
    let aff = model.affine();
    let n_out = model.output_len();
    if c.is_empty() || !c.len().is_multiple_of(n_out) {
        return Err(DualError::Objective {
            n_out,
            actual: c.len(),
        });
    }
    let rows = c.len() / n_out;
    let mut acc = vec![0.0; rows];
    // nu_{k}: columns -c.
    let mut nu: Vec<f64> = c.iter().map(|v| -v).collect();
    for t in (0..aff.len()).rev() {
        let a = &aff[t];
        let (ni, no) = (a.op.n_in(), a.op.n_out());
        for (r, col) in nu.chunks(no).enumerate() {
            acc[r] -= col.iter().zip(&a.bias).map(|(v, b)| v * b).sum::<f64>();
        }
        let mut nuhat = vec![0.0; ni * rows];
        a.op.apply_transpose(&nu, rows, &mut nuhat);
        if t == 0 {
            for (r, col) in nuhat.chunks(ni).enumerate() {
                let mut s = 0.0;
                for ((v, x), rad) in col.iter().zip(&domain.center).zip(&domain.radius) {
                    s += x * v + rad * v.abs();
                }
                acc[r] -= s;
            }
            break;
        }
        // Hidden layer t-1 of the bounds is zhat_{t+1}, the input of affine t.
        let (l, u) = (&bounds.lower[t - 1], &bounds.upper[t - 1]);
        let alpha_t = match alpha {
            AlphaRule::PerUnit(v) => Some(&v[t - 1]),
            AlphaRule::Paper => None,
        };
        for (r, col) in nuhat.chunks_mut(ni).enumerate() {
            let mut s = 0.0;
            for j in 0..ni {
                let v = col[j];
                col[j] = match stability(l[j], u[j]) {
                    Stability::Off => 0.0,
                    Stability::On => v,
                    Stability::Unstable => {
                        let d = u[j] / (u[j] - l[j]);
                        let al = alpha_t.map_or(d, |a| a[j]);
                        let pos = d * v.max(0.0);
                        s += l[j] * pos;
                        pos + al * v.min(0.0)
                    }
                };
            }
            acc[r] += s;
        }
        nu = nuhat;
    }
    Ok(DualBound {
        values: acc,
        method: "wong-kolter-dual",
        alpha: alpha.name(),
        intermediate: bounds.source,
    })
}

/// The objective rows `c_t = e_y - e_t` for `t = 0..n` (row `y` is zero), as in
/// Corollary 1: `J(c_t) > 0` for every `t != y` certifies class `y`.
pub fn margin_objectives(n: usize, y: usize) -> Result<Vec<f64>> {
    if y >= n {
        return Err(DualError::Class {
            class: y,
            n_classes: n,
        });
    }
    let mut c = vec![0.0; n * n];
    for t in 0..n {
        if t != y {
            c[t * n + y] = 1.0;
            c[t * n + t] = -1.0;
        }
    }
    Ok(c)
}
