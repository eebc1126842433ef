//! Solving LP (19): microlp (simplex) and clarabel (interior point) through good_lp, and
//! HiGHS (feature `highs`) through the `highs` crate so that several objectives
//! re-solve warm from one basis.
//!
//! Status is part of the answer: anything but a proven optimum is an
//! [`LpError::NotOptimal`] carrying the solver's raw status. good_lp reports clarabel's
//! `AlmostSolved` as success, so the raw clarabel status is checked here, and an
//! interior-point value is marked approximate with its duality gap.

use network::{AsVector, DMatrixView, DVector};
use std::time::{Duration, Instant};

use good_lp::solvers::{SolutionStatus, WithTimeLimit};
use good_lp::{
    variable, DualValues, Expression, ProblemVariables, Solution, SolutionWithDual, SolverModel,
    Variable,
};

use crate::build::Lp19;
use crate::error::{LpError, Result};

/// An LP solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Solver {
    /// microlp's simplex, pure Rust (default build).
    Microlp,
    /// clarabel's interior point, pure Rust (default build).
    Clarabel,
    /// HiGHS' dual simplex (feature `highs`).
    Highs,
}

impl Solver {
    /// Every solver, compiled in or not.
    pub const ALL: [Solver; 3] = [Solver::Microlp, Solver::Clarabel, Solver::Highs];

    /// Lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Solver::Microlp => "microlp",
            Solver::Clarabel => "clarabel",
            Solver::Highs => "highs",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Result<Solver> {
        match s {
            "microlp" => Ok(Solver::Microlp),
            "clarabel" => Ok(Solver::Clarabel),
            "highs" => Ok(Solver::Highs),
            o => Err(LpError::UnknownSolver(o.to_string())),
        }
    }

    /// Whether this build can use the solver.
    pub fn available(&self) -> bool {
        !matches!(self, Solver::Highs) || cfg!(feature = "highs")
    }

    /// HiGHS when compiled in, otherwise clarabel (the faster pure-Rust solver on the
    /// LP benchmark).
    pub fn preferred() -> Solver {
        if Solver::Highs.available() {
            Solver::Highs
        } else {
            Solver::Clarabel
        }
    }
}

/// Limits and tolerances of a solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LpOptions {
    /// Wall-clock limit in seconds (every solver).
    pub time_limit: Option<f64>,
    /// Iteration limit (clarabel: interior-point iterations; HiGHS: simplex iterations;
    /// microlp has none and ignores it).
    pub iteration_limit: Option<u32>,
    /// Clarabel's duality-gap and feasibility tolerances (absolute and relative).
    pub ipm_tolerance: f64,
}

impl Default for LpOptions {
    fn default() -> Self {
        LpOptions {
            time_limit: None,
            iteration_limit: None,
            ipm_tolerance: 1e-9,
        }
    }
}

/// A proven (or, for an interior-point solver, gap-checked) optimum of LP (19).
#[derive(Debug, Clone, PartialEq)]
pub struct LpSolution {
    /// The optimum `min c^T zhat_k`.
    pub value: f64,
    pub solver: Solver,
    /// The solver's raw status ("Optimal", "Solved", ...).
    pub status: String,
    /// None for a simplex optimum; `Some(gap)` for an interior-point value, the absolute
    /// difference between its primal and dual objectives.
    pub ipm_gap: Option<f64>,
    /// Values of every LP variable (see [`Lp19`] for the layout).
    pub values: DVector<f64>,
    pub iterations: u64,
    /// Time spent handing the LP to the solver (expressions, matrices); zero for a warm
    /// re-solve, which only changes the objective.
    pub setup_time: Duration,
    /// Time spent in the solver itself.
    pub solve_time: Duration,
    /// True when this solve started from the basis of the previous objective (HiGHS).
    pub warm: bool,
    /// The solver's multiplier (shadow price, `d value / d rhs`) of every LP row, when
    /// the solver reports them (clarabel, HiGHS; microlp does not). The proven lower
    /// bound of [`crate::verified`] is computed from these.
    pub row_duals: Option<DVector<f64>>,
}

impl LpSolution {
    /// The input `x'` of the optimum (`z_1`), clipped into the input set's inner box
    /// (a solver may leave it outside by its feasibility tolerance, and the float box
    /// `center +- radius` may reach an ulp beyond the exact set): a point of the input
    /// set, so the network's value there bounds the exact minimum from above.
    pub fn input_point(&self, lp: &Lp19<'_>) -> DVector<f64> {
        let (lo, hi) = (&lp.domain.inner_lower, &lp.domain.inner_upper);
        DVector::from_iterator(
            lp.z1.len(),
            lp.z1
                .iter()
                .enumerate()
                .map(|(i, &v)| self.values[v].clamp(lo[i], hi[i])),
        )
    }

    /// `c^T f(x'_LP)`: the real network at the LP's input, an adversarial candidate, so
    /// `LP <= exact minimum <= this`.
    pub fn value_at_input_point(&self, lp: &Lp19<'_>, c: impl AsVector) -> Result<f64> {
        let c = c.as_values();
        let f = lp
            .model
            .forward(self.input_point(lp))
            .map_err(dual::DualError::from)?;
        Ok(c.iter().zip(&f).map(|(a, b)| a * b).sum())
    }
}

/// One objective row of the model's width (the error of any other objective matrix).
fn check_objective(lp: &Lp19<'_>, c: &[f64]) -> Result<()> {
    dual::objective_rows(network::as_row(c), lp.model.output_len())?;
    Ok(())
}

/// Solves `min c^T zhat_k` over LP (19) with one solver (cold); `c` has `n_out` entries.
pub fn solve(
    lp: &Lp19<'_>,
    c: impl AsVector,
    solver: Solver,
    opts: &LpOptions,
) -> Result<LpSolution> {
    let c = c.as_values();
    check_objective(lp, c)?;
    match solver {
        Solver::Microlp | Solver::Clarabel => solve_good_lp(lp, c, solver, opts),
        Solver::Highs => {
            let mut v = solve_rows(lp, c, Solver::Highs, opts, false)?;
            Ok(v.remove(0))
        }
    }
}

/// Solves one LP per objective row of `cs` (`rows x n_out`). With HiGHS and `warm`,
/// every solve after the first starts from the previous basis; the other solvers solve
/// each objective cold.
pub fn solve_many<'c>(
    lp: &Lp19<'_>,
    cs: impl Into<DMatrixView<'c, f64>>,
    solver: Solver,
    opts: &LpOptions,
    warm: bool,
) -> Result<Vec<LpSolution>> {
    let cs = dual::objective_rows(cs.into(), lp.model.output_len())?;
    solve_rows(lp, &cs, solver, opts, warm)
}

/// [`solve_many`] on row-major objective rows.
pub(crate) fn solve_rows(
    lp: &Lp19<'_>,
    cs: &[f64],
    solver: Solver,
    opts: &LpOptions,
    warm: bool,
) -> Result<Vec<LpSolution>> {
    let n_out = lp.model.output_len();
    // The callers checked the rows ([`dual::objective_rows`], [`check_objective`]).
    debug_assert!(!cs.is_empty() && cs.len().is_multiple_of(n_out));
    match solver {
        Solver::Highs => highs_backend::solve_many(lp, cs, opts, warm),
        _ => cs
            .chunks(n_out)
            .map(|c| solve_good_lp(lp, c, solver, opts))
            .collect(),
    }
}

fn good_lp_problem(lp: &Lp19<'_>, c: &[f64]) -> (ProblemVariables, Vec<Variable>, Expression) {
    let mut pv = ProblemVariables::new();
    let vars: Vec<Variable> = lp
        .var_lo
        .iter()
        .zip(&lp.var_hi)
        .map(|(&lo, &hi)| {
            let mut d = variable();
            if lo.is_finite() {
                d = d.min(lo);
            }
            if hi.is_finite() {
                d = d.max(hi);
            }
            pv.add(d)
        })
        .collect();
    let obj_terms = lp.objective_coefficients(c);
    let mut obj = Expression::with_capacity(obj_terms.len());
    for (i, v) in obj_terms {
        obj.add_mul(v, vars[i]);
    }
    (pv, vars, obj)
}

/// good_lp constraints of every LP row, each with the index of its row (a range row
/// gives two).
fn good_lp_constraints(lp: &Lp19<'_>, vars: &[Variable]) -> Vec<(usize, good_lp::Constraint)> {
    let mut out = Vec::with_capacity(lp.row_lo.len());
    for r in 0..lp.row_lo.len() {
        let (s, e) = (lp.row_start[r], lp.row_start[r + 1]);
        let mut ex = Expression::with_capacity(e - s);
        for k in s..e {
            ex.add_mul(lp.row_val[k], vars[lp.row_idx[k]]);
        }
        let (lo, hi) = (lp.row_lo[r], lp.row_hi[r]);
        if lo == hi {
            out.push((r, ex.eq(lo)));
        } else {
            if hi.is_finite() {
                out.push((r, ex.clone().leq(hi)));
            }
            if lo.is_finite() {
                out.push((r, ex.geq(lo)));
            }
        }
    }
    out
}

fn solve_good_lp(lp: &Lp19<'_>, c: &[f64], solver: Solver, opts: &LpOptions) -> Result<LpSolution> {
    check_objective(lp, c)?;
    let t = Instant::now();
    let (pv, vars, obj) = good_lp_problem(lp, c);
    let constraints = good_lp_constraints(lp, &vars);
    let setup_time = t.elapsed();
    let t = Instant::now();
    let not_opt = |status: String, detail: Option<String>| LpError::NotOptimal {
        solver: solver.name(),
        status,
        detail,
    };
    match solver {
        Solver::Microlp => {
            let mut p = pv.minimise(obj).using(good_lp::microlp);
            if let Some(s) = opts.time_limit {
                p = p.with_time_limit(s);
            }
            let sol = p
                .with_all(constraints.into_iter().map(|(_, c)| c))
                .solve()
                .map_err(|e| not_opt(resolution_status(&e), Some(e.to_string())))?;
            let status = sol.status();
            if !good_lp_status_is_value(status) {
                return Err(not_opt(format!("{status:?}"), None));
            }
            let values: Vec<f64> = vars.iter().map(|&v| sol.value(v)).collect();
            let inner = sol.into_inner();
            let value = inner.objective();
            Ok(LpSolution {
                value,
                solver,
                status: format!("{:?}", inner.termination_reason()),
                ipm_gap: None,
                values: values.into(),
                iterations: inner.stats().lp_iterations as u64,
                setup_time,
                solve_time: t.elapsed(),
                warm: false,
                row_duals: None,
            })
        }
        Solver::Clarabel => {
            let mut p = pv.minimise(obj).using(good_lp::clarabel);
            {
                let s = p.settings();
                s.tol_gap_abs(opts.ipm_tolerance)
                    .tol_gap_rel(opts.ipm_tolerance)
                    .tol_feas(opts.ipm_tolerance)
                    .presolve_enable(true);
                if let Some(n) = opts.iteration_limit {
                    s.max_iter(n);
                }
                if let Some(l) = opts.time_limit {
                    s.time_limit(l);
                }
                // faer's factorisation on one thread: forking it over rayon's pool was
                // 2-4x slower on 2 cores for an LP alone (conv net 3.2 s sequential, 11.3 s
                // forked, QDLDL 6.6 s; dense MLP 1.2 / 3.9 / 1.1 s) and slower inside
                // the callers' own parallel loops (README, *tightness*).
                s.max_threads(1);
            }
            let mut refs = Vec::with_capacity(constraints.len());
            for (r, c) in constraints {
                refs.push((r, p.add_constraint(c)));
            }
            let mut sol = p
                .solve()
                .map_err(|e| not_opt(resolution_status(&e), Some(e.to_string())))?;
            let inner = sol.inner();
            let status = format!("{:?}", inner.status);
            if !clarabel_status_is_value(&status) {
                return Err(not_opt(
                    status,
                    Some("clarabel reports only Solved as an optimum".into()),
                ));
            }
            let gap = (inner.obj_val - inner.obj_val_dual).abs();
            let obj_val = inner.obj_val;
            let iterations = inner.iterations as u64;
            let values: Vec<f64> = vars.iter().map(|&v| sol.value(v)).collect();
            let mut row_duals = vec![0.0; lp.row_lo.len()];
            {
                let duals = sol.compute_dual();
                for (r, cref) in refs {
                    row_duals[r] += duals.dual(cref);
                }
            }
            Ok(LpSolution {
                value: obj_val,
                solver,
                status,
                ipm_gap: Some(gap),
                values: values.into(),
                iterations,
                setup_time,
                solve_time: t.elapsed(),
                warm: false,
                row_duals: Some(row_duals.into()),
            })
        }
        Solver::Highs => unreachable!("HiGHS is solved through its own backend"),
    }
}

/// The status rule for microlp (through good_lp): only `Optimal` carries a value.
/// `TimeLimit` (a MIP's incumbent) and anything else do not.
pub fn good_lp_status_is_value(status: SolutionStatus) -> bool {
    matches!(status, SolutionStatus::Optimal)
}

/// The status rule for clarabel: only `Solved` carries a value. `AlmostSolved` (reduced
/// accuracy), the infeasibility certificates, and the iteration, time and numerical
/// stops do not.
pub fn clarabel_status_is_value(status: &str) -> bool {
    status == "Solved"
}

/// The status rule for HiGHS: only `Optimal` carries a value.
#[cfg(feature = "highs")]
pub fn highs_status_is_value(status: highs::HighsModelStatus) -> bool {
    status == highs::HighsModelStatus::Optimal
}

fn resolution_status(e: &good_lp::ResolutionError) -> String {
    match e {
        good_lp::ResolutionError::Infeasible => "Infeasible".into(),
        good_lp::ResolutionError::Unbounded => "Unbounded".into(),
        good_lp::ResolutionError::Other(s) => (*s).to_string(),
        good_lp::ResolutionError::Str(s) => s.clone(),
    }
}

#[cfg(feature = "highs")]
mod highs_backend {
    use super::*;
    use highs::{Model, RowProblem, Sense};

    pub fn solve_many(
        lp: &Lp19<'_>,
        cs: &[f64],
        opts: &LpOptions,
        warm: bool,
    ) -> Result<Vec<LpSolution>> {
        let n_out = lp.model.output_len();
        let build = || -> (Model, Vec<highs::Col>) {
            let mut pb = RowProblem::default();
            let cols: Vec<highs::Col> = lp
                .var_lo
                .iter()
                .zip(&lp.var_hi)
                .map(|(&lo, &hi)| pb.add_column(0.0, lo..=hi))
                .collect();
            for r in 0..lp.row_lo.len() {
                let (s, e) = (lp.row_start[r], lp.row_start[r + 1]);
                let f: Vec<(highs::Col, f64)> = (s..e)
                    .map(|k| (cols[lp.row_idx[k]], lp.row_val[k]))
                    .collect();
                pb.add_row(lp.row_lo[r]..=lp.row_hi[r], f);
            }
            let mut m = Model::new(pb);
            m.make_quiet();
            m.set_sense(Sense::Minimise);
            m.set_option("solver", "simplex");
            if let Some(t) = opts.time_limit {
                m.set_option("time_limit", t);
            }
            if let Some(n) = opts.iteration_limit {
                m.set_option("simplex_iteration_limit", n as i32);
            }
            (m, cols)
        };
        let out_vars: Vec<usize> = lp
            .zhat
            .last()
            .expect("logits")
            .iter()
            .map(|v| v.expect("every logit has a variable"))
            .collect();
        let t = Instant::now();
        let (mut model, cols) = build();
        let mut setup_time = t.elapsed();
        let mut res = Vec::with_capacity(cs.len() / n_out);
        for (i, c) in cs.chunks(n_out).enumerate() {
            if i > 0 && !warm {
                let t = Instant::now();
                model = build().0;
                setup_time = t.elapsed();
            }
            for (k, &v) in out_vars.iter().enumerate() {
                model.change_column_cost(cols[v], c[k]);
            }
            let t = Instant::now();
            let solved = model.try_solve().map_err(|e| LpError::NotOptimal {
                solver: "highs",
                status: format!("{e:?}"),
                detail: None,
            })?;
            let status = solved.status();
            if !highs_status_is_value(status) {
                return Err(LpError::NotOptimal {
                    solver: "highs",
                    status: format!("{status:?}"),
                    detail: None,
                });
            }
            let solution = solved.get_solution();
            let values = solution.columns().to_vec();
            let row_duals = Some(solution.dual_rows().to_vec());
            let value = solved.objective_value();
            let iterations = solved.simplex_iteration_count().max(0) as u64;
            res.push(LpSolution {
                value,
                solver: Solver::Highs,
                status: format!("{status:?}"),
                ipm_gap: None,
                values: values.into(),
                iterations,
                setup_time,
                solve_time: t.elapsed(),
                warm: warm && i > 0,
                row_duals: row_duals.map(Into::into),
            });
            setup_time = Duration::ZERO;
            model = solved.into();
        }
        Ok(res)
    }
}

#[cfg(not(feature = "highs"))]
mod highs_backend {
    use super::*;

    pub fn solve_many(_: &Lp19<'_>, _: &[f64], _: &LpOptions, _: bool) -> Result<Vec<LpSolution>> {
        Err(LpError::NotCompiled {
            solver: "HiGHS",
            feature: "highs",
        })
    }
}
