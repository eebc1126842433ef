//! `verify`: does a network satisfy a VNNLIB property (the VNN-COMP question)?
//!
//! A property names input boxes and, for each, an unsafe output region (a disjunction of
//! conjunctions of linear constraints `c . Y <= rhs`); it holds (`unsat`) when no input
//! of a box reaches its region. The verifier
//!
//! 1. **falsifies** ([`falsify`]): the centre, the corners and PGD with random restarts
//!    on each conjunction; a point counts only when exact arithmetic confirms it is in
//!    the file's exact box and reaches every constraint (`sat`, with the witness);
//! 2. **proves**: a conjunction is excluded on a box when one of its constraints has a
//!    proven lower bound of `c . f(x)` above its right-hand side (rounded up). Bounds
//!    come from the f64 methods of the `dual` crate in increasing cost: interval (IBP),
//!    CROWN, optimised alpha (alpha-CROWN); every value they return is proven (their
//!    rounding errors are bounded; DESIGN.md); then, on the whole box, LP (19) over
//!    CROWN's intermediate bounds (`lp-last`) and, by option, over LP-all bounds
//!    (`lp-all`), each row's value the *proven* lower end of the LP's enclosure
//!    (`lp::solve_verified`: the Neumaier-Shcherbina bound from the solver's
//!    multipliers, or the dual `J`), raised to the ladder's best proven bound (alpha's J
//!    is a dual point of the same LP), never the solver's number. When the whole box is not decided, it is
//!    split in two along its widest coordinate (relative to the property's box), and
//!    each half bounded with CROWN and falsified from its centre, depth first, in
//!    parallel batches, until every half is excluded (`unsat`), a counterexample is
//!    confirmed (`sat`), or the time runs out (`timeout`); with splitting off, what is
//!    left is `unknown`.
//!
//! Splitting the input box is complete only in the limit and practical for
//! low-dimensional inputs (ACAS Xu: 5); deep in it, and on boxes too wide to split (see
//! [`ReluSplit`]), branch and bound on ReLU splits (crate `exact`: beta-CROWN at its
//! nodes, LP (19) where exact) decides what the input split cannot. On a box with more
//! than [`AUTO_LP_DIMS`] coordinates of positive width ([`ReluSplit::Auto`]) it replaces
//! input splitting: after every conjunction's ladder, over the whole box, the open
//! conjunctions in turn with equal shares of the time left.

pub mod error;
pub mod falsify;
pub mod suite;

use network::DVector;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dual::{
    bound_given, bound_with_method, method_bounds, split_bounds, AlphaOptions, InputDomain, Method,
    SplitBounds,
};
use network::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use vnnlib::{OutputConstraint, Property};

pub use error::{Result, VerifyError};
pub use falsify::{confirms, falsify, falsify_from, line_minimum, FalsifyOptions};
pub use network::value_and_gradient;

/// Settings of [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Wall-clock budget for the whole property.
    pub timeout: Duration,
    /// Seed of the random restarts.
    pub seed: u64,
    pub falsify: FalsifyOptions,
    /// The optimiser of `alpha` (on the property's whole box).
    pub alpha: AlphaOptions,
    /// Split the input box when the whole box is not decided.
    pub split: bool,
    /// Boxes bounded per parallel batch while splitting.
    pub batch: usize,
    /// Branch and bound on ReLU splits (crate `exact`, beta-CROWN then LP (19) at its
    /// nodes) for a box that CROWN does not exclude once it is deep enough (see
    /// [`ReluSplit`]), and every `relu_split_every` levels below. Near a point where a
    /// constraint is tight the input boxes otherwise shrink without end.
    pub relu_split: ReluSplit,
    /// See `relu_split`.
    pub relu_split_every: usize,
    /// Nodes per branch and bound (per constraint row and box).
    pub relu_split_nodes: usize,
    /// beta-CROWN (Wang et al. 2021) at the split nodes of that branch and bound (see
    /// `exact::BabOptions::beta`); false: CROWN, then LP (19).
    pub relu_split_beta: bool,
    /// The whole-box branch and bound ([`ReluSplit::Auto`] on wide boxes) starts from
    /// alpha-CROWN's optimised intermediate bounds of the box (`dual::alpha_bounds`, with
    /// `alpha`'s settings; computed once per box) instead of CROWN's.
    pub whole_box_alpha: bool,
    /// LP (19) on the whole box after alpha (see [`LpRung`]).
    pub lp: LpRung,
    /// LP (19) is skipped (and said so in the root bounds) when it would have more
    /// variables than this.
    pub lp_max_vars: usize,
}

/// When `verify` starts branch and bound on ReLU splits inside the input splitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReluSplit {
    /// Never.
    Off,
    /// At depth [`AUTO_RELU_SPLIT_DEPTH`] on boxes with at most [`AUTO_LP_DIMS`]
    /// coordinates of positive width; on wider ones (MNIST: 784 inputs) over the whole
    /// box instead of input splitting (see [`ReluSplit::whole_box`]). On ACAS Xu (5
    /// inputs) it decides the three unsat instances whose boxes otherwise shrink without
    /// end (session 16: 186 of 186 against 183 without).
    Auto,
    /// At this depth of the input splitting (0: from the whole box).
    Depth(usize),
}

/// The depth of [`ReluSplit::Auto`].
pub const AUTO_RELU_SPLIT_DEPTH: usize = 20;

impl ReluSplit {
    /// The depth at which a case whose box has `wide` coordinates of positive width
    /// starts the ReLU branch and bound (`None`: never).
    pub fn depth(&self, wide: usize) -> Option<usize> {
        match *self {
            ReluSplit::Off => None,
            ReluSplit::Auto => (wide <= AUTO_LP_DIMS).then_some(AUTO_RELU_SPLIT_DEPTH),
            ReluSplit::Depth(d) => Some(d),
        }
    }

    /// Whether a case whose box has `wide` coordinates of positive width gets branch and
    /// bound on ReLU splits over its whole box instead of input splitting
    /// ([`ReluSplit::Auto`] on boxes wider than [`AUTO_LP_DIMS`]).
    pub fn whole_box(&self, wide: usize) -> bool {
        *self == ReluSplit::Auto && wide > AUTO_LP_DIMS
    }

    /// The setting as results files name it: `off`, `auto` or the depth.
    pub fn word(&self) -> String {
        match self {
            ReluSplit::Off => "off".into(),
            ReluSplit::Auto => "auto".into(),
            ReluSplit::Depth(d) => d.to_string(),
        }
    }
}

/// LP-all is left out (and the property answers `timeout`) when the time left gives each
/// of its LPs less than this many seconds.
pub const LP_ALL_MIN_SECONDS: f64 = 0.05;

/// [`LpRung::Auto`] runs LP-last on boxes with more coordinates of positive width than
/// this (the falsifier's corner limit: beyond it input splitting is hopeless).
pub const AUTO_LP_DIMS: usize = 12;

/// How far up the ladder LP (19) goes on the property's whole box, after alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LpRung {
    /// No LP.
    Off,
    /// LP-last where input splitting is not the next step: with splitting off, or a box
    /// with more than [`AUTO_LP_DIMS`] coordinates of positive width. On ACAS Xu (5
    /// inputs) the root LP cost 0.6 to 17 s per property and never decided what alpha
    /// had not (its proven bound was below alpha's), while splitting decides in
    /// milliseconds.
    Auto,
    /// LP-last: LP (19) over CROWN's intermediate bounds (the relaxation alpha optimises
    /// over; the LP reaches its optimum).
    Last,
    /// LP-last, then LP-all: every unstable unit's bounds by LP first (two LPs per unit,
    /// layer by layer, each with its share of the time left; left out, and the answer
    /// `timeout`, when a share would be under [`LP_ALL_MIN_SECONDS`]), then LP (19) over
    /// them.
    All,
}

impl LpRung {
    /// The rung's name in reports and results files: `off`, `auto`, `last`, `all`.
    pub fn word(&self) -> &'static str {
        match self {
            LpRung::Off => "off",
            LpRung::Auto => "auto",
            LpRung::Last => "last",
            LpRung::All => "all",
        }
    }
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            timeout: Duration::from_secs(60),
            seed: 0,
            falsify: FalsifyOptions::default(),
            alpha: AlphaOptions::default(),
            split: true,
            batch: 64,
            relu_split: ReluSplit::Auto,
            relu_split_every: 6,
            relu_split_nodes: 2000,
            relu_split_beta: true,
            whole_box_alpha: true,
            lp: LpRung::Auto,
            lp_max_vars: 50_000,
        }
    }
}

/// The number of hidden units (the outputs of every affine layer but the last).
fn hidden_units(model: &Model) -> usize {
    let aff = model.affine();
    aff[..aff.len() - 1].iter().map(|a| a.op.n_out()).sum()
}

/// The answer, in VNN-COMP's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// A confirmed counterexample: the property is violated.
    Sat,
    /// Proven: no input of any box reaches its unsafe region.
    Unsat,
    /// Neither, with splitting off (or a box that cannot be split further).
    Unknown,
    /// The time ran out first.
    Timeout,
}

impl Verdict {
    /// The word of the result file.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Sat => "sat",
            Verdict::Unsat => "unsat",
            Verdict::Unknown => "unknown",
            Verdict::Timeout => "timeout",
        }
    }
}

/// A confirmed counterexample.
#[derive(Debug, Clone, Serialize)]
pub struct Witness {
    /// Which case (input box) and conjunction it reaches.
    pub case: usize,
    pub conjunction: usize,
    /// The input (inside the file's exact box), one entry per `X_i`.
    #[serde(serialize_with = "network::vector::serialize_vector")]
    pub x: DVector<f64>,
    /// `f(x)` in f64 (the exact values confirmed every constraint), one per `Y_j`.
    #[serde(serialize_with = "network::vector::serialize_vector")]
    pub y: DVector<f64>,
    /// For each constraint of the conjunction: its position in the file, `c . f(x)`
    /// (nearest f64 of the exact value) and the right-hand side it is below.
    pub constraints: Vec<WitnessConstraint>,
}

/// One confirmed constraint of a witness.
#[derive(Debug, Clone, Serialize)]
pub struct WitnessConstraint {
    pub line: usize,
    pub col: usize,
    pub value: f64,
    pub rhs: f64,
}

/// What happened to one conjunction of the unsafe region of one case.
#[derive(Debug, Clone, Serialize)]
pub struct ConjunctionResult {
    pub case: usize,
    pub conjunction: usize,
    /// `excluded` (proven unreachable), `reached` (a witness), `open` (undecided),
    /// `empty box` (the case's box is empty).
    pub status: &'static str,
    /// The method that excluded it on the whole box (`crown+split` when the halves
    /// were needed).
    pub method: Option<String>,
    /// Boxes bounded (1 when the whole box sufficed).
    pub boxes: usize,
    /// Deepest split (of the input box, or the number of ReLU splits of the whole-box
    /// branch and bound).
    pub depth: usize,
    /// Nodes of the whole-box branch and bound on ReLU splits ([`ReluSplit::Auto`] on a
    /// wide box; 0 otherwise), over all its rows and rounds.
    pub nodes: usize,
    /// Per constraint: the best proven lower bound of `c . f(x)` on the whole box, by
    /// each method tried, beside `rhs_hi`.
    pub root_bounds: Vec<RootBound>,
}

/// Root-box bounds of one constraint.
#[derive(Debug, Clone, Serialize)]
pub struct RootBound {
    pub line: usize,
    pub col: usize,
    pub rhs_hi: f64,
    /// `(method, proven lower bound)` in the order tried.
    pub lower: Vec<(String, f64)>,
}

/// The verifier's answer with everything needed to audit it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub witness: Option<Witness>,
    pub conjunctions: Vec<ConjunctionResult>,
    /// Points evaluated by the falsifier.
    pub falsify_points: usize,
    /// Boxes bounded in total: each conjunction's whole box once (however many methods
    /// of the ladder bounded it), then the boxes of its splitting.
    pub boxes: usize,
    /// Nodes of the whole-box branch and bound on ReLU splits, over all conjunctions.
    pub nodes: usize,
    pub time_s: f64,
}

/// The objective rows bounded for a conjunction: each constraint `c_k . y <= rhs_k`, then
/// (with two or more) their sum `(sum_k c_k) . y <= sum_k rhs_k`, a nonnegative
/// combination that no point of the conjunction can violate either; it can be excluded
/// when no single constraint is. The sum's coefficients are used only when every one is
/// exact in f64, and its right-hand side is rounded up.
struct Rows {
    /// The objective matrix `C`, `rows x n_out` (one row per bounded direction).
    c: network::DMatrix<f64>,
    /// Rounded-up right-hand side of each row.
    rhs_hi: Vec<f64>,
    /// The first `single` rows are the constraints themselves (the split heuristic
    /// follows one of them; the sum's direction splits worse).
    single: usize,
}

/// Pairwise combination rows per conjunction at most.
const MAX_PAIR_ROWS: usize = 64;

/// `wa * x + wb * y` when it is exact in f64 (products checked with a fused
/// multiply-add, the sum with TwoSum), else `None`.
fn exact_combination(wa: f64, x: f64, wb: f64, y: f64) -> Option<f64> {
    let (p, q) = (wa * x, wb * y);
    let s = p + q;
    let bb = s - p;
    let exact = s.is_finite()
        && wa.mul_add(x, -p) == 0.0
        && wb.mul_add(y, -q) == 0.0
        && (p - (s - bb)) + (q - bb) == 0.0;
    exact.then_some(s)
}

fn rows(conj: &[OutputConstraint], n_out: usize) -> Rows {
    let mut c: Vec<f64> = conj.iter().flat_map(|k| k.coef.iter().copied()).collect();
    let mut rhs_hi: Vec<f64> = conj.iter().map(|k| k.rhs_hi).collect();
    if conj.len() >= 2 {
        let sum: Option<Vec<f64>> = (0..n_out)
            .map(|j| {
                conj.iter().try_fold(0.0f64, |acc, k| {
                    let s = acc + k.coef[j];
                    // Exact when the rounding error of the addition (TwoSum) is zero.
                    let bb = s - acc;
                    let exact = s.is_finite() && (acc - (s - bb)) + (k.coef[j] - bb) == 0.0;
                    exact.then_some(s)
                })
            })
            .collect();
        let rhs = conj
            .iter()
            .fold(0.0f64, |acc, k| (acc + k.rhs_hi).next_up());
        if let (Some(sum), true) = (sum, rhs.is_finite()) {
            c.extend(sum);
            rhs_hi.push(rhs);
        }
        // Pairs with weights w = i/8 and 1 - w: near a point where the constraint that
        // fails switches from one to another, one of these excludes a box that no single
        // constraint (nor the sum) excludes. Exact coefficients only; rhs rounded up.
        let mut pairs = 0;
        'pairs: for a in 0..conj.len() {
            for b in a + 1..conj.len() {
                for i in 1..8 {
                    if pairs >= MAX_PAIR_ROWS {
                        break 'pairs;
                    }
                    let (wa, wb) = (f64::from(i) / 8.0, f64::from(8 - i) / 8.0);
                    let row: Option<Vec<f64>> = (0..n_out)
                        .map(|j| exact_combination(wa, conj[a].coef[j], wb, conj[b].coef[j]))
                        .collect();
                    let rhs = ((wa * conj[a].rhs_hi).next_up() + (wb * conj[b].rhs_hi).next_up())
                        .next_up();
                    if let (Some(row), true) = (row, rhs.is_finite()) {
                        c.extend(row);
                        rhs_hi.push(rhs);
                        pairs += 1;
                    }
                }
            }
        }
    }
    Rows {
        c: network::DMatrix::from_row_slice(rhs_hi.len(), n_out, &c),
        rhs_hi,
        single: conj.len(),
    }
}

/// Some row's proven lower bound is above its (rounded-up) right-hand side.
fn excludes(values: &[f64], rows: &Rows) -> bool {
    values.iter().zip(&rows.rhs_hi).any(|(v, r)| *v > *r)
}

fn witness(
    model: &Model,
    case: usize,
    conjunction: usize,
    x: Vec<f64>,
    conj: &[OutputConstraint],
) -> Result<Witness> {
    let y = model.forward(&x)?;
    let constraints = conj
        .iter()
        .map(|k| {
            Ok(WitnessConstraint {
                line: k.line,
                col: k.col,
                value: network::objective_exact(model, &x, &k.coef)?.to_f64(),
                rhs: k.rhs_lo,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Witness {
        case,
        conjunction,
        x: x.into(),
        y,
        constraints,
    })
}

/// The inner part of `[lo, hi]` (points inside the file's exact box), if any.
fn inner(lo: &[f64], hi: &[f64], ilo: &[f64], ihi: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    let a: Vec<f64> = lo.iter().zip(ilo).map(|(x, y)| x.max(*y)).collect();
    let b: Vec<f64> = hi.iter().zip(ihi).map(|(x, y)| x.min(*y)).collect();
    a.iter().zip(&b).all(|(x, y)| x <= y).then_some((a, b))
}

/// CROWN's intermediate bounds of `root` (a case's whole box), from `slot` when already
/// computed, else computed and kept there. Errors: as [`method_bounds`].
fn crown_root<'a>(
    model: &Model,
    root: &InputDomain,
    slot: &'a mut Option<dual::LayerBounds>,
) -> Result<&'a dual::LayerBounds> {
    let lb = match slot.take() {
        Some(lb) => lb,
        None => method_bounds(model, root, Method::Crown)?,
    };
    Ok(slot.insert(lb))
}

/// Checks `prop` on `model`. Errors: the property does not fit the model, or a bound
/// cannot be computed (overflow on extreme weights).
pub fn verify(model: &Model, prop: &Property, opts: &VerifyOptions) -> Result<Report> {
    if prop.n_inputs != model.input_len() || prop.n_outputs != model.output_len() {
        return Err(VerifyError::Mismatch {
            prop_inputs: prop.n_inputs,
            prop_outputs: prop.n_outputs,
            model_inputs: model.input_len(),
            model_outputs: model.output_len(),
        });
    }
    if opts.batch == 0 {
        return Err(VerifyError::Options("batch must be at least 1".into()));
    }
    let start = Instant::now();
    // A timeout beyond what an Instant can hold means no deadline (about 30 years).
    let deadline = start
        .checked_add(opts.timeout)
        .unwrap_or_else(|| start + Duration::from_secs(1 << 30));
    let mut points = 0;
    let mut boxes = 0;
    let mut results = Vec::new();
    let done = |verdict, witness, results: Vec<ConjunctionResult>, points, boxes| {
        Ok(Report {
            verdict,
            witness,
            nodes: results.iter().map(|r| r.nodes).sum(),
            conjunctions: results,
            falsify_points: points,
            boxes,
            time_s: start.elapsed().as_secs_f64(),
        })
    };
    // 1. Falsify every conjunction on its whole box, each with at most its share of a
    // quarter of the timeout when the input is split later (the exact line searches of a
    // property with many conjunctions or constraints would otherwise leave the prover no
    // time; the restarts between the splitting's batches keep falsifying). Without
    // splitting, nothing falsifies later: the whole timeout. A conjunction that CROWN
    // already excludes on the whole box (the ladder's second rung, milliseconds) is not
    // searched (no point reaches it): an unsat property that CROWN proves ends in
    // milliseconds instead of after the falsifier's restarts.
    let conjunctions: usize = prop.cases.iter().map(|c| c.unsafe_region.len()).sum();
    let root_share = opts.timeout.mul_f64(0.25 / conjunctions.max(1) as f64);
    let mut todo = Vec::new();
    // The conjunctions whose box has an inner rounding, where the falsifier searches
    // (the restarts between batches in step 2 search there too).
    let mut pending: Vec<Pending> = Vec::new();
    // CROWN's intermediate bounds of each case's whole box, computed at most once and
    // shared by the falsifier's check here and the ladder of step 2.
    let mut crown_at: Vec<Option<dual::LayerBounds>> = vec![None; prop.cases.len()];
    for (ci, case) in prop.cases.iter().enumerate() {
        for (di, conj) in case.unsafe_region.iter().enumerate() {
            if case.input.is_empty() {
                results.push(ConjunctionResult {
                    case: ci,
                    conjunction: di,
                    status: "empty box",
                    method: None,
                    boxes: 0,
                    depth: 0,
                    nodes: 0,
                    root_bounds: vec![],
                });
                continue;
            }
            todo.push((ci, di));
            let b = &case.input;
            // An error here (e.g. an overflow) only means the falsifier runs; step 2
            // meets it again and reports it.
            if !conj.is_empty() {
                let rs = rows(conj, model.output_len());
                let crown = |slot: &mut Option<dual::LayerBounds>| -> Result<bool> {
                    let root = InputDomain::from_box(&b.lower, &b.upper)?;
                    let lb = crown_root(model, &root, slot)?.clone();
                    let v = bound_given(model, &root, lb, &rs.c, Method::Crown, &opts.alpha)?;
                    Ok(excludes(v.values.as_slice(), &rs))
                };
                let excluded = crown(&mut crown_at[ci]).unwrap_or(false);
                if excluded {
                    continue;
                }
            }
            if let Some((lo, hi)) = inner(
                b.lower.as_slice(),
                b.upper.as_slice(),
                b.inner_lower.as_slice(),
                b.inner_upper.as_slice(),
            ) {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(opts.seed ^ ((ci as u64) << 32 | di as u64));
                let root_deadline = if opts.split {
                    Instant::now()
                        .checked_add(root_share)
                        .map_or(deadline, |d| d.min(deadline))
                } else {
                    deadline
                };
                let (x, n) = falsify::search(
                    model,
                    &lo,
                    &hi,
                    conj,
                    None,
                    &opts.falsify,
                    Some(root_deadline),
                    &mut rng,
                )?;
                points += n;
                pending.push(Pending {
                    todo_index: todo.len() - 1,
                    case: ci,
                    conjunction: di,
                    lo,
                    hi,
                    conj,
                });
                if let Some(x) = x {
                    results.push(ConjunctionResult {
                        case: ci,
                        conjunction: di,
                        status: "reached",
                        method: None,
                        boxes: 0,
                        depth: 0,
                        nodes: 0,
                        root_bounds: vec![],
                    });
                    let w = witness(model, ci, di, x, conj)?;
                    return done(Verdict::Sat, Some(w), results, points, boxes);
                }
            }
            if Instant::now() >= deadline {
                return done(Verdict::Timeout, None, results, points, boxes);
            }
        }
    }
    // 2. Prove each conjunction unreachable. While one is split, the PGD restarts between
    // batches cycle over it and every conjunction after it (not yet excluded): a
    // counterexample of a later conjunction is looked for while an earlier one, perhaps
    // unreachable, takes the time (ACAS Xu property 8 on 2_9: the witness is in the
    // second conjunction, the first is split until the timeout).
    let mut verdict = Verdict::Unsat;
    let mut deferred: Vec<Deferred> = Vec::new();
    for (k, &(ci, di)) in todo.iter().enumerate() {
        let later: Vec<&Pending> = pending.iter().filter(|p| p.todo_index >= k).collect();
        let case = &prop.cases[ci];
        let conj = &case.unsafe_region[di];
        let rs = rows(conj, model.output_len());
        let root = InputDomain::from_box(&case.input.lower, &case.input.upper)?;
        let mut root_bounds: Vec<RootBound> = conj
            .iter()
            .map(|k| RootBound {
                line: k.line,
                col: k.col,
                rhs_hi: k.rhs_hi,
                lower: vec![],
            })
            .collect();
        let mut method = None;
        // The LP rung left out for lack of time (the property then ends in `timeout`).
        let mut cut_short = false;
        if conj.is_empty() {
            // Every point of a non-empty box reaches an empty conjunction; the
            // falsifier confirms the centre, so this is not reached.
            verdict = Verdict::Unknown;
        }
        // Per row, the largest proven lower bound of the ladder so far (alpha's J is a dual
        // point of LP (19) over CROWN's bounds, so it also bounds the LP rungs' optima).
        let mut best = vec![f64::NEG_INFINITY; rs.c.nrows()];
        // The whole box is one box, however many methods bound it.
        if !conj.is_empty() {
            boxes += 1;
        }
        for m in [Method::Interval, Method::Crown, Method::Alpha] {
            if conj.is_empty() {
                break;
            }
            let b = match m {
                Method::Crown | Method::Alpha => {
                    // CROWN's intermediate bounds serve both crown and alpha, and every
                    // conjunction of the case.
                    let lb = crown_root(model, &root, &mut crown_at[ci])?.clone();
                    bound_given(model, &root, lb, &rs.c, m, &opts.alpha)?
                }
                _ => bound_with_method(model, &root, &rs.c, m, &opts.alpha)?,
            };
            for (rb, v) in root_bounds.iter_mut().zip(&b.values) {
                rb.lower.push((m.name().to_string(), *v));
            }
            for (bst, v) in best.iter_mut().zip(&b.values) {
                *bst = bst.max(*v);
            }
            if excludes(b.values.as_slice(), &rs) {
                method = Some(m.name().to_string());
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        let wide =
            falsify::wide_coordinates(case.input.lower.as_slice(), case.input.upper.as_slice());
        let rung = match opts.lp {
            LpRung::Auto if !opts.split || wide > AUTO_LP_DIMS => LpRung::Last,
            LpRung::Auto => LpRung::Off,
            r => r,
        };
        if method.is_none() && !conj.is_empty() && rung != LpRung::Off {
            let crown_bounds = crown_root(model, &root, &mut crown_at[ci])?.clone();
            let rungs: &[&str] = match rung {
                LpRung::All => &["lp-last", "lp-all"],
                _ => &["lp-last"],
            };
            let solver = lp::Solver::preferred();
            for &name in rungs {
                let left = || {
                    deadline
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                };
                if left() <= 0.0 {
                    break;
                }
                let lb = if name == "lp-all" {
                    // Two LPs per hidden unit at most, one per core at a time (HiGHS:
                    // one at a time, each warm from the previous basis): each gets its
                    // share of the time left, so that the layer-by-layer solve ends near
                    // it.
                    let units: usize = model
                        .affine()
                        .iter()
                        .rev()
                        .skip(1)
                        .map(|a| a.op.n_out())
                        .sum();
                    let at_once = if solver == lp::Solver::Highs {
                        1
                    } else {
                        rayon::current_num_threads()
                    };
                    let share = left() * at_once as f64 / (2 * units.max(1)) as f64;
                    if share < LP_ALL_MIN_SECONDS {
                        // HiGHS does not keep to limits of a few milliseconds (it
                        // took 8 s for up to 500 LPs of 1.5 ms each on ACAS Xu): no LP-all.
                        cut_short = true;
                        break;
                    }
                    let lp_opts = lp::LpOptions {
                        time_limit: Some(share),
                        ..Default::default()
                    };
                    lp::lp_all_bounds(model, &root, solver, &lp_opts)?
                } else {
                    crown_bounds.clone()
                };
                let lp19 = lp::Lp19::new(model, &root, &lb)?;
                if lp19.size().variables > opts.lp_max_vars {
                    // Not solved: no bound from this rung.
                    continue;
                }
                // One row at a time, each with the time left; only the proven lower end
                // is used, which any solver's multipliers (or J) give: no second solver.
                let verify_opts = lp::VerifyOptions {
                    fallback: false,
                    ..Default::default()
                };
                let mut values = Vec::with_capacity(best.len());
                for (k, &floor) in best.iter().enumerate() {
                    if left() <= 0.0 {
                        break;
                    }
                    let lp_opts = lp::LpOptions {
                        time_limit: Some(left()),
                        ..Default::default()
                    };
                    let e = lp::solve_verified(
                        &lp19,
                        rs.c.rows(k, 1),
                        solver,
                        &lp_opts,
                        false,
                        &verify_opts,
                    )?;
                    // The LP's optimum is at least the ladder's best proven bound.
                    values.push(e[0].proven_lower.max(floor));
                }
                for (rb, v) in root_bounds.iter_mut().zip(&values) {
                    rb.lower.push((name.to_string(), *v));
                }
                if values.len() == best.len() && excludes(&values, &rs) {
                    method = Some(name.to_string());
                    break;
                }
            }
        }
        let mut res = ConjunctionResult {
            case: ci,
            conjunction: di,
            // Not excluded until a method says so (an empty conjunction never is).
            status: if method.is_some() { "excluded" } else { "open" },
            method: method.clone(),
            boxes: 1,
            depth: 0,
            nodes: 0,
            root_bounds,
        };
        if method.is_none() && !conj.is_empty() {
            if cut_short || Instant::now() >= deadline {
                res.status = "open";
                results.push(res);
                return done(Verdict::Timeout, None, results, points, boxes);
            }
            if !opts.split {
                res.status = "open";
                results.push(res);
                verdict = Verdict::Unknown;
                continue;
            }
            if opts.relu_split.whole_box(wide) {
                // Branch and bound on ReLU splits over the whole box, after every
                // conjunction's ladder (step 3).
                deferred.push(Deferred {
                    ci,
                    di,
                    res,
                    best: best.clone(),
                });
                continue;
            }
            match split(
                model,
                case,
                conj,
                &rs,
                opts,
                (ci, di),
                &later,
                deadline,
                &mut points,
            )? {
                Split::Excluded { boxes: n, depth } => {
                    res.status = "excluded";
                    res.method = Some("crown+split".into());
                    res.boxes = n;
                    res.depth = depth;
                    // The whole box, counted above, is split's first box too.
                    boxes += n.saturating_sub(1);
                }
                Split::Reached {
                    x,
                    at,
                    boxes: n,
                    depth,
                } => {
                    // The whole box, counted above, is split's first box too.
                    boxes += n.saturating_sub(1);
                    res.boxes = n;
                    res.depth = depth;
                    if at == (ci, di) {
                        res.status = "reached";
                        results.push(res);
                    } else {
                        // Reached by a restart on a later conjunction: this one stays open.
                        results.push(res);
                        results.push(ConjunctionResult {
                            case: at.0,
                            conjunction: at.1,
                            status: "reached",
                            method: None,
                            boxes: 0,
                            depth: 0,
                            nodes: 0,
                            root_bounds: vec![],
                        });
                    }
                    let conj_at = &prop.cases[at.0].unsafe_region[at.1];
                    let w = witness(model, at.0, at.1, x, conj_at)?;
                    return done(Verdict::Sat, Some(w), results, points, boxes);
                }
                Split::Stopped {
                    boxes: n,
                    depth,
                    timeout,
                } => {
                    // The whole box, counted above, is split's first box too.
                    boxes += n.saturating_sub(1);
                    res.status = "open";
                    res.boxes = n;
                    res.depth = depth;
                    results.push(res);
                    let v = if timeout {
                        Verdict::Timeout
                    } else {
                        Verdict::Unknown
                    };
                    return done(v, None, results, points, boxes);
                }
            }
        }
        results.push(res);
    }
    // 3. Branch and bound on ReLU splits over the whole box for the conjunctions the
    // ladder left open on wide boxes (where splitting the input is hopeless).
    if !deferred.is_empty() {
        match whole_box_bab(model, prop, opts, deferred, deadline, &mut results)? {
            WholeBox::Reached { at, x } => {
                let conj_at = &prop.cases[at.0].unsafe_region[at.1];
                let w = witness(model, at.0, at.1, x, conj_at)?;
                return done(Verdict::Sat, Some(w), results, points, boxes);
            }
            WholeBox::Excluded => {}
            WholeBox::Open => return done(Verdict::Timeout, None, results, points, boxes),
        }
    }
    done(verdict, None, results, points, boxes)
}

/// A conjunction left open by the ladder on a wide box, for [`whole_box_bab`].
struct Deferred {
    ci: usize,
    di: usize,
    res: ConjunctionResult,
    /// The ladder's best proven lower bound per row.
    best: Vec<f64>,
}

/// What [`whole_box_bab`] found.
enum WholeBox {
    /// Every conjunction excluded.
    Excluded,
    /// A confirmed counterexample of conjunction `at`.
    Reached { at: (usize, usize), x: Vec<f64> },
    /// Some conjunction still open when the time ran out.
    Open,
}

/// Bytes a branch-and-bound node holds besides its splits: the lower and upper bound of
/// every unit, and beta-CROWN's alpha and beta (the children's warm start).
fn node_bytes(model: &Model) -> usize {
    32 * model.affine().iter().map(|a| a.op.n_out()).sum::<usize>()
}

/// The open nodes one whole-box branch and bound may hold (about 2 GB of bounds, at
/// most [`WHOLE_BOX_NODES`] nodes bounded).
fn whole_box_nodes(model: &Model) -> usize {
    (2usize << 30)
        .checked_div(node_bytes(model))
        .unwrap_or(WHOLE_BOX_NODES)
        .clamp(1000, WHOLE_BOX_NODES)
}

/// The open nodes (bytes of [`node_bytes`]) the searches of still-open conjunctions keep
/// between the rounds of [`whole_box_bab`].
const KEPT_BYTES: usize = 1 << 30;

/// The node budget of one whole-box branch and bound (a memory guard: the search is
/// limited by its time share).
pub const WHOLE_BOX_NODES: usize = 200_000;

/// Branch and bound on ReLU splits (`exact::minimise` in decision mode: beta-CROWN at
/// the nodes, LP (19) at leaves on large networks) over the whole box of each deferred
/// conjunction, the one whose ladder bound is closest to excluding it first, each row
/// of a conjunction in turn. Every conjunction (and row) gets an equal share of the time
/// left when its turn comes, so time that an early one does not use goes to the later
/// ones; a second round gives what is left to the conjunctions still open, each search
/// resumed where its first share stopped (`exact::Search`; its open nodes kept while
/// they take at most [`KEPT_BYTES`], else it starts again). A point a search finds
/// counts when it is confirmed against the whole conjunction (`Reached`).
/// Each conjunction's result is pushed to `results`.
fn whole_box_bab(
    model: &Model,
    prop: &Property,
    opts: &VerifyOptions,
    mut deferred: Vec<Deferred>,
    deadline: Instant,
    results: &mut Vec<ConjunctionResult>,
) -> Result<WholeBox> {
    let margin = |d: &Deferred| {
        let rs = rows(&prop.cases[d.ci].unsafe_region[d.di], model.output_len());
        d.best
            .iter()
            .zip(&rs.rhs_hi)
            .map(|(v, r)| v - r)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    deferred.sort_by(|a, b| margin(b).total_cmp(&margin(a)));
    // Per deferred conjunction: its node count, depth and one search per row (kept
    // between the rounds).
    let mut open: Vec<(Deferred, usize, usize, Vec<Option<exact::Search<'_>>>)> = deferred
        .into_iter()
        .map(|d| (d, 0, 0, Vec::new()))
        .collect();
    let mut kept_bytes = 0usize;
    // alpha-CROWN's intermediate bounds of each case's box, once for all its rows.
    let mut root_bounds: std::collections::HashMap<usize, dual::LayerBounds> =
        std::collections::HashMap::new();
    loop {
        let mut still = Vec::new();
        let mut left_count = open.len();
        // Whether some search stopped at its share's end (and so may go on).
        let mut timed_out = false;
        for (mut d, mut nodes, mut depth, mut searches) in open.drain(..) {
            let case = &prop.cases[d.ci];
            let conj = &case.unsafe_region[d.di];
            let rs = rows(conj, model.output_len());
            let root = InputDomain::from_box(&case.input.lower, &case.input.upper)?;
            searches.resize_with(rs.rhs_hi.len(), || None);
            for s in searches.iter().flatten() {
                kept_bytes = kept_bytes.saturating_sub(s.open() * node_bytes(model));
            }
            let mut row_nodes: Vec<usize> = searches
                .iter()
                .map(|s| s.as_ref().map_or(0, |s| s.nodes()))
                .collect();
            let mut order: Vec<usize> = (0..rs.rhs_hi.len()).collect();
            order.sort_by(|&a, &b| {
                (d.best[b] - rs.rhs_hi[b]).total_cmp(&(d.best[a] - rs.rhs_hi[a]))
            });
            let mut excluded = false;
            for (i, &r) in order.iter().enumerate() {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64();
                if left <= 0.0 {
                    break;
                }
                let share = left / (left_count as f64) / ((order.len() - i) as f64);
                let start = Instant::now();
                if opts.whole_box_alpha && !root_bounds.contains_key(&d.ci) {
                    let b = dual::alpha_bounds(model, &root, &opts.alpha)?;
                    root_bounds.insert(d.ci, b);
                }
                let share = share - start.elapsed().as_secs_f64();
                if share <= 0.0 {
                    continue;
                }
                let created = Instant::now();
                let search = match &mut searches[r] {
                    Some(s) => s,
                    slot => slot.insert(
                        exact::Search::new(
                            model,
                            &root,
                            rs.c.row(r).transpose(),
                            root_bounds.get(&d.ci),
                            &bab_options(model, opts, share, whole_box_nodes(model), rs.rhs_hi[r]),
                        )
                        .map_err(exact_error)?,
                    ),
                };
                // The root's PGD (a new search) counts against the share.
                let share = share - created.elapsed().as_secs_f64();
                let e = search.run(Some(share.max(1e-3))).map_err(exact_error)?;
                // A resumed search's counts include its earlier runs.
                nodes += e.nodes - row_nodes[r];
                row_nodes[r] = e.nodes;
                depth = depth.max(e.max_depth);
                match e.status {
                    exact::BabStatus::Proved => {
                        excluded = true;
                        break;
                    }
                    exact::BabStatus::Counterexample => {
                        let x = into_inner(case, e.point.as_slice());
                        if confirms(model, &x, conj)? {
                            d.res.status = "reached";
                            d.res.nodes = nodes;
                            d.res.depth = depth;
                            results.push(d.res);
                            return Ok(WholeBox::Reached {
                                at: (d.ci, d.di),
                                x,
                            });
                        }
                    }
                    exact::BabStatus::Timeout => timed_out = true,
                    _ => {}
                }
            }
            left_count -= 1;
            d.res.nodes = nodes;
            d.res.depth = depth;
            if excluded {
                d.res.status = "excluded";
                d.res.method = Some("relu-bab".into());
                results.push(d.res);
            } else {
                // Keep the searches whose open nodes fit the budget; the others start
                // again if they get another turn.
                for slot in searches.iter_mut() {
                    let bytes = slot.as_ref().map_or(0, |s| s.open() * node_bytes(model));
                    if kept_bytes + bytes <= KEPT_BYTES {
                        kept_bytes += bytes;
                    } else {
                        *slot = None;
                    }
                }
                still.push((d, nodes, depth, searches));
            }
        }
        open = still;
        // Rounds go on while time is left and a search may use it (one that stopped
        // for its node budget or with nothing left to split returns at once).
        if open.is_empty() || Instant::now() >= deadline || !timed_out {
            break;
        }
    }
    if open.is_empty() {
        return Ok(WholeBox::Excluded);
    }
    for (mut d, _, _, _) in open {
        d.res.status = "open";
        results.push(d.res);
    }
    Ok(WholeBox::Open)
}

/// `x` clamped into the inner box of `case` (the floats inside the file's exact box).
fn into_inner(case: &vnnlib::Case, x: &[f64]) -> Vec<f64> {
    let b = &case.input;
    x.iter()
        .zip(b.inner_lower.iter().zip(&b.inner_upper))
        .map(|(v, (a, c))| v.clamp(*a, *c))
        .collect()
}

/// `exact`'s errors in `verify`'s words.
fn exact_error(e: exact::ExactError) -> VerifyError {
    match e {
        exact::ExactError::Dual(d) => VerifyError::Dual(d),
        exact::ExactError::Network(n) => VerifyError::Network(n),
        other => VerifyError::Options(other.to_string()),
    }
}

/// The settings of one ReLU branch and bound of `verify` (decision mode: is the row's
/// minimum above `threshold`?), with `timeout` seconds and `max_nodes` nodes.
fn bab_options(
    model: &Model,
    opts: &VerifyOptions,
    timeout: f64,
    max_nodes: usize,
    threshold: f64,
) -> exact::BabOptions {
    exact::BabOptions {
        timeout: Some(timeout.max(1e-3)),
        max_nodes,
        threshold: Some(threshold),
        pgd: exact::PgdOptions {
            restarts: 0,
            steps: 10,
        },
        // 32 children per round, so that beta-CROWN's batches (16 nodes per core) are
        // GEMMs: 1.35x the nodes of 4 per round in the same time (784-256-256-10).
        batch: 16,
        seed: opts.seed,
        beta: if opts.relu_split_beta {
            exact::BabOptions::default().beta
        } else {
            None
        },
        // With beta-CROWN a node's bound already sees its splits. On a large network
        // LP (19) at every node beta does not settle (thousands of variables on an
        // MNIST MLP) costs more than the nodes it saves: LP only at leaves, where it
        // is exact (784-256-256-10: 101 nodes in 1.5 s against a timeout at 71
        // nodes). On a small one the LP is cheap and tighter than 20 steps of beta
        // (a 3-20-20-3 net: 1 input box with it, 57 without): LP where beta does not
        // settle.
        lp_use: if opts.relu_split_beta && hidden_units(model) > 256 {
            exact::LpUse::Leaves
        } else {
            exact::LpUse::Undecided
        },
        ..exact::BabOptions::default()
    }
}

enum Split {
    Excluded {
        boxes: usize,
        depth: usize,
    },
    Reached {
        x: Vec<f64>,
        /// The (case, conjunction) that `x` reaches: the one split, or a later one.
        at: (usize, usize),
        boxes: usize,
        depth: usize,
    },
    Stopped {
        boxes: usize,
        depth: usize,
        timeout: bool,
    },
}

/// The two candidate coordinates to split, for the constraint closest to being excluded:
/// the largest `width_i * |nuhat_1i|`, with `nuhat_1` the input coefficients of CROWN's
/// linear lower bound (what each coordinate's width costs that bound: the linear-bound
/// input split of alpha,beta-CROWN), and the largest `width_i * |d(c . f)/dx_i|` at the
/// box centre (ReluVal's smear, Wang et al. 2018, with the gradient for the interval
/// gradient). Either falls back to the widest coordinate when its products vanish. Also
/// the corner of the box where that linear lower bound is smallest (`lo_i` where
/// `nuhat_1i < 0`, `hi_i` where it is `> 0`): where a counterexample is most likely.
fn candidate_dims(
    model: &Model,
    rows: &Rows,
    values: &[f64],
    bounds: &dual::LayerBounds,
    lo: &[f64],
    hi: &[f64],
) -> Result<([usize; 2], Vec<f64>)> {
    let k = values
        .iter()
        .zip(&rows.rhs_hi)
        .take(rows.single)
        .enumerate()
        .map(|(i, (v, r))| (i, v - r))
        .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a })
        .0;
    let c = rows.c.row(k).transpose();
    let (coef, _) = exact::crown_backward(model, bounds, &c);
    let center: Vec<f64> = lo
        .iter()
        .zip(hi)
        .map(|(a, b)| (0.5 * a + 0.5 * b).clamp(*a, *b))
        .collect();
    let (_, grad) = value_and_gradient(model, &center, c)?;
    let pick = |g: &[f64]| {
        let score = |i: usize, use_g: bool| {
            let w = hi[i] - lo[i];
            if use_g {
                w * g[i].abs()
            } else {
                w
            }
        };
        let use_g = (0..lo.len()).any(|i| score(i, true) > 0.0);
        (0..lo.len())
            .map(|i| (i, score(i, use_g)))
            .fold((0, -1.0), |a, b| if b.1 > a.1 { b } else { a })
            .0
    };
    let x_star = coef
        .iter()
        .zip(lo.iter().zip(hi))
        .zip(&center)
        .map(|((g, (a, b)), m)| {
            if *g > 0.0 {
                *b
            } else if *g < 0.0 {
                *a
            } else {
                *m
            }
        })
        .collect();
    Ok(([pick(coef.as_slice()), pick(grad.as_slice())], x_star))
}

/// A box bounded by CROWN (with the bounds of the box it was split from).
struct Bounded {
    lo: Vec<f64>,
    hi: Vec<f64>,
    depth: usize,
    bounds: Arc<dual::LayerBounds>,
    /// `max_r (J_r - rhs_r)`: positive when the box is excluded.
    margin: f64,
    dims: [usize; 2],
}

/// What bounding one box found.
enum Boxed {
    Excluded,
    Reached(Vec<f64>),
    Open(Bounded),
}

/// Bounds the box `[lo, hi]` by CROWN (intersected with `parent`), then, if it is not
/// excluded, looks for a counterexample in it with a short PGD run.
#[allow(clippy::too_many_arguments)]
fn bound_box(
    model: &Model,
    case: &vnnlib::Case,
    conj: &[OutputConstraint],
    rows: &Rows,
    opts: &VerifyOptions,
    lo: Vec<f64>,
    hi: Vec<f64>,
    depth: usize,
    parent: Option<&dual::LayerBounds>,
    falsify_opts: &FalsifyOptions,
    deadline: Instant,
) -> Result<(Boxed, usize)> {
    let d = InputDomain::from_box(&lo, &hi)?;
    let lb =
        split_bounds(model, &d, &[], parent, SplitBounds::Crown)?.expect("no splits: never empty");
    let bound = bound_given(model, &d, lb, &rows.c, Method::Crown, &opts.alpha)?;
    if excludes(bound.values.as_slice(), rows) {
        return Ok((Boxed::Excluded, 0));
    }
    let b = &case.input;
    let mut pts = 0;
    let wide = falsify::wide_coordinates(b.lower.as_slice(), b.upper.as_slice());
    let escalate = opts
        .relu_split
        .depth(wide)
        .is_some_and(|d| depth >= d && (depth - d).is_multiple_of(opts.relu_split_every.max(1)));
    if escalate {
        match relu_split(
            model,
            case,
            conj,
            rows,
            opts,
            &d,
            bound.values.as_slice(),
            deadline,
        )? {
            Some(Boxed::Excluded) => return Ok((Boxed::Excluded, 0)),
            Some(Boxed::Reached(x)) => return Ok((Boxed::Reached(x), 0)),
            _ => {}
        }
    }
    let (dims, x_star) = candidate_dims(
        model,
        rows,
        bound.values.as_slice(),
        &bound.bounds,
        &lo,
        &hi,
    )?;
    if let Some((ilo, ihi)) = inner(&lo, &hi, b.inner_lower.as_slice(), b.inner_upper.as_slice()) {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ (depth as u64) ^ lo[0].to_bits());
        // PGD from the corner where CROWN's linear lower bound is smallest.
        let (x, k) = falsify::search(
            model,
            &ilo,
            &ihi,
            conj,
            Some(&x_star),
            falsify_opts,
            Some(deadline),
            &mut rng,
        )?;
        pts = k;
        if let Some(x) = x {
            return Ok((Boxed::Reached(x), pts));
        }
    }
    let margin = bound
        .values
        .iter()
        .zip(&rows.rhs_hi)
        .map(|(v, r)| v - r)
        .fold(f64::NEG_INFINITY, f64::max);
    Ok((
        Boxed::Open(Bounded {
            lo,
            hi,
            depth,
            bounds: Arc::new(bound.bounds),
            margin,
            dims,
        }),
        pts,
    ))
}

/// Branch and bound on ReLU splits over one box (`exact::minimise` in decision mode), one
/// constraint row at a time, the row closest to excluded first: `Excluded` when some
/// row's minimum is proven above its rounded-up right-hand side, `Reached` when a point
/// it found is confirmed against the whole conjunction, `None` otherwise.
#[allow(clippy::too_many_arguments)]
fn relu_split(
    model: &Model,
    case: &vnnlib::Case,
    conj: &[OutputConstraint],
    rows: &Rows,
    opts: &VerifyOptions,
    d: &InputDomain,
    values: &[f64],
    deadline: Instant,
) -> Result<Option<Boxed>> {
    let mut order: Vec<usize> = (0..rows.rhs_hi.len()).collect();
    order.sort_by(|&a, &b| (values[b] - rows.rhs_hi[b]).total_cmp(&(values[a] - rows.rhs_hi[a])));
    for r in order {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        if left <= 0.0 {
            return Ok(None);
        }
        let bab = bab_options(
            model,
            opts,
            left.min(30.0),
            opts.relu_split_nodes,
            rows.rhs_hi[r],
        );
        let e = exact::minimise(model, d, rows.c.row(r).transpose(), &bab).map_err(exact_error)?;
        match e.status {
            exact::BabStatus::Proved => return Ok(Some(Boxed::Excluded)),
            exact::BabStatus::Counterexample => {
                let x = into_inner(case, e.point.as_slice());
                if confirms(model, &x, conj)? {
                    return Ok(Some(Boxed::Reached(x)));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The halves of `[lo, hi]` along `i`, or `None` when that coordinate cannot be split
/// (adjacent floats).
fn halves(lo: &[f64], hi: &[f64], i: usize) -> Option<[(Vec<f64>, Vec<f64>); 2]> {
    let mid = (0.5 * lo[i] + 0.5 * hi[i]).clamp(lo[i], hi[i]);
    if !(lo[i] < mid && mid < hi[i]) {
        return None;
    }
    let (mut hi1, mut lo2) = (hi.to_vec(), lo.to_vec());
    hi1[i] = mid;
    lo2[i] = mid;
    Some([(lo.to_vec(), hi1), (lo2, hi.to_vec())])
}

/// A conjunction not yet excluded, with the inner rounding of its case's box (where the
/// falsifier searches).
struct Pending<'p> {
    /// Position in the order the conjunctions are proved in.
    todo_index: usize,
    case: usize,
    conjunction: usize,
    lo: Vec<f64>,
    hi: Vec<f64>,
    conj: &'p [OutputConstraint],
}

/// Input splitting with CROWN bounds, depth first, `opts.batch` boxes at a time. Each
/// open box is split along one of its two candidate coordinates ([`candidate_dims`]):
/// when they differ, both splits are bounded and the one whose worse half has the larger
/// margin is kept (the halves of the other are dropped: they cover the same box).
/// Between batches, `restarts_per_batch` PGD restarts on the whole box of one of
/// `pending` (this conjunction `this` and the later ones not yet excluded), in turn.
#[allow(clippy::too_many_arguments)]
fn split(
    model: &Model,
    case: &vnnlib::Case,
    conj: &[OutputConstraint],
    rows: &Rows,
    opts: &VerifyOptions,
    this: (usize, usize),
    pending: &[&Pending],
    deadline: Instant,
    points: &mut usize,
) -> Result<Split> {
    let b = &case.input;
    let (mut n, mut deepest) = (0usize, 0usize);
    let quick = FalsifyOptions {
        restarts: 0,
        steps: 10,
        max_corner_dims: 0,
        restarts_per_batch: 0,
        time_share: 0.0,
        polish_dims: 0,
        edge_dims: 0,
    };
    // Between batches, a few more PGD restarts on the whole box: a counterexample that
    // the first restarts missed is still looked for while the halves are bounded.
    let more = FalsifyOptions {
        restarts: opts.falsify.restarts_per_batch,
        steps: opts.falsify.steps,
        max_corner_dims: 0,
        restarts_per_batch: 0,
        time_share: 0.0,
        polish_dims: opts.falsify.polish_dims,
        edge_dims: 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(0x5eed));
    let mut round = 0usize;
    let started = Instant::now();
    let mut restart_time = std::time::Duration::ZERO;
    // At most 0.9: the boxes always get a share (a NaN share: no restarts between batches).
    let share = opts.falsify.time_share.clamp(0.0, 0.9);
    let (root, k) = bound_box(
        model,
        case,
        conj,
        rows,
        opts,
        b.lower.as_slice().to_vec(),
        b.upper.as_slice().to_vec(),
        0,
        None,
        &quick,
        deadline,
    )?;
    *points += k;
    n += 1;
    let mut stack: Vec<Bounded> = match root {
        Boxed::Excluded => return Ok(Split::Excluded { boxes: n, depth: 0 }),
        Boxed::Reached(x) => {
            return Ok(Split::Reached {
                x,
                at: this,
                boxes: n,
                depth: 0,
            })
        }
        Boxed::Open(r) => vec![r],
    };
    while !stack.is_empty() {
        if Instant::now() >= deadline {
            return Ok(Split::Stopped {
                boxes: n,
                depth: deepest,
                timeout: true,
            });
        }
        // PGD restarts on the pending conjunctions in turn: `restarts_per_batch`, then
        // more (one per core at a time) while they have had less than `time_share` of the
        // time.
        let mut first = true;
        while more.restarts > 0
            && !pending.is_empty()
            && Instant::now() < deadline
            // (A share of 0: one round per batch; otherwise the share alone decides, so
            // that many conjunctions' rounds cannot take the boxes' time.)
            && ((first && share == 0.0)
                || restart_time.as_secs_f64() < share * started.elapsed().as_secs_f64())
        {
            let p = pending[round % pending.len()];
            round += 1;
            let t0 = Instant::now();
            let runs = if first {
                1
            } else {
                rayon::current_num_threads().max(1)
            };
            first = false;
            let seeds: Vec<u64> = (0..runs).map(|_| rng.random()).collect();
            let found: Vec<(Option<Vec<f64>>, usize)> = seeds
                .par_iter()
                .map(|&seed| {
                    let mut r = ChaCha8Rng::seed_from_u64(seed);
                    // The first run from a random point, not the centre (whose run is the
                    // same every time).
                    let start = falsify::random_point(&p.lo, &p.hi, &mut r);
                    falsify::search(
                        model,
                        &p.lo,
                        &p.hi,
                        p.conj,
                        Some(&start),
                        &more,
                        Some(deadline),
                        &mut r,
                    )
                })
                .collect::<network::Result<_>>()?;
            restart_time += t0.elapsed();
            for (x, k) in found {
                *points += k;
                if let Some(x) = x {
                    return Ok(Split::Reached {
                        x,
                        at: (p.case, p.conjunction),
                        boxes: n,
                        depth: deepest,
                    });
                }
            }
        }
        let take = opts.batch.min(stack.len());
        let batch: Vec<Bounded> = stack.split_off(stack.len() - take);
        // Per box: for each distinct candidate coordinate, its two halves bounded.
        type Halves = Vec<(Boxed, usize)>;
        let outcomes: Vec<Result<Vec<Halves>>> = batch
            .par_iter()
            .map(|bx| {
                let mut dims = vec![bx.dims[0]];
                if bx.dims[1] != bx.dims[0] {
                    dims.push(bx.dims[1]);
                }
                let mut per_dim = Vec::new();
                for i in dims {
                    let Some(hs) = halves(&bx.lo, &bx.hi, i) else {
                        continue;
                    };
                    let mut out = Vec::with_capacity(2);
                    for (lo, hi) in hs {
                        out.push(bound_box(
                            model,
                            case,
                            conj,
                            rows,
                            opts,
                            lo,
                            hi,
                            bx.depth + 1,
                            Some(&bx.bounds),
                            &quick,
                            deadline,
                        )?);
                    }
                    per_dim.push(out);
                }
                Ok(per_dim)
            })
            .collect();
        for (bx, out) in batch.into_iter().zip(outcomes) {
            let per_dim = out?;
            deepest = deepest.max(bx.depth + 1);
            if per_dim.is_empty() {
                // Neither coordinate can be split further (adjacent floats): undecided.
                return Ok(Split::Stopped {
                    boxes: n,
                    depth: deepest,
                    timeout: false,
                });
            }
            // A counterexample in any half ends the search.
            for hs in &per_dim {
                for (h, k) in hs {
                    *points += k;
                    n += 1;
                    if let Boxed::Reached(x) = h {
                        return Ok(Split::Reached {
                            x: x.clone(),
                            at: this,
                            boxes: n,
                            depth: deepest,
                        });
                    }
                }
            }
            let worse = |hs: &Halves| {
                hs.iter()
                    .map(|(h, _)| match h {
                        Boxed::Open(o) => o.margin,
                        _ => f64::INFINITY,
                    })
                    .fold(f64::INFINITY, f64::min)
            };
            let best = per_dim
                .into_iter()
                .max_by(|a, b| worse(a).total_cmp(&worse(b)))
                .expect("non-empty");
            for (h, _) in best {
                if let Boxed::Open(o) = h {
                    stack.push(o);
                }
            }
        }
    }
    Ok(Split::Excluded {
        boxes: n,
        depth: deepest,
    })
}
