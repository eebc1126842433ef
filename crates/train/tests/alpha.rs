//! Optimised alpha against LP (19) with the same bounds (strong duality: max over alpha
//! of J is the LP optimum). On random 2-100-100-100-100-2 nets at eps 0.05, 0.1, 0.25:
//! the paper's J <= optimised J <= LP (+ microlp's 1e-7 tolerance, see crates/lp/tests),
//! the optimised J is a sound bound (sampled points), and it comes within 1e-6 relative
//! of the LP optimum.

use dual::{algorithm1, dual_objective, margin_objectives, AlphaRule, InputDomain};
use lp::{solve, Lp19, LpOptions, Solver};
use network::{Architecture, Init};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use train::{optimise_alpha, AlphaOptions};

#[test]
fn optimised_alpha_meets_the_lp() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut worst: f64 = 0.0;
    for seed in 0..2 {
        let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2])
            .init(Init::Paper, seed)
            .unwrap();
        for eps in [0.05, 0.1, 0.25] {
            let x = [rng.random::<f64>(), rng.random::<f64>()];
            let dom = InputDomain::new(&x, eps, None).unwrap();
            let b = algorithm1(&model, &dom).unwrap();
            let y = model.predict(&x).unwrap();
            let c = margin_objectives(2, y).unwrap();
            let c = c[(1 - y) * 2..(2 - y) * 2].to_vec();
            let r = optimise_alpha(&model, &dom, &b, &c, AlphaOptions::default()).unwrap();
            let lpv = solve(
                &Lp19::new(&model, &dom, &b).unwrap(),
                &c,
                Solver::Microlp,
                &LpOptions::default(),
            )
            .unwrap()
            .value;
            let tol = 1e-7 * lpv.abs().max(1.0);
            assert!(r.j[0] >= r.j_paper[0], "optimised alpha lowered J");
            assert!(
                r.j[0] <= lpv + tol,
                "seed {seed} eps {eps}: optimised J {} above the LP {lpv}",
                r.j[0]
            );
            // The returned alpha, re-evaluated by the independent f64 dual, gives the same J.
            let back = dual_objective(
                &model,
                &dom,
                &b,
                &c,
                &AlphaRule::PerUnit(r.alpha[0].clone()),
            )
            .unwrap()
            .values[0];
            assert!(
                (back - r.j[0]).abs() <= 1e-9 * back.abs().max(1.0),
                "{back} vs {}",
                r.j[0]
            );
            let gap = (lpv - r.j[0]) / lpv.abs().max(1.0);
            worst = worst.max(gap);
            assert!(
                gap <= 1e-6,
                "seed {seed} eps {eps}: LP {lpv}, paper J {}, optimised J {} (gap {gap:e})",
                r.j_paper[0],
                r.j[0]
            );
        }
    }
    eprintln!("largest relative gap LP - optimised J: {worst:e}");
}
