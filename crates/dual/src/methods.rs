//! The bound methods of the field, in f64 with proven values, as one [`Method`] type.
//!
//! Every method here is the dual bound J (eq. 6) of one ReLU relaxation, the triangle of
//! the paper's Fig. 2 (upper line `u/(u-l) (zhat - l)`, lower line `alpha zhat`,
//! `alpha` in [0, 1]); they differ in the intermediate bounds `l, u` and in `alpha`:
//!
//! | method | intermediate bounds | alpha of unstable units | source |
//! |---|---|---|---|
//! | `interval` | interval arithmetic (eq. 42) | none: the last layer over the box of the last hidden layer | IBP, Gowal et al. 2018 |
//! | `wk` | Algorithm 1 | `u/(u-l)` | Wong & Kolter 2018; equal to Fast-Lin (Weng et al. 2018) |
//! | `crown` | CROWN, layer by layer | `1` if `u > -l` else `0` | CROWN (Zhang et al. 2018), DeepPoly (Singh et al. 2019) |
//! | `alpha` | CROWN's, or by flag ([`AlphaOptions::intermediate`]) alpha-CROWN's own | optimised per objective row by projected Adam from CROWN's | alpha-CROWN (Xu et al. 2021) |
//!
//! Since any alpha in [0, 1] gives a valid Lagrangian bound, each method's value is
//! computed by the one proven evaluation of J ([`crate::objective`]) at its alpha: the
//! optimiser works on floating-point J and its gradient, and only the proven J at the
//! alpha it found is reported (never below CROWN's proven J, which it starts from).
//! CROWN's intermediate bounds are themselves proven J values (rows `+e_j` and `-e_j` of
//! each layer, through the model's prefix); with [`AlphaOptions::intermediate`], the rows
//! of every unstable ReLU unit get the same optimiser, layer by layer ([`alpha_bounds`]).
//! LP-last and LP-all live in the `lp` crate.

use network::{Affine, Model};
use network::{DMatrixView, DVector};
use rayon::prelude::*;

use crate::algorithm1::{algorithm1_with, ColumnForm, Precision};
use crate::bounds::{interval_bounds, interval_step, relu_box, stability, BoundSource};
use crate::bounds::{LayerBounds, Stability};
use crate::domain::InputDomain;
use crate::error::{DualError, Result};
use crate::objective::{objective_over, objective_over_beta, objective_rows};
use crate::relax::Relaxation;
use crate::split::crown_layer;

/// A bound method (see the module docs for what each computes and its source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Interval bound propagation (IBP, eq. 42 of the paper; Gowal et al. 2018).
    Interval,
    /// The Wong & Kolter dual with Algorithm 1 bounds and `alpha = u/(u-l)` (= Fast-Lin).
    Wk,
    /// CROWN / DeepPoly: adaptive lower slopes, intermediate bounds by CROWN.
    Crown,
    /// alpha-CROWN: lower slopes optimised for the objective, CROWN's intermediate bounds.
    Alpha,
}

impl Method {
    /// Every method, loosest first.
    pub const ALL: [Method; 4] = [Method::Interval, Method::Wk, Method::Crown, Method::Alpha];

    /// The short name used on the command line and in results files.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Interval => "interval",
            Method::Wk => "wk",
            Method::Crown => "crown",
            Method::Alpha => "alpha",
        }
    }

    /// The paper a method comes from.
    pub fn source(&self) -> &'static str {
        match self {
            Method::Interval => "IBP (Gowal et al. 2018; the paper's eq. 42)",
            Method::Wk => "Wong & Kolter 2018 dual, Algorithm 1 (= Fast-Lin, Weng et al. 2018)",
            Method::Crown => "CROWN (Zhang et al. 2018) / DeepPoly (Singh et al. 2019)",
            Method::Alpha => "alpha-CROWN (Xu et al. 2021), projected Adam on the lower slopes",
        }
    }

    /// The method named `s` (see [`Method::name`]).
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The intermediate bounds the method uses with default options.
    pub fn intermediate(&self) -> BoundSource {
        self.intermediate_with(&AlphaOptions::default())
    }

    /// The intermediate bounds the method uses with options `opts`
    /// ([`AlphaOptions::intermediate`] makes `alpha`'s alpha-CROWN's own).
    pub fn intermediate_with(&self, opts: &AlphaOptions) -> BoundSource {
        match self {
            Method::Interval => BoundSource::Interval,
            Method::Wk => BoundSource::Algorithm1,
            Method::Crown => BoundSource::Crown,
            Method::Alpha if opts.intermediate => BoundSource::AlphaCrown,
            Method::Alpha => BoundSource::Crown,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of the `alpha` method's optimiser (projected Adam on floating-point J), and the
/// precision of Algorithm 1's columns for the methods that use its bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlphaOptions {
    /// Gradient steps at most.
    pub iterations: usize,
    /// Adam's step size (alpha lives in [0, 1]).
    pub lr: f64,
    /// The step size is multiplied by this after every step.
    pub lr_decay: f64,
    /// Stop when no row's best J improved by more than `rel_tol * max(|J|, |J_start|)` in
    /// this many steps (relative to the row's own scale: a network whose last layer is
    /// scaled by a power of two takes the same steps).
    pub patience: usize,
    /// See `patience`.
    pub rel_tol: f64,
    /// Also optimise the intermediate bounds (alpha-CROWN's bounds on every unstable ReLU
    /// unit, [`alpha_bounds`]) instead of using CROWN's. Costs one optimisation of the
    /// rows `+-e_j` of every unstable unit of every hidden layer.
    pub intermediate: bool,
    /// The precision of Algorithm 1's columns where a method's intermediate bounds are
    /// Algorithm 1's (`wk`): f64, or the sound f32 path ([`crate::Precision`]).
    pub precision: Precision,
}

impl Default for AlphaOptions {
    /// 50 steps of Adam at 0.1 decaying by 0.98 per step (the settings of alpha-CROWN's
    /// reference implementation, auto_LiRPA), stopping after 10 steps without a gain of
    /// 1e-9; CROWN's intermediate bounds.
    fn default() -> Self {
        AlphaOptions {
            iterations: 50,
            lr: 0.1,
            lr_decay: 0.98,
            patience: 10,
            rel_tol: 1e-9,
            intermediate: false,
            precision: Precision::F64,
        }
    }
}

/// Why the alpha optimiser stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlphaStop {
    /// No row improved by the relative tolerance within `patience` steps.
    Converged,
    /// The step budget ran out.
    Iterations,
    /// No unstable unit: J does not depend on alpha.
    NothingToOptimise,
}

impl AlphaStop {
    /// Short name used in results files.
    pub fn name(&self) -> &'static str {
        match self {
            AlphaStop::Converged => "converged",
            AlphaStop::Iterations => "iterations",
            AlphaStop::NothingToOptimise => "nothing-to-optimise",
        }
    }
}

/// What the alpha optimiser did.
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaReport {
    /// Gradient steps taken.
    pub steps: usize,
    pub stop: AlphaStop,
    /// Nominal J per row at CROWN's alpha (where the optimiser starts).
    pub start: DVector<f64>,
    /// Best nominal J per row found.
    pub best: DVector<f64>,
}

/// A method's lower bounds on `c^T zhat_k` for every row of an objective matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodBound {
    pub method: Method,
    /// Proven lower bounds, one per row (certificates use these).
    pub values: DVector<f64>,
    /// The floating-point values the proven ones were derived from (not bounds).
    pub nominal: DVector<f64>,
    /// The intermediate bounds used (every affine layer, the logits last).
    pub bounds: LayerBounds,
    /// The optimiser's report (`alpha` only).
    pub alpha: Option<AlphaReport>,
}

/// CROWN's lower slopes for the hidden layers of `b`: `1` where `u > -l`, else `0`
/// (only unstable units' entries are used).
pub fn crown_slopes(lower: &[DVector<f64>], upper: &[DVector<f64>]) -> Vec<DVector<f64>> {
    crown_slope_rows(lower, upper)
        .into_iter()
        .map(DVector::from_vec)
        .collect()
}

/// [`crown_slopes`] as plain rows (the optimiser's layout).
pub(crate) fn crown_slope_rows(lower: &[DVector<f64>], upper: &[DVector<f64>]) -> Vec<Vec<f64>> {
    lower
        .iter()
        .zip(upper)
        .map(|(l, u)| {
            l.iter()
                .zip(u)
                .map(|(&l, &u)| Relaxation::relu(l, u).crown_slope())
                .collect()
        })
        .collect()
}

/// How many units of a layer of `n` get their rows `+-e_j` in one batch of about
/// `2^entries_log2` objective entries (`2 * units * n` per batch; at least 1, at most
/// `n`).
pub(crate) fn units_per_batch(n: usize, entries_log2: u32) -> usize {
    ((1usize << entries_log2) / 2 / n.max(1)).clamp(1, n.max(1))
}

/// Rows of `+e_j` and `-e_j` for the units `js` of a layer of `n` units.
pub(crate) fn unit_rows(js: impl ExactSizeIterator<Item = usize>, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; 2 * js.len() * n];
    for (i, j) in js.enumerate() {
        c[2 * i * n + j] = 1.0;
        c[(2 * i + 1) * n + j] = -1.0;
    }
    c
}

/// CROWN's bounds on every pre-activation (the logits last): the first layer by interval
/// arithmetic (exact up to rounding for one affine map), then each layer `k` by the proven
/// J of rows `+-e_j` through layers `0..=k`, with CROWN's slopes on the bounds found so
/// far. Proven, like every value of this crate.
///
/// Cost: two backward passes per unit per layer (batched as GEMMs), against Algorithm
/// 1's one forward column per input and unstable unit.
pub fn crown_bounds(model: &Model, domain: &InputDomain) -> Result<LayerBounds> {
    model.check_input(&domain.x)?;
    let aff = model.affine();
    let (l0, u0) = interval_step(&aff[0], domain.center.as_slice(), domain.radius.as_slice())?;
    let mut lower = vec![DVector::from_vec(l0)];
    let mut upper = vec![DVector::from_vec(u0)];
    for k in 1..aff.len() {
        let (l, u) = crown_layer(aff, model.relu_all(), domain, &lower, &upper, k)?;
        lower.push(DVector::from_vec(l));
        upper.push(DVector::from_vec(u));
    }
    Ok(LayerBounds {
        lower,
        upper,
        source: BoundSource::Crown,
    })
}

/// alpha-CROWN's bounds on every pre-activation (Xu et al. 2021, "optimizing intermediate
/// layer bounds"; the logits last): layer by layer, CROWN's bound of the layer on the
/// bounds of the layers before found so far, then for every unstable ReLU unit `j` of a
/// hidden layer `k` the rows `+e_j` and `-e_j` through layers `0..=k` get the `alpha`
/// method's optimiser (their own slopes per row, from CROWN's, `opts`); each bound is the
/// best of that, the proven J at the optimised slopes, and [`crown_bounds`]' own (a
/// slope heuristic on tighter earlier bounds is not always tighter), so every bound is a
/// proven J value and none is looser than CROWN's. Stable units (which no slope changes)
/// and linear units are not optimised; nor are the logits (the final objective is, by
/// [`bound_given`]).
///
/// Cost: per hidden layer, up to `opts.iterations` gradient steps on `2 m` rows (`m`
/// unstable units), against CROWN's one pass. Errors as [`crown_bounds`].
pub fn alpha_bounds(
    model: &Model,
    domain: &InputDomain,
    opts: &AlphaOptions,
) -> Result<LayerBounds> {
    let crown = crown_bounds(model, domain)?;
    let aff = model.affine();
    let relu = model.relu_all();
    let mut lower = vec![crown.lower[0].clone()];
    let mut upper = vec![crown.upper[0].clone()];
    for k in 1..aff.len() {
        let (mut l, mut u) = crown_layer(aff, relu, domain, &lower, &upper, k)?;
        for j in 0..l.len() {
            l[j] = l[j].max(crown.lower[k][j]);
            u[j] = u[j].min(crown.upper[k][j]);
        }
        if k + 1 < aff.len() {
            let n = aff[k].op.n_out();
            let unstable: Vec<usize> = (0..relu[k])
                .filter(|&j| stability(l[j], u[j]) == Stability::Unstable)
                .collect();
            // The optimiser keeps a slope per row and unit of every earlier layer besides.
            for js in unstable.chunks(units_per_batch(n, 21)) {
                let c = unit_rows(js.iter().copied(), n);
                let rd = RowDomain {
                    hidden: (&lower, &upper),
                    mask: None,
                };
                let Optimised { values, .. } = optimised_alpha(
                    &aff[..=k],
                    &relu[..k],
                    domain,
                    &vec![rd; 2 * js.len()],
                    &c,
                    opts,
                    &[],
                    None,
                )?;
                for (i, &j) in js.iter().enumerate() {
                    l[j] = l[j].max(values[2 * i]);
                    u[j] = u[j].min(-values[2 * i + 1]);
                }
            }
        }
        lower.push(DVector::from_vec(l));
        upper.push(DVector::from_vec(u));
    }
    Ok(LayerBounds {
        lower,
        upper,
        source: BoundSource::AlphaCrown,
    })
}

/// The intermediate bounds (and logit bounds) of a method with default options:
/// interval, Algorithm 1, or CROWN (for `crown` and `alpha`).
pub fn method_bounds(model: &Model, domain: &InputDomain, method: Method) -> Result<LayerBounds> {
    method_bounds_with(model, domain, method, &AlphaOptions::default())
}

/// The intermediate bounds (and logit bounds) of a method: interval, Algorithm 1, CROWN
/// (for `crown`, and `alpha` by default), or alpha-CROWN's own ([`alpha_bounds`], for
/// `alpha` with [`AlphaOptions::intermediate`]).
pub fn method_bounds_with(
    model: &Model,
    domain: &InputDomain,
    method: Method,
    opts: &AlphaOptions,
) -> Result<LayerBounds> {
    match method.intermediate_with(opts) {
        BoundSource::Interval => interval_bounds(model, domain),
        BoundSource::Algorithm1 => {
            algorithm1_with(model, domain, ColumnForm::Local, opts.precision).map(|(b, _)| b)
        }
        BoundSource::AlphaCrown => alpha_bounds(model, domain, opts),
        _ => crown_bounds(model, domain),
    }
}

/// Lower bounds on `c^T zhat_k` for every row of `c` (`rows x n_out`, one objective per
/// row) over the input set, by `method`; `opts` is used by `alpha` only.
///
/// Errors: the input, `c` ([`DualError::ObjectiveShape`]: no rows, or not one column per
/// output; an entry that is not finite: [`DualError::ObjectiveNotFinite`]) and
/// [`DualError::Overflow`].
pub fn bound_with_method<'c>(
    model: &Model,
    domain: &InputDomain,
    c: impl Into<DMatrixView<'c, f64>>,
    method: Method,
    opts: &AlphaOptions,
) -> Result<MethodBound> {
    let bounds = method_bounds_with(model, domain, method, opts)?;
    bound_given(model, domain, bounds, c, method, opts)
}

/// As [`bound_with_method`], with the method's intermediate bounds already computed (by
/// [`method_bounds`]; e.g. shared between objectives).
pub fn bound_given<'c>(
    model: &Model,
    domain: &InputDomain,
    bounds: LayerBounds,
    c: impl Into<DMatrixView<'c, f64>>,
    method: Method,
    opts: &AlphaOptions,
) -> Result<MethodBound> {
    let c = &objective_rows(c.into(), model.output_len())?[..];
    model.check_input(&domain.x)?;
    bounds.validate(model)?;
    let aff = model.affine();
    let relu = model.relu_all();
    let nh = aff.len() - 1;
    let hidden = (&bounds.lower[..nh], &bounds.upper[..nh]);
    // J over the whole network from the input box, with `slopes` (None: the paper's).
    let whole = |slopes: Option<&[Vec<f64>]>| {
        objective_over(
            aff,
            relu,
            domain.center.as_slice(),
            domain.radius.as_slice(),
            hidden,
            c,
            slopes,
        )
    };
    let (values, nominal, alpha) = match method {
        Method::Interval => {
            let (v, n) = if nh == 0 {
                whole(None)?
            } else {
                let (cz, rz) = relu_box(
                    bounds.lower[nh - 1].as_slice(),
                    bounds.upper[nh - 1].as_slice(),
                    relu[nh - 1],
                );
                objective_over(&aff[nh..], &[], &cz, &rz, (&[], &[]), c, None)?
            };
            (v, n, None)
        }
        Method::Wk => {
            let (v, n) = whole(None)?;
            (v, n, None)
        }
        Method::Crown => {
            let (v, n) = whole(Some(&crown_slope_rows(hidden.0, hidden.1)))?;
            (v, n, None)
        }
        Method::Alpha => {
            let rd = RowDomain { hidden, mask: None };
            let rows = c.len() / model.output_len();
            let o = optimised_alpha(aff, relu, domain, &vec![rd; rows], c, opts, &[], None)?;
            (o.values, o.nominal, Some(o.report))
        }
    };
    Ok(MethodBound {
        method,
        values: values.into(),
        nominal: nominal.into(),
        bounds,
        alpha,
    })
}

/// beta-CROWN's bound (Wang et al. 2021, *Beta-CROWN: Efficient bound propagation with
/// per-neuron split constraints*) of each row `c` of `c` (`rows x n_out`) over the
/// sub-domain of `domain` where `splits` hold: alpha-CROWN with one more multiplier
/// `beta >= 0` per split unit, `-beta zhat` (active split, `zhat >= 0`) or `+beta zhat`
/// (inactive) added to the objective, optimised jointly with alpha by projected Adam
/// (`opts`: the steps, rate and stopping rule of alpha-CROWN). `bounds` must be proven
/// over the sub-domain with the split units clamped (as [`crate::split_bounds`] returns
/// them: a split unit is then stable, and J alone ignores its constraint). Proven
/// values: J at the best alpha and beta found, evaluated as [`crate::dual_objective`]
/// (every rounding bounded), never below CROWN's over the same bounds. With no split
/// this is alpha-CROWN. Errors: as [`bound_given`], and a split outside the model.
pub fn beta_crown<'c>(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    c: impl Into<DMatrixView<'c, f64>>,
    splits: &[crate::split::Split],
    opts: &AlphaOptions,
) -> Result<BetaBound> {
    beta_crown_from(model, domain, bounds, c, splits, opts, None)
}

/// [`beta_crown`] warm-started (as beta-CROWN's branch and bound does at a child node):
/// the optimiser starts from `start` (one [`BetaState`] per objective row, e.g. the
/// parent node's [`BetaBound::states`]) instead of CROWN's slopes and `beta = 0`. Entries
/// are projected onto `alpha in [0, 1]` and `beta >= 0`; a beta of a unit without a split
/// is ignored (0), a split unit the start has no beta for starts at 0. The start only
/// decides where the search begins: the values are proven as [`beta_crown`]'s, never
/// below CROWN's. Errors: as [`beta_crown`], and a start of the wrong shape (not one
/// state per row, or not one alpha and one beta per unit of each hidden layer).
pub fn beta_crown_from<'c>(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    c: impl Into<DMatrixView<'c, f64>>,
    splits: &[crate::split::Split],
    opts: &AlphaOptions,
    start: Option<&[BetaState]>,
) -> Result<BetaBound> {
    let c = &objective_rows(c.into(), model.output_len())?[..];
    model.check_input(&domain.x)?;
    bounds.validate(model)?;
    crate::split::check_splits(model, splits)?;
    let aff = model.affine();
    let nh = aff.len() - 1;
    let mask = split_mask(model, splits);
    if let Some(start) = start {
        let rows = c.len() / model.output_len();
        if start.len() != rows {
            return Err(DualError::Options(format!(
                "a warm start needs one state per objective row ({rows}), got {}",
                start.len()
            )));
        }
        for st in start {
            check_start(st, &mask)?;
        }
    }
    let rd = RowDomain {
        hidden: (&bounds.lower[..nh], &bounds.upper[..nh]),
        mask: (!splits.is_empty()).then_some(&mask[..]),
    };
    let rows = c.len() / model.output_len();
    let warm: Vec<Option<&BetaState>> = start.map_or(Vec::new(), |s| s.iter().map(Some).collect());
    let Optimised {
        values,
        nominal,
        report,
        states,
    } = optimised_alpha(
        aff,
        model.relu_all(),
        domain,
        &vec![rd; rows],
        c,
        opts,
        &warm,
        None,
    )?;
    Ok(BetaBound {
        values: values.into(),
        nominal: nominal.into(),
        report,
        states,
    })
}

/// Per hidden layer and unit, whether `splits` split it (the units that carry a beta).
fn split_mask(model: &Model, splits: &[crate::split::Split]) -> Vec<Vec<bool>> {
    let aff = model.affine();
    let mut mask: Vec<Vec<bool>> = aff[..aff.len() - 1]
        .iter()
        .map(|a| vec![false; a.op.n_out()])
        .collect();
    for s in splits {
        mask[s.layer][s.unit] = true;
    }
    mask
}

/// A warm start must hold one alpha and one beta per unit of every hidden layer.
fn check_start(st: &BetaState, mask: &[Vec<bool>]) -> Result<()> {
    let nh = mask.len();
    if st.alpha.len() != nh || st.beta.len() != nh {
        return Err(DualError::Options(format!(
            "a warm start needs alpha and beta for {nh} hidden layers, got {} and {}",
            st.alpha.len(),
            st.beta.len()
        )));
    }
    for (layer, ((a, b), m)) in st.alpha.iter().zip(&st.beta).zip(mask).enumerate() {
        if a.len() != m.len() || b.len() != m.len() {
            return Err(DualError::Alpha {
                layer,
                msg: format!(
                    "a warm start needs {} alphas and betas, got {} and {}",
                    m.len(),
                    a.len(),
                    b.len()
                ),
            });
        }
    }
    Ok(())
}

/// One sub-domain of a [`beta_crown_batch`]: the node of a branch and bound.
#[derive(Debug, Clone, Copy)]
pub struct BetaNode<'a> {
    /// Bounds proven over the sub-domain with the split units clamped (as
    /// [`beta_crown`]'s `bounds`).
    pub bounds: &'a LayerBounds,
    /// The splits that define the sub-domain.
    pub splits: &'a [crate::split::Split],
    /// Where the optimiser starts (e.g. the parent node's state); `None`: CROWN's slopes
    /// and `beta = 0`.
    pub start: Option<&'a BetaState>,
    /// A proven lower bound the caller already has for the objective over this
    /// sub-domain (e.g. CROWN's over `bounds`; `-inf` if none): the result is never below
    /// it, and it is not recomputed.
    pub floor: f64,
}

/// [`beta_crown_from`] for many sub-domains of one input set at once, one objective row
/// `c` (`n_out` weights) each: the nodes' rows are optimised together, so every
/// gradient step is one product per layer over all the nodes (a GEMM: the
/// branch-and-bound batching of alpha,beta-CROWN, Wang et al. 2021) instead of one
/// matrix-vector product per node. Each node's row is optimised exactly as on its own
/// (its own alpha, beta and Adam moments), except that the batch stops when every row
/// has stopped improving or after `opts.iterations` steps. Proven values: J at each
/// node's best alpha and beta, evaluated as [`beta_crown`]'s, never below the node's
/// floor. One [`BetaBound`] (one row) per node, in order; the report's steps and stop
/// are the batch's.
///
/// Errors: as [`beta_crown_from`] for any node (naming the node for a bad start).
pub fn beta_crown_batch(
    model: &Model,
    domain: &InputDomain,
    c: impl network::AsVector,
    nodes: &[BetaNode<'_>],
    opts: &AlphaOptions,
) -> Result<Vec<BetaBound>> {
    let c = c.as_values();
    let n_out = model.output_len();
    let one = objective_rows(DMatrixView::from_slice(c, 1, c.len()), n_out)?;
    model.check_input(&domain.x)?;
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let aff = model.affine();
    let nh = aff.len() - 1;
    let mut masks = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        node.bounds.validate(model)?;
        crate::split::check_splits(model, node.splits)?;
        let mask = split_mask(model, node.splits);
        if let Some(st) = node.start {
            check_start(st, &mask)
                .map_err(|e| DualError::Options(format!("node {i} of the batch: {e}")))?;
        }
        masks.push(mask);
    }
    let rd: Vec<RowDomain<'_>> = nodes
        .iter()
        .zip(&masks)
        .map(|(node, mask)| RowDomain {
            hidden: (&node.bounds.lower[..nh], &node.bounds.upper[..nh]),
            mask: (!node.splits.is_empty()).then_some(&mask[..]),
        })
        .collect();
    let rows_c: Vec<f64> = one
        .iter()
        .copied()
        .cycle()
        .take(n_out * nodes.len())
        .collect();
    let warm: Vec<Option<&BetaState>> = nodes.iter().map(|n| n.start).collect();
    let floor: Vec<f64> = nodes.iter().map(|n| n.floor).collect();
    let o = optimised_alpha(
        aff,
        model.relu_all(),
        domain,
        &rd,
        &rows_c,
        opts,
        &warm,
        Some(&floor),
    )?;
    Ok(o.states
        .into_iter()
        .enumerate()
        .map(|(r, state)| BetaBound {
            values: DVector::from_element(1, o.values[r]),
            nominal: DVector::from_element(1, o.nominal[r]),
            report: AlphaReport {
                steps: o.report.steps,
                stop: o.report.stop,
                start: DVector::from_element(1, o.report.start[r]),
                best: DVector::from_element(1, o.report.best[r]),
            },
            states: vec![state],
        })
        .collect())
}

/// Where beta-CROWN's optimiser ended for one objective row: the best alpha (per unit of
/// each hidden layer, in `[0, 1]`; entries of stable units unused) and beta (per unit of
/// each hidden layer, `>= 0`, nonzero only at split units). A start for
/// [`beta_crown_from`]; not a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct BetaState {
    /// `alpha[t][j]`: unit j of hidden layer t.
    pub alpha: Vec<Vec<f64>>,
    /// `beta[t][j]`: unit j of hidden layer t.
    pub beta: Vec<Vec<f64>>,
}

/// The bounds of [`beta_crown`], one per row of the objective matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct BetaBound {
    /// Proven lower bounds on `c^T zhat_k` over the sub-domain of the splits.
    pub values: DVector<f64>,
    /// The floating-point J they were derived from (not bounds).
    pub nominal: DVector<f64>,
    /// What the optimiser of alpha and beta did.
    pub report: AlphaReport,
    /// Per row, the alpha and beta the values were proven at (a warm start for a
    /// sub-domain's [`beta_crown_from`]).
    pub states: Vec<BetaState>,
}

/// What the optimiser sees of one objective row: the proven bounds of the hidden layers
/// over the row's (sub-)domain and, for beta-CROWN, which units carry a split multiplier
/// `beta >= 0` (see [`crate::objective::objective_over_beta`]). The rows of one call may
/// have different domains (the nodes of a branch-and-bound batch,
/// [`beta_crown_batch`]): each pass is still one product per layer over all rows.
#[derive(Clone, Copy)]
struct RowDomain<'a> {
    hidden: (&'a [DVector<f64>], &'a [DVector<f64>]),
    mask: Option<&'a [Vec<bool>]>,
}

impl RowDomain<'_> {
    /// The bounds of hidden layer `t`.
    fn bounds(&self, t: usize) -> (&DVector<f64>, &DVector<f64>) {
        (&self.hidden.0[t], &self.hidden.1[t])
    }

    /// Whether unit `j` of hidden layer `t` carries a split multiplier.
    fn split(&self, t: usize, j: usize) -> bool {
        self.mask.is_some_and(|m| m[t][j])
    }

    /// Whether `o` reads the very same bounds (not merely equal ones).
    fn same_bounds(&self, o: &RowDomain<'_>) -> bool {
        std::ptr::eq(self.hidden.0, o.hidden.0) && std::ptr::eq(self.hidden.1, o.hidden.1)
    }
}

/// alpha-CROWN on the final objective: per row, projected Adam on the floating-point J
/// from CROWN's slopes, then the proven J at the best alpha found (or the floor, if that
/// is higher).
///
/// `rd`: one [`RowDomain`] per row of `c` (beta-CROWN where a row has a mask: its
/// multipliers optimised jointly with alpha from 0, projected onto `beta >= 0`). `warm`:
/// empty, or a start per row (`None`: CROWN's slopes and `beta = 0`; see
/// [`beta_crown_from`]). `floor`: per row, a proven value the caller already has (e.g.
/// CROWN's over the same bounds); `None`: CROWN's proven J is computed here (once per
/// run of rows that share their bounds).
#[allow(clippy::too_many_arguments)]
fn optimised_alpha(
    aff: &[Affine],
    relu: &[usize],
    domain: &InputDomain,
    rd: &[RowDomain<'_>],
    c: &[f64],
    opts: &AlphaOptions,
    warm: &[Option<&BetaState>],
    floor: Option<&[f64]>,
) -> Result<Optimised> {
    let n_out = aff[aff.len() - 1].op.n_out();
    let rows = c.len() / n_out;
    debug_assert_eq!(rd.len(), rows);
    debug_assert!(warm.is_empty() || warm.len() == rows);
    debug_assert!(floor.is_none_or(|f| f.len() == rows));
    let start_of = |r: usize| warm.get(r).copied().flatten();
    // Runs of rows with the same bounds share CROWN's slopes (and floor).
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for r in 0..rows {
        match runs.last_mut() {
            Some(run) if rd[run.start].same_bounds(&rd[r]) => run.end = r + 1,
            _ => runs.push(r..r + 1),
        }
    }
    let mut run_of = vec![0; rows];
    for (g, run) in runs.iter().enumerate() {
        run_of[run.clone()].fill(g);
    }
    let crown: Vec<Vec<Vec<f64>>> = runs
        .iter()
        .map(|run| crown_slope_rows(rd[run.start].hidden.0, rd[run.start].hidden.1))
        .collect();
    let (floor_values, floor_nominal) = match floor {
        Some(f) => (f.to_vec(), vec![f64::NEG_INFINITY; rows]),
        None => {
            let (mut v, mut n) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
            for (run, slopes) in runs.iter().zip(&crown) {
                let (a, b) = objective_over(
                    aff,
                    relu,
                    domain.center.as_slice(),
                    domain.radius.as_slice(),
                    rd[run.start].hidden,
                    &c[run.start * n_out..run.end * n_out],
                    Some(slopes),
                )?;
                v.extend(a);
                n.extend(b);
            }
            (v, n)
        }
    };
    let any_unstable = rd.iter().any(|row| {
        row.hidden
            .0
            .iter()
            .zip(row.hidden.1)
            .zip(relu)
            .any(|((l, u), &r)| {
                l.iter()
                    .zip(u)
                    .take(r)
                    .any(|(&l, &u)| stability(l, u) == Stability::Unstable)
            })
    });
    let any_split = rd.iter().any(|row| row.mask.is_some());
    if floor.is_none() && ((!any_unstable && !any_split) || opts.iterations == 0) {
        let stop = if any_unstable {
            AlphaStop::Iterations
        } else {
            AlphaStop::NothingToOptimise
        };
        let states = (0..rows)
            .map(|r| {
                let a = &crown[run_of[r]];
                BetaState {
                    alpha: a.clone(),
                    beta: a.iter().map(|a| vec![0.0; a.len()]).collect(),
                }
            })
            .collect();
        return Ok(Optimised {
            values: floor_values,
            nominal: floor_nominal.clone(),
            report: AlphaReport {
                steps: 0,
                stop,
                start: floor_nominal.clone().into(),
                best: floor_nominal.into(),
            },
            states,
        });
    }
    let widths: Vec<usize> = crown[0].iter().map(|a| a.len()).collect();
    // alpha[t][r * n_t + j]: unit j of hidden layer t for row r (the column layout of
    // the batched passes): CROWN's slopes, or the warm start's projected onto [0, 1].
    let mut alpha: Vec<Vec<f64>> = widths
        .iter()
        .enumerate()
        .map(|(t, &n)| {
            let mut a = Vec::with_capacity(rows * n);
            for r in 0..rows {
                let crown_t = &crown[run_of[r]][t];
                a.extend((0..n).map(|j| {
                    start_of(r).map_or(crown_t[j], |w| {
                        let v = w.alpha[t][j];
                        if v.is_finite() {
                            v.clamp(0.0, 1.0)
                        } else {
                            crown_t[j]
                        }
                    })
                }));
            }
            a
        })
        .collect();
    let mut best_alpha = alpha.clone();
    // beta[t][r * n_t + j], 0 where the row's mask is off (and kept there); the warm
    // start's projected onto beta >= 0 where it is on.
    let mut beta: Option<Vec<Vec<f64>>> = any_split.then(|| {
        widths
            .iter()
            .enumerate()
            .map(|(t, &n)| {
                (0..rows)
                    .flat_map(|r| {
                        (0..n).map(move |j| match start_of(r) {
                            Some(w) if rd[r].split(t, j) => {
                                let b = w.beta[t][j];
                                if b.is_finite() {
                                    b.max(0.0)
                                } else {
                                    0.0
                                }
                            }
                            _ => 0.0,
                        })
                    })
                    .collect()
            })
            .collect()
    });
    let mut best_beta = beta.clone();
    let (mut b1m, mut b2m): (Vec<Vec<f64>>, Vec<Vec<f64>>) = match &beta {
        Some(b) => (
            b.iter().map(|v| vec![0.0; v.len()]).collect(),
            b.iter().map(|v| vec![0.0; v.len()]).collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let mut best = vec![f64::NEG_INFINITY; rows];
    let mut start = Vec::new();
    let mut since_gain = vec![0usize; rows];
    let mut m1: Vec<Vec<f64>> = alpha.iter().map(|a| vec![0.0; a.len()]).collect();
    let mut m2 = m1.clone();
    // Adam without its epsilon: the step `m / sqrt(v)` is then invariant under a scaling
    // of J (an absolute epsilon stalled the optimiser on networks of small output scale);
    // a 0/0 step (a zero gradient so far) is skipped as non-finite below.
    let (b1, b2) = (0.9f64, 0.999f64);
    let mut lr = opts.lr;
    let mut steps = 0;
    let mut stop = AlphaStop::Iterations;
    for it in 0..=opts.iterations {
        let Pass { j, grad, grad_beta } =
            value_and_gradient(aff, relu, domain, rd, c, rows, &alpha, beta.as_deref());
        if it == 0 {
            start = j.clone();
        }
        for r in 0..rows {
            let gain = if best[r].is_finite() {
                best[r] + opts.rel_tol * best[r].abs().max(start[r].abs())
            } else {
                best[r]
            };
            if j[r].is_finite() && j[r] > gain {
                since_gain[r] = 0;
            } else {
                since_gain[r] += 1;
            }
            if j[r].is_finite() && j[r] > best[r] {
                best[r] = j[r];
                for (ba, a) in best_alpha.iter_mut().zip(&alpha) {
                    let n = a.len() / rows;
                    ba[r * n..(r + 1) * n].copy_from_slice(&a[r * n..(r + 1) * n]);
                }
                if let (Some(bb), Some(b)) = (best_beta.as_mut(), beta.as_ref()) {
                    for (bb, b) in bb.iter_mut().zip(b) {
                        let n = b.len() / rows;
                        bb[r * n..(r + 1) * n].copy_from_slice(&b[r * n..(r + 1) * n]);
                    }
                }
            }
        }
        if it == opts.iterations {
            break;
        }
        if since_gain.iter().all(|&s| s > opts.patience) {
            stop = AlphaStop::Converged;
            break;
        }
        // Projected Adam ascent.
        steps += 1;
        let t = steps as i32;
        let adam = Adam {
            b1,
            b2,
            c1: 1.0 - b1.powi(t),
            c2: 1.0 - b2.powi(t),
            lr,
        };
        for ((a, g), (p, q)) in alpha
            .iter_mut()
            .zip(&grad)
            .zip(m1.iter_mut().zip(m2.iter_mut()))
        {
            for i in 0..a.len() {
                if let Some(step) = adam.step(g[i], &mut p[i], &mut q[i]) {
                    a[i] = (a[i] + step).clamp(0.0, 1.0);
                }
            }
        }
        if let Some(b) = beta.as_mut() {
            for (t, ((b, g), (p, q))) in b
                .iter_mut()
                .zip(&grad_beta)
                .zip(b1m.iter_mut().zip(b2m.iter_mut()))
                .enumerate()
            {
                let n = widths[t];
                for i in 0..b.len() {
                    if !rd[i / n].split(t, i % n) {
                        continue;
                    }
                    if let Some(step) = adam.step(g[i], &mut p[i], &mut q[i]) {
                        b[i] = (b[i] + step).max(0.0);
                    }
                }
            }
        }
        lr *= opts.lr_decay;
    }
    // Row r's part of a per-layer vector in the batched layout.
    let row_of = |v: &[Vec<f64>], r: usize| -> Vec<Vec<f64>> {
        v.iter()
            .map(|a| {
                let n = a.len() / rows;
                a[r * n..(r + 1) * n].to_vec()
            })
            .collect()
    };
    // The proven J of each row at its best alpha (and beta).
    let proven: Vec<Result<f64>> = (0..rows)
        .into_par_iter()
        .map(|r| {
            let a_r = row_of(&best_alpha, r);
            let b_r = best_beta.as_deref().map(|b| row_of(b, r));
            let (v, _) = objective_over_beta(
                aff,
                relu,
                domain.center.as_slice(),
                domain.radius.as_slice(),
                rd[r].hidden,
                &c[r * n_out..(r + 1) * n_out],
                Some(&a_r),
                b_r.as_deref(),
            )?;
            Ok(v[0])
        })
        .collect();
    // A row whose re-evaluation fails (an overflow at the optimised alpha) keeps the
    // floor's proven value.
    let values: Vec<f64> = proven
        .into_iter()
        .enumerate()
        .map(|(r, p)| p.map_or(floor_values[r], |v| v.max(floor_values[r])))
        .collect();
    let nominal = best
        .iter()
        .zip(&floor_nominal)
        .map(|(b, c)| b.max(*c))
        .collect();
    let states = (0..rows)
        .map(|r| BetaState {
            alpha: row_of(&best_alpha, r),
            beta: match &best_beta {
                Some(b) => row_of(b, r),
                None => widths.iter().map(|&n| vec![0.0; n]).collect(),
            },
        })
        .collect();
    Ok(Optimised {
        values,
        nominal,
        report: AlphaReport {
            steps,
            stop,
            start: start.into(),
            best: best.into(),
        },
        states,
    })
}

/// One step of Adam (without epsilon) at step count `t`: `c1 = 1 - b1^t`, `c2 = 1 - b2^t`.
struct Adam {
    b1: f64,
    b2: f64,
    c1: f64,
    c2: f64,
    lr: f64,
}

impl Adam {
    /// Updates the moments `p, q` with gradient `g` (0 if not finite) and returns the
    /// ascent step, or `None` when it is not finite (a 0/0 before any gradient).
    fn step(&self, g: f64, p: &mut f64, q: &mut f64) -> Option<f64> {
        let g = if g.is_finite() { g } else { 0.0 };
        *p = self.b1 * *p + (1.0 - self.b1) * g;
        *q = self.b2 * *q + (1.0 - self.b2) * g * g;
        let step = self.lr * (*p / self.c1) / (*q / self.c2).sqrt();
        step.is_finite().then_some(step)
    }
}

/// What [`optimised_alpha`] returns: per row, the proven J, the nominal J it came from,
/// and the optimiser's report.
struct Optimised {
    values: Vec<f64>,
    nominal: Vec<f64>,
    report: AlphaReport,
    /// Per row, the alpha and beta behind `values`.
    states: Vec<BetaState>,
}

/// What [`value_and_gradient`] returns: the nominal J per row, its gradient in alpha
/// (the layout of alpha) and in beta (the layout of beta; empty without beta).
struct Pass {
    j: Vec<f64>,
    grad: Vec<Vec<f64>>,
    grad_beta: Vec<Vec<f64>>,
}

/// Floating-point J (eq. 6) per row and its gradient with respect to every row's alpha
/// (the same layout as `alpha`): the backward pass of the dual network, then its adjoint
/// forwards (`d J / d nu_{t}` from the input side), written out by hand.
///
/// `beta` (beta-CROWN's multipliers, the layout of `alpha`; see
/// [`crate::objective::objective_over_beta`]): `nu_j += beta_j` at units on,
/// `nu_j = -beta_j` at units off; its gradient is the third value (empty without beta).
#[allow(clippy::too_many_arguments)]
fn value_and_gradient(
    aff: &[Affine],
    relu: &[usize],
    domain: &InputDomain,
    rd: &[RowDomain<'_>],
    c: &[f64],
    rows: usize,
    alpha: &[Vec<f64>],
    beta: Option<&[Vec<f64>]>,
) -> Pass {
    let n_layers = aff.len();
    let mut j = vec![0.0; rows];
    // nuhat[t] = W_t^T nu_out[t], column-major over rows.
    let mut nuhat: Vec<Vec<f64>> = vec![Vec::new(); n_layers];
    let mut nu: Vec<f64> = c.iter().map(|v| -v).collect();
    for t in (0..n_layers).rev() {
        let a = &aff[t];
        let (ni, no) = (a.op.n_in(), a.op.n_out());
        for (r, col) in nu.chunks(no).enumerate() {
            j[r] -= col.iter().zip(&a.bias).map(|(v, b)| v * b).sum::<f64>();
        }
        let mut nh = vec![0.0; ni * rows];
        a.op.apply_transpose(&nu, rows, &mut nh);
        if t == 0 {
            for (r, col) in nh.chunks(ni).enumerate() {
                j[r] -= col
                    .iter()
                    .zip(&domain.center)
                    .zip(&domain.radius)
                    .map(|((v, x), rad)| x * v + rad * v.abs())
                    .sum::<f64>();
            }
        } else {
            let al = &alpha[t - 1];
            let be = beta.map(|b| &b[t - 1]);
            let mut next = vec![0.0; ni * rows];
            for (r, (col, out)) in nh.chunks(ni).zip(next.chunks_mut(ni)).enumerate() {
                let (l, u) = rd[r].bounds(t - 1);
                for k in 0..ni {
                    let v = col[k];
                    let rel = Relaxation::of(relu[t - 1], k, l[k], u[k]);
                    if rel.stability == Stability::Unstable {
                        j[r] += l[k] * rel.upper_slope() * v.max(0.0);
                    }
                    let b = be.map_or(0.0, |b| b[r * ni + k]);
                    out[k] = match rel.stability {
                        Stability::On => v + b,
                        Stability::Off => -b,
                        _ => rel.dual(v, al[r * ni + k]),
                    };
                }
            }
            nu = next;
        }
        nuhat[t] = nh;
    }
    // Adjoint: g = dJ/dnuhat_0, then dJ/dnu_out[t] = W_t (dJ/dnuhat_t) - b_t, and through
    // the ReLU's dual map D to dJ/dnuhat_{t+1}.
    let n0 = aff[0].op.n_in();
    let mut gh: Vec<f64> = Vec::with_capacity(n0 * rows);
    for col in nuhat[0].chunks(n0) {
        for (k, v) in col.iter().enumerate() {
            let s = if *v > 0.0 {
                1.0
            } else if *v < 0.0 {
                -1.0
            } else {
                0.0
            };
            gh.push(-domain.center[k] - domain.radius[k] * s);
        }
    }
    let mut grad: Vec<Vec<f64>> = alpha.iter().map(|a| vec![0.0; a.len()]).collect();
    let mut grad_beta: Vec<Vec<f64>> = match beta {
        Some(b) => b.iter().map(|v| vec![0.0; v.len()]).collect(),
        None => Vec::new(),
    };
    for t in 0..n_layers - 1 {
        let a = &aff[t];
        let no = a.op.n_out();
        let mut gout = vec![0.0; no * rows];
        a.op.apply(&gh, rows, &mut gout);
        for col in gout.chunks_mut(no) {
            for (g, b) in col.iter_mut().zip(&a.bias) {
                *g -= b;
            }
        }
        // nu_out[t] = D(nuhat[t + 1]) over hidden layer t.
        let al = &alpha[t];
        let v_all = &nuhat[t + 1];
        let mut next = vec![0.0; no * rows];
        for (r, row) in rd.iter().enumerate().take(rows) {
            let (l, u) = row.bounds(t);
            for k in 0..no {
                let idx = r * no + k;
                let (g, v) = (gout[idx], v_all[idx]);
                let rel = Relaxation::of(relu[t], k, l[k], u[k]);
                if beta.is_some() {
                    // d nu_out / d beta: +1 at a unit on, -1 at a unit off.
                    match rel.stability {
                        Stability::On => grad_beta[t][idx] = g,
                        Stability::Off => grad_beta[t][idx] = -g,
                        _ => {}
                    }
                }
                next[idx] = match rel.stability {
                    Stability::Off => 0.0,
                    Stability::On | Stability::Linear => g,
                    Stability::Unstable => {
                        let d = rel.upper_slope();
                        if v > 0.0 {
                            g * d + l[k] * d
                        } else if v < 0.0 {
                            grad[t][idx] = g * v;
                            g * al[idx]
                        } else {
                            0.0
                        }
                    }
                };
            }
        }
        gh = next;
    }
    Pass { j, grad, grad_beta }
}

/// Whether `method` certifies class `y` at `domain`: every proven margin
/// `J(e_y - e_t) > 0` for `t != y` (see [`crate::certifies`]).
pub fn certify_with(
    model: &Model,
    domain: &InputDomain,
    y: usize,
    method: Method,
    opts: &AlphaOptions,
) -> Result<MethodBound> {
    let n = model.output_len();
    if n < 2 {
        return Err(DualError::NoTargets { n_out: n });
    }
    let c = crate::objective::margin_objectives(n, y)?;
    bound_with_method(model, domain, &c, method, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use network::{Architecture, Init};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The hand-written gradient of J in alpha equals central differences of the
    /// nominal J that `objective_over` computes (a different code path), to 1e-6
    /// relative: J is piecewise linear in each alpha with kinks only where a `nuhat`
    /// changes sign, which a step of 1e-7 rarely crosses.
    #[test]
    fn batches_are_bounded_in_entries_and_units() {
        assert_eq!(units_per_batch(1000, 21), 1000);
        assert_eq!(units_per_batch(3136, 21), 334);
        assert_eq!(units_per_batch(3136, 20), 167);
        assert_eq!(units_per_batch(1 << 22, 21), 1);
        assert_eq!(units_per_batch(0, 21), 1);
    }

    /// Rows with bounds of their own (`beta_crown_batch`'s nodes) and no floor given:
    /// each row's CROWN floor, start and value are those of the row alone, also for two
    /// rows that share their lower bounds but not their upper ones (the bounds need not be
    /// valid here: the optimiser's arithmetic is compared, not soundness).
    #[test]
    fn rows_with_their_own_bounds_are_each_their_own_problem() {
        let model = Architecture::mlp(&[3, 8, 8, 8, 2])
            .init(Init::Paper, 2)
            .unwrap();
        let dom = InputDomain::new([0.1, -0.2, 0.3], 0.2, None).unwrap();
        let wide = InputDomain::new([0.1, -0.2, 0.3], 0.6, None).unwrap();
        let (b1, b2) = (
            crown_bounds(&model, &dom).unwrap(),
            crown_bounds(&model, &wide).unwrap(),
        );
        let aff = model.affine();
        let nh = aff.len() - 1;
        let rd = [
            RowDomain {
                hidden: (&b1.lower[..nh], &b1.upper[..nh]),
                mask: None,
            },
            RowDomain {
                hidden: (&b1.lower[..nh], &b2.upper[..nh]),
                mask: None,
            },
            RowDomain {
                hidden: (&b2.lower[..nh], &b2.upper[..nh]),
                mask: None,
            },
        ];
        let c = [1.0, -1.0];
        let c3: Vec<f64> = c.iter().copied().cycle().take(6).collect();
        for iterations in [0, 5] {
            let opts = AlphaOptions {
                iterations,
                patience: 100,
                ..AlphaOptions::default()
            };
            let all =
                optimised_alpha(aff, model.relu_all(), &dom, &rd, &c3, &opts, &[], None).unwrap();
            for (r, row) in rd.iter().enumerate() {
                let alone =
                    optimised_alpha(aff, model.relu_all(), &dom, &[*row], &c, &opts, &[], None)
                        .unwrap();
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
                assert!(
                    close(all.values[r], alone.values[0])
                        && close(all.report.start[r], alone.report.start[0]),
                    "{iterations} steps, row {r}: {} / {} vs alone {} / {}",
                    all.values[r],
                    all.report.start[r],
                    alone.values[0],
                    alone.report.start[0]
                );
            }
        }
        // The three rows are different problems (else the test could not tell them apart).
        let one = |row: RowDomain<'_>| {
            optimised_alpha(
                aff,
                model.relu_all(),
                &dom,
                &[row],
                &c,
                &AlphaOptions {
                    iterations: 0,
                    ..AlphaOptions::default()
                },
                &[],
                None,
            )
            .unwrap()
            .values[0]
        };
        let v: Vec<f64> = rd.iter().map(|row| one(*row)).collect();
        assert!(v[0] != v[1] && v[1] != v[2] && v[0] != v[2], "{v:?}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut checked = 0;
        for seed in 0..4 {
            let model = Architecture::mlp(&[3, 8, 8, 8, 2])
                .init(Init::Paper, seed)
                .unwrap();
            let x: Vec<f64> = (0..3).map(|_| rng.random()).collect();
            let dom = InputDomain::new(&x, 0.3, None).unwrap();
            let b = crown_bounds(&model, &dom).unwrap();
            let aff = model.affine();
            let nh = aff.len() - 1;
            let hidden = (&b.lower[..nh], &b.upper[..nh]);
            let rd = RowDomain { hidden, mask: None };
            let c = [1.0, -1.0];
            let alpha: Vec<Vec<f64>> = b.lower[..nh]
                .iter()
                .map(|l| l.iter().map(|_| rng.random_range(0.1..0.9)).collect())
                .collect();
            let Pass { j, grad, .. } =
                value_and_gradient(aff, model.relu_all(), &dom, &[rd], &c, 1, &alpha, None);
            let (_, nominal) = objective_over(
                aff,
                model.relu_all(),
                dom.center.as_slice(),
                dom.radius.as_slice(),
                hidden,
                &c,
                Some(&alpha),
            )
            .unwrap();
            assert!((j[0] - nominal[0]).abs() <= 1e-12 * nominal[0].abs().max(1.0));
            for t in 0..nh {
                for k in 0..alpha[t].len() {
                    if stability(b.lower[t][k], b.upper[t][k]) != Stability::Unstable {
                        assert_eq!(grad[t][k], 0.0);
                        continue;
                    }
                    let h = 1e-7;
                    let mut ap = alpha.clone();
                    ap[t][k] += h;
                    let mut am = alpha.clone();
                    am[t][k] -= h;
                    let f = |a: &Vec<Vec<f64>>| {
                        objective_over(
                            aff,
                            model.relu_all(),
                            dom.center.as_slice(),
                            dom.radius.as_slice(),
                            hidden,
                            &c,
                            Some(a),
                        )
                        .unwrap()
                        .1[0]
                    };
                    let fd = (f(&ap) - f(&am)) / (2.0 * h);
                    assert!(
                        (fd - grad[t][k]).abs() <= 1e-6 * fd.abs().max(1.0),
                        "seed {seed} layer {t} unit {k}: gradient {} vs {fd}",
                        grad[t][k]
                    );
                    checked += usize::from(grad[t][k] != 0.0);
                }
            }
        }
        assert!(
            checked > 10,
            "only {checked} non-zero gradient entries checked"
        );
    }

    /// The gradient in beta (beta-CROWN's multipliers, at stable units: `+1` on, `-1`
    /// off, times dJ/dnu) equals central differences of the nominal J of
    /// `objective_over_beta` (J is linear in each beta until a `nuhat` changes sign), and
    /// the value with beta matches it.
    #[test]
    fn beta_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut checked = [0usize; 2];
        for seed in 0..4 {
            let model = Architecture::mlp(&[3, 8, 8, 8, 2])
                .init(Init::Paper, seed)
                .unwrap();
            let x: Vec<f64> = (0..3).map(|_| rng.random()).collect();
            let dom = InputDomain::new(&x, 0.3, None).unwrap();
            let b = crown_bounds(&model, &dom).unwrap();
            let aff = model.affine();
            let nh = aff.len() - 1;
            let hidden = (&b.lower[..nh], &b.upper[..nh]);
            let c = [1.0, -1.0];
            let alpha = crown_slope_rows(hidden.0, hidden.1);
            let beta: Vec<Vec<f64>> = b.lower[..nh]
                .iter()
                .map(|l| l.iter().map(|_| rng.random_range(0.01..0.5)).collect())
                .collect();
            let Pass {
                j, grad_beta: grad, ..
            } = value_and_gradient(
                aff,
                model.relu_all(),
                &dom,
                &[RowDomain { hidden, mask: None }],
                &c,
                1,
                &alpha,
                Some(&beta),
            );
            let f = |bt: &Vec<Vec<f64>>| {
                objective_over_beta(
                    aff,
                    model.relu_all(),
                    dom.center.as_slice(),
                    dom.radius.as_slice(),
                    hidden,
                    &c,
                    Some(&alpha),
                    Some(bt),
                )
                .unwrap()
                .1[0]
            };
            assert!((j[0] - f(&beta)).abs() <= 1e-12 * j[0].abs().max(1.0));
            for t in 0..nh {
                for k in 0..beta[t].len() {
                    let st = stability(b.lower[t][k], b.upper[t][k]);
                    if st == Stability::Unstable {
                        assert_eq!(grad[t][k], 0.0);
                        continue;
                    }
                    let h = 1e-7;
                    let mut bp = beta.clone();
                    bp[t][k] += h;
                    let mut bm = beta.clone();
                    bm[t][k] -= h;
                    let fd = (f(&bp) - f(&bm)) / (2.0 * h);
                    assert!(
                        (fd - grad[t][k]).abs() <= 1e-6 * fd.abs().max(1.0),
                        "seed {seed} layer {t} unit {k} ({st:?}): gradient {} vs {fd}",
                        grad[t][k]
                    );
                    if grad[t][k] != 0.0 {
                        checked[usize::from(st == Stability::Off)] += 1;
                    }
                }
            }
        }
        assert!(
            checked[0] > 5 && checked[1] > 5,
            "non-zero beta gradients checked (on, off): {checked:?}"
        );
    }
}
