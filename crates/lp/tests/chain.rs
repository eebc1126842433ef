//! LP (19) against everything else:
//!
//! * the golden fixtures' LP values (two independent implementations) reproduce;
//! * `dual J (paper alpha) <= LP <= min over >= 1,000 sampled points` and
//!   `LP <= c^T f(x'_LP)` for every target, on random dense nets (2-100-100-100-100-2 at
//!   eps 0.05, 0.1, 0.25 among them) and small conv nets;
//! * LP-all >= LP-last; eps = 0 gives the exact value; the primal point satisfies every
//!   row of (19); microlp and clarabel agree.
//!
//! Tolerances, all relative to max(1, |value|):
//! * `SIMPLEX = 1e-7`: microlp's simplex works to feasibility tolerances of about 1e-9 on
//!   values of O(1-10) with O(100) terms per row; 1e-7 leaves two orders for that.
//! * `IPM = 1e-6`: clarabel stops at a duality gap and a feasibility residual of 1e-9
//!   (LpOptions::default); the objective error is at most the gap plus the residual
//!   times the dual norm, which stays below 1e3 on these nets.

use dual::{algorithm1, dual_objective, margin_objectives, AlphaRule, InputDomain};
use lp::{lp_all_bounds, solve, Lp19, LpOptions, Solver};
use network::{model_from_json, Architecture, Init, Model, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const SIMPLEX: f64 = 1e-7;
const IPM: f64 = 1e-6;

fn tol(t: f64, v: f64) -> f64 {
    t * v.abs().max(1.0)
}

fn conv_model(
    input: Shape,
    convs: &[(usize, usize, usize, usize)],
    dense: &[usize],
    seed: u64,
) -> Model {
    Architecture::conv_net(input, convs, dense)
        .init(Init::Paper, seed)
        .unwrap()
}

fn sampled_min(
    model: &Model,
    dom: &InputDomain,
    c: &network::DVector<f64>,
    rng: &mut impl Rng,
) -> f64 {
    let (lo, hi) = (dom.lower(), dom.upper());
    let n = 1000;
    let d = lo.len();
    let pts: Vec<f64> = (0..n)
        .flat_map(|p| {
            let corner = p % 2 == 0;
            (0..d)
                .map(|i| {
                    let t: f64 = if corner {
                        f64::from(rng.random_range(0..2u8))
                    } else {
                        rng.random()
                    };
                    lo[i] + t * (hi[i] - lo[i])
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let out = model
        .forward_batch(network::DMatrixView::from_slice(&pts, model.input_len(), n))
        .unwrap();
    out.as_slice()
        .chunks(c.len())
        .map(|f| c.iter().zip(f).map(|(a, b)| a * b).sum::<f64>())
        .fold(f64::INFINITY, f64::min)
}

/// The whole chain for every target of one case, with microlp and clarabel.
fn check_chain(name: &str, model: &Model, x: &[f64], eps: f64, rng: &mut impl Rng) {
    let dom = InputDomain::new(x, eps, None).unwrap();
    let b = algorithm1(model, &dom).unwrap();
    let lp = Lp19::new(model, &dom, &b).unwrap();
    let n = model.output_len();
    let y = model.predict(x).unwrap();
    let cs = margin_objectives(n, y).unwrap();
    let j = dual_objective(model, &dom, &b, &cs, &AlphaRule::Paper).unwrap();
    let opts = LpOptions::default();
    for t in (0..n).filter(|&t| t != y) {
        let c = &cs.row(t).transpose();
        let m = solve(&lp, c, Solver::Microlp, &opts).unwrap();
        let cl = solve(&lp, c, Solver::Clarabel, &opts).unwrap();
        let v = m.value;
        assert!(
            j.values[t] <= v + tol(SIMPLEX, v),
            "{name} t{t}: J {} > LP {v}",
            j.values[t]
        );
        let s = sampled_min(model, &dom, c, rng);
        assert!(
            v <= s + tol(SIMPLEX, s),
            "{name} t{t}: LP {v} > sampled min {s}"
        );
        let fx = m.value_at_input_point(&lp, c).unwrap();
        assert!(
            v <= fx + tol(SIMPLEX, fx),
            "{name} t{t}: LP {v} > c^T f(x'_LP) {fx}"
        );
        assert!(
            (cl.value - v).abs() <= tol(IPM, v),
            "{name} t{t}: clarabel {} vs microlp {v}",
            cl.value
        );
        let viol = lp.max_violation(&m.values);
        assert!(
            viol <= SIMPLEX,
            "{name} t{t}: microlp primal point violates (19) by {viol:e}"
        );
        let viol = lp.max_violation(&cl.values);
        assert!(
            viol <= IPM,
            "{name} t{t}: clarabel primal point violates (19) by {viol:e}"
        );
    }
}

#[test]
fn golden_lp_values_reproduce() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/golden.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in g["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut m = case["model"].clone();
        m["format"] = "convex-outer-model".into();
        m["version"] = 1.into();
        let model = model_from_json(&m.to_string(), name).unwrap().0;
        let x: Vec<f64> = case["x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let dom = InputDomain::new(&x, case["eps"].as_f64().unwrap(), None).unwrap();
        let b = algorithm1(&model, &dom).unwrap();
        let lp = Lp19::new(&model, &dom, &b).unwrap();
        let n = model.output_len();
        let y = case["predicted"].as_u64().unwrap() as usize;
        let cs = margin_objectives(n, y).unwrap();
        for (t, want) in case["lp19_algorithm1_bounds"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let want = want.as_f64().unwrap();
            if t == y {
                continue;
            }
            for (solver, tl) in [(Solver::Microlp, SIMPLEX), (Solver::Clarabel, IPM)] {
                let s = solve(&lp, cs.row(t).transpose(), solver, &LpOptions::default()).unwrap();
                assert!(
                    (s.value - want).abs() <= tol(tl, want),
                    "{name} t{t} {}: {} vs golden {want}",
                    solver.name(),
                    s.value
                );
            }
        }
    }
}

#[test]
fn chain_on_the_paper_random_net() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for seed in 0..2 {
        let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2])
            .init(Init::Paper, seed)
            .unwrap();
        for eps in [0.05, 0.1, 0.25] {
            let x = [rng.random(), rng.random()];
            check_chain(
                &format!("2-100x4-2 seed {seed} eps {eps}"),
                &model,
                &x,
                eps,
                &mut rng,
            );
        }
    }
}

#[test]
fn chain_on_other_dense_nets() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for (s, w) in [&[5usize, 20, 20, 4][..], &[10, 30, 30, 30, 3]]
        .iter()
        .enumerate()
    {
        let model = Architecture::mlp(w)
            .init(Init::Paper, 20 + s as u64)
            .unwrap();
        for eps in [0.05, 0.25] {
            let x: Vec<f64> = (0..w[0]).map(|_| rng.random()).collect();
            check_chain(&format!("{w:?} eps {eps}"), &model, &x, eps, &mut rng);
        }
    }
}

#[test]
fn chain_on_small_conv_nets() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let models = [
        conv_model(
            Shape::Image { c: 1, h: 8, w: 8 },
            &[(4, 4, 2, 1), (8, 4, 2, 1)],
            &[10],
            1,
        ),
        conv_model(
            Shape::Image { c: 1, h: 6, w: 6 },
            &[(3, 3, 2, 1), (4, 3, 2, 1)],
            &[12, 4],
            2,
        ),
    ];
    for (i, model) in models.iter().enumerate() {
        for eps in [0.05, 0.1, 0.25] {
            let x: Vec<f64> = (0..model.input_len()).map(|_| rng.random()).collect();
            check_chain(&format!("conv {i} eps {eps}"), model, &x, eps, &mut rng);
        }
    }
}

#[test]
fn eps_zero_gives_the_exact_value() {
    let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2])
        .init(Init::Paper, 3)
        .unwrap();
    let x = [0.3, 0.8];
    let dom = InputDomain::new(x, 0.0, None).unwrap();
    let b = algorithm1(&model, &dom).unwrap();
    let lp = Lp19::new(&model, &dom, &b).unwrap();
    let f = model.forward(x).unwrap();
    for solver in [Solver::Microlp, Solver::Clarabel] {
        let s = solve(&lp, [1.0, -1.0], solver, &LpOptions::default()).unwrap();
        let exact = f[0] - f[1];
        assert!(
            (s.value - exact).abs() <= tol(SIMPLEX, exact),
            "{}: {} vs {exact}",
            solver.name(),
            s.value
        );
    }
}

#[test]
fn lp_all_is_at_least_lp_last() {
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let model = Architecture::mlp(&[2, 30, 30, 30, 2])
        .init(Init::Paper, 4)
        .unwrap();
    let mut strictly = 0;
    for eps in [0.1, 0.25] {
        let x = [rng.random(), rng.random()];
        let dom = InputDomain::new(x, eps, None).unwrap();
        let last = algorithm1(&model, &dom).unwrap();
        let all = lp_all_bounds(&model, &dom, Solver::Microlp, &LpOptions::default()).unwrap();
        let y = model.predict(x).unwrap();
        let c = margin_objectives(2, y).unwrap();
        let c = &c.row(1 - y).transpose();
        let v_last = solve(
            &Lp19::new(&model, &dom, &last).unwrap(),
            c,
            Solver::Microlp,
            &LpOptions::default(),
        )
        .unwrap()
        .value;
        let v_all = solve(
            &Lp19::new(&model, &dom, &all).unwrap(),
            c,
            Solver::Microlp,
            &LpOptions::default(),
        )
        .unwrap()
        .value;
        assert!(
            v_all >= v_last - tol(SIMPLEX, v_last),
            "eps {eps}: LP-all {v_all} < LP-last {v_last}"
        );
        strictly += usize::from(v_all > v_last + 1e-6);
        // LP-all bounds are sound: sampled pre-activations lie inside them.
        let pts: Vec<f64> = (0..1000)
            .flat_map(|_| {
                [
                    x[0] + eps * (2.0 * rng.random::<f64>() - 1.0),
                    x[1] + eps * (2.0 * rng.random::<f64>() - 1.0),
                ]
            })
            .collect();
        let pre = model
            .preactivations_batch(network::DMatrixView::from_slice(
                &pts,
                model.input_len(),
                1000,
            ))
            .unwrap();
        for (layer, (l, u)) in all.lower.iter().zip(&all.upper).enumerate() {
            for col in pre[layer].as_slice().chunks(l.len()) {
                for k in 0..l.len() {
                    assert!(
                        col[k] >= l[k] - tol(SIMPLEX, l[k]) && col[k] <= u[k] + tol(SIMPLEX, u[k])
                    );
                }
            }
        }
    }
    assert!(
        strictly >= 1,
        "LP-all never tightened LP-last: the comparison would be vacuous"
    );
}
