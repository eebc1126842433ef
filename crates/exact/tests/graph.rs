//! Graph models (residual connections, affine maps with no ReLU between, transposes) through every
//! bound method, LP (19), branch and bound, pattern enumeration and (with `highs`) the
//! MILP: every proven value is at most the exact value of every sampled point (compared
//! in exact arithmetic), every intermediate bound contains the sampled pre-activations,
//! the chain `J <= LP-last <= LP-all <= exact <= PGD <= sampled` holds, and a residual
//! network agrees with the same network written out as a ReLU chain whose skips are
//! folded into wider dense layers (the copy of a ReLU output `h >= 0` passes a ReLU
//! unchanged): the same function, the same exact minimum, and the graph's LP-all at least
//! the chain's (the chain relaxes its copies; the graph's linear units are never relaxed).
//!
//! Tolerances as in `agreement.rs`: enclosures close to `1e-6 (1 + |upper|)`; LP values
//! are compared with `1e-6 (1 + |value|)`.

mod common;

use common::{lp_value, tol};
use std::cmp::Ordering;

use dual::{
    algorithm1, bound_with_method, dual_objective, method_bounds, AlphaOptions, AlphaRule,
    InputDomain, Method,
};
use exact::{enumerate_patterns, minimise, pgd, BabOptions, BabStatus, PgdOptions};
use lp::{lp_all_bounds, LpOptions, Solver};
use network::{
    objective_exact, preactivations_exact, residual_net, Init, Layer, Model, Node, Shape, Source,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Case {
    name: String,
    model: Model,
    dom: InputDomain,
    c: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut out = Vec::new();
    for (shape, width, blocks, normalise, eps, seed) in [
        (Shape::Flat(3), 5, 1, false, 0.6, 1u64),
        (Shape::Flat(2), 4, 2, true, 0.5, 2),
        (Shape::Flat(3), 4, 2, false, 0.4, 3),
        (Shape::Image { c: 1, h: 3, w: 3 }, 2, 1, true, 0.12, 4),
    ] {
        let model = residual_net(shape, width, blocks, 3, normalise, Init::Paper, seed).unwrap();
        let x: Vec<f64> = (0..shape.numel())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        out.push(Case {
            name: format!("residual {shape} width {width} blocks {blocks} normalise {normalise}"),
            dom: InputDomain::new(&x, eps, None).unwrap(),
            model,
            c: vec![1.0, 0.0, -1.0],
        });
    }
    // Transposes that move data: an NHWC input [h 3, w 3, c 2] into channel-major for a
    // conv, and the conv's ReLU output back into NHWC before the flatten.
    let mut r =
        |n: usize, s: f64| -> Vec<f64> { (0..n).map(|_| rng.random_range(-s..s)).collect() };
    let layers = vec![
        Layer::Transpose { perm: [2, 0, 1] },
        Layer::Conv2d {
            weight: r(2 * 2 * 4, 0.8),
            bias: r(2, 0.2),
            out_channels: 2,
            in_channels: 2,
            kernel_h: 2,
            kernel_w: 2,
            stride: 1,
            padding: 0,
        },
        Layer::Relu,
        Layer::Transpose { perm: [1, 2, 0] },
        Layer::Flatten,
        Layer::Dense {
            weight: r(3 * 8, 0.8),
            bias: r(3, 0.2),
            out_features: 3,
            in_features: 8,
        },
        Layer::Relu,
        Layer::Dense {
            weight: r(3 * 3, 0.8),
            bias: r(3, 0.2),
            out_features: 3,
            in_features: 3,
        },
    ];
    let x = r(18, 1.0);
    out.push(Case {
        name: "nhwc conv with transposes".into(),
        model: Model::new(Shape::Image { c: 3, h: 3, w: 2 }, layers).unwrap(),
        dom: InputDomain::new(&x, 0.15, None).unwrap(),
        c: vec![1.0, 0.0, -1.0],
    });
    out
}

/// Exact values of `c^T f(x)` and exact pre-activations at sampled points of the inner
/// box (its corners' neighbourhoods included: half the samples on a face).
fn samples(case: &Case, rng: &mut ChaCha8Rng, n: usize) -> Vec<Vec<f64>> {
    let d = &case.dom;
    (0..n)
        .map(|s| {
            (0..d.x.len())
                .map(|i| {
                    let (lo, hi) = (d.inner_lower[i], d.inner_upper[i]);
                    if s % 2 == 0 && rng.random_bool(0.5) {
                        if rng.random_bool(0.5) {
                            lo
                        } else {
                            hi
                        }
                    } else {
                        rng.random_range(lo..=hi)
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_method_is_sound_on_graph_models() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for case in cases() {
        let points = samples(&case, &mut rng, 300);
        for method in Method::ALL {
            let b = bound_with_method(
                &case.model,
                &case.dom,
                network::as_row(&case.c),
                method,
                &AlphaOptions::default(),
            )
            .unwrap();
            let v = b.values[0];
            for x in &points {
                let exact = objective_exact(&case.model, x, &case.c).unwrap();
                assert_ne!(
                    exact.cmp_f64(v),
                    Some(Ordering::Less),
                    "{} {method}: bound {v} above c.f(x) = {}",
                    case.name,
                    exact.to_f64()
                );
                // Every layer's bounds contain the exact pre-activations.
                let z = preactivations_exact(&case.model, x).unwrap();
                for (t, zt) in z.iter().enumerate() {
                    for (j, zj) in zt.iter().enumerate() {
                        assert!(
                            zj.cmp_f64(b.bounds.lower[t][j]) != Some(Ordering::Less)
                                && zj.cmp_f64(b.bounds.upper[t][j]) != Some(Ordering::Greater),
                            "{} {method}: layer {t} unit {j}: {} outside [{}, {}]",
                            case.name,
                            zj.to_f64(),
                            b.bounds.lower[t][j],
                            b.bounds.upper[t][j]
                        );
                    }
                }
            }
        }
    }
}

/// Proven lower end and solver value of LP (19) over `bounds`.

#[test]
fn the_whole_chain_holds_on_graph_models() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for case in cases() {
        let (model, dom, c, name) = (&case.model, &case.dom, &case.c, &case.name);
        let t0 = std::time::Instant::now();
        let bab = minimise(
            model,
            dom,
            c,
            &BabOptions {
                solver: Solver::Clarabel,
                ..BabOptions::default()
            },
        )
        .unwrap();
        assert_eq!(bab.status, BabStatus::Closed, "{name}");
        eprintln!("{name}: bab {:.2}s", t0.elapsed().as_secs_f64());
        let en = enumerate_patterns(model, dom, c, Solver::Clarabel, 16).unwrap();
        assert!(
            (bab.upper - en.value).abs() <= 2.0 * tol(en.value),
            "{name}: BaB [{}, {}] vs enumeration {}",
            bab.lower,
            bab.upper,
            en.value
        );
        eprintln!("{name}: enumeration {:.2}s", t0.elapsed().as_secs_f64());
        let a1 = algorithm1(model, dom).unwrap();
        let j = dual_objective(model, dom, &a1, network::as_row(c), &AlphaRule::Paper)
            .unwrap()
            .values[0];
        let (last_lo, last) = lp_value(model, dom, &a1, c);
        let all_b = lp_all_bounds(model, dom, Solver::Clarabel, &LpOptions::default()).unwrap();
        let (all_lo, all) = lp_value(model, dom, &all_b, c);
        let (xp, _) = pgd(
            model,
            dom,
            c,
            std::slice::from_ref(&dom.center),
            &PgdOptions::default(),
            &mut rng,
        )
        .unwrap();
        let pgd_up = dual::value_upper_bound(model, &xp, c).unwrap();
        let sampled = samples(&case, &mut rng, 500)
            .iter()
            .map(|x| {
                let f = model.forward(x).unwrap();
                c.iter().zip(&f).map(|(a, b)| a * b).sum::<f64>()
            })
            .fold(f64::INFINITY, f64::min);
        eprintln!(
            "{name}: J {j:.6} <= LP-last {last:.6} <= LP-all {all:.6} <= exact [{:.9}, {:.9}] \
             ({} nodes) <= PGD {pgd_up:.6} <= sampled {sampled:.6}",
            bab.lower, bab.upper, bab.nodes
        );
        assert!(j <= last + tol(last), "{name}: J {j} > LP-last {last}");
        assert!(last_lo <= all + tol(all), "{name}: LP-last > LP-all");
        assert!(all_lo <= bab.upper, "{name}: LP-all above exact");
        assert!(bab.lower <= pgd_up, "{name}: exact above PGD");
        assert!(
            bab.lower <= sampled + 1e-9 * (1.0 + sampled.abs()),
            "{name}: exact above sampled"
        );
        let f = model.forward(&bab.point).unwrap();
        let at: f64 = c.iter().zip(&f).map(|(a, b)| a * b).sum();
        assert!((at - bab.upper).abs() <= 1e-9 * (1.0 + at.abs()), "{name}");
    }
}

/// The residual network of `residual_net(Flat, .., normalise = false)` written out as a
/// ReLU chain: each block `h' = relu(h + B relu(A h + a) + b)` becomes
/// `[a; h] = relu([A; I] h + [a; 0])` then `h' = relu([B I] [a; h] + b)`.
fn as_chain(model: &Model) -> Model {
    let nodes = model.nodes();
    let dense = |n: &Node| match &n.layer {
        Layer::Dense {
            weight,
            bias,
            out_features,
            in_features,
        } => (weight.clone(), bias.clone(), *out_features, *in_features),
        other => panic!("expected dense, got {}", other.kind()),
    };
    let find = |name: &str| nodes.iter().find(|n| n.name == name).unwrap();
    let mut layers = Vec::new();
    let (w, b, width, n_in) = dense(find("stem"));
    layers.push(Layer::Dense {
        weight: w,
        bias: b,
        out_features: width,
        in_features: n_in,
    });
    layers.push(Layer::Relu);
    let mut k = 0;
    while let Some(na) = nodes.iter().find(|n| n.name == format!("block{k}_a")) {
        let (wa, ba, _, _) = dense(na);
        let (wb, bb, _, _) = dense(find(&format!("block{k}_b")));
        // [A; I] (2w x w), bias [a; 0].
        let mut w1 = wa.clone();
        for i in 0..width {
            let mut row = vec![0.0; width];
            row[i] = 1.0;
            w1.extend(row);
        }
        let mut b1 = ba.clone();
        b1.extend(vec![0.0; width]);
        layers.push(Layer::Dense {
            weight: w1,
            bias: b1,
            out_features: 2 * width,
            in_features: width,
        });
        layers.push(Layer::Relu);
        // [B I] (w x 2w).
        let mut w2 = Vec::new();
        for r in 0..width {
            w2.extend_from_slice(&wb[r * width..(r + 1) * width]);
            let mut row = vec![0.0; width];
            row[r] = 1.0;
            w2.extend(row);
        }
        layers.push(Layer::Dense {
            weight: w2,
            bias: bb,
            out_features: width,
            in_features: 2 * width,
        });
        layers.push(Layer::Relu);
        k += 1;
    }
    let (w, b, o, i) = dense(find("head"));
    layers.push(Layer::Dense {
        weight: w,
        bias: b,
        out_features: o,
        in_features: i,
    });
    let chain = Model::new(model.input_shape(), layers).unwrap();
    assert!(chain.is_plain());
    chain
}

#[test]
fn residual_network_agrees_with_its_chain_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for (n, width, blocks, eps, seed) in [(3, 5, 1, 0.6, 1u64), (2, 4, 2, 0.5, 6)] {
        let graph =
            residual_net(Shape::Flat(n), width, blocks, 3, false, Init::Paper, seed).unwrap();
        let chain = as_chain(&graph);
        let x: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let dom = InputDomain::new(&x, eps, None).unwrap();
        let c = [1.0, 0.0, -1.0];
        let name = format!("residual {n}-{width} x{blocks}");
        // The same function, in exact arithmetic.
        for _ in 0..50 {
            let p: Vec<f64> = (0..n)
                .map(|i| rng.random_range(dom.inner_lower[i]..=dom.inner_upper[i]))
                .collect();
            assert_eq!(
                objective_exact(&graph, &p, c)
                    .unwrap()
                    .cmp(&objective_exact(&chain, &p, c).unwrap()),
                Ordering::Equal,
                "{name}"
            );
        }
        // The same exact minimum.
        let opts = BabOptions {
            solver: Solver::Clarabel,
            ..BabOptions::default()
        };
        let g = minimise(&graph, &dom, c, &opts).unwrap();
        let h = minimise(&chain, &dom, c, &opts).unwrap();
        assert_eq!((g.status, h.status), (BabStatus::Closed, BabStatus::Closed));
        assert!(
            g.lower <= h.upper + tol(h.upper) && h.lower <= g.upper + tol(g.upper),
            "{name}: graph [{}, {}] vs chain [{}, {}]",
            g.lower,
            g.upper,
            h.lower,
            h.upper
        );
        // Every method sound on both; LP-all of the graph at least the chain's.
        for method in Method::ALL {
            for (m, what) in [(&graph, "graph"), (&chain, "chain")] {
                let v = bound_with_method(
                    m,
                    &dom,
                    network::as_row(&c),
                    method,
                    &AlphaOptions::default(),
                )
                .unwrap()
                .values[0];
                assert!(v <= g.upper, "{name} {what} {method}: {v} > {}", g.upper);
            }
        }
        let lp_all = |m: &Model| {
            let b = lp_all_bounds(m, &dom, Solver::Clarabel, &LpOptions::default()).unwrap();
            lp_value(m, &dom, &b, &c).1
        };
        let (lg, lc) = (lp_all(&graph), lp_all(&chain));
        eprintln!(
            "{name}: exact [{:.6}, {:.6}], LP-all graph {lg:.6} chain {lc:.6}",
            g.lower, g.upper
        );
        assert!(lg >= lc - tol(lc), "{name}: LP-all graph {lg} < chain {lc}");
        // The graph's CROWN intermediate bounds: no linear unit is ever unstable-relaxed,
        // so the first hidden layer's bounds agree with the chain's stem exactly.
        let bg = method_bounds(&graph, &dom, Method::Crown).unwrap();
        let bc = method_bounds(&chain, &dom, Method::Crown).unwrap();
        assert_eq!(
            bg.lower[0].rows(0, width),
            bc.lower[0].rows(0, width),
            "{name}"
        );
    }
}

/// The MILP (HiGHS) on graph models meets branch and bound.
#[cfg(feature = "highs")]
#[test]
fn milp_meets_bab_on_graph_models() {
    use exact::{milp_minimum, MilpOptions};
    for case in cases() {
        let bab = minimise(
            &case.model,
            &case.dom,
            &case.c,
            &BabOptions {
                solver: Solver::Clarabel,
                ..BabOptions::default()
            },
        )
        .unwrap();
        let b = lp_all_bounds(
            &case.model,
            &case.dom,
            Solver::Clarabel,
            &LpOptions::default(),
        )
        .unwrap();
        let m = milp_minimum(&case.model, &case.dom, &b, &case.c, &MilpOptions::default()).unwrap();
        let v = m.value.expect("the MILP finds the minimum");
        assert!(
            (v - bab.upper).abs() <= 2.0 * tol(v) + (bab.upper - bab.lower),
            "{}: MILP {v} vs BaB [{}, {}]",
            case.name,
            bab.lower,
            bab.upper
        );
    }
}

/// Sources other than the input (the graph is well formed) are used; keeps the import of
/// `Source` honest for readers looking for how graphs are written.
#[test]
fn residual_nodes_read_earlier_nodes() {
    let m = residual_net(Shape::Flat(2), 3, 1, 2, false, Init::Paper, 0).unwrap();
    assert!(m
        .nodes()
        .iter()
        .any(|n| n.inputs.len() == 2 && n.inputs.iter().all(|s| matches!(s, Source::Node(_)))));
}
