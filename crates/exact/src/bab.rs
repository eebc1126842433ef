//! Branch and bound on ReLU splits: the exact minimum of `c . f(x)` over an input set,
//! as an enclosure `[proven lower, proven upper]` that closes to a stated tolerance.
//!
//! A node is a set of ReLU splits (`dual::Split`: a hidden unit fixed active, `zhat >=
//! 0`, or inactive, `zhat <= 0`) and so a sub-domain of the input set. Bounding a node:
//!
//! 1. proven intermediate bounds over the sub-domain by CROWN with the splits clamped
//!    (at a child, `dual::child_bounds`: the parent's bounds with the new split clamped
//!    and CROWN again for the units still unstable after its layer, intersected with the
//!    parent's); an empty clamped interval proves the sub-domain empty and the node is
//!    dropped;
//! 2. the proven CROWN bound of the objective (optionally alpha-CROWN's), then, at a
//!    node with splits, beta-CROWN's (Wang et al. 2021: alpha and a multiplier per split
//!    constraint optimised together; `dual::beta_crown`), which sees the splits'
//!    constraints `zhat >= 0` / `zhat <= 0` without an LP;
//! 3. where those do not settle the node, and always at a leaf (no unstable unit left),
//!    LP (19) with the splits as constraints (`lp::Lp19::with_splits`) and its proven
//!    lower bound (`lp::solve_verified`: Neumaier-Shcherbina from the solver's
//!    multipliers, or J). At a leaf this LP *is* the network on the sub-domain, so its
//!    optimum is the exact minimum there and the node closes;
//! 4. candidates for the upper end: the point where the node's linear lower bound is
//!    smallest, the LP's input point, each clamped into the input set's inner box and
//!    valued by `dual::value_upper_bound` (proven).
//!
//! Nodes are explored best-first (smallest lower bound), a batch at a time in parallel
//! (rayon): steps 1 and 2's CROWN per node, then beta-CROWN for the batch's nodes
//! together (`dual::beta_crown_batch`, one batch per core: each gradient step is one
//! GEMM per layer over the nodes instead of a matrix-vector product per node, as
//! alpha,beta-CROWN batches its sub-domains), then the rest per node; a node is split on the unstable unit chosen by filtered smart branching
//! (FSB, De Palma et al. 2021; the default, [`Branching`]): of the units with the largest
//! BaBSR-style intercept scores (Bunel et al. 2020, *Branch and bound for piecewise
//! linear neural network verification*: `-l d [nuhat]_+`, the cost to J of the unit's
//! upper line, from a floating-point backward pass with CROWN's slopes), the one whose
//! two children have the largest sum of estimated CROWN bounds; or by the BaBSR score
//! alone. Both
//! are heuristics: they decide the order of the search, never a bound.
//!
//! Soundness: the enclosure's lower end is the minimum of proven node bounds over a set
//! of sub-domains whose union covers the input set (each split's two children cover
//! its parent; a dropped node is empty by a proven bound, or its proven lower bound is
//! kept). The upper end is proven at a point of the inner box. Nothing decides on a
//! solver's status or a nominal float.

use network::{as_row, AsVector, DVector};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use dual::{
    bound_given, child_bounds, split_bounds, stability, AlphaOptions, BetaState, InputDomain,
    LayerBounds, Method, Phase, Relaxation, Split, SplitBounds, Stability,
};
use lp::{Lp19, LpOptions, Solver, VerifyOptions as LpVerifyOptions};
use network::Model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{ExactError, Result};
use crate::pgd::{into_inner_box, pgd, PgdOptions};

/// Where LP (19) bounds a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LpUse {
    /// At leaves only (no unstable unit left), where it is exact. Never at the root.
    Leaves,
    /// At leaves and at every node that CROWN (and alpha-CROWN) do not settle.
    Undecided,
}

/// How branch and bound chooses the unstable unit to split at a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Branching {
    /// The largest BaBSR intercept score (Bunel et al. 2020; see [`crown_backward`]).
    Babsr,
    /// Filtered smart branching (De Palma et al. 2021) over this many BaBSR candidates:
    /// the one whose two children have the largest sum of estimated CROWN bounds.
    Fsb(usize),
}

impl Branching {
    /// `babsr` or `fsb:K`.
    pub fn word(&self) -> String {
        match self {
            Branching::Babsr => "babsr".into(),
            Branching::Fsb(k) => format!("fsb:{k}"),
        }
    }
}

/// The BaBSR candidates [`Branching::Fsb`] estimates by default.
pub const FSB_CANDIDATES: usize = 32;

/// Settings of branch and bound.
#[derive(Debug, Clone)]
pub struct BabOptions {
    /// Wall-clock limit in seconds (`None`: none).
    pub timeout: Option<f64>,
    /// Largest number of nodes bounded (the root included).
    pub max_nodes: usize,
    /// The enclosure closes when `upper - lower <= abs_tol + rel_tol * |upper|`.
    pub abs_tol: f64,
    /// See `abs_tol`.
    pub rel_tol: f64,
    /// Decision mode: stop as soon as the minimum is proven `> threshold` or a point with
    /// value `<= threshold` is found (`None`: compute the minimum).
    pub threshold: Option<f64>,
    /// Where LP (19) is used.
    pub lp_use: LpUse,
    /// The LP solver tried first (the others follow when it does not settle an LP).
    pub solver: Solver,
    /// alpha-CROWN at every node that CROWN does not settle (`None`: CROWN only).
    pub alpha: Option<AlphaOptions>,
    /// beta-CROWN (Wang et al. 2021) at every node with splits that CROWN (and
    /// alpha-CROWN) do not settle, before any LP: alpha and one multiplier per split,
    /// optimised together with these settings (`None`: off). It bounds a split's
    /// constraint without an LP. Default: 20 steps. At a node with splits it replaces
    /// `alpha` (it optimises alpha too), with the longer of the two step budgets.
    pub beta: Option<AlphaOptions>,
    /// Open nodes split per step (their `2 * batch` children are bounded together:
    /// in parallel, and beta-CROWN batched over them; see the module docs).
    pub batch: usize,
    /// How the unit to split is chosen.
    pub branching: Branching,
    /// beta-CROWN at a child starts from its parent's optimised alpha and beta (as
    /// beta-CROWN's own branch and bound does) instead of CROWN's slopes and `beta = 0`.
    /// A start only: the bound is proven either way. Costs one alpha and one beta per
    /// hidden unit of memory per open node.
    pub warm_start: bool,
    /// Wall-clock limit of each LP solve in seconds, every attempt (fallback solvers
    /// included); `None`: only the time left before `timeout`. A solve cut short is an
    /// LP that did not settle (the node keeps its other bounds), never a value.
    pub lp_time_limit: Option<f64>,
    /// The PGD search at the root.
    pub pgd: PgdOptions,
    /// Seed of PGD's random starts.
    pub seed: u64,
}

impl Default for BabOptions {
    fn default() -> BabOptions {
        BabOptions {
            timeout: Some(60.0),
            max_nodes: 100_000,
            abs_tol: 1e-6,
            rel_tol: 1e-6,
            threshold: None,
            lp_use: LpUse::Undecided,
            solver: Solver::preferred(),
            alpha: None,
            beta: Some(AlphaOptions {
                iterations: 20,
                ..AlphaOptions::default()
            }),
            batch: 16,
            branching: Branching::Fsb(FSB_CANDIDATES),
            warm_start: true,
            lp_time_limit: None,
            pgd: PgdOptions::default(),
            seed: 0,
        }
    }
}

impl BabOptions {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(ExactError::Options(m));
        if !(self.abs_tol >= 0.0 && self.abs_tol.is_finite()) {
            return bad(format!(
                "abs_tol must be finite and >= 0, got {}",
                self.abs_tol
            ));
        }
        if !(self.rel_tol >= 0.0 && self.rel_tol.is_finite()) {
            return bad(format!(
                "rel_tol must be finite and >= 0, got {}",
                self.rel_tol
            ));
        }
        if let Some(t) = self.timeout {
            if !(t > 0.0 && t <= 1e9) {
                return bad(format!("timeout must be in (0, 1e9] seconds, got {t}"));
            }
        }
        if let Some(t) = self.threshold {
            if !t.is_finite() {
                return bad(format!("threshold must be finite, got {t}"));
            }
        }
        if self.max_nodes == 0 {
            return bad("max_nodes (the node budget) must be at least 1, got 0".into());
        }
        if self.branching == Branching::Fsb(0) {
            return bad("fsb needs at least 1 candidate, got 0".into());
        }
        if self.batch == 0 {
            return bad("batch (nodes bounded per round) must be at least 1, got 0".into());
        }
        if let Some(t) = self.lp_time_limit {
            if !(t > 0.0 && t <= 1e9) {
                return bad(format!(
                    "lp_time_limit must be in (0, 1e9] seconds, got {t}"
                ));
            }
        }
        if !self.solver.available() {
            return bad(format!(
                "solver {} is not compiled in (build with --features highs)",
                self.solver.name()
            ));
        }
        Ok(())
    }

    /// The gap the enclosure may keep at upper end `u`.
    pub fn tolerance(&self, u: f64) -> f64 {
        self.abs_tol + self.rel_tol * u.abs()
    }
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BabStatus {
    /// The enclosure closed to the tolerance: `upper - lower <= tolerance`.
    Closed,
    /// Decision mode: the minimum is proven `> threshold`.
    Proved,
    /// Decision mode: a point with proven value `<= threshold` was found.
    Counterexample,
    /// The node budget ran out first.
    NodeBudget,
    /// The time limit ran out first.
    Timeout,
    /// No node is left to split, yet the enclosure is not closed to the tolerance: a
    /// leaf whose LP no solver settled (e.g. an empty sub-domain that the solver reports
    /// infeasible, which is not a proof, keeps its CROWN bound), or a tolerance below
    /// what the proven bounds' rounding allows (e.g. 0).
    Stuck,
}

impl BabStatus {
    /// The status as written in reports.
    pub fn word(&self) -> &'static str {
        match self {
            BabStatus::Closed => "closed",
            BabStatus::Proved => "proved",
            BabStatus::Counterexample => "counterexample",
            BabStatus::NodeBudget => "node-budget",
            BabStatus::Timeout => "timeout",
            BabStatus::Stuck => "stuck",
        }
    }
}

/// The exact minimum of `c . f(x)` over the input set, enclosed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enclosure {
    /// Proven lower bound on the minimum.
    pub lower: f64,
    /// Proven upper bound: the network's value at `point`, rounding included.
    pub upper: f64,
    /// A point of the input set (its inner box) where `c . f <= upper`.
    #[serde(serialize_with = "network::vector::serialize_vector")]
    pub point: DVector<f64>,
    pub status: BabStatus,
    /// Nodes bounded (the root included).
    pub nodes: usize,
    /// LPs solved.
    pub lps: usize,
    /// Nodes proven empty by their clamped bounds.
    pub empty: usize,
    /// Leaves whose LP no solver settled (see [`BabStatus::Stuck`]).
    pub unsettled_leaves: usize,
    /// Nodes still open when the search stopped.
    pub open: usize,
    /// Deepest node (number of splits).
    pub max_depth: usize,
    /// CROWN's proven bound at the root.
    pub root_crown: f64,
    /// The best proven bound at the root before any split (CROWN, alpha-CROWN, LP).
    pub root_lower: f64,
    /// Unstable units at the root (CROWN bounds).
    pub root_unstable: usize,
    pub time_s: f64,
}

impl Enclosure {
    /// `upper - lower`.
    pub fn gap(&self) -> f64 {
        self.upper - self.lower
    }
}

struct Node {
    lower: f64,
    splits: Vec<Split>,
    bounds: LayerBounds,
    branch: Option<(usize, usize)>,
    /// beta-CROWN's alpha and beta at this node: its children's warm start.
    warm: Option<BetaState>,
}

impl PartialEq for Node {
    fn eq(&self, o: &Node) -> bool {
        self.lower.total_cmp(&o.lower) == Ordering::Equal
    }
}
impl Eq for Node {}
impl PartialOrd for Node {
    fn partial_cmp(&self, o: &Node) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Node {
    /// Reversed: the heap pops the smallest lower bound first.
    fn cmp(&self, o: &Node) -> Ordering {
        o.lower.total_cmp(&self.lower)
    }
}

/// What bounding one node found.
enum Outcome {
    Empty,
    Bounded {
        lower: f64,
        /// CROWN's own proven bound (before the parent's, alpha's and the LP's).
        crown: f64,
        bounds: LayerBounds,
        branch: Option<(usize, usize)>,
        /// The LP settled the node's exact minimum (a leaf) or proved it above the cut.
        settled: bool,
        lps: usize,
        /// (proven upper value, point) of the node's best candidate.
        candidate: Option<(f64, DVector<f64>)>,
        /// beta-CROWN's alpha and beta (when it ran and warm starts are on).
        warm: Option<BetaState>,
    },
}

/// A node waiting to be bounded: its splits, the parent's bounds (at the root: bounds
/// proven over the whole input set, if any), the parent's proven lower bound (valid on
/// the child) and its beta-CROWN state (the child's warm start).
type Pending = (Vec<Split>, Option<LayerBounds>, f64, Option<BetaState>);

struct Ctx<'a> {
    model: &'a Model,
    domain: &'a InputDomain,
    c: &'a [f64],
    opts: &'a BabOptions,
    deadline: Option<Instant>,
}

impl Ctx<'_> {
    /// The LP solver's limits for one solve: the time left before the deadline (every
    /// attempt, fallbacks included), or `None` when none is left.
    fn lp_limits(&self) -> Option<(LpOptions, LpVerifyOptions)> {
        let left = match self.deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now()).as_secs_f64();
                if left <= 0.0 {
                    return None;
                }
                Some(left)
            }
            None => None,
        };
        let left = match (left, self.opts.lp_time_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some((
            LpOptions {
                time_limit: left,
                ..LpOptions::default()
            },
            LpVerifyOptions {
                tolerance: 1e-7,
                fallback: true,
                fallback_time_limit: left.or(Some(120.0)),
            },
        ))
    }
}

/// The exact minimum of `c . f(x)` (`c`: one weight per logit) over `domain`, enclosed
/// by branch and bound on ReLU splits (see the module docs).
///
/// Errors: `c` of the wrong length or not finite, options out of range, overflow in a
/// bound. A solver that fails is not an error: the node keeps its other bounds.
pub fn minimise(
    model: &Model,
    domain: &InputDomain,
    c: impl AsVector,
    opts: &BabOptions,
) -> Result<Enclosure> {
    minimise_from(model, domain, c, None, opts)
}

/// [`minimise`] with bounds `root` proven over the whole input set (e.g. alpha-CROWN's
/// optimised intermediate bounds, `dual::alpha_bounds`, shared by several objectives):
/// intersected with the root's CROWN bounds, so every node starts from them.
///
/// Errors: as [`minimise`], and `root` of the wrong shape.
pub fn minimise_from(
    model: &Model,
    domain: &InputDomain,
    c: impl AsVector,
    root: Option<&LayerBounds>,
    opts: &BabOptions,
) -> Result<Enclosure> {
    let t0 = Instant::now();
    let mut search = Search::new(model, domain, c, root, opts)?;
    // The timeout counts from the call, the root's PGD included.
    let left = opts
        .timeout
        .map(|t| (t - t0.elapsed().as_secs_f64()).max(0.0));
    search.run(left)
}

/// A branch and bound that can be stopped and resumed ([`minimise_from`] is one run of
/// one): its open nodes, closed bound and best point stay between [`Search::run`]s, so
/// a search that ran out of time continues where it stopped when given more (`verify`
/// gives a conjunction still open after its first share the time others left, instead
/// of starting it again). Holds one node's bounds and beta-CROWN state per open node.
pub struct Search<'a> {
    model: &'a Model,
    domain: InputDomain,
    c: Vec<f64>,
    opts: BabOptions,
    heap: BinaryHeap<Node>,
    pending: Vec<Pending>,
    /// The smallest proven lower bound of the nodes closed so far (settled, or within
    /// the tolerance of the upper end when they closed, or unsettled leaves).
    closed_lower: f64,
    best_upper: f64,
    best_point: DVector<f64>,
    first: bool,
    out: Enclosure,
}

impl<'a> Search<'a> {
    /// The root of a search: PGD from the centre for the upper end (`opts.pgd`), and
    /// the root node (bounds `root` proven over the whole input set, if given, as in
    /// [`minimise_from`]) waiting to be bounded. `opts.timeout` is ignored: each
    /// [`Search::run`] gets its own.
    ///
    /// Errors: as [`minimise_from`].
    pub fn new(
        model: &'a Model,
        domain: &InputDomain,
        c: impl AsVector,
        root: Option<&LayerBounds>,
        opts: &BabOptions,
    ) -> Result<Search<'a>> {
        let t0 = Instant::now();
        let c = c.as_values();
        opts.check()?;
        model.check_input(&domain.x)?;
        if c.len() != model.output_len() || c.iter().any(|v| !v.is_finite()) {
            return Err(ExactError::Options(format!(
                "the objective needs {} finite weights (one per output), got {} values",
                model.output_len(),
                c.len()
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let (x0, _) = pgd(
            model,
            domain,
            c,
            std::slice::from_ref(&domain.center),
            &opts.pgd,
            &mut rng,
        )?;
        let best_upper = dual::value_upper_bound(model, &x0, c)?;
        let out = Enclosure {
            lower: f64::NEG_INFINITY,
            upper: best_upper,
            point: x0.clone(),
            status: BabStatus::NodeBudget,
            nodes: 0,
            lps: 0,
            empty: 0,
            unsettled_leaves: 0,
            open: 0,
            max_depth: 0,
            // Set from the root node's own bounds (the first batch).
            root_crown: f64::NEG_INFINITY,
            root_lower: f64::NEG_INFINITY,
            root_unstable: 0,
            time_s: t0.elapsed().as_secs_f64(),
        };
        Ok(Search {
            model,
            domain: domain.clone(),
            c: c.to_vec(),
            opts: opts.clone(),
            heap: BinaryHeap::new(),
            pending: vec![(Vec::new(), root.cloned(), f64::NEG_INFINITY, None)],
            closed_lower: f64::INFINITY,
            best_upper,
            best_point: x0,
            first: true,
            out,
        })
    }

    /// Nodes bounded so far (every run).
    pub fn nodes(&self) -> usize {
        self.out.nodes
    }

    /// Nodes open (bounded, not yet split).
    pub fn open(&self) -> usize {
        self.heap.len()
    }

    /// Sets the node budget (nodes bounded over every run, the root included; at least
    /// 1): a search stopped by [`BabStatus::NodeBudget`] goes on when given more.
    pub fn set_node_budget(&mut self, max_nodes: usize) {
        self.opts.max_nodes = max_nodes.max(1);
    }

    /// Runs the search for at most `timeout` seconds (`None`: no limit) or until it
    /// closes, decides, exhausts the node budget (counted over every run) or gets
    /// stuck, and returns the enclosure so far (time and node counts over every run).
    /// A search that stopped for any reason but the timeout returns the same again.
    ///
    /// Errors: overflow in a bound.
    pub fn run(&mut self, timeout: Option<f64>) -> Result<Enclosure> {
        let t0 = Instant::now();
        let deadline = timeout.map(|t| t0 + std::time::Duration::from_secs_f64(t.max(0.0)));
        let ctx = Ctx {
            model: self.model,
            domain: &self.domain,
            c: &self.c,
            opts: &self.opts,
            deadline,
        };
        let (model, opts) = (self.model, &self.opts);
        let out = &mut self.out;
        let heap = &mut self.heap;
        let pending = &mut self.pending;
        let closed_lower = &mut self.closed_lower;
        let best_upper = &mut self.best_upper;
        let best_point = &mut self.best_point;
        let first = &mut self.first;
        // Whether this run bounded a batch yet: a run bounds one at least, so a search
        // resumed with little time still goes on (its batch is built after the checks).
        let mut bounded = false;
        let status = loop {
            // Bound the pending nodes in parallel against the current upper end.
            let cut = *best_upper;
            bounded |= !pending.is_empty();
            let results = bound_batch(&ctx, pending, cut, *first)?;
            for ((splits, _, _, _), res) in pending.drain(..).zip(results) {
                out.nodes += 1;
                out.max_depth = out.max_depth.max(splits.len());
                match res {
                    Outcome::Empty => out.empty += 1,
                    Outcome::Bounded {
                        lower,
                        crown,
                        bounds,
                        branch,
                        settled,
                        lps,
                        candidate,
                        warm,
                    } => {
                        out.lps += lps;
                        if *first {
                            out.root_lower = lower;
                            out.root_crown = crown;
                            out.root_unstable = count_unstable(&bounds, model);
                        }
                        if let Some((v, x)) = candidate {
                            if v < *best_upper {
                                *best_upper = v;
                                *best_point = x;
                            }
                        }
                        let done = match opts.threshold {
                            Some(t) => lower > t,
                            None => lower >= *best_upper - opts.tolerance(*best_upper),
                        };
                        if done || settled {
                            *closed_lower = closed_lower.min(lower);
                        } else if branch.is_none() {
                            // A leaf whose LP did not settle: nothing left to split.
                            out.unsettled_leaves += 1;
                            *closed_lower = closed_lower.min(lower);
                        } else {
                            heap.push(Node {
                                lower,
                                splits,
                                bounds,
                                branch,
                                warm,
                            });
                        }
                    }
                }
            }
            *first = false;
            let open_lower = heap.peek().map_or(f64::INFINITY, |n| n.lower);
            let lower = open_lower.min(*closed_lower).min(*best_upper);
            out.lower = lower;
            if let Some(t) = opts.threshold {
                if *best_upper <= t {
                    break BabStatus::Counterexample;
                }
                if heap.is_empty() {
                    break if *closed_lower > t {
                        BabStatus::Proved
                    } else {
                        BabStatus::Stuck
                    };
                }
            } else if *best_upper - lower <= opts.tolerance(*best_upper) {
                break BabStatus::Closed;
            } else if heap.is_empty() {
                break BabStatus::Stuck;
            }
            if bounded && deadline.is_some_and(|d| Instant::now() >= d) {
                break BabStatus::Timeout;
            }
            if out.nodes >= opts.max_nodes {
                break BabStatus::NodeBudget;
            }
            // The next batch: split the most promising open nodes.
            // A split bounds two children: never more than the budget has room for.
            let room = opts.max_nodes - out.nodes;
            while pending.len() + 2 <= (2 * opts.batch).min(room) {
                let Some(node) = heap.pop() else { break };
                if opts.threshold.is_none()
                    && node.lower >= *best_upper - opts.tolerance(*best_upper)
                {
                    *closed_lower = closed_lower.min(node.lower);
                    continue;
                }
                let (layer, unit) = node.branch.expect("open nodes have a unit to split");
                for phase in [Phase::Active, Phase::Inactive] {
                    let mut s = node.splits.clone();
                    s.push(Split { layer, unit, phase });
                    pending.push((s, Some(node.bounds.clone()), node.lower, node.warm.clone()));
                }
            }
            if pending.is_empty() {
                if !heap.is_empty() {
                    // Room for one more node, not for a split's two children.
                    break BabStatus::NodeBudget;
                }
                // Every open node closed under the tolerance while popping.
                continue;
            }
        };
        out.status = status;
        out.open = heap.len();
        out.upper = *best_upper;
        out.point = best_point.clone();
        let open_lower = heap.peek().map_or(f64::INFINITY, |n| n.lower);
        // Children waiting to be bounded (a split popped when the node budget stopped
        // the search) are covered by their parents' bounds, which they carry.
        let pending_lower = pending.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
        out.lower = open_lower
            .min(pending_lower)
            .min(*closed_lower)
            .min(*best_upper);
        out.time_s += t0.elapsed().as_secs_f64();
        Ok(out.clone())
    }
}

fn count_unstable(b: &LayerBounds, model: &Model) -> usize {
    let nh = model.affine().len() - 1;
    b.lower[..nh]
        .iter()
        .zip(&b.upper[..nh])
        .zip(model.relu_all())
        .map(|((l, u), &r)| {
            l.iter()
                .zip(u)
                .take(r)
                .filter(|(a, b)| stability(**a, **b) == Stability::Unstable)
                .count()
        })
        .sum()
}

/// A node after step 1 and CROWN's bound (step 2's start): its bounds, CROWN's proven
/// bound and the best proven bound so far (with the parent's).
struct Prepared {
    bounds: LayerBounds,
    crown: f64,
    lower: f64,
}

/// Whether a proven lower bound settles a node against the cut (decision mode: above
/// the threshold).
fn settles(opts: &BabOptions, cut: f64, lower: f64) -> bool {
    match opts.threshold {
        Some(t) => lower > t,
        None => lower >= cut - opts.tolerance(cut),
    }
}

/// The beta-CROWN settings at a node with splits: beta's own, or alpha's when that has
/// the longer step budget (beta-CROWN optimises alpha too, so at a node with splits it
/// replaces alpha-CROWN rather than repeating it); `None` when beta is off.
fn beta_settings(opts: &BabOptions) -> Option<AlphaOptions> {
    opts.beta.as_ref().map(|b| match &opts.alpha {
        Some(a) if a.iterations > b.iterations => *a,
        _ => *b,
    })
}

/// Bounds one round's nodes: steps 1 and 2 per node in parallel, beta-CROWN for every
/// node with splits that CROWN does not settle in batches (one [`dual::beta_crown_batch`]
/// per core: each gradient step is one GEMM per layer over the batch's nodes), then the
/// rest of each node in parallel. `cut`: the upper end when the round started.
fn bound_batch(ctx: &Ctx<'_>, pending: &[Pending], cut: f64, root: bool) -> Result<Vec<Outcome>> {
    let opts = ctx.opts;
    let prepared: Vec<Option<Prepared>> = pending
        .par_iter()
        .map(|(splits, parent, parent_lower, _)| {
            prepare_node(ctx, splits, parent.as_ref(), *parent_lower)
        })
        .collect::<Result<_>>()?;
    // beta-CROWN, batched over the nodes that need it.
    let mut warm: Vec<Option<BetaState>> = vec![None; pending.len()];
    let mut lowers: Vec<f64> = prepared
        .iter()
        .map(|p| p.as_ref().map_or(f64::NEG_INFINITY, |p| p.lower))
        .collect();
    if let Some(beta_opts) = beta_settings(opts) {
        let todo: Vec<usize> = (0..pending.len())
            .filter(|&i| {
                !pending[i].0.is_empty()
                    && prepared[i]
                        .as_ref()
                        .is_some_and(|p| !settles(opts, cut, p.lower))
            })
            .collect();
        let nodes: Vec<dual::BetaNode<'_>> = todo
            .iter()
            .map(|&i| {
                let p = prepared[i].as_ref().expect("filtered above");
                dual::BetaNode {
                    bounds: &p.bounds,
                    splits: &pending[i].0,
                    start: pending[i].3.as_ref().filter(|_| opts.warm_start),
                    floor: p.crown,
                }
            })
            .collect();
        let threads = rayon::current_num_threads().max(1);
        let per = nodes.len().div_ceil(threads).max(1);
        let bounds: Vec<Vec<dual::BetaBound>> = nodes
            .par_chunks(per)
            .map(|chunk| {
                dual::beta_crown_batch(ctx.model, ctx.domain, ctx.c, chunk, &beta_opts)
                    .map_err(ExactError::from)
            })
            .collect::<Result<_>>()?;
        for (&i, b) in todo.iter().zip(bounds.into_iter().flatten()) {
            lowers[i] = lowers[i].max(b.values[0]);
            if opts.warm_start {
                warm[i] = b.states.into_iter().next();
            }
        }
    }
    prepared
        .into_par_iter()
        .zip(pending.par_iter())
        .zip(lowers.into_par_iter().zip(warm.into_par_iter()))
        .map(|((p, (splits, ..)), (lower, warm))| match p {
            None => Ok(Outcome::Empty),
            Some(p) => finish_node(ctx, splits, p, lower, warm, cut, root),
        })
        .collect()
}

/// Step 1 and CROWN's bound of one node; `None`: the node is proven empty.
fn prepare_node(
    ctx: &Ctx<'_>,
    splits: &[Split],
    parent: Option<&LayerBounds>,
    parent_lower: f64,
) -> Result<Option<Prepared>> {
    let (model, domain, c, opts) = (ctx.model, ctx.domain, ctx.c, ctx.opts);
    // A child: the parent's bounds (its splits clamped in them) refined for the last
    // split alone; the root: every layer.
    let bounds = match (parent, splits.last()) {
        (Some(p), Some(&last)) => child_bounds(model, domain, p, last)?,
        _ => split_bounds(model, domain, splits, parent, SplitBounds::Crown)?,
    };
    let Some(bounds) = bounds else {
        return Ok(None);
    };
    let alpha_opts = opts.alpha.unwrap_or_default();
    let crown = bound_given(
        model,
        domain,
        bounds.clone(),
        as_row(c),
        Method::Crown,
        &alpha_opts,
    )?
    .values[0];
    // The parent's proven bound holds on this sub-domain too.
    Ok(Some(Prepared {
        bounds,
        crown,
        lower: crown.max(parent_lower),
    }))
}

/// The rest of one node (see the module docs) once its proven bound `lower` includes
/// beta-CROWN's where that ran (`warm`: its state): alpha-CROWN where beta is off, the
/// branching unit, the LP where it is used, the candidates for the upper end.
fn finish_node(
    ctx: &Ctx<'_>,
    splits: &[Split],
    prepared: Prepared,
    lower: f64,
    warm: Option<BetaState>,
    cut: f64,
    root: bool,
) -> Result<Outcome> {
    let (model, domain, c, opts) = (ctx.model, ctx.domain, ctx.c, ctx.opts);
    let Prepared { bounds, crown, .. } = prepared;
    let settles = |lower: f64| settles(opts, cut, lower);
    let mut lower = lower;
    let alpha_opts = opts.alpha.unwrap_or_default();
    let beta_ran = opts.beta.is_some() && !splits.is_empty();
    if !beta_ran && opts.alpha.is_some() && !settles(lower) {
        let a = bound_given(
            model,
            domain,
            bounds.clone(),
            as_row(c),
            Method::Alpha,
            &alpha_opts,
        )?;
        lower = lower.max(a.values[0]);
    }
    let (x_star, branch) = backward_choice(model, domain, &bounds, c, opts.branching);
    let mut candidates = vec![DVector::from_vec(x_star)];
    let mut lps = 0;
    let mut settled = false;
    let leaf = branch.is_none();
    let use_lp = leaf || (opts.lp_use == LpUse::Undecided && !root && !settles(lower));
    let limits = if use_lp && !settles(lower) {
        ctx.lp_limits()
    } else {
        None
    };
    if let Some((lp_opts, lp_verify)) = limits {
        let lp = Lp19::with_splits(model, domain, &bounds, splits)?;
        let enc = lp::solve_verified(&lp, as_row(c), opts.solver, &lp_opts, false, &lp_verify)?
            .pop()
            .expect("one objective row");
        lps += 1;
        lower = lower.max(enc.proven_lower);
        if let Some(sol) = &enc.solution {
            candidates.push(sol.input_point(&lp));
        }
        settled = leaf && enc.is_optimum;
        // No LP value (the solver found the relaxation infeasible, which is not a
        // proof): prove the sub-domain empty, else keep the other bounds.
        if enc.solution.is_none() && !splits.is_empty() && prove_empty(ctx, splits, &bounds)? {
            return Ok(Outcome::Empty);
        }
    }
    let mut candidate: Option<(f64, DVector<f64>)> = None;
    for x in candidates {
        let x = into_inner_box(domain, &x);
        // Proven only where the floating-point value could lower the upper end (the
        // proven value is at least the true one, which is the float's to rounding).
        let f = model.forward(&x)?;
        let nominal: f64 = f.iter().zip(c).map(|(v, w)| v * w).sum();
        if nominal > cut + opts.tolerance(cut) {
            continue;
        }
        let v = dual::value_upper_bound(model, &x, c)?;
        if candidate.as_ref().is_none_or(|(b, _)| v < *b) {
            candidate = Some((v, x));
        }
    }
    Ok(Outcome::Bounded {
        lower,
        crown,
        bounds,
        branch,
        settled: settled || settles(lower),
        lps,
        candidate,
        warm,
    })
}

/// Tries to prove the sub-domain of `splits` empty (a leaf whose LP no solver settled,
/// typically because the solver found it infeasible: a solver's word, not a proof).
/// Layer by layer, on the model truncated after layer `t`, with the splits of earlier
/// layers and the first `m` splits of layer `t` as constraints, LP (19)'s proven lower
/// bound of `-zhat` (Active split `m + 1`) or `zhat` (Inactive) above 0 proves that no
/// point satisfies them all. At a leaf every such LP is exact, so the first split that
/// empties the region is found this way unless it only touches it.
fn prove_empty(ctx: &Ctx<'_>, splits: &[Split], bounds: &LayerBounds) -> Result<bool> {
    let model = ctx.model;
    let aff = model.affine();
    let mut layers: Vec<usize> = splits.iter().map(|s| s.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    for t in layers {
        let truncated = model.truncated(t);
        let tb = LayerBounds {
            lower: bounds.lower[..=t].to_vec(),
            upper: bounds.upper[..=t].to_vec(),
            source: bounds.source,
        };
        let mut sp: Vec<Split> = splits.iter().filter(|s| s.layer < t).copied().collect();
        let mut at: Vec<Split> = splits.iter().filter(|s| s.layer == t).copied().collect();
        at.sort_by_key(|s| s.unit);
        for s in at {
            let lp = Lp19::with_splits(&truncated, ctx.domain, &tb, &sp)?;
            let mut c = vec![0.0; aff[t].op.n_out()];
            c[s.unit] = match s.phase {
                Phase::Active => -1.0,
                Phase::Inactive => 1.0,
            };
            let Some((lp_opts, lp_verify)) = ctx.lp_limits() else {
                return Ok(false);
            };
            let enc = lp::solve_verified(
                &lp,
                as_row(&c),
                ctx.opts.solver,
                &lp_opts,
                false,
                &lp_verify,
            )?
            .pop()
            .expect("one objective row");
            if enc.proven_lower > 0.0 {
                return Ok(true);
            }
            if enc.solution.is_none() {
                return Ok(false);
            }
            sp.push(s);
        }
    }
    Ok(false)
}

/// The input point where the node's linear lower bound is smallest
/// (`center + radius * sign(nuhat_1)`) and the unit to branch on (see [`crown_backward`]
/// and [`Branching`]).
fn backward_choice(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    c: &[f64],
    branching: Branching,
) -> (Vec<f64>, Option<(usize, usize)>) {
    let (nuhat, branch) = match branching {
        Branching::Babsr => crown_backward_rows(model, bounds, c),
        Branching::Fsb(k) => fsb_choice(model, domain, bounds, c, k),
    };
    let x_star = domain
        .center
        .iter()
        .zip(&domain.radius)
        .zip(&nuhat)
        .map(|((c, r), v)| {
            // min of -nuhat . x over the box: x = center + radius sign(nuhat).
            if *v > 0.0 {
                c + r
            } else if *v < 0.0 {
                c - r
            } else {
                *c
            }
        })
        .collect();
    (x_star, branch)
}

/// A floating-point backward pass of the dual network with CROWN's slopes over `bounds`
/// (a heuristic, never a bound): `nuhat_1`, the coefficients of the input in CROWN's
/// linear lower bound of `c . f(x)` (negated: the bound is `... - nuhat_1 . x`), and the
/// unstable unit with the largest BaBSR-style intercept score `-l d [nuhat]_+` (ties
/// and all-zero scores: the largest `-l u / (u - l)`, the triangle's height at 0);
/// `None` when no unit is unstable. `|nuhat_1i| * width_i` is what coordinate `i`'s
/// width costs the bound: the input-split heuristic of `verify`.
pub fn crown_backward(
    model: &Model,
    bounds: &LayerBounds,
    c: impl AsVector,
) -> (DVector<f64>, Option<(usize, usize)>) {
    let (nuhat, branch) = crown_backward_rows(model, bounds, c.as_values());
    (nuhat.into(), branch)
}

/// [`crown_backward`] on a slice.
pub(crate) fn crown_backward_rows(
    model: &Model,
    bounds: &LayerBounds,
    c: &[f64],
) -> (Vec<f64>, Option<(usize, usize)>) {
    let aff = model.affine();
    let mut nu: Vec<f64> = c.iter().map(|v| -v).collect();
    let mut best: Option<((f64, f64), usize, usize)> = None;
    for t in (0..aff.len()).rev() {
        let a = &aff[t];
        let mut nuhat = vec![0.0; a.op.n_in()];
        a.op.apply_transpose(&nu, 1, &mut nuhat);
        if t == 0 {
            return (nuhat, best.map(|(_, t, j)| (t, j)));
        }
        let (l, u) = (&bounds.lower[t - 1], &bounds.upper[t - 1]);
        let relu = model.relu_units(t - 1);
        for (j, v) in nuhat.iter_mut().enumerate() {
            let rel = Relaxation::of(relu, j, l[j], u[j]);
            if rel.stability == Stability::Unstable {
                let score = rel.height() * v.max(0.0);
                let key = (if score.is_finite() { score } else { 0.0 }, rel.height());
                if best.as_ref().is_none_or(|(b, _, _)| key > *b) {
                    best = Some((key, t - 1, j));
                }
            }
            *v = rel.dual(*v, rel.crown_slope());
        }
        nu = nuhat;
    }
    unreachable!("the loop returns at the first affine layer")
}

/// Filtered smart branching (FSB; De Palma et al. 2021, *Improved branch and bound for
/// neural network verification via Lagrangian decomposition*): among the `k` unstable
/// units with the largest BaBSR intercept scores (see [`crown_backward`]), the one whose
/// two children have the largest sum of estimated bounds. A child's estimate is the floating-point
/// J with CROWN's slopes over the node's bounds, the split unit's relaxation replaced by
/// its side (the identity for `zhat >= 0`, zero for `zhat <= 0`): the part of the
/// backward pass above the unit's layer is shared, the rest runs for all candidates of a
/// layer at once. A heuristic: it orders the search, never bounds it. Returns, as
/// [`crown_backward`], `nuhat_1` of the node and the unit (`None`: no unstable unit).
fn fsb_choice(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    c: &[f64],
    k: usize,
) -> (Vec<f64>, Option<(usize, usize)>) {
    let aff = model.affine();
    let n_layers = aff.len();
    // The backward pass with CROWN's slopes, keeping per hidden layer h the J so far
    // (above h's relaxation) and the pre-relaxation dual vector `v_h`.
    let mut nu: Vec<f64> = c.iter().map(|v| -v).collect();
    let mut jv = 0.0;
    let mut prefix = vec![0.0; n_layers - 1];
    let mut pre: Vec<Vec<f64>> = vec![Vec::new(); n_layers - 1];
    // (key, layer, unit): the BaBSR score and the triangle's height.
    let mut cands: Vec<((f64, f64), usize, usize)> = Vec::new();
    let mut nuhat1 = Vec::new();
    for t in (0..n_layers).rev() {
        let a = &aff[t];
        jv -= nu.iter().zip(&a.bias).map(|(v, b)| v * b).sum::<f64>();
        let mut nh = vec![0.0; a.op.n_in()];
        a.op.apply_transpose(&nu, 1, &mut nh);
        if t == 0 {
            // The input term is the same for every child: not needed.
            nuhat1 = nh;
            break;
        }
        let h = t - 1;
        prefix[h] = jv;
        let (l, u) = (&bounds.lower[h], &bounds.upper[h]);
        let relu = model.relu_units(h);
        for (j, v) in nh.iter_mut().enumerate() {
            let rel = Relaxation::of(relu, j, l[j], u[j]);
            if rel.stability == Stability::Unstable {
                let score = rel.height() * v.max(0.0);
                let key = (if score.is_finite() { score } else { 0.0 }, rel.height());
                cands.push((key, h, j));
                jv += l[j] * rel.upper_slope() * v.max(0.0);
            }
        }
        pre[h] = nh.clone();
        nu = nh
            .iter()
            .enumerate()
            .map(|(j, &v)| {
                let rel = Relaxation::of(relu, j, l[j], u[j]);
                rel.dual(v, rel.crown_slope())
            })
            .collect();
    }
    if cands.is_empty() {
        return (nuhat1, None);
    }
    cands.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(Ordering::Equal));
    cands.truncate(k.max(1));
    let fallback = Some((cands[0].1, cands[0].2));
    // Per layer with candidates: two rows per candidate (active, inactive) from that
    // layer's relaxation down to the input.
    let mut best: Option<(f64, usize, usize)> = None;
    let mut layers: Vec<usize> = cands.iter().map(|c| c.1).collect();
    layers.sort_unstable();
    layers.dedup();
    for h in layers {
        let js: Vec<usize> = cands.iter().filter(|c| c.1 == h).map(|c| c.2).collect();
        let (l, u) = (&bounds.lower[h], &bounds.upper[h]);
        let relu = model.relu_units(h);
        let v = &pre[h];
        let n = v.len();
        let mut term = 0.0;
        let base: Vec<f64> = v
            .iter()
            .enumerate()
            .map(|(j, &x)| {
                let rel = Relaxation::of(relu, j, l[j], u[j]);
                if rel.stability == Stability::Unstable {
                    term += l[j] * rel.upper_slope() * x.max(0.0);
                }
                rel.dual(x, rel.crown_slope())
            })
            .collect();
        let rows = 2 * js.len();
        let mut nus = Vec::with_capacity(rows * n);
        let mut own = Vec::with_capacity(rows);
        for &j in &js {
            let rel = Relaxation::of(relu, j, l[j], u[j]);
            let drop = l[j] * rel.upper_slope() * v[j].max(0.0);
            for side in [v[j], 0.0] {
                let mut col = base.clone();
                col[j] = side;
                nus.extend_from_slice(&col);
                own.push(prefix[h] + term - drop);
            }
        }
        let tail = float_tail(model, domain, bounds, h, nus, rows);
        for (i, &j) in js.iter().enumerate() {
            // Both children's estimates count (their sum): the worse child's alone chose
            // worse units (784-256-256-10, digit 133, eps 0.03, target 7: 1,385 nodes
            // against 745 for BaBSR and 377 for the sum).
            let both = own[2 * i] + tail[2 * i] + own[2 * i + 1] + tail[2 * i + 1];
            if both.is_finite() && best.is_none_or(|(b, _, _)| both > b) {
                best = Some((both, h, j));
            }
        }
    }
    (nuhat1, best.map(|(_, h, j)| (h, j)).or(fallback))
}

/// The input term of J, `center . nuhat_1 + radius . |nuhat_1|` (J subtracts it).
fn input_term(domain: &InputDomain, nh: &[f64]) -> f64 {
    nh.iter()
        .zip(&domain.center)
        .zip(&domain.radius)
        .map(|((v, x), r)| x * v + r * v.abs())
        .sum()
}

/// The floating-point J contributed from affine layer `t0` down to the input, for `rows`
/// dual vectors `nu` (column-major, one column of `aff[t0]`'s outputs per row) with
/// CROWN's slopes over `bounds`: the bias terms, the relaxations' intercepts and the
/// input term.
fn float_tail(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    t0: usize,
    mut nu: Vec<f64>,
    rows: usize,
) -> Vec<f64> {
    let aff = model.affine();
    let mut j = vec![0.0; rows];
    for t in (0..=t0).rev() {
        let a = &aff[t];
        let (ni, no) = (a.op.n_in(), a.op.n_out());
        for (r, col) in nu.chunks(no).enumerate() {
            j[r] -= col.iter().zip(&a.bias).map(|(v, b)| v * b).sum::<f64>();
        }
        let mut nh = vec![0.0; ni * rows];
        a.op.apply_transpose(&nu, rows, &mut nh);
        if t == 0 {
            for (r, col) in nh.chunks(ni).enumerate() {
                j[r] -= input_term(domain, col);
            }
            break;
        }
        let (l, u) = (&bounds.lower[t - 1], &bounds.upper[t - 1]);
        let relu = model.relu_units(t - 1);
        let rels: Vec<Relaxation> = (0..ni)
            .map(|k| Relaxation::of(relu, k, l[k], u[k]))
            .collect();
        for (r, col) in nh.chunks_mut(ni).enumerate() {
            for (v, rel) in col.iter_mut().zip(&rels) {
                if rel.stability == Stability::Unstable {
                    j[r] += rel.l * rel.upper_slope() * v.max(0.0);
                }
                *v = rel.dual(*v, rel.crown_slope());
            }
        }
        nu = nh;
    }
    j
}
