//! beta-CROWN (`dual::beta_crown`, Wang et al. 2021) on the sub-domains that ReLU splits
//! define: its proven bound never exceeds the objective at any point of the sub-domain
//! (a 161 x 161 grid of a 2-D input box, filtered by the splits: an upper estimate of
//! the exact minimum, so `beta <= min over the grid` is necessary for soundness), it is
//! never below CROWN's over the same clamped bounds (it starts there), and on most
//! sub-domains it is strictly above CROWN's and alpha-CROWN's (the split constraints it
//! adds are invisible to J alone). The LP-level check (beta-CROWN <= LP (19) with the splits, the
//! relaxation it is a dual of) is in `lp/tests/splits.rs`.

use dual::{
    beta_crown, bound_given, crown_bounds, split_bounds, stability, AlphaOptions, InputDomain,
    Method, Phase, Split, SplitBounds, Stability,
};
use network::{as_row, Architecture, DMatrix, Init};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn beta_crown_is_sound_on_split_sub_domains_and_tighter_than_crown() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut cases, mut gains, mut over_alpha) = (0, 0, 0);
    let n = 161;
    for seed in 0..16u64 {
        let model = Architecture::mlp(&[2, 12, 12, 2])
            .init(Init::Paper, seed)
            .unwrap();
        let x: Vec<f64> = (0..2).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, 0.6, None).unwrap();
        let root = crown_bounds(&model, &dom).unwrap();
        let unstable: Vec<(usize, usize)> = (0..2)
            .flat_map(|t| (0..12).map(move |j| (t, j)))
            .filter(|&(t, j)| stability(root.lower[t][j], root.upper[t][j]) == Stability::Unstable)
            .collect();
        if unstable.len() < 3 {
            continue;
        }
        // The grid of the box and the network's pre-activations there.
        let pts = DMatrix::from_fn(2, n * n, |i, k| {
            let s = if i == 0 { k / n } else { k % n } as f64 / (n - 1) as f64;
            x[i] - 0.6 + 1.2 * s
        });
        let pre = model.preactivations_batch(&pts).unwrap();
        for _ in 0..6 {
            let k = rng.random_range(1..=3.min(unstable.len()));
            let mut splits: Vec<Split> = Vec::new();
            while splits.len() < k {
                let (layer, unit) = unstable[rng.random_range(0..unstable.len())];
                if splits.iter().any(|s| s.layer == layer && s.unit == unit) {
                    continue;
                }
                let phase = if rng.random_bool(0.5) {
                    Phase::Active
                } else {
                    Phase::Inactive
                };
                splits.push(Split { layer, unit, phase });
            }
            let Some(b) = split_bounds(&model, &dom, &splits, None, SplitBounds::Crown).unwrap()
            else {
                continue;
            };
            // Two objective rows optimised together (each its own alpha and beta).
            let grid_min = |c: &[f64; 2]| {
                (0..n * n)
                    .filter(|&p| {
                        splits.iter().all(|s| {
                            let z = pre[s.layer][(s.unit, p)];
                            match s.phase {
                                Phase::Active => z >= 0.0,
                                Phase::Inactive => z <= 0.0,
                            }
                        })
                    })
                    .map(|p| c[0] * pre[2][(0, p)] + c[1] * pre[2][(1, p)])
                    .fold(f64::INFINITY, f64::min)
            };
            let rows = [[1.0, -1.0], [-0.5, 2.0]];
            let cm = DMatrix::from_fn(2, 2, |r, k| rows[r][k]);
            let opts = AlphaOptions::default();
            let crown = bound_given(&model, &dom, b.clone(), &cm, Method::Crown, &opts).unwrap();
            let alpha = bound_given(&model, &dom, b.clone(), &cm, Method::Alpha, &opts).unwrap();
            let beta = beta_crown(&model, &dom, &b, &cm, &splits, &opts).unwrap();
            assert!(beta.report.steps > 0, "seed {seed}: nothing optimised");
            for (r, row) in rows.iter().enumerate() {
                let m = grid_min(row);
                if !m.is_finite() {
                    continue; // no grid point in the sub-domain
                }
                let (v, cr, al) = (beta.values[r], crown.values[r], alpha.values[r]);
                cases += 1;
                assert!(
                    v <= m,
                    "seed {seed}, row {r}, splits {splits:?}: beta-CROWN {v} above the sampled minimum {m}"
                );
                assert!(v >= cr, "seed {seed}: beta-CROWN {v} below CROWN {cr}");
                // The nominal value the proven one came from: proven <= nominal, close.
                let nom = beta.nominal[r];
                assert!(
                    v <= nom && nom - v <= 1e-9 * (1.0 + nom.abs()),
                    "{v} vs {nom}"
                );
                if v > cr + 1e-6 * (1.0 + cr.abs()) {
                    gains += 1;
                }
                if v > al + 1e-6 * (1.0 + al.abs()) {
                    over_alpha += 1;
                }
            }
        }
    }
    assert!(cases >= 80, "only {cases} sub-domains with grid points");
    assert!(
        2 * gains >= cases,
        "beta-CROWN above CROWN on only {gains} of {cases} sub-domains"
    );
    // alpha-CROWN over the same bounds: the split multipliers add what alpha cannot
    // (above alpha on 94 of 142 when written: the optimiser
    // starts both from CROWN and need not find alpha's optimum with beta free).
    assert!(
        2 * over_alpha >= cases,
        "beta-CROWN above alpha-CROWN on only {over_alpha} of {cases} sub-domains"
    );
}

#[test]
fn without_splits_beta_crown_is_alpha_crown() {
    let model = Architecture::mlp(&[3, 10, 10, 2])
        .init(Init::Paper, 3)
        .unwrap();
    let dom = InputDomain::new([0.1, -0.2, 0.3], 0.4, None).unwrap();
    let b = crown_bounds(&model, &dom).unwrap();
    let c = [1.0, -1.0];
    let opts = AlphaOptions::default();
    let alpha = bound_given(&model, &dom, b.clone(), as_row(&c), Method::Alpha, &opts).unwrap();
    let beta = beta_crown(&model, &dom, &b, as_row(&c), &[], &opts).unwrap();
    assert_eq!(alpha.values, beta.values);
}

#[test]
fn splits_outside_the_model_are_errors() {
    let model = Architecture::mlp(&[2, 4, 2]).init(Init::Paper, 0).unwrap();
    let dom = InputDomain::new([0.0, 0.0], 0.1, None).unwrap();
    let b = crown_bounds(&model, &dom).unwrap();
    let bad = [Split {
        layer: 1,
        unit: 0,
        phase: Phase::Active,
    }];
    let e = beta_crown(
        &model,
        &dom,
        &b,
        as_row(&[1.0, 0.0]),
        &bad,
        &AlphaOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("hidden layer"), "{e}");
}
