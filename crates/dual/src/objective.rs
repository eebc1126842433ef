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
use network::{AsVector, DMatrix, DMatrixView, DVector};

use crate::bounds::{BoundSource, LayerBounds, Stability};
use crate::domain::InputDomain;
use crate::error::{DualError, Result};
use crate::relax::Relaxation;
use crate::rounding::{
    gamma, max_abs, mul_down, mul_up, sub_down, OpMagnitude, RoundedSum, ETA, UNIT_ROUNDOFF,
};

/// The choice of alpha for unstable units.
#[derive(Debug, Clone, PartialEq)]
pub enum AlphaRule {
    /// `alpha = u/(u-l)`, the paper's choice (Wong & Kolter; "LP-greedy").
    Paper,
    /// One alpha in [0, 1] per unit of every hidden layer (entries of stable units are
    /// ignored), shared by every row of C: entry `i` has the units of hidden layer `i`.
    PerUnit(Vec<DVector<f64>>),
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
    /// Proven `J` for each row of C, in order: a lower bound on `J` (and so on
    /// `min c^T zhat_k`) in exact arithmetic, whatever the rounding. Certificates use
    /// these.
    pub values: DVector<f64>,
    /// The nominal floating-point `J` (eq. 6 evaluated as written), for comparison; not
    /// a bound: under cancellation it can exceed the exact `J`.
    pub nominal: DVector<f64>,
    /// Always "wong-kolter-dual".
    pub method: &'static str,
    /// The alpha rule ("paper" or "per-unit").
    pub alpha: &'static str,
    /// Where the intermediate bounds `l, u` came from.
    pub intermediate: BoundSource,
}

/// J (eq. 6) for every row of `c` (`rows x n_out`, one objective per row), given intermediate bounds
/// on every hidden layer (as from [`crate::algorithm1`]) and an alpha rule.
///
/// Proven values ([`DualBound::values`]): any dual variables give a valid Lagrangian
/// bound, so `J` is evaluated at the floating-point `nu` with every rounding bounded.
/// `nuhat = W^T nu` is known to within `E_j = gamma_n sum_k |W_kj| ||nu||_inf`; each
/// hidden unit then contributes the exact minimum over its relaxation of
/// `nu_j zhat_j - nuhat_j z_j` for the worst `nuhat_j` in that interval (a vertex of the
/// triangle `(l, 0), (0, 0), (u, u)` for an unstable unit, `[l, u]` for a stable one), and
/// the input term is `-c.nuhat - rad.|nuhat|` (the exact minimum over the box, whose
/// radius covers the input set) less its rounding and `sum_j E_j (|c_j| + rad_j)`; all
/// sums are rounded down
/// ([`crate::rounding::RoundedSum`]). The intermediate bounds must themselves be proven
/// (those of [`crate::algorithm1`] and [`crate::interval_bounds`] are).
///
/// Errors: shapes ([`DualError::ObjectiveShape`] for `C`), an entry of `C` that is not
/// finite ([`DualError::ObjectiveNotFinite`]), alpha outside [0, 1], and
/// [`DualError::Overflow`] when a value that enters the bound is not finite.
pub fn dual_objective<'c>(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    c: impl Into<DMatrixView<'c, f64>>,
    alpha: &AlphaRule,
) -> Result<DualBound> {
    let c = objective_rows(c.into(), model.output_len())?;
    model.check_input(&domain.x)?;
    bounds.validate(model)?;
    alpha.validate(model)?;
    let nh = model.affine().len() - 1;
    let per_unit: Option<Vec<Vec<f64>>> = match alpha {
        AlphaRule::PerUnit(v) => Some(v.iter().map(|a| a.as_slice().to_vec()).collect()),
        AlphaRule::Paper => None,
    };
    let (values, nominal) = objective_over(
        model.affine(),
        model.relu_all(),
        domain.center.as_slice(),
        domain.radius.as_slice(),
        (&bounds.lower[..nh], &bounds.upper[..nh]),
        &c,
        per_unit.as_deref(),
    )?;
    Ok(DualBound {
        values: values.into(),
        nominal: nominal.into(),
        method: "wong-kolter-dual",
        alpha: alpha.name(),
        intermediate: bounds.source,
    })
}

/// J over a run of affine layers `aff` (a whole model, or a prefix or suffix of one),
/// whose input ranges over the box `center +- radius` and whose hidden layers (the
/// inputs of `aff[1..]`, with `relu[t]` ReLU units first and linear units after them)
/// have the proven bounds `hidden = (lower, upper)`; `alpha` per
/// unit of those layers, or the paper's `u/(u-l)` when `None`. Returns the proven values
/// and the nominal ones, one per row of `c` (row-major over the last layer's outputs).
/// Shapes are the caller's to check; `c` is checked here. See [`dual_objective`].
pub(crate) fn objective_over(
    aff: &[network::Affine],
    relu: &[usize],
    center: &[f64],
    radius: &[f64],
    hidden: (&[DVector<f64>], &[DVector<f64>]),
    c: &[f64],
    alpha: Option<&[Vec<f64>]>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    objective_over_beta(aff, relu, center, radius, hidden, c, alpha, None)
}

/// [`objective_over`] with beta-CROWN's multipliers (Wang et al. 2021, *Beta-CROWN*,
/// eq. 6): `beta[t][j] >= 0` per unit of hidden layer `t` (shared by the rows), used at
/// stable units only (entries of unstable and linear units are ignored). A unit on
/// (`l >= 0`) adds `-beta zhat_j` to the objective, a unit off (`u <= 0`) adds
/// `+beta zhat_j`: both are `<= 0` on the whole set the bounds `l, u` describe, so the
/// minimum of the new objective is still a lower bound on `c^T zhat_k`, and its J is
/// one for any `beta >= 0`. In the dual network this is `nu_j = nuhat_j + beta_j` (on)
/// and `nu_j = -beta_j` (off, instead of 0). With ReLU splits clamped into the bounds
/// (`split_bounds`), a split unit is stable and its beta is the multiplier of the
/// split's constraint `zhat >= 0` (active) or `zhat <= 0` (inactive), which J alone
/// does not see. Proven as `objective_over`, with the rounding of `nuhat_j + beta_j`
/// added to unit j's allowance. Errors: a beta that is negative or not finite
/// ([`DualError::Alpha`], naming the layer and unit), overflow.
#[allow(clippy::too_many_arguments)]
pub(crate) fn objective_over_beta(
    aff: &[network::Affine],
    relu: &[usize],
    center: &[f64],
    radius: &[f64],
    hidden: (&[DVector<f64>], &[DVector<f64>]),
    c: &[f64],
    alpha: Option<&[Vec<f64>]>,
    beta: Option<&[Vec<f64>]>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if let Some(b) = beta {
        for (t, v) in b.iter().enumerate() {
            if let Some(j) = v.iter().position(|x| !(*x >= 0.0 && x.is_finite())) {
                return Err(DualError::Alpha {
                    layer: t,
                    msg: format!("unit {j} has beta {}; beta must be finite and >= 0", v[j]),
                });
            }
        }
    }
    let (lower, upper) = hidden;
    let n_out = aff[aff.len() - 1].op.n_out();
    // The public entries checked the shape ([`objective_rows`]); the internal ones build
    // whole rows.
    debug_assert!(!c.is_empty() && c.len().is_multiple_of(n_out));
    if let Some(i) = c.iter().position(|v| !v.is_finite()) {
        return Err(DualError::ObjectiveNotFinite {
            row: i / n_out,
            col: i % n_out,
            value: c[i],
        });
    }
    let rows = c.len() / n_out;
    let mut acc = vec![0.0; rows];
    let mut proven = vec![RoundedSum::new(); rows];
    // nu_{k}: columns -c.
    let mut nu: Vec<f64> = c.iter().map(|v| -v).collect();
    for t in (0..aff.len()).rev() {
        let a = &aff[t];
        let (ni, no) = (a.op.n_in(), a.op.n_out());
        let mag = OpMagnitude::of(a);
        let g = gamma(mag.dot_len_t);
        let under = mag.dot_len_t as f64 * ETA;
        let mut nu_norm = vec![0.0; rows];
        for (r, col) in nu.chunks(no).enumerate() {
            acc[r] -= col.iter().zip(&a.bias).map(|(v, b)| v * b).sum::<f64>();
            for (v, b) in col.iter().zip(&a.bias) {
                proven[r].add_product(-v, *b);
            }
            nu_norm[r] = max_abs(col);
        }
        let mut nuhat = vec![0.0; ni * rows];
        a.op.apply_transpose(&nu, rows, &mut nuhat);
        // |exact nuhat_j - computed| <= e(r, j)
        let e = |r: usize, j: usize| -> f64 {
            (g * mag.col_abs(j) * nu_norm[r] * (1.0 + 4.0 * UNIT_ROUNDOFF) + under).next_up()
        };
        let overflow = |j: usize, v: f64| DualError::Overflow {
            layer: a.layer_index,
            what: "the dual network (nuhat = W^T nu)",
            detail: format!("input unit {j} of this layer has nuhat = {v}"),
        };
        if t == 0 {
            for (r, col) in nuhat.chunks(ni).enumerate() {
                // min over x' in [c - rad, c + rad] of -nuhat x' is -c nuhat - rad |nuhat|
                // (the domain's radius covers the exact input set). With nuhat within e_j
                // of the computed v, each term is at least -c v - rad |v| - e_j (|c| + rad).
                let mut s = 0.0;
                let mut spread = 0.0;
                let (g, nu_norm_r) = (g * (1.0 + 4.0 * UNIT_ROUNDOFF), nu_norm[r]);
                for (j, ((v, x), rad)) in col.iter().zip(center).zip(radius).enumerate() {
                    if !v.is_finite() {
                        return Err(overflow(j, *v));
                    }
                    let term = x * v + rad * v.abs();
                    s += term;
                    spread += mag.col_abs(j) * (x.abs() + rad);
                    proven[r].add_rounded(-term, 3);
                }
                acc[r] -= s;
                // sum_j e_j (|c_j| + rad_j) with e_j = gamma col_abs_j ||nu|| + n eta.
                let under_total = under
                    * radius
                        .iter()
                        .zip(center)
                        .map(|(r, c)| r + c.abs())
                        .sum::<f64>();
                let err = ((g * nu_norm_r * spread) * (1.0 + crate::rounding::gamma(ni + 2))
                    + under_total * 2.0)
                    .next_up();
                proven[r].add_exact(-err);
            }
            break;
        }
        // Hidden layer t-1 of the bounds is zhat_{t+1}, the input of affine t.
        let (l, u) = (&lower[t - 1], &upper[t - 1]);
        let alpha_t = alpha.map(|v| &v[t - 1]);
        let beta_t = beta.map(|v| &v[t - 1]);
        let relu_t = relu[t - 1];
        for (r, col) in nuhat.chunks_mut(ni).enumerate() {
            let mut s = 0.0;
            for j in 0..ni {
                let v = col[j];
                let rel = Relaxation::of(relu_t, j, l[j], u[j]);
                let st = rel.stability;
                if st != Stability::Off && !v.is_finite() {
                    return Err(overflow(j, v));
                }
                col[j] = match st {
                    // nu_j = -beta_j (exact): (nu_j + beta_j) zhat = 0.
                    Stability::Off => beta_t.map_or(0.0, |b| -b[j]),
                    Stability::On => {
                        // nu_j = v + beta_j, rounded (by at most u |nu_j|); the unit's
                        // term (nu_j - beta_j - nuhat_j) zhat with zhat in [l, u], l >= 0.
                        let bj = beta_t.map_or(0.0, |b| b[j]);
                        let nu_j = v + bj;
                        if !nu_j.is_finite() {
                            return Err(overflow(j, nu_j));
                        }
                        let rounding = if bj == 0.0 {
                            0.0
                        } else {
                            (UNIT_ROUNDOFF * nu_j.abs()).next_up()
                        };
                        let ej = (e(r, j) + rounding).next_up();
                        proven[r].add_exact(-mul_up(ej, u[j]));
                        nu_j
                    }
                    Stability::Linear => {
                        // z = zhat: nu_j = v, and (nu_j - nuhat_j) zhat with zhat in
                        // [l, u] (any sign) is at least -e_j max(|l|, |u|).
                        let ej = e(r, j);
                        proven[r].add_exact(-mul_up(ej, l[j].abs().max(u[j].abs())));
                        v
                    }
                    Stability::Unstable => {
                        let d = rel.upper_slope();
                        let al = alpha_t.map_or(d, |a| a[j]);
                        s += l[j] * (d * v.max(0.0));
                        let nu_j = rel.dual(v, al);
                        // min of nu_j zhat - nuhat_j z over the triangle's vertices, with
                        // the largest nuhat_j (z >= 0 there).
                        let g_hi = (v + e(r, j)).next_up();
                        let worst = mul_down(nu_j, l[j])
                            .min(0.0)
                            .min(mul_down(sub_down(nu_j, g_hi), u[j]));
                        if worst.is_nan() {
                            return Err(overflow(j, v));
                        }
                        proven[r].add_exact(worst);
                        nu_j
                    }
                };
            }
            acc[r] += s;
        }
        nu = nuhat;
    }
    let mut values = Vec::with_capacity(rows);
    for (r, p) in proven.iter().enumerate() {
        match p.lower() {
            Some(v) => values.push(v),
            None => {
                return Err(DualError::Overflow {
                    layer: aff[0].layer_index,
                    what: "the dual objective J",
                    detail: format!(
                        "objective row {r}: the terms of J do not sum to a finite number (nominal J = {})",
                        acc[r]
                    ),
                })
            }
        }
    }
    Ok((values, acc))
}

/// Which margins `f_y - f_t` of a label `y` to bound: every other class, or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// Every class `t != y` (a certificate needs them all, Corollary 1).
    All,
    /// One class `t != y`.
    Class(usize),
}

impl std::str::FromStr for Targets {
    type Err = String;

    /// `"all"` or a class index.
    fn from_str(s: &str) -> std::result::Result<Targets, String> {
        match s {
            "all" => Ok(Targets::All),
            k => k
                .parse()
                .map(Targets::Class)
                .map_err(|_| format!("targets must be \"all\" or a class index, got {k:?}")),
        }
    }
}

/// The margin objectives of one label: row `k` of `c` (`targets.len() x n`) is
/// `e_label - e_{targets[k]}`, so `J(c_k) > 0` for every row certifies `label` when
/// `targets` is every other class (Corollary 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Margins {
    pub label: usize,
    pub targets: Vec<usize>,
    pub c: DMatrix<f64>,
}

impl Margins {
    /// The margins of `label` over a model with `n` outputs.
    ///
    /// Errors: [`DualError::NoTargets`] for `n < 2`, [`DualError::Class`] for a label or
    /// target `>= n`, [`DualError::TargetIsLabel`] for a target equal to the label (its
    /// margin is 0 by definition).
    pub fn new(n: usize, label: usize, targets: Targets) -> Result<Margins> {
        if n < 2 {
            return Err(DualError::NoTargets { n_out: n });
        }
        let all = margin_objectives(n, label)?;
        let targets: Vec<usize> = match targets {
            Targets::All => (0..n).filter(|&t| t != label).collect(),
            Targets::Class(t) if t >= n => {
                return Err(DualError::Class {
                    class: t,
                    n_classes: n,
                })
            }
            Targets::Class(t) if t == label => return Err(DualError::TargetIsLabel { class: t }),
            Targets::Class(t) => vec![t],
        };
        let c = all.select_rows(&targets);
        Ok(Margins { label, targets, c })
    }

    /// Row `k`: `e_label - e_{targets[k]}` (`n` entries).
    pub fn row(&self, k: usize) -> DVector<f64> {
        self.c.row(k).transpose()
    }
}

/// Where the class a margin bound certifies came from (see [`resolve_label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// Given by the user (a command-line flag).
    Flag,
    /// Carried by the input: a dataset's label or an input file's, named.
    Input(&'static str),
    /// None given: the model's predicted class (detection, Corollary 2).
    Predicted,
}

impl LabelSource {
    /// The source's name in reports: `flag`, the input's name, or `predicted`.
    pub fn name(&self) -> &'static str {
        match self {
            LabelSource::Flag => "flag",
            LabelSource::Input(name) => name,
            LabelSource::Predicted => "predicted",
        }
    }
}

/// The class to certify, in order of precedence: `flag` (the user's word), else the
/// input's own label `given` (with its source's name), else the predicted class
/// `argmax(logits)` (the first of equal maxima). The class is not checked against the
/// number of outputs here: [`Margins::new`] does that.
pub fn resolve_label(
    flag: Option<usize>,
    given: Option<(usize, &'static str)>,
    logits: impl AsVector,
) -> (usize, LabelSource) {
    match (flag, given) {
        (Some(l), _) => (l, LabelSource::Flag),
        (None, Some((l, from))) => (l, LabelSource::Input(from)),
        (None, None) => (network::argmax(logits), LabelSource::Predicted),
    }
}

/// The objective rows `c_t = e_y - e_t` for `t = 0..n` (row `y` is zero; `n x n`), as in
/// Corollary 1: `J(c_t) > 0` for every `t != y` certifies class `y`.
pub fn margin_objectives(n: usize, y: usize) -> Result<DMatrix<f64>> {
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
    Ok(DMatrix::from_row_slice(n, n, &c))
}

/// An objective matrix (`rows x n_out`, one objective per row, as `C` in eq. 4) in the
/// row-major layout of the backward pass, checked against the model's `n_out` outputs.
///
/// Errors: [`DualError::ObjectiveShape`] for no rows or `cols != n_out`.
pub fn objective_rows(c: DMatrixView<'_, f64>, n_out: usize) -> Result<Vec<f64>> {
    if c.nrows() == 0 || c.ncols() != n_out {
        return Err(DualError::ObjectiveShape {
            rows: c.nrows(),
            cols: c.ncols(),
            n_out,
        });
    }
    Ok(c.transpose().as_slice().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::crown_bounds;
    use network::{Architecture, Init};

    /// beta = 0 is J itself; a beta that is negative or not finite is an error naming
    /// its layer and unit (negative multipliers of `zhat >= 0` are not a bound).
    #[test]
    fn beta_zero_is_j_and_bad_betas_are_errors() {
        let model = Architecture::mlp(&[2, 6, 6, 2])
            .init(Init::Paper, 1)
            .unwrap();
        let dom = InputDomain::new([0.2, -0.1], 0.5, None).unwrap();
        let b = crown_bounds(&model, &dom).unwrap();
        let aff = model.affine();
        let hidden = (&b.lower[..2], &b.upper[..2]);
        let (c, r) = (dom.center.as_slice(), dom.radius.as_slice());
        let row = [1.0, -1.0];
        let j = objective_over(aff, model.relu_all(), c, r, hidden, &row, None).unwrap();
        let zero = vec![vec![0.0; 6]; 2];
        let with_zero =
            objective_over_beta(aff, model.relu_all(), c, r, hidden, &row, None, Some(&zero))
                .unwrap();
        assert_eq!(j, with_zero);
        for bad in [-1e-300, f64::NAN, f64::INFINITY] {
            let mut beta = zero.clone();
            beta[1][4] = bad;
            let e =
                objective_over_beta(aff, model.relu_all(), c, r, hidden, &row, None, Some(&beta))
                    .unwrap_err()
                    .to_string();
            assert!(e.contains("unit 4") && e.contains("beta"), "{bad}: {e}");
        }
    }

    /// A beta at a stable unit moves J (the nominal value) and keeps the proven value at
    /// most the nominal one, close to it; at an unstable unit it is ignored.
    #[test]
    fn beta_enters_at_stable_units_only() {
        let model = Architecture::mlp(&[2, 8, 8, 2])
            .init(Init::Paper, 4)
            .unwrap();
        let dom = InputDomain::new([0.3, 0.1], 0.3, None).unwrap();
        let b = crown_bounds(&model, &dom).unwrap();
        let aff = model.affine();
        let hidden = (&b.lower[..2], &b.upper[..2]);
        let (c, r) = (dom.center.as_slice(), dom.radius.as_slice());
        let row = [1.0, -1.0];
        let eval = |beta: &Vec<Vec<f64>>| {
            objective_over_beta(aff, model.relu_all(), c, r, hidden, &row, None, Some(beta))
                .unwrap()
        };
        let base = eval(&vec![vec![0.0; 8]; 2]);
        let (mut moved, mut ignored) = (0, 0);
        for t in 0..2 {
            for j in 0..8 {
                let mut beta = vec![vec![0.0; 8]; 2];
                beta[t][j] = 0.37;
                let (p, n) = eval(&beta);
                assert!(p[0] <= n[0] && n[0] - p[0] <= 1e-12 * (1.0 + n[0].abs()));
                let st = crate::bounds::stability(b.lower[t][j], b.upper[t][j]);
                if st == Stability::Unstable {
                    assert_eq!((p.clone(), n.clone()), base, "unit {t}/{j}");
                    ignored += 1;
                } else if n[0] != base.1[0] {
                    moved += 1;
                }
            }
        }
        assert!(
            moved >= 4 && ignored >= 2,
            "moved {moved}, ignored {ignored}"
        );
    }
}
