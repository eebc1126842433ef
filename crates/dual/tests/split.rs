//! ReLU splits (`dual::split_bounds`): the bounds of a sub-domain hold at every sampled
//! point of it, are at least as tight as the whole domain's (with the parent's
//! intersected), clamp the split units to their side, and an empty sub-domain is reported
//! as `None` only when it is empty (checked by sampling: no sampled point satisfies all
//! splits). Tolerance: [`common::tol`] (1e-9 relative; the bounds are proven, the
//! sampled forward passes floating point).

mod common;

use common::{sample_points, tol};
use dual::{crown_bounds, split_bounds, InputDomain, Phase, Split, SplitBounds};
use network::{Architecture, Init};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn split_bounds_hold_on_their_sub_domain_and_clamp() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut checked = 0;
    let mut empty = 0;
    for seed in 0..12u64 {
        let model = Architecture::mlp(&[3, 8, 8, 2])
            .init(Init::Paper, seed)
            .unwrap();
        let x: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, 0.6, None).unwrap();
        let root = crown_bounds(&model, &dom).unwrap();
        let pts = sample_points(&dom, 3000, &mut rng);
        let npts = pts.len() / 3;
        let pre = common::preactivations(&model, &pts);
        // Random splits of two or three units over both hidden layers.
        for _ in 0..6 {
            let k = rng.random_range(1..=3);
            let splits: Vec<Split> = (0..k)
                .map(|_| Split {
                    layer: rng.random_range(0..2),
                    unit: rng.random_range(0..8),
                    phase: if rng.random_bool(0.5) {
                        Phase::Active
                    } else {
                        Phase::Inactive
                    },
                })
                .collect();
            let inside = |p: usize| {
                splits.iter().all(|s| {
                    let v = pre[s.layer][p * 8 + s.unit];
                    match s.phase {
                        Phase::Active => v >= 0.0,
                        Phase::Inactive => v <= 0.0,
                    }
                })
            };
            for how in [SplitBounds::Interval, SplitBounds::Crown] {
                let Some(b) = split_bounds(&model, &dom, &splits, Some(&root), how).unwrap() else {
                    empty += 1;
                    assert!(
                        (0..npts).all(|p| !inside(p)),
                        "seed {seed}: splits {splits:?} reported empty but a sampled point satisfies them"
                    );
                    continue;
                };
                for s in &splits {
                    let (l, u) = (b.lower[s.layer][s.unit], b.upper[s.layer][s.unit]);
                    match s.phase {
                        Phase::Active => assert!(l >= 0.0),
                        Phase::Inactive => assert!(u <= 0.0),
                    }
                }
                for (t, vals) in pre.iter().enumerate() {
                    let (lo, hi) = (&b.lower[t], &b.upper[t]);
                    let n = lo.len();
                    for j in 0..n {
                        assert!(lo[j] >= root.lower[t][j] && hi[j] <= root.upper[t][j]);
                    }
                    for p in (0..npts).filter(|&p| inside(p)) {
                        for (j, &v) in vals.column(p).iter().enumerate() {
                            assert!(
                                lo[j] - tol(v) <= v && v <= hi[j] + tol(v),
                                "seed {seed} {how:?} layer {t} unit {j}: {v} not in [{}, {}]",
                                lo[j],
                                hi[j]
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 100_000, "too few points checked: {checked}");
    assert!(
        empty > 0,
        "no split set was empty: the None path was not exercised"
    );
}

#[test]
fn splits_outside_the_model_are_errors() {
    let model = Architecture::mlp(&[2, 4, 2]).init(Init::Paper, 0).unwrap();
    let dom = InputDomain::new([0.0, 0.0], 0.1, None).unwrap();
    for s in [
        Split {
            layer: 1,
            unit: 0,
            phase: Phase::Active,
        },
        Split {
            layer: 0,
            unit: 4,
            phase: Phase::Inactive,
        },
    ] {
        let e = split_bounds(&model, &dom, &[s], None, SplitBounds::Crown).unwrap_err();
        assert!(e.to_string().contains("split of unit"), "{e}");
    }
}

#[test]
fn a_parent_with_hidden_layers_only_is_intersected_where_it_has_bounds() {
    // Bounds may cover the hidden layers only (as `LayerBounds::validate` allows): the
    // logits are then bounded without a parent entry, and the hidden layers are no looser
    // than the parent's.
    let model = Architecture::mlp(&[2, 5, 5, 2])
        .init(Init::Paper, 1)
        .unwrap();
    let dom = InputDomain::new([0.2, -0.1], 0.4, None).unwrap();
    let mut parent = crown_bounds(&model, &dom).unwrap();
    parent.lower.pop();
    parent.upper.pop();
    for how in [SplitBounds::Interval, SplitBounds::Crown] {
        let b = split_bounds(&model, &dom, &[], Some(&parent), how)
            .unwrap()
            .unwrap();
        assert_eq!(b.lower.len(), 3);
        for t in 0..2 {
            for j in 0..5 {
                assert!(b.lower[t][j] >= parent.lower[t][j] && b.upper[t][j] <= parent.upper[t][j]);
            }
        }
    }
}
