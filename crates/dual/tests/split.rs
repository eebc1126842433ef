//! ReLU splits (`dual::split_bounds`): the bounds of a sub-domain hold at every sampled
//! point of it, are at least as tight as the whole domain's (with the parent's
//! intersected), clamp the split units to their side, and an empty sub-domain is reported
//! as `None` only when it is empty (checked by sampling: no sampled point satisfies all
//! splits). Tolerance: [`common::tol`] (1e-9 relative; the bounds are proven, the
//! sampled forward passes floating point).

mod common;

use common::{sample_points, tol};
use dual::{child_bounds, crown_bounds, split_bounds, InputDomain, Phase, Split, SplitBounds};
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

#[test]
fn child_bounds_agree_with_split_bounds_on_every_unstable_unit_and_hold() {
    // A branch-and-bound path: splits added one at a time, each child's bounds by
    // `child_bounds` from its parent's. Against `split_bounds` with all the splits and the
    // same parent: the same stability of every unit, the same bounds (1e-12 relative: the
    // same CROWN computation, batched differently) on every unit left unstable, never
    // looser anywhere than the parent; and the child's bounds hold at every sampled point
    // of its sub-domain. A child reported empty has no sampled point.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut compared, mut checked) = (0, 0);
    for seed in 0..10u64 {
        let model = Architecture::mlp(&[3, 10, 10, 10, 2])
            .init(Init::Paper, seed)
            .unwrap();
        let x: Vec<f64> = (0..3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, 0.5, None).unwrap();
        let pts = sample_points(&dom, 3000, &mut rng);
        let npts = pts.len() / 3;
        let pre = common::preactivations(&model, &pts);
        for _path in 0..4 {
            let mut parent = crown_bounds(&model, &dom).unwrap();
            let mut splits: Vec<Split> = Vec::new();
            for _depth in 0..4 {
                // An unstable unit of the parent, as branch and bound would split.
                let unstable: Vec<(usize, usize)> = (0..3)
                    .flat_map(|t| (0..10).map(move |j| (t, j)))
                    .filter(|&(t, j)| parent.lower[t][j] < 0.0 && parent.upper[t][j] > 0.0)
                    .collect();
                if unstable.is_empty() {
                    break;
                }
                let (layer, unit) = unstable[rng.random_range(0..unstable.len())];
                let s = Split {
                    layer,
                    unit,
                    phase: if rng.random_bool(0.5) {
                        Phase::Active
                    } else {
                        Phase::Inactive
                    },
                };
                splits.push(s);
                let inside = |p: usize| {
                    splits.iter().all(|s| {
                        let v = pre[s.layer][p * 10 + s.unit];
                        match s.phase {
                            Phase::Active => v >= 0.0,
                            Phase::Inactive => v <= 0.0,
                        }
                    })
                };
                let child = child_bounds(&model, &dom, &parent, s).unwrap();
                let full =
                    split_bounds(&model, &dom, &splits, Some(&parent), SplitBounds::Crown).unwrap();
                let Some(b) = child else {
                    assert!(
                        (0..npts).all(|p| !inside(p)),
                        "seed {seed}: {splits:?} reported empty"
                    );
                    break;
                };
                if let Some(f) = &full {
                    for t in 0..3 {
                        for j in 0..10 {
                            let (l, u) = (b.lower[t][j], b.upper[t][j]);
                            let (fl, fu) = (f.lower[t][j], f.upper[t][j]);
                            assert_eq!(
                                dual::stability(l, u),
                                dual::stability(fl, fu),
                                "seed {seed} layer {t} unit {j}: [{l}, {u}] vs [{fl}, {fu}]"
                            );
                            if l < 0.0 && u > 0.0 {
                                let close =
                                    |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + a.abs());
                                assert!(
                                    close(l, fl) && close(u, fu),
                                    "seed {seed} layer {t} unit {j}: [{l}, {u}] vs [{fl}, {fu}]"
                                );
                                compared += 1;
                            }
                        }
                    }
                }
                for (t, vals) in pre.iter().enumerate() {
                    for j in 0..vals.nrows() {
                        assert!(
                            b.lower[t][j] >= parent.lower[t][j]
                                && b.upper[t][j] <= parent.upper[t][j]
                                && b.lower[t][j] <= b.upper[t][j]
                        );
                    }
                    for p in (0..npts).filter(|&p| inside(p)) {
                        for (j, &v) in vals.column(p).iter().enumerate() {
                            assert!(
                                b.lower[t][j] - tol(v) <= v && v <= b.upper[t][j] + tol(v),
                                "seed {seed} layer {t} unit {j}: {v} not in [{}, {}]",
                                b.lower[t][j],
                                b.upper[t][j]
                            );
                            checked += 1;
                        }
                    }
                }
                parent = b;
            }
        }
    }
    assert!(
        compared > 500,
        "too few unstable units compared: {compared}"
    );
    assert!(checked > 100_000, "too few points checked: {checked}");
}

#[test]
fn child_bounds_report_an_empty_child() {
    // The split unit's clamp empties its interval: a parent that says the unit is at most
    // -0.5 cannot have an active child.
    let model = Architecture::mlp(&[3, 10, 10, 2])
        .init(Init::Paper, 0)
        .unwrap();
    let dom = InputDomain::new([0.1, -0.2, 0.3], 0.5, None).unwrap();
    let root = crown_bounds(&model, &dom).unwrap();
    let mut p = root.clone();
    p.upper[0][0] = -0.5;
    p.lower[0][0] = p.lower[0][0].min(-1.0);
    let active = |unit| Split {
        layer: 0,
        unit,
        phase: Phase::Active,
    };
    assert!(child_bounds(&model, &dom, &p, active(0)).unwrap().is_none());
    // An interval of one point is not empty: a parent whose unit is at most 0 has an
    // active child where it is exactly 0.
    p.upper[0][0] = 0.0;
    let c = child_bounds(&model, &dom, &p, active(0)).unwrap().unwrap();
    assert_eq!((c.lower[0][0], c.upper[0][0]), (0.0, 0.0));
    // A later unit's new bound misses the parent's interval: find a split after which
    // some unit of layer 1 unstable in the parent becomes stable, then give the parent
    // an interval for it (still around 0) that the child's bound excludes.
    let mut found = false;
    'search: for seed in 0..20u64 {
        let model = Architecture::mlp(&[3, 10, 10, 2])
            .init(Init::Paper, seed)
            .unwrap();
        let root = crown_bounds(&model, &dom).unwrap();
        for unit in 0..10 {
            if !(root.lower[0][unit] < 0.0 && root.upper[0][unit] > 0.0) {
                continue;
            }
            for phase in [Phase::Active, Phase::Inactive] {
                let s = Split {
                    layer: 0,
                    unit,
                    phase,
                };
                let Some(c) = child_bounds(&model, &dom, &root, s).unwrap() else {
                    continue;
                };
                for j in 0..10 {
                    let (pl, pu) = (root.lower[1][j], root.upper[1][j]);
                    let (cl, cu) = (c.lower[1][j], c.upper[1][j]);
                    if !(pl < 0.0 && pu > 0.0) {
                        continue;
                    }
                    let mut p = root.clone();
                    if cl > 0.0 {
                        p.upper[1][j] = cl / 2.0;
                    } else if cu < 0.0 {
                        p.lower[1][j] = cu / 2.0;
                    } else {
                        continue;
                    }
                    assert!(
                        child_bounds(&model, &dom, &p, s).unwrap().is_none(),
                        "seed {seed} split {s:?}: unit {j} of layer 1 in [{cl}, {cu}] against the parent's [{}, {}]",
                        p.lower[1][j],
                        p.upper[1][j]
                    );
                    found = true;
                    break 'search;
                }
            }
        }
    }
    assert!(found, "no split made a unit of layer 1 stable");
}
