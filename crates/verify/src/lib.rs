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
//!    rounding errors are bounded; DESIGN.md). When the whole box is not decided, it is
//!    split in two along its widest coordinate (relative to the property's box), and
//!    each half bounded with CROWN and falsified from its centre, depth first, in
//!    parallel batches, until every half is excluded (`unsat`), a counterexample is
//!    confirmed (`sat`), or the time runs out (`timeout`); with splitting off, what is
//!    left is `unknown`.
//!
//! Splitting the input box is complete only in the limit and practical for
//! low-dimensional inputs (ACAS Xu: 5); ReLU splitting, LP (19) and MILP at the leaves
//! belong to the exact-verification issue (13).

pub mod error;
pub mod falsify;
pub mod suite;

use std::time::{Duration, Instant};

use dual::{bound_given, bound_with_method, method_bounds, AlphaOptions, InputDomain, Method};
use network::Model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use vnnlib::{OutputConstraint, Property};

pub use error::{Result, VerifyError};
pub use falsify::{confirms, falsify, value_and_gradient, FalsifyOptions};

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
        }
    }
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
    /// The input (inside the file's exact box).
    pub x: Vec<f64>,
    /// `f(x)` in f64 (the exact values confirmed every constraint).
    pub y: Vec<f64>,
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
    /// Deepest split.
    pub depth: usize,
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
    /// Boxes bounded in total.
    pub boxes: usize,
    pub time_s: f64,
}

/// The objective rows bounded for a conjunction: each constraint `c_k . y <= rhs_k`, then
/// (with two or more) their sum `(sum_k c_k) . y <= sum_k rhs_k`, a nonnegative
/// combination that no point of the conjunction can violate either; it can be excluded
/// when no single constraint is. The sum's coefficients are used only when every one is
/// exact in f64, and its right-hand side is rounded up.
struct Rows {
    /// Row-major `rows x n_out`.
    c: Vec<f64>,
    /// Rounded-up right-hand side of each row.
    rhs_hi: Vec<f64>,
    n_out: usize,
    /// The first `single` rows are the constraints themselves (the split heuristic
    /// follows one of them; the sum's direction splits worse).
    single: usize,
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
    }
    Rows {
        c,
        rhs_hi,
        n_out,
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
        x,
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
    let done = |verdict, witness, results, points, boxes| {
        Ok(Report {
            verdict,
            witness,
            conjunctions: results,
            falsify_points: points,
            boxes,
            time_s: start.elapsed().as_secs_f64(),
        })
    };
    // 1. Falsify every conjunction on its whole box.
    let mut todo = Vec::new();
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
                    root_bounds: vec![],
                });
                continue;
            }
            todo.push((ci, di));
            let b = &case.input;
            if let Some((lo, hi)) = inner(&b.lower, &b.upper, &b.inner_lower, &b.inner_upper) {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(opts.seed ^ ((ci as u64) << 32 | di as u64));
                let (x, n) = falsify(model, &lo, &hi, conj, &opts.falsify, &mut rng)?;
                points += n;
                if let Some(x) = x {
                    results.push(ConjunctionResult {
                        case: ci,
                        conjunction: di,
                        status: "reached",
                        method: None,
                        boxes: 0,
                        depth: 0,
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
    // 2. Prove each conjunction unreachable.
    let mut verdict = Verdict::Unsat;
    for (ci, di) in todo {
        let case = &prop.cases[ci];
        let conj = &case.unsafe_region[di];
        let rs = rows(conj, model.output_len());
        let c = &rs.c;
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
        if conj.is_empty() {
            // Every point of a non-empty box reaches an empty conjunction; the
            // falsifier confirms the centre, so this is not reached.
            verdict = Verdict::Unknown;
        }
        // CROWN's intermediate bounds serve both crown and alpha: computed once.
        let mut crown = None;
        for m in [Method::Interval, Method::Crown, Method::Alpha] {
            if conj.is_empty() {
                break;
            }
            let b = match m {
                Method::Crown | Method::Alpha => {
                    let lb = match &crown {
                        Some(lb) => Clone::clone(lb),
                        None => {
                            let lb = method_bounds(model, &root, Method::Crown)?;
                            crown = Some(lb.clone());
                            lb
                        }
                    };
                    bound_given(model, &root, lb, c, m, &opts.alpha)?
                }
                _ => bound_with_method(model, &root, c, m, &opts.alpha)?,
            };
            boxes += 1;
            for (rb, v) in root_bounds.iter_mut().zip(&b.values) {
                rb.lower.push((m.name().to_string(), *v));
            }
            if excludes(&b.values, &rs) {
                method = Some(m.name().to_string());
                break;
            }
            if Instant::now() >= deadline {
                break;
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
            root_bounds,
        };
        if method.is_none() && !conj.is_empty() {
            if !opts.split {
                res.status = "open";
                results.push(res);
                verdict = Verdict::Unknown;
                continue;
            }
            match split(model, case, conj, &rs, opts, deadline, &mut points)? {
                Split::Excluded { boxes: n, depth } => {
                    res.status = "excluded";
                    res.method = Some("crown+split".into());
                    res.boxes = n;
                    res.depth = depth;
                    boxes += n;
                }
                Split::Reached { x, boxes: n, depth } => {
                    boxes += n;
                    res.status = "reached";
                    res.boxes = n;
                    res.depth = depth;
                    results.push(res);
                    let w = witness(model, ci, di, x, conj)?;
                    return done(Verdict::Sat, Some(w), results, points, boxes);
                }
                Split::Stopped {
                    boxes: n,
                    depth,
                    timeout,
                } => {
                    boxes += n;
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
    done(verdict, None, results, points, boxes)
}

enum Split {
    Excluded {
        boxes: usize,
        depth: usize,
    },
    Reached {
        x: Vec<f64>,
        boxes: usize,
        depth: usize,
    },
    Stopped {
        boxes: usize,
        depth: usize,
        timeout: bool,
    },
}

/// Outcome of one box while splitting.
enum Leaf {
    Excluded,
    Reached(Vec<f64>),
    /// Undecided; split this coordinate.
    Open(usize),
}

/// The coordinate to split: the largest `width_i * |d(c . f)/dx_i|` at the box centre
/// for the constraint closest to being excluded (the input-split heuristic of ReluVal,
/// Wang et al. 2018, with the gradient in place of interval gradients); the widest
/// coordinate when the gradient vanishes.
fn split_dim(model: &Model, rows: &Rows, values: &[f64], lo: &[f64], hi: &[f64]) -> Result<usize> {
    let k = values
        .iter()
        .zip(&rows.rhs_hi)
        .take(rows.single)
        .enumerate()
        .map(|(i, (v, r))| (i, v - r))
        .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a })
        .0;
    let center: Vec<f64> = lo
        .iter()
        .zip(hi)
        .map(|(a, b)| (0.5 * a + 0.5 * b).clamp(*a, *b))
        .collect();
    let n = rows.n_out;
    let (_, g) = value_and_gradient(model, &center, &rows.c[k * n..(k + 1) * n])?;
    let score = |i: usize, use_grad: bool| {
        let w = hi[i] - lo[i];
        if use_grad {
            w * g[i].abs()
        } else {
            w
        }
    };
    let use_grad = (0..lo.len()).any(|i| score(i, true) > 0.0);
    Ok((0..lo.len())
        .map(|i| (i, score(i, use_grad)))
        .fold((0, -1.0), |a, b| if b.1 > a.1 { b } else { a })
        .0)
}

/// Input splitting with CROWN bounds, depth first, `opts.batch` boxes at a time.
fn split(
    model: &Model,
    case: &vnnlib::Case,
    conj: &[OutputConstraint],
    rows: &Rows,
    opts: &VerifyOptions,
    deadline: Instant,
    points: &mut usize,
) -> Result<Split> {
    let b = &case.input;
    let mut stack: Vec<(Vec<f64>, Vec<f64>, usize)> = vec![(b.lower.clone(), b.upper.clone(), 0)];
    let (mut n, mut deepest) = (0usize, 0usize);
    let quick = FalsifyOptions {
        restarts: 0,
        steps: 10,
        max_corner_dims: 0,
        restarts_per_batch: 0,
    };
    // Between batches, a few more PGD restarts on the whole box: a counterexample that
    // the first restarts missed is still looked for while the halves are bounded.
    let more = FalsifyOptions {
        restarts: opts.falsify.restarts_per_batch,
        steps: opts.falsify.steps,
        max_corner_dims: 0,
        restarts_per_batch: 0,
    };
    let whole = inner(&b.lower, &b.upper, &b.inner_lower, &b.inner_upper);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(0x5eed));
    while !stack.is_empty() {
        if Instant::now() >= deadline {
            return Ok(Split::Stopped {
                boxes: n,
                depth: deepest,
                timeout: true,
            });
        }
        if let (Some((ilo, ihi)), true) = (&whole, more.restarts > 0) {
            let (x, k) = falsify(model, ilo, ihi, conj, &more, &mut rng)?;
            *points += k;
            if let Some(x) = x {
                return Ok(Split::Reached {
                    x,
                    boxes: n,
                    depth: deepest,
                });
            }
        }
        let take = opts.batch.min(stack.len());
        let batch: Vec<(Vec<f64>, Vec<f64>, usize)> = stack.split_off(stack.len() - take);
        let outcomes: Vec<Result<(Leaf, usize)>> = batch
            .par_iter()
            .map(|(lo, hi, depth)| {
                let d = InputDomain::from_box(lo, hi)?;
                let bound = bound_with_method(model, &d, &rows.c, Method::Crown, &opts.alpha)?;
                if excludes(&bound.values, rows) {
                    return Ok((Leaf::Excluded, 0));
                }
                let dim = split_dim(model, rows, &bound.values, lo, hi)?;
                let mut pts = 0;
                if let Some((ilo, ihi)) = inner(lo, hi, &b.inner_lower, &b.inner_upper) {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(opts.seed ^ (*depth as u64) ^ lo[0].to_bits());
                    let (x, k) = falsify(model, &ilo, &ihi, conj, &quick, &mut rng)?;
                    pts = k;
                    if let Some(x) = x {
                        return Ok((Leaf::Reached(x), pts));
                    }
                }
                Ok((Leaf::Open(dim), pts))
            })
            .collect();
        for ((lo, hi, depth), out) in batch.into_iter().zip(outcomes) {
            let (leaf, pts) = out?;
            n += 1;
            *points += pts;
            deepest = deepest.max(depth);
            match leaf {
                Leaf::Excluded => {}
                Leaf::Reached(x) => {
                    return Ok(Split::Reached {
                        x,
                        boxes: n,
                        depth: deepest,
                    })
                }
                Leaf::Open(i) => {
                    let mid = (0.5 * lo[i] + 0.5 * hi[i]).clamp(lo[i], hi[i]);
                    if !(lo[i] < mid && mid < hi[i]) {
                        // Cannot split further (adjacent floats): undecided.
                        return Ok(Split::Stopped {
                            boxes: n,
                            depth: deepest,
                            timeout: false,
                        });
                    }
                    let (mut hi1, mut lo2) = (hi.clone(), lo.clone());
                    hi1[i] = mid;
                    lo2[i] = mid;
                    stack.push((lo, hi1, depth + 1));
                    stack.push((lo2, hi, depth + 1));
                }
            }
        }
    }
    Ok(Split::Excluded {
        boxes: n,
        depth: deepest,
    })
}
