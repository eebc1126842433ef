//! Verified LP values: enclosures with a proven lower bound, solver retries, and the
//! inputs of the verified-numbers issue (`testdata/proven/`).

use std::cmp::Ordering;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use dual::{algorithm1, margin_objectives, InputDomain};
use lp::{
    lp_all_bounds, proven_lower_bound, solve, solve_verified, Lp19, LpOptions, Solver,
    VerifyOptions,
};
use network::preactivations_exact;
use network::{load_model, objective_exact, Architecture, Init, Model};

/// The verified enclosure of one objective row (no warm start).
fn enclosure(
    lp: &Lp19<'_>,
    c: impl network::AsVector,
    solver: Solver,
    opts: &LpOptions,
    verify: &VerifyOptions,
) -> lp::LpEnclosure {
    solve_verified(lp, network::as_row(&c), solver, opts, false, verify)
        .unwrap()
        .remove(0)
}

fn testdata(name: &str) -> Model {
    load_model(format!(
        "{}/../../testdata/proven/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Issue input 2: clarabel says `Solved` for -1.0000155e12 with its primal point
/// violating a row; the true optimum (every unit stable: LP = J = exact minimum) is
/// -1.000051e12. The enclosure's proven lower bound must be <= -1.000051e12, and
/// clarabel's value must not be called the optimum.
#[test]
fn a_solved_value_above_the_optimum_is_not_the_optimum() {
    let model = testdata("clarabel_gap.json");
    let dom = InputDomain::new([0.5], 0.01, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let c = margin_objectives(2, 0).unwrap().row(1).transpose();
    let truth = -1.000051e12;
    let no_fallback = VerifyOptions {
        fallback: false,
        ..Default::default()
    };
    let e = enclosure(
        &lp,
        &c,
        Solver::Clarabel,
        &LpOptions::default(),
        &no_fallback,
    );
    assert!(
        e.proven_lower <= truth,
        "proven lower {} above the optimum {truth}",
        e.proven_lower
    );
    if let Some(v) = e.value() {
        if v > truth * (1.0 - 1e-6) {
            assert!(!e.is_optimum, "clarabel's {v} called the optimum");
        }
    }
    // With the fallback, some solver settles it, and the enclosure is tight.
    let e = enclosure(
        &lp,
        &c,
        Solver::Clarabel,
        &LpOptions::default(),
        &VerifyOptions::default(),
    );
    assert!(e.proven_lower <= truth);
    assert!(e.proven_lower >= truth * (1.0 + 1e-9), "{}", e.proven_lower);
    assert!(e.is_optimum, "attempts: {:?}", e.attempts);
    let up = e.upper_at_input.unwrap();
    assert!(up >= truth, "upper bound {up} below the exact minimum");
}

/// Issue input 3: microlp reports `Infeasible` for an LP that is feasible by
/// construction (every unit stably on). The enclosure records the failure, retries with
/// the other solvers, and ends at the optimum, which equals J (7.668e12).
#[test]
fn a_spurious_infeasible_is_retried_with_the_other_solvers() {
    let model = testdata("microlp_infeasible.json");
    let dom = InputDomain::new([-0.8], 0.09, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let c = margin_objectives(2, 0).unwrap().row(1).transpose();
    let e = enclosure(
        &lp,
        &c,
        Solver::Microlp,
        &LpOptions::default(),
        &VerifyOptions::default(),
    );
    assert_eq!(e.attempts[0].solver, Solver::Microlp);
    assert!(e.attempts.len() >= 2 || e.is_optimum, "{:?}", e.attempts);
    assert!(e.is_optimum, "attempts: {:?}", e.attempts);
    let truth = 7.668e12;
    assert!(
        e.proven_lower <= truth * (1.0 + 1e-12),
        "{}",
        e.proven_lower
    );
    assert!(((e.value().unwrap() - truth) / truth).abs() < 1e-6);
}

/// On random nets, the Neumaier-Shcherbina bound from each solver's multipliers is
/// (a) below the exact network value at sampled points, checked in exact arithmetic,
/// and (b) within 1e-6 relative of the solver's optimum (the multipliers are good).
/// Zero multipliers give a valid but loose bound (the proof box alone).
#[test]
fn the_proven_lower_bound_is_sound_and_tight() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for seed in 0..6u64 {
        let model = Architecture::mlp(&[3, 12, 12, 3])
            .init(Init::Paper, seed)
            .unwrap();
        let x: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, 0.1, None).unwrap();
        let b = algorithm1(&model, &dom).unwrap();
        let lp = Lp19::new(&model, &dom, &b).unwrap();
        let cs = margin_objectives(3, 0).unwrap();
        for t in 1..3 {
            let c = &cs.row(t).transpose();
            let sol = solve(&lp, c, Solver::Clarabel, &LpOptions::default()).unwrap();
            let y = sol.row_duals.as_ref().unwrap();
            let p = proven_lower_bound(&lp, c, y).unwrap();
            let scale = sol.value.abs().max(1.0);
            assert!(
                p <= sol.value + 1e-7 * scale && sol.value - p <= 1e-6 * scale,
                "seed {seed} t {t}: proven {p} vs clarabel {}",
                sol.value
            );
            let zero = proven_lower_bound(&lp, c, vec![0.0; y.len()]).unwrap();
            assert!(zero <= p, "zero multipliers {zero} beat the solver's {p}");
            let (lo, hi) = (dom.lower(), dom.upper());
            for _ in 0..300 {
                let xs: Vec<f64> = (0..3).map(|i| rng.random_range(lo[i]..=hi[i])).collect();
                let e = objective_exact(&model, &xs, c).unwrap();
                assert_ne!(e.cmp_f64(p), Some(Ordering::Less), "exact value below {p}");
            }
        }
    }
}

/// LP-all bounds are proven, not solver values: on nets whose first layer is stably on
/// (so the relaxation is exact up to layer 2 and the LP's minimum is the exact minimum,
/// attained at a corner), every corner's exact layer-2 pre-activation lies inside the
/// LP-all bounds, checked in exact arithmetic, and the bounds are tight (1e-6). A bound
/// taken from the solver's value instead (off by its 1e-9 accuracy, either way) fails.
#[test]
fn lp_all_bounds_are_proven_and_tight() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut tight = 0;
    for seed in 0..8u64 {
        let base = Architecture::mlp(&[3, 5, 6, 2])
            .init(Init::Paper, seed)
            .unwrap();
        let model = base
            .map_parameters(|k, _, b| {
                if k == 0 {
                    b.iter_mut().for_each(|v| *v = 20.0);
                }
            })
            .unwrap();
        let x: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..1.0)).collect();
        // Shift layer 2's bias so that its pre-activations cross 0 inside the ball.
        let at_x = model.preactivations_batch(network::as_column(&x)).unwrap()[1].clone();
        let model = model
            .map_parameters(|k, _, b| {
                if k == 1 {
                    for (v, z) in b.iter_mut().zip(&at_x) {
                        *v = 1.3 * *v - z;
                    }
                }
            })
            .unwrap();
        let dom = InputDomain::new(&x, 0.7, None).unwrap();
        for solver in [Solver::Clarabel, Solver::Microlp] {
            let b = lp_all_bounds(&model, &dom, solver, &LpOptions::default()).unwrap();
            assert_eq!(
                b.lower.len(),
                model.hidden_layers(),
                "one entry per hidden layer"
            );
            let (lo, hi) = (dom.lower(), dom.upper());
            let mut min = [f64::INFINITY; 6];
            for mask in 0..8 {
                let xs: Vec<f64> = (0..3)
                    .map(|i| if mask >> i & 1 == 1 { hi[i] } else { lo[i] })
                    .collect();
                let pre = preactivations_exact(&model, &xs).unwrap();
                for k in 0..6 {
                    let z = &pre[1][k];
                    assert_ne!(
                        z.cmp_f64(b.lower[1][k]),
                        Some(Ordering::Less),
                        "seed {seed} unit {k}"
                    );
                    assert_ne!(
                        z.cmp_f64(b.upper[1][k]),
                        Some(Ordering::Greater),
                        "seed {seed} unit {k}"
                    );
                    min[k] = min[k].min(z.to_f64());
                }
            }
            for (k, m) in min.iter().enumerate() {
                if b.lower[1][k] < 0.0 && b.upper[1][k] > 0.0 {
                    assert!(
                        (m - b.lower[1][k]) <= 1e-6 * m.abs().max(1.0),
                        "seed {seed} unit {k}: LP-all lower {} vs exact minimum {m}",
                        b.lower[1][k]
                    );
                    tight += 1;
                }
            }
        }
    }
    assert!(
        tight >= 10,
        "only {tight} unstable units checked for tightness"
    );
}

/// The primal point's worst scaled violation: 0 at a point that satisfies every row
/// (the network's own forward pass with every unit's relaxation variable at its ReLU
/// value), and the row's scaled residual at a point that breaks one equality row.
#[test]
fn max_violation_measures_the_worst_row() {
    let model = Architecture::mlp(&[2, 3, 2]).init(Init::Paper, 6).unwrap();
    let x = [0.2, -0.1];
    let dom = InputDomain::new(x, 0.3, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let pre = model.preactivations_batch(network::as_column(&x)).unwrap();
    let mut v = vec![0.0; lp.var_lo.len()];
    for (i, &z) in lp.z1.iter().enumerate() {
        v[z] = x[i];
    }
    for (t, zs) in lp.zhat.iter().enumerate() {
        for (k, zh) in zs.iter().enumerate() {
            if let Some(j) = zh {
                v[*j] = pre[t][k];
            }
        }
    }
    for (t, zs) in lp.z.iter().enumerate() {
        for (k, z) in zs.iter().enumerate() {
            if let lp::ZVar::Var(j) = z {
                v[*j] = pre[t][k].max(0.0);
            }
        }
    }
    let ok = lp.max_violation(&v);
    assert!(ok <= 1e-15, "the forward pass violates (19) by {ok}");
    // Move the first logit off its defining row by 0.5: its row's violation is
    // 0.5 / max(1, |rhs|, max |coef * value|).
    let out = lp.zhat.last().unwrap()[0].unwrap();
    v[out] += 0.5;
    let bad = lp.max_violation(&v);
    assert!(
        bad >= 0.5 / (1.0 + v[out].abs() + 10.0) && bad <= 0.5,
        "{bad}"
    );
    v[out] -= 0.5;
    // A variable 2 above its upper bound at value u + 2: violation 2 / max(1, |u + 2|).
    let j = lp.z1[0];
    v[j] = lp.var_hi[j] + 2.0;
    let want = 2.0 / v[j].abs().max(1.0);
    let got = lp.max_violation(&v);
    assert!(
        (got - want).abs() <= 1e-12 && v[j].abs() > 1.0,
        "{got} vs {want}"
    );
}

/// Objectives whose length is not a multiple of the outputs are refused by every entry
/// point, before any solver runs; clarabel's reported duality gap is its gap, small at
/// an optimum.
#[test]
fn objective_lengths_are_checked_and_the_ipm_gap_is_reported() {
    let model = Architecture::mlp(&[2, 3, 2]).init(Init::Paper, 6).unwrap();
    let dom = InputDomain::new([0.2, -0.1], 0.3, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let opts = LpOptions::default();
    // No rows; a row of three for two outputs; two rows of one.
    for bad in [
        network::DMatrix::zeros(0, 2),
        network::DMatrix::from_row_slice(1, 3, &[1.0, -1.0, 0.5]),
        network::DMatrix::from_row_slice(2, 1, &[1.0, -1.0]),
    ] {
        assert!(lp::solve_many(&lp, &bad, Solver::Clarabel, &opts, false).is_err());
        assert!(solve_verified(
            &lp,
            &bad,
            Solver::Clarabel,
            &opts,
            false,
            &VerifyOptions::default()
        )
        .is_err());
    }
    let s = solve(&lp, [1.0, -1.0], Solver::Clarabel, &opts).unwrap();
    let gap = s.ipm_gap.expect("clarabel reports its gap");
    assert!(
        gap >= 0.0 && gap <= 1e-6 * s.value.abs().max(1.0),
        "gap {gap} at value {}",
        s.value
    );
    assert_eq!(
        solve(&lp, [1.0, -1.0], Solver::Microlp, &opts)
            .unwrap()
            .ipm_gap,
        None
    );
    // A small optimum is confirmed against the proven lower bound from either side.
    for solver in [Solver::Clarabel, Solver::Microlp] {
        let e = enclosure(&lp, [1.0, -1.0], solver, &opts, &VerifyOptions::default());
        let v = e.solution.as_ref().unwrap().value;
        assert!(
            v.abs() < 10.0 && e.is_optimum,
            "{solver:?}: {v}, {:?}",
            e.attempts
        );
    }
}

/// The Neumaier-Shcherbina bound is valid for *any* multipliers, wrong signs and
/// nonsense included (the signs are corrected, the rest only loosens it): with random
/// and sign-flipped multipliers it stays below every sampled exact value. So a bug in
/// the sign correction or in `r = c - A^T y` shows up as a bound above an exact value.
#[test]
fn the_proven_lower_bound_holds_for_any_multipliers() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for seed in 0..5u64 {
        let model = Architecture::mlp(&[2, 6, 5, 2])
            .init(Init::Paper, seed)
            .unwrap();
        let x: Vec<f64> = (0..2).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, 0.2, None).unwrap();
        let b = algorithm1(&model, &dom).unwrap();
        let lp = Lp19::new(&model, &dom, &b).unwrap();
        let c = [1.0, -1.0];
        let sol = solve(&lp, c, Solver::Clarabel, &LpOptions::default()).unwrap();
        let y = sol.row_duals.clone().unwrap();
        let (lo, hi) = (dom.lower(), dom.upper());
        let pts: Vec<Vec<f64>> = (0..400)
            .map(|k| {
                (0..2)
                    .map(|i| match k {
                        0..4 => {
                            if (k >> i) & 1 == 1 {
                                hi[i]
                            } else {
                                lo[i]
                            }
                        }
                        _ => rng.random_range(lo[i]..=hi[i]),
                    })
                    .collect()
            })
            .collect();
        let exact: Vec<network::Dyadic> = pts
            .iter()
            .map(|p| objective_exact(&model, p, c).unwrap())
            .collect();
        let mut trials: Vec<Vec<f64>> = vec![
            y.iter().map(|v| -v).collect(),
            y.iter().map(|v| 2.0 * v).collect(),
            y.iter().map(|v| v * 0.5).collect(),
        ];
        for _ in 0..20 {
            trials.push(y.iter().map(|v| v + rng.random_range(-1.0..1.0)).collect());
            trials.push((0..y.len()).map(|_| rng.random_range(-3.0..3.0)).collect());
        }
        for (k, yt) in trials.iter().enumerate() {
            let p = proven_lower_bound(&lp, c, yt).unwrap();
            for e in &exact {
                assert_ne!(
                    e.cmp_f64(p),
                    Some(Ordering::Less),
                    "seed {seed} trial {k}: bound {p} above an exact value {}",
                    e.to_f64()
                );
            }
        }
        // And the solver's own multipliers give the tightest of them, near the optimum.
        let best = proven_lower_bound(&lp, c, &y).unwrap();
        assert!(
            (sol.value - best).abs() <= 1e-6 * sol.value.abs().max(1.0),
            "{best} vs {}",
            sol.value
        );
    }
}

/// What an enclosure reports about itself, and `tighten` with a bound proven elsewhere.
#[test]
fn enclosure_reports_and_tightening() {
    let model = testdata("microlp_infeasible.json");
    let dom = InputDomain::new([-0.8], 0.09, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let c = [1.0, -1.0];
    let no_fallback = VerifyOptions {
        fallback: false,
        ..Default::default()
    };
    let e = enclosure(&lp, c, Solver::Microlp, &LpOptions::default(), &no_fallback);
    // microlp failed and nothing else was tried.
    assert_eq!(e.attempts.len(), 1);
    assert_eq!(e.verdict(), "no solver value");
    assert_eq!(e.solver_name(), "microlp");
    assert!(e.status().starts_with("Infeasible"), "{}", e.status());
    assert!(!e.is_optimum);
    let e = enclosure(
        &lp,
        c,
        Solver::Microlp,
        &LpOptions::default(),
        &VerifyOptions::default(),
    );
    // Every compiled solver at most once, microlp first.
    let names: Vec<&str> = e.attempts.iter().map(|a| a.solver.name()).collect();
    let mut uniq = names.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), names.len(), "{names:?}");
    assert!(e.attempts.iter().all(|a| a.solver.available()), "{names:?}");
    assert_eq!(e.verdict(), "optimum");
    assert_eq!(e.status(), e.solution.as_ref().unwrap().status);
    assert_eq!(e.solver_name(), e.solution.as_ref().unwrap().solver.name());
    // A larger proven bound from elsewhere is taken, and the verdict re-checked: a bound
    // far above the value makes it "lower bound only".
    let mut t = e.clone();
    let v = t.value().unwrap();
    t.tighten(v + 1e-3 * v.abs(), "test");
    assert_eq!(t.proven_lower_source, "test");
    assert!(!t.is_optimum);
    assert_eq!(t.verdict(), "lower bound only");
    let mut t = e.clone();
    t.tighten(f64::NEG_INFINITY, "ignored");
    assert_eq!(t.proven_lower, e.proven_lower);
    assert!(t.is_optimum);
    // Objectives of the wrong length are refused.
    assert!(solve_verified(
        &lp,
        network::as_row(&[1.0]),
        Solver::Clarabel,
        &LpOptions::default(),
        false,
        &no_fallback
    )
    .is_err());
    assert!(solve_verified(
        &lp,
        network::DMatrix::zeros(0, 2).as_view(),
        Solver::Clarabel,
        &LpOptions::default(),
        false,
        &no_fallback
    )
    .is_err());
}

/// A fallback solve gets the verification's time limit unless the caller set one.
#[test]
fn fallback_solves_are_time_limited() {
    let v = VerifyOptions::default();
    let none = LpOptions::default();
    assert_eq!(none.time_limit, None);
    let f = lp::fallback_options(&none, &v);
    assert_eq!(f.time_limit, v.fallback_time_limit);
    assert!(f.time_limit.is_some());
    let own = LpOptions {
        time_limit: Some(3.0),
        iteration_limit: Some(7),
        ..LpOptions::default()
    };
    let f = lp::fallback_options(&own, &v);
    assert_eq!((f.time_limit, f.iteration_limit), (Some(3.0), Some(7)));
}
