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

/// A sub-domain test's case: a 2-12-12-2 network (`Init::Paper`, `seed`) on the box of
/// half-width 0.6 around a random centre, CROWN's bounds there, its unstable units
/// `(layer, unit)`, and the pre-activations at the box's `n x n` grid (one column per
/// point, `Model::preactivations_batch`).
struct GridCase {
    model: network::Model,
    dom: InputDomain,
    root: dual::LayerBounds,
    unstable: Vec<(usize, usize)>,
    pre: Vec<DMatrix<f64>>,
}

/// [`GridCase`] for `seed`, the centre drawn from `rng`; `None` with fewer than
/// `min_unstable` unstable units (the centre is drawn either way).
fn grid_case(rng: &mut ChaCha8Rng, seed: u64, n: usize, min_unstable: usize) -> Option<GridCase> {
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
    if unstable.len() < min_unstable {
        return None;
    }
    let pts = DMatrix::from_fn(2, n * n, |i, k| {
        let s = if i == 0 { k / n } else { k % n } as f64 / (n - 1) as f64;
        x[i] - 0.6 + 1.2 * s
    });
    let pre = model.preactivations_batch(&pts).unwrap();
    Some(GridCase {
        model,
        dom,
        root,
        unstable,
        pre,
    })
}

/// The smallest `c . zhat_k` over the grid points (the columns of `pre`) where every
/// split holds; `+inf` when none does.
fn grid_min(pre: &[DMatrix<f64>], splits: &[Split], c: &[f64; 2]) -> f64 {
    let last = pre.len() - 1;
    (0..pre[last].ncols())
        .filter(|&p| {
            splits.iter().all(|s| {
                let z = pre[s.layer][(s.unit, p)];
                match s.phase {
                    Phase::Active => z >= 0.0,
                    Phase::Inactive => z <= 0.0,
                }
            })
        })
        .map(|p| c[0] * pre[last][(0, p)] + c[1] * pre[last][(1, p)])
        .fold(f64::INFINITY, f64::min)
}

/// `k` splits of distinct units drawn from `unstable`, each phase at random.
fn random_splits(rng: &mut ChaCha8Rng, unstable: &[(usize, usize)], k: usize) -> Vec<Split> {
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
    splits
}

#[test]
fn beta_crown_is_sound_on_split_sub_domains_and_tighter_than_crown() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut cases, mut gains, mut over_alpha) = (0, 0, 0);
    let n = 161;
    for seed in 0..16u64 {
        let Some(GridCase {
            model,
            dom,
            unstable,
            pre,
            ..
        }) = grid_case(&mut rng, seed, n, 3)
        else {
            continue;
        };
        for _ in 0..6 {
            let k = rng.random_range(1..=3.min(unstable.len()));
            let splits = random_splits(&mut rng, &unstable, k);
            let Some(b) = split_bounds(&model, &dom, &splits, None, SplitBounds::Crown).unwrap()
            else {
                continue;
            };
            // Two objective rows optimised together (each its own alpha and beta).
            let rows = [[1.0, -1.0], [-0.5, 2.0]];
            let cm = DMatrix::from_fn(2, 2, |r, k| rows[r][k]);
            let opts = AlphaOptions::default();
            let crown = bound_given(&model, &dom, b.clone(), &cm, Method::Crown, &opts).unwrap();
            let alpha = bound_given(&model, &dom, b.clone(), &cm, Method::Alpha, &opts).unwrap();
            let beta = beta_crown(&model, &dom, &b, &cm, &splits, &opts).unwrap();
            assert!(beta.report.steps > 0, "seed {seed}: nothing optimised");
            for (r, row) in rows.iter().enumerate() {
                let m = grid_min(&pre, &splits, row);
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

#[test]
fn a_warm_start_resumes_where_the_optimiser_stopped_and_stays_sound() {
    // `beta_crown_from` (the warm start of a child node in branch and bound): started
    // from a node's own final state, one step ends at least where 50 steps from CROWN
    // ended (it evaluates that state first; 1e-9 relative for the proven value's
    // rounding allowance, as above), where one step from CROWN stays well below on most
    // nodes (so the start is used); started from the parent's state on a child (one
    // split more), the bound is still below the grid minimum and above CROWN's.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 121;
    let (mut nodes, mut cold_below, mut children) = (0, 0, 0);
    for seed in 0..12u64 {
        let Some(GridCase {
            model,
            dom,
            root,
            unstable,
            pre,
        }) = grid_case(&mut rng, seed, n, 4)
        else {
            continue;
        };
        let c = [1.0, -1.0];
        let phase = |b: bool| if b { Phase::Active } else { Phase::Inactive };
        let (l0, u0) = unstable[0];
        let parent = vec![Split {
            layer: l0,
            unit: u0,
            phase: phase(rng.random_bool(0.5)),
        }];
        let Some(pb) = split_bounds(&model, &dom, &parent, None, SplitBounds::Crown).unwrap()
        else {
            continue;
        };
        let full = AlphaOptions::default();
        let one = AlphaOptions {
            iterations: 1,
            ..full
        };
        // Two rows, each with its own state.
        let cm = DMatrix::from_row_slice(2, 2, &[1.0, -1.0, -0.5, 2.0]);
        let b50 = beta_crown(&model, &dom, &pb, &cm, &parent, &full).unwrap();
        let resume = |states: &[dual::BetaState]| {
            dual::beta_crown_from(&model, &dom, &pb, &cm, &parent, &one, Some(states)).unwrap()
        };
        let resumed = resume(&b50.states);
        let cold = beta_crown(&model, &dom, &pb, &cm, &parent, &one).unwrap();
        for r in 0..2 {
            let v = b50.values[r];
            nodes += 1;
            assert!(
                resumed.values[r] >= v - 1e-9 * (1.0 + v.abs()),
                "seed {seed}, row {r}: resumed {} below the state's own {v}",
                resumed.values[r]
            );
            if cold.values[r] < v - 1e-6 * (1.0 + v.abs()) {
                cold_below += 1;
            }
        }
        // The states are projected: alpha in [0, 1], beta >= 0 and 0 off the split; a
        // start's beta off the splits is ignored (its values are exactly the same).
        for st in &b50.states {
            assert!(st.alpha.iter().flatten().all(|a| (0.0..=1.0).contains(a)));
            for (t, b) in st.beta.iter().enumerate() {
                for (j, &bj) in b.iter().enumerate() {
                    assert!(
                        bj >= 0.0 && (bj == 0.0 || (t, j) == (l0, u0)),
                        "beta {t},{j}: {bj}"
                    );
                }
            }
        }
        let mut junk = b50.states.clone();
        for st in &mut junk {
            for (t, b) in st.beta.iter_mut().enumerate() {
                for (j, bj) in b.iter_mut().enumerate() {
                    if (t, j) != (l0, u0) {
                        *bj = 5.0;
                    }
                }
            }
        }
        assert_eq!(resume(&junk).values, resumed.values, "seed {seed}");
        // The states of a bound without splits (no beta) start a node with one.
        let root_states = beta_crown(&model, &dom, &root, &cm, &[], &one)
            .unwrap()
            .states;
        assert!(resume(&root_states).values.iter().all(|v| v.is_finite()));
        // A child: one more split, warm-started from the parent's state.
        for &(l1, u1) in &unstable[1..4] {
            let mut splits = parent.clone();
            splits.push(Split {
                layer: l1,
                unit: u1,
                phase: phase(rng.random_bool(0.5)),
            });
            let Some(b) = split_bounds(&model, &dom, &splits, None, SplitBounds::Crown).unwrap()
            else {
                continue;
            };
            let m = grid_min(&pre, &splits, &c);
            let opts = AlphaOptions {
                iterations: 5,
                ..full
            };
            let w = dual::beta_crown_from(
                &model,
                &dom,
                &b,
                as_row(&c),
                &splits,
                &opts,
                Some(&b50.states[..1]),
            )
            .unwrap();
            let cr = bound_given(&model, &dom, b.clone(), as_row(&c), Method::Crown, &opts)
                .unwrap()
                .values[0];
            assert!(
                w.values[0] >= cr,
                "seed {seed}: {} below CROWN {cr}",
                w.values[0]
            );
            if m.is_finite() {
                children += 1;
                assert!(
                    w.values[0] <= m,
                    "seed {seed}, {splits:?}: warm beta-CROWN {} above the sampled minimum {m}",
                    w.values[0]
                );
            }
        }
    }
    assert!(
        nodes >= 6 && children >= 12,
        "{nodes} nodes, {children} children"
    );
    assert!(
        2 * cold_below >= nodes,
        "one cold step reached 50 steps' bound on {} of {nodes} nodes: the test cannot tell a \
         warm start from none",
        nodes - cold_below
    );
}

#[test]
fn a_warm_start_of_the_wrong_shape_is_an_error() {
    let model = Architecture::mlp(&[2, 4, 3, 2])
        .init(Init::Paper, 0)
        .unwrap();
    let dom = InputDomain::new([0.0, 0.0], 0.5, None).unwrap();
    let b = crown_bounds(&model, &dom).unwrap();
    let state = dual::BetaState {
        alpha: vec![vec![0.5; 4], vec![0.5; 3]],
        beta: vec![vec![0.0; 4], vec![0.0; 3]],
    };
    let run = |s: &[dual::BetaState]| {
        dual::beta_crown_from(
            &model,
            &dom,
            &b,
            as_row(&[1.0, 0.0]),
            &[],
            &AlphaOptions::default(),
            Some(s),
        )
    };
    assert!(run(std::slice::from_ref(&state)).is_ok());
    let e = run(&[state.clone(), state.clone()]).unwrap_err();
    assert!(e.to_string().contains("one state per objective row"), "{e}");
    let mut short = state.clone();
    short.alpha[1].pop();
    let e = run(&[short]).unwrap_err();
    assert!(e.to_string().contains("hidden layer 1"), "{e}");
    let mut layers = state;
    layers.beta.pop();
    let e = run(&[layers]).unwrap_err();
    assert!(e.to_string().contains("2 hidden layers"), "{e}");
}

#[test]
fn a_batch_of_nodes_is_each_node_on_its_own() {
    // `beta_crown_batch` (the nodes of a branch-and-bound round optimised together, one
    // GEMM per layer and step): each node's value equals `beta_crown_from` on that node
    // alone with the same start (the same Adam steps on the same row: the batch runs
    // every step since `patience` exceeds the budget; 1e-9 relative for the products'
    // different association, GEMM against dot products, that the steps carry), is at
    // least its floor (CROWN's, passed in), and stays below the grid minimum of its
    // sub-domain. Batches of more than 4 nodes, so that the products are GEMMs.
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let n = 81;
    let opts = AlphaOptions {
        iterations: 15,
        patience: 100,
        ..AlphaOptions::default()
    };
    let (mut compared, mut sampled, mut warm) = (0, 0, 0);
    for seed in 0..8u64 {
        let Some(GridCase {
            model,
            dom,
            root,
            unstable,
            pre,
        }) = grid_case(&mut rng, seed, n, 4)
        else {
            continue;
        };
        let c = [1.0, -1.0];
        // Nodes: the root (no split), then one or two splits on random unstable units.
        let mut node_splits: Vec<Vec<Split>> = vec![Vec::new()];
        while node_splits.len() < 9 {
            let k = rng.random_range(1..=2usize);
            node_splits.push(random_splits(&mut rng, &unstable, k));
        }
        let mut bounds = Vec::new();
        let mut kept = Vec::new();
        for s in node_splits {
            if let Some(b) = split_bounds(&model, &dom, &s, None, SplitBounds::Crown).unwrap() {
                bounds.push(b);
                kept.push(s);
            }
        }
        if kept.len() < 5 {
            continue;
        }
        // A start for every other node: the root's optimised state.
        let root_state = beta_crown(&model, &dom, &root, as_row(&c), &[], &opts)
            .unwrap()
            .states
            .remove(0);
        let floors: Vec<f64> = bounds
            .iter()
            .map(|b| {
                bound_given(&model, &dom, b.clone(), as_row(&c), Method::Crown, &opts)
                    .unwrap()
                    .values[0]
            })
            .collect();
        let nodes: Vec<dual::BetaNode<'_>> = kept
            .iter()
            .zip(&bounds)
            .zip(&floors)
            .enumerate()
            .map(|(i, ((s, b), &floor))| dual::BetaNode {
                bounds: b,
                splits: s,
                start: (i % 2 == 1).then_some(&root_state),
                floor,
            })
            .collect();
        let batch = dual::beta_crown_batch(&model, &dom, c, &nodes, &opts).unwrap();
        assert_eq!(batch.len(), nodes.len());
        for (i, (node, got)) in nodes.iter().zip(&batch).enumerate() {
            let alone = dual::beta_crown_from(
                &model,
                &dom,
                node.bounds,
                as_row(&c),
                node.splits,
                &opts,
                node.start.map(std::slice::from_ref),
            )
            .unwrap();
            let (v, a) = (got.values[0], alone.values[0]);
            compared += 1;
            warm += usize::from(node.start.is_some());
            assert!(
                (v - a).abs() <= 1e-9 * (1.0 + a.abs()),
                "seed {seed}, node {i} ({:?}): batch {v} vs alone {a}",
                node.splits
            );
            assert!(
                v >= node.floor,
                "seed {seed}, node {i}: {v} below its floor"
            );
            assert_eq!(got.states.len(), 1);
            let m = grid_min(&pre, node.splits, &c);
            if m.is_finite() {
                sampled += 1;
                assert!(
                    v <= m,
                    "seed {seed}, node {i}: {v} above the sampled minimum {m}"
                );
            }
        }
        // A start of the wrong shape names its node.
        let mut bad = root_state.clone();
        bad.alpha[0].pop();
        let mut nodes = nodes;
        nodes[2].start = Some(&bad);
        let e = dual::beta_crown_batch(&model, &dom, c, &nodes, &opts).unwrap_err();
        assert!(e.to_string().contains("node 2"), "{e}");
    }
    assert!(
        compared >= 30 && warm >= 10 && sampled >= 20,
        "{compared} nodes compared ({warm} warm), {sampled} with grid points"
    );
}
