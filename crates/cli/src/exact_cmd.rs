//! `convex-outer exact`: the exact minimum of each target's margin over the input set,
//! enclosed by branch and bound (crate `exact`), beside J, CROWN, LP-last, LP-all and
//! PGD, with the chain between them checked on every row.

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use rand::SeedableRng;
use serde_json::{json, Value};

use dual::{algorithm1, dual_objective, AlphaRule};
use exact::{BabOptions, LpUse, PgdOptions};

use super::{header, ms, prepare, solvers_of, LpFlags, TargetArgs};

#[derive(Args, Debug)]
pub(crate) struct ExactArgs {
    #[command(flatten)]
    t: TargetArgs,
    #[command(flatten)]
    lpf: LpFlags,
    /// Wall-clock limit of branch and bound per target, in seconds.
    #[arg(long, default_value_t = 60.0, allow_hyphen_values = true)]
    timeout: f64,
    /// Nodes bounded per target at most.
    #[arg(long, default_value_t = 100_000)]
    max_nodes: usize,
    /// The enclosure closes when upper - lower <= tol * (1 + |upper|).
    #[arg(long, default_value_t = 1e-6, allow_hyphen_values = true)]
    tol: f64,
    /// Stop each target at its sign (proven > 0 or a point <= 0) instead of the minimum.
    #[arg(long)]
    decide: bool,
    /// Where LP (19) bounds a node: at leaves only, or wherever CROWN does not settle it.
    #[arg(long, value_enum, default_value = "undecided")]
    lp_at: LpAtArg,
    /// alpha-CROWN at the nodes CROWN does not settle.
    #[arg(long)]
    alpha: bool,
    /// Turn off beta-CROWN (Wang et al. 2021) at split nodes (on by default: alpha and
    /// a multiplier per split, 20 steps, before any LP).
    #[arg(long)]
    no_beta: bool,
    /// beta-CROWN's Adam steps per node.
    #[arg(long, default_value_t = 20)]
    beta_steps: usize,
    /// Start beta-CROWN at a child from CROWN's slopes and beta = 0 instead of its
    /// parent's optimised alpha and beta (ablation; the bounds are proven either way).
    #[arg(long)]
    no_warm_start: bool,
    /// How branch and bound picks the unit to split: `fsb` (filtered smart branching,
    /// De Palma et al. 2021, over 32 BaBSR candidates), `fsb:K` (over K) or `babsr` (the
    /// BaBSR intercept score alone, Bunel et al. 2020).
    #[arg(long, default_value = "fsb", value_parser = parse_branching)]
    branching: exact::Branching,
    /// Skip LP-all (one LP per unstable unit: slow on large models).
    #[arg(long)]
    skip_lp_all: bool,
    /// Also solve the MILP with HiGHS (feature `highs`) as a cross-check.
    #[arg(long)]
    milp: bool,
    /// Seed of PGD's random starts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `--branching`: `babsr`, `fsb` or `fsb:K` (K >= 1 candidates).
pub(crate) fn parse_branching(s: &str) -> Result<exact::Branching, String> {
    match s {
        "babsr" => Ok(exact::Branching::Babsr),
        "fsb" => Ok(exact::Branching::Fsb(exact::FSB_CANDIDATES)),
        _ => match s.strip_prefix("fsb:").map(str::parse::<usize>) {
            Some(Ok(k)) if k >= 1 => Ok(exact::Branching::Fsb(k)),
            _ => Err(format!(
                "give babsr, fsb or fsb:K with K a whole number >= 1 (candidates), not {s:?}"
            )),
        },
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LpAtArg {
    /// Leaves only (no unstable unit left), where LP (19) is exact.
    Leaves,
    /// Leaves and every node CROWN does not settle.
    Undecided,
}

pub(crate) fn exact_cmd(a: ExactArgs) -> Result<Value> {
    let p = prepare(&a.t)?;
    let solver = solvers_of(&a.lpf)?;
    let [solver] = solver.as_slice() else {
        bail!("exact uses one LP solver (the others follow when it fails): --solver all does not apply");
    };
    if !(a.tol >= 0.0 && a.tol.is_finite()) {
        bail!("--tol must be a finite number >= 0, got {}", a.tol);
    }
    if !(a.timeout > 0.0 && a.timeout <= 1e9) {
        bail!("--timeout must be in (0, 1e9] seconds, got {}", a.timeout);
    }
    if a.max_nodes == 0 {
        bail!("--max-nodes must be at least 1 (the root is a node), got 0");
    }
    if a.milp && !exact::MILP_COMPILED {
        bail!(
            "--milp needs HiGHS: this build was not compiled with the `highs` feature \
             (cargo build --release --features highs; needs cmake and libclang)"
        );
    }
    let t0 = Instant::now();
    let model = &p.model;
    let dom = &p.domain;
    let n = model.output_len();
    let lp_opts = lp::LpOptions {
        time_limit: a.lpf.time_limit,
        ..Default::default()
    };
    let verify = lp::VerifyOptions::default();
    let t = Instant::now();
    let a1 = algorithm1(model, dom)?;
    let j = dual_objective(model, dom, &a1, &p.c, &AlphaRule::Paper)?;
    let crown_b = dual::crown_bounds(model, dom)?;
    let crown = dual::bound_given(
        model,
        dom,
        crown_b.clone(),
        &p.c,
        dual::Method::Crown,
        &Default::default(),
    )?;
    let t_dual = ms(t);
    let t = Instant::now();
    let lp_last = lp::solve_verified(
        &lp::Lp19::new(model, dom, &a1)?,
        &p.c,
        *solver,
        &lp_opts,
        true,
        &verify,
    )?;
    let t_last = ms(t);
    let t = Instant::now();
    let lp_all = if a.skip_lp_all {
        None
    } else {
        let b = lp::lp_all_bounds(model, dom, *solver, &lp_opts)?;
        Some(lp::solve_verified(
            &lp::Lp19::new(model, dom, &b)?,
            &p.c,
            *solver,
            &lp_opts,
            true,
            &verify,
        )?)
    };
    let t_all = ms(t);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut rows = Vec::new();
    let mut all_proved = true;
    let mut any_counterexample = false;
    let mut chain_ok = true;
    for k in 0..p.names.len() {
        let c = &p.c.row(k).transpose();
        let t = Instant::now();
        let (xp, _) = exact::pgd(
            model,
            dom,
            c,
            std::slice::from_ref(&dom.center),
            &PgdOptions::default(),
            &mut rng,
        )?;
        let pgd_upper = dual::value_upper_bound(model, &xp, c)?;
        let t_pgd = ms(t);
        let opts = BabOptions {
            timeout: Some(a.timeout),
            max_nodes: a.max_nodes,
            abs_tol: a.tol,
            rel_tol: a.tol,
            threshold: a.decide.then_some(0.0),
            lp_use: match a.lp_at {
                LpAtArg::Leaves => LpUse::Leaves,
                LpAtArg::Undecided => LpUse::Undecided,
            },
            solver: *solver,
            alpha: a.alpha.then(Default::default),
            beta: (!a.no_beta).then(|| dual::AlphaOptions {
                iterations: a.beta_steps,
                ..Default::default()
            }),
            warm_start: !a.no_warm_start,
            seed: a.seed.wrapping_add(k as u64),
            lp_time_limit: a.lpf.time_limit,
            branching: a.branching,
            ..BabOptions::default()
        };
        let mut e = exact::minimise(model, dom, c, &opts)?;
        // Every proven bound of this run holds on the minimum: report the best (branch
        // and bound in decision mode can stop with a lower end below LP-all's).
        let other = [
            j.values[k],
            crown.values[k],
            lp_last[k].proven_lower,
            lp_all
                .as_ref()
                .map_or(f64::NEG_INFINITY, |v| v[k].proven_lower),
        ];
        let before = e.lower;
        e.lower = other.iter().fold(e.lower, |a, b| a.max(*b)).min(e.upper);
        let lower_source = if e.lower > before {
            "an earlier bound of this run"
        } else {
            "branch and bound"
        };
        all_proved &= e.lower > 0.0;
        any_counterexample |= e.upper <= 0.0;
        let last = &lp_last[k];
        let all = lp_all.as_ref().map(|v| &v[k]);
        // The chain, proven ends only: each lower bound below the next method's upper end.
        let mut chain = vec![
            ("J (wk) <= exact upper", j.values[k] <= e.upper),
            (
                "LP-last proven lower <= exact upper",
                last.proven_lower <= e.upper,
            ),
            (
                "exact lower <= PGD (proven value at its point)",
                e.lower <= pgd_upper,
            ),
        ];
        if let Some(all) = all {
            chain.push((
                "LP-all proven lower <= exact upper",
                all.proven_lower <= e.upper,
            ));
            chain.push((
                "LP-last proven lower <= LP-all solver value (+1e-6)",
                all.value()
                    .is_none_or(|v| last.proven_lower <= v + 1e-6 * (1.0 + v.abs())),
            ));
        }
        chain_ok &= chain.iter().all(|(_, ok)| *ok);
        let milp = if a.milp {
            match exact::milp_minimum(model, dom, &crown_b, c, &Default::default()) {
                Ok(m) => serde_json::to_value(&m)?,
                Err(err) => json!({"error": err.to_string()}),
            }
        } else {
            Value::Null
        };
        rows.push(json!({
            "objective": p.names[k],
            "target": p.targets[k],
            "J_wk": j.values[k],
            "crown": crown.values[k],
            "lp_last": {"proven_lower": last.proven_lower, "solver_value": last.value(), "verdict": last.verdict()},
            "lp_all": all.map(|e| json!({"proven_lower": e.proven_lower, "solver_value": e.value(), "verdict": e.verdict()})),
            "exact": {
                "lower": e.lower, "lower_from": lower_source, "upper": e.upper, "gap": e.gap(), "status": e.status.word(),
                "nodes": e.nodes, "lps": e.lps, "empty": e.empty, "unsettled_leaves": e.unsettled_leaves,
                "open": e.open, "max_depth": e.max_depth, "root_unstable": e.root_unstable,
                "root_lower": e.root_lower, "time_ms": e.time_s * 1e3, "point": e.point.as_slice(),
            },
            "pgd_upper": pgd_upper,
            "pgd_ms": t_pgd,
            "chain": chain.iter().map(|(name, ok)| json!({"link": name, "holds": ok})).collect::<Vec<_>>(),
            "milp": milp,
        }));
    }
    let mut out = header(&p);
    out["objectives"] = rows.into();
    out["verdict"] = if n == 1 {
        Value::Null
    } else if all_proved {
        "robust: every target's exact minimum is proven > 0".into()
    } else if any_counterexample {
        "not robust: a point of the input set has margin <= 0 (see exact.point)".into()
    } else {
        "undecided: an enclosure still contains 0 (raise --timeout or --max-nodes)".into()
    };
    out["chain_holds"] = chain_ok.into();
    out["settings"] = json!({
        "solver": solver.name(), "timeout_s": a.timeout, "max_nodes": a.max_nodes, "tol": a.tol,
        "decide": a.decide, "lp_at": format!("{:?}", a.lp_at).to_lowercase(), "alpha": a.alpha, "beta": !a.no_beta, "beta_steps": a.beta_steps, "warm_start": !a.no_warm_start, "branching": a.branching.word(), "seed": a.seed,
        "box": a.t.r#box.map(|(l, h)| vec![l, h]), "skip_lp_all": a.skip_lp_all, "milp": a.milp, "time_limit_s": a.lpf.time_limit,
    });
    out["numbers_note"] = "exact.lower is proven (the smallest proven bound over sub-domains that cover the input set: CROWN, LP (19) with the splits, Neumaier-Shcherbina); exact.upper is the network's value at exact.point, a point of the input set, with rounding bounded; the MILP's numbers are HiGHS's (a cross-check, not a proof).".into();
    out["time_ms"] = json!({"dual": t_dual, "lp_last": t_last, "lp_all": t_all, "total": ms(t0)});
    Ok(out)
}
