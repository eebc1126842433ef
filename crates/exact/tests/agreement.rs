//! Branch and bound, pattern enumeration and (with `highs`) the MILP give the same exact
//! minimum on small random networks (dense and conv), and the chain
//! `J <= LP-last <= LP-all <= exact <= PGD <= sampled` holds on every case.
//!
//! Tolerance: the enclosures close to `1e-6 (1 + |upper|)`; two exact methods agree
//! within the sum of their gaps plus the LP tolerance `1e-6 (1 + |value|)` (solver
//! optima are confirmed to 1e-7 relative by the proven LP bound); sampled values are
//! floating-point forward passes of O(1) numbers, compared with `1e-9 (1 + |v|)`.

mod common;

use common::{lp_value, tol};
use dual::{algorithm1, dual_objective, AlphaRule, InputDomain};
use exact::{
    enumerate_patterns, minimise, pgd, BabOptions, BabStatus, Branching, LpUse, PgdOptions,
};
use lp::Solver;
use lp::{lp_all_bounds, LpOptions};
use network::{Architecture, Init, Model, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cases() -> Vec<(String, Model, InputDomain, Vec<f64>)> {
    let mut out = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for seed in 0..9u64 {
        let (widths, eps): (&[usize], f64) = match seed % 3 {
            0 => (&[2, 8, 8, 2], 1.0),
            1 => (&[3, 6, 6, 3], 0.7),
            _ => (&[5, 10, 4, 3], 0.5),
        };
        let model = Architecture::mlp(widths).init(Init::Paper, seed).unwrap();
        let x: Vec<f64> = (0..widths[0])
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let dom = InputDomain::new(&x, eps, None).unwrap();
        let n = *widths.last().unwrap();
        let mut c = vec![0.0; n];
        c[0] = 1.0;
        c[n - 1] = -1.0;
        out.push((format!("mlp {widths:?} seed {seed}"), model, dom, c));
    }
    let conv = Architecture::conv_net(Shape::Image { c: 1, h: 4, w: 4 }, &[(2, 3, 2, 1)], &[4, 2])
        .init(Init::Paper, 11)
        .unwrap();
    let x: Vec<f64> = (0..16).map(|_| rng.random_range(0.0..1.0)).collect();
    let dom = InputDomain::new(&x, 0.15, Some((0.0, 1.0))).unwrap();
    out.push(("conv 1x4x4".into(), conv, dom, vec![1.0, -1.0]));
    out
}

#[test]
fn bab_meets_enumeration_and_the_chain() {
    for (name, model, dom, c) in cases() {
        let opts = BabOptions {
            timeout: Some(60.0),
            solver: Solver::Clarabel,
            ..BabOptions::default()
        };
        let bab = minimise(&model, &dom, &c, &opts).unwrap();
        let en = enumerate_patterns(&model, &dom, &c, Solver::Clarabel, 16).unwrap();
        eprintln!(
            "{name}: bab [{}, {}] {:?} nodes {} lps {} empty {} unsettled {}; enum value {} [{}, {}] unstable {} feasible {} skipped {}",
            bab.lower, bab.upper, bab.status, bab.nodes, bab.lps, bab.empty, bab.unsettled_leaves,
            en.value, en.lower, en.upper, en.unstable, en.feasible, en.skipped
        );
        assert_eq!(bab.status, BabStatus::Closed, "{name}");
        assert!(bab.lower <= bab.upper, "{name}");
        assert!(bab.upper - bab.lower <= tol(bab.upper), "{name}");
        // Both enclose the same minimum.
        assert!(bab.lower <= en.upper + tol(en.upper), "{name}");
        assert!(en.lower <= bab.upper + tol(bab.upper), "{name}");
        assert!(
            (bab.upper - en.value).abs() <= 2.0 * tol(en.value),
            "{name}"
        );
    }
}

#[test]
fn the_whole_chain_holds() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (name, model, dom, c) in cases() {
        let bab = minimise(
            &model,
            &dom,
            &c,
            &BabOptions {
                solver: Solver::Clarabel,
                ..BabOptions::default()
            },
        )
        .unwrap();
        assert_eq!(bab.status, BabStatus::Closed, "{name}");
        let a1 = algorithm1(&model, &dom).unwrap();
        let j = dual_objective(&model, &dom, &a1, network::as_row(&c), &AlphaRule::Paper)
            .unwrap()
            .values[0];
        let (last_lo, last) = lp_value(&model, &dom, &a1, &c);
        let all_b = lp_all_bounds(&model, &dom, Solver::Clarabel, &LpOptions::default()).unwrap();
        let (all_lo, all) = lp_value(&model, &dom, &all_b, &c);
        let (xp, _) = pgd(
            &model,
            &dom,
            &c,
            std::slice::from_ref(&dom.center),
            &PgdOptions::default(),
            &mut rng,
        )
        .unwrap();
        let pgd_up = dual::value_upper_bound(&model, &xp, &c).unwrap();
        // Sampled points of the inner box.
        let n = dom.x.len();
        let mut sampled = f64::INFINITY;
        for _ in 0..2000 {
            let x: Vec<f64> = (0..n)
                .map(|i| rng.random_range(dom.inner_lower[i]..=dom.inner_upper[i]))
                .collect();
            let f = model.forward(&x).unwrap();
            sampled = sampled.min(c.iter().zip(&f).map(|(a, b)| a * b).sum());
        }
        eprintln!(
            "{name}: J {j:.6} <= LP-last {last:.6} <= LP-all {all:.6} <= exact [{:.9}, {:.9}] <= PGD {pgd_up:.6} <= sampled {sampled:.6}",
            bab.lower, bab.upper
        );
        assert!(j <= last + tol(last), "{name}: J {j} > LP-last {last}");
        assert!(
            last_lo <= all + tol(all),
            "{name}: LP-last {last} > LP-all {all}"
        );
        assert!(
            all_lo <= bab.upper,
            "{name}: LP-all {all_lo} above the exact upper end"
        );
        assert!(
            all <= bab.upper + tol(all),
            "{name}: LP-all value {all} > exact"
        );
        assert!(
            bab.lower <= pgd_up,
            "{name}: exact lower {} > PGD {pgd_up}",
            bab.lower
        );
        assert!(
            bab.lower <= sampled + 1e-9 * (1.0 + sampled.abs()),
            "{name}: exact > sampled"
        );
        // The point reproduces the upper end through the network.
        let f = model.forward(&bab.point).unwrap();
        let at: f64 = c.iter().zip(&f).map(|(a, b)| a * b).sum();
        assert!((at - bab.upper).abs() <= 1e-9 * (1.0 + at.abs()), "{name}");
        for (i, v) in bab.point.iter().enumerate() {
            assert!(
                dom.inner_lower[i] <= *v && *v <= dom.inner_upper[i],
                "{name}: point outside"
            );
        }
    }
}

#[test]
fn decision_mode_proves_and_refutes_around_the_minimum() {
    for (name, model, dom, c) in cases().into_iter().take(4) {
        let base = BabOptions {
            solver: Solver::Clarabel,
            ..BabOptions::default()
        };
        let m = minimise(&model, &dom, &c, &base).unwrap();
        let above = minimise(
            &model,
            &dom,
            &c,
            &BabOptions {
                threshold: Some(m.lower - 0.05),
                ..base.clone()
            },
        )
        .unwrap();
        assert_eq!(above.status, BabStatus::Proved, "{name}");
        assert!(above.lower > m.lower - 0.05, "{name}");
        let below = minimise(
            &model,
            &dom,
            &c,
            &BabOptions {
                threshold: Some(m.upper + 0.05),
                ..base.clone()
            },
        )
        .unwrap();
        assert_eq!(below.status, BabStatus::Counterexample, "{name}");
        assert!(below.upper <= m.upper + 0.05, "{name}");
    }
}

#[test]
fn lp_at_leaves_only_gives_the_same_minimum() {
    for (name, model, dom, c) in cases().into_iter().take(5) {
        let a = minimise(
            &model,
            &dom,
            &c,
            &BabOptions {
                solver: Solver::Clarabel,
                ..BabOptions::default()
            },
        )
        .unwrap();
        let b = minimise(
            &model,
            &dom,
            &c,
            &BabOptions {
                solver: Solver::Microlp,
                lp_use: LpUse::Leaves,
                alpha: Some(dual::AlphaOptions::default()),
                ..BabOptions::default()
            },
        )
        .unwrap();
        assert_eq!(b.status, BabStatus::Closed, "{name}");
        assert!(
            a.lower <= b.upper && b.lower <= a.upper,
            "{name}: [{}, {}] vs [{}, {}]",
            a.lower,
            a.upper,
            b.lower,
            b.upper
        );
    }
}

#[test]
fn bad_objectives_and_options_are_errors() {
    let (_, model, dom, c) = cases().remove(0);
    let o = BabOptions::default();
    assert!(minimise(&model, &dom, &c[..1], &o).is_err());
    assert!(minimise(&model, &dom, [f64::NAN, 1.0], &o).is_err());
    for bad in [
        BabOptions {
            abs_tol: -1.0,
            ..o.clone()
        },
        BabOptions {
            rel_tol: f64::NAN,
            ..o.clone()
        },
        BabOptions {
            timeout: Some(0.0),
            ..o.clone()
        },
        BabOptions {
            threshold: Some(f64::INFINITY),
            ..o.clone()
        },
        BabOptions {
            max_nodes: 0,
            ..o.clone()
        },
    ] {
        let e = minimise(&model, &dom, &c, &bad).unwrap_err().to_string();
        assert!(e.contains("exact options"), "{e}");
    }
}

#[test]
fn a_node_budget_leaves_a_valid_open_enclosure() {
    let (name, model, dom, c) = cases().remove(8);
    let full = minimise(
        &model,
        &dom,
        &c,
        &BabOptions {
            solver: Solver::Clarabel,
            ..BabOptions::default()
        },
    )
    .unwrap();
    let cut = minimise(
        &model,
        &dom,
        &c,
        &BabOptions {
            solver: Solver::Clarabel,
            max_nodes: 3,
            ..BabOptions::default()
        },
    )
    .unwrap();
    assert_eq!(cut.status, BabStatus::NodeBudget, "{name}");
    assert!(cut.nodes <= 4);
    assert!(
        cut.lower <= full.lower + 1e-9 && cut.upper >= full.upper - 1e-9,
        "{name}"
    );
}

#[cfg(feature = "highs")]
#[test]
fn the_milp_meets_branch_and_bound() {
    for (name, model, dom, c) in cases() {
        let bab = minimise(&model, &dom, &c, &BabOptions::default()).unwrap();
        let b = dual::crown_bounds(&model, &dom).unwrap();
        let m = exact::milp_minimum(&model, &dom, &b, &c, &exact::MilpOptions::default()).unwrap();
        eprintln!(
            "{name}: milp {:?} value {:?} upper {:?}; bab [{}, {}]",
            m.status, m.value, m.upper, bab.lower, bab.upper
        );
        assert_eq!(m.status, "Optimal", "{name}");
        let v = m.value.unwrap();
        assert!(
            bab.lower <= v + tol(v) && v <= bab.upper + tol(v),
            "{name}: milp {v}"
        );
        assert!(m.upper.unwrap() >= bab.lower, "{name}");
    }
}

#[test]
fn every_branching_rule_closes_on_the_same_minimum() {
    // The branching unit orders the search and never bounds it: BaBSR, FSB over 1
    // candidate (BaBSR's unit) and over 3 and 32 close to enclosures that overlap, and
    // FSB(1) takes exactly BaBSR's path (the same node count).
    for (name, model, dom, c) in cases().into_iter().take(5) {
        let run = |branching| {
            minimise(
                &model,
                &dom,
                &c,
                &BabOptions {
                    solver: Solver::Clarabel,
                    branching,
                    batch: 1,
                    ..BabOptions::default()
                },
            )
            .unwrap()
        };
        let babsr = run(Branching::Babsr);
        assert_eq!(babsr.status, BabStatus::Closed, "{name}");
        assert_eq!(run(Branching::Fsb(1)).nodes, babsr.nodes, "{name}");
        for k in [3, 32] {
            let f = run(Branching::Fsb(k));
            assert_eq!(f.status, BabStatus::Closed, "{name} fsb:{k}");
            assert!(
                f.lower <= babsr.upper && babsr.lower <= f.upper,
                "{name} fsb:{k}: [{}, {}] vs [{}, {}]",
                f.lower,
                f.upper,
                babsr.lower,
                babsr.upper
            );
        }
    }
}

#[test]
fn warm_and_cold_beta_crown_close_on_the_same_minimum() {
    // A child's beta-CROWN starting from its parent's alpha and beta (the default) or
    // from CROWN's slopes: a start, never a bound, so both close to overlapping
    // enclosures.
    for (name, model, dom, c) in cases().into_iter().take(5) {
        let run = |warm_start| {
            minimise(
                &model,
                &dom,
                &c,
                &BabOptions {
                    solver: Solver::Clarabel,
                    warm_start,
                    batch: 1,
                    ..BabOptions::default()
                },
            )
            .unwrap()
        };
        let (warm, cold) = (run(true), run(false));
        assert_eq!(warm.status, BabStatus::Closed, "{name} warm");
        assert_eq!(cold.status, BabStatus::Closed, "{name} cold");
        assert!(
            warm.lower <= cold.upper && cold.lower <= warm.upper,
            "{name}: warm [{}, {}] vs cold [{}, {}]",
            warm.lower,
            warm.upper,
            cold.lower,
            cold.upper
        );
    }
}

#[test]
fn a_search_resumed_batch_by_batch_ends_where_one_run_ends() {
    // `exact::Search` keeps its open nodes between runs: stopped after every split by a
    // node budget two nodes larger each time, and resumed until it closes, it has bounded
    // the same nodes in the same order and reached the same enclosure, bit for bit, as
    // one run (one node split per round in both, no timeout: the LPs get the same time).
    // A run with no time left still bounds one batch (so a resumed search goes on).
    let mut resumed = 0;
    for (name, model, dom, c) in cases() {
        let opts = BabOptions {
            solver: Solver::Clarabel,
            batch: 1,
            ..BabOptions::default()
        };
        let once = exact::Search::new(&model, &dom, &c, None, &opts)
            .unwrap()
            .run(None)
            .unwrap();
        assert_eq!(once.status, BabStatus::Closed, "{name}");
        let mut search = exact::Search::new(&model, &dom, &c, None, &opts).unwrap();
        search.set_node_budget(1);
        let mut runs = 0;
        let pieces = loop {
            let e = search.run(None).unwrap();
            runs += 1;
            assert!(
                e.lower <= once.upper && once.lower <= e.upper,
                "{name}, run {runs}"
            );
            if e.status != BabStatus::NodeBudget {
                break e;
            }
            assert_eq!((search.nodes(), e.nodes), (e.nodes, 2 * runs - 1), "{name}");
            search.set_node_budget(e.nodes + 2);
        };
        assert_eq!(
            (pieces.status, pieces.nodes, pieces.lower, pieces.upper),
            (once.status, once.nodes, once.lower, once.upper),
            "{name} after {runs} runs"
        );
        // A finished search returns the same again.
        let again = search.run(Some(0.0)).unwrap();
        assert_eq!((again.status, again.nodes), (pieces.status, pieces.nodes));
        resumed += usize::from(runs > 3);
        // No time: each run still bounds a batch (the root, then one split's children).
        let mut timed = exact::Search::new(&model, &dom, &c, None, &opts).unwrap();
        for want in [1, 3, 5] {
            let e = timed.run(Some(0.0)).unwrap();
            if e.status != BabStatus::Timeout {
                break;
            }
            assert_eq!(e.nodes, want, "{name}");
        }
    }
    assert!(resumed >= 5, "only {resumed} cases took more than 3 splits");
}
