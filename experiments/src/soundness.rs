//! The soundness campaign: random networks, inputs and balls, each checked against the
//! chain of inequalities in exact arithmetic.
//!
//! A case draws (from its own seed) a dense or conv network with weights and biases
//! scaled per layer from 1e-6 to 1e6, sometimes a dead layer (every unit off), an
//! always-on layer, or two logits that tie exactly; an input; an eps from 0 to 1e6; and
//! sometimes a box (one case in 20 has its first two layers scaled to 1e100-1e300,
//! where overflow must be an error). It then checks, for every objective (the margins of the predicted
//! class, or `+-f` for a one-output net):
//!
//! * every sampled point (corners and uniform, kept inside the exact input set) has its
//!   exact pre-activations (`network::exact`) inside the proven interval and Algorithm 1
//!   bounds of every layer;
//! * proven `J <=` every sampled exact value; the LP's proven lower bound, and each
//!   solver's own Neumaier-Shcherbina bound, `<=` every sampled exact value; the proven
//!   `J` `<=` the LP's confirmed value (LP tolerance); the LP lower bound `<=` the proven
//!   value at the LP's input point;
//! * no certificate where a sampled point has a margin `<= 0`;
//! * no panic, no NaN: a non-finite number is an `Overflow` error, counted, never a bound.

use std::cmp::Ordering;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use dual::{
    algorithm1, certifies, dual_objective, interval_bounds, AlphaRule, DualError, InputDomain,
};
use network::{preactivations_exact, Architecture, Dyadic, Init, Model, Shape};

/// Seconds each LP solve may take (microlp can cycle on badly scaled LPs; a solve that
/// hits the limit is a failed attempt, and the case's LP is then "not settled").
pub const LP_TIME_LIMIT: f64 = 0.5;

/// What one case came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every check passed.
    Passed {
        certified: bool,
        lp_optimum: bool,
        samples: usize,
    },
    /// A bound could not be computed: an overflow, reported as an error (sound).
    Overflow(String),
    /// The input set is empty (ball and box do not meet): refused (sound).
    Refused(String),
    /// A check failed, or the code panicked: a soundness bug.
    Violation(String),
}

/// A case's network, input set and description, drawn from its seed.
pub struct Case {
    pub model: Model,
    pub x: Vec<f64>,
    pub eps: f64,
    pub input_box: Option<(f64, f64)>,
    pub description: String,
}

fn scale_layers(model: &Model, rng: &mut ChaCha8Rng, mode: u32) -> Model {
    let n_aff = model.affine().len();
    let out_features = model.output_len();
    model
        .map_parameters(|k, w, b| {
            let sw = if mode == 4 && k <= 1 {
                // Near the top of the f64 range: products overflow somewhere.
                10f64.powf(rng.random_range(100.0..300.0))
            } else {
                10f64.powf(rng.random_range(-6.0..6.0))
            };
            let sb = 10f64.powf(rng.random_range(-6.0..6.0));
            let is_last = k + 1 == n_aff;
            let big = w.iter().fold(0.0f64, |m, v| m.max(v.abs())) * sw * 1e3 + 1.0;
            for v in w.iter_mut() {
                *v *= sw;
            }
            for v in b.iter_mut() {
                *v = match (mode, is_last, k) {
                    (1, false, 0) => -big, // a dead first layer
                    (2, false, _) => big,  // always-on hidden layers
                    _ => *v * sb,
                };
            }
            if mode == 3 && is_last && out_features >= 2 {
                // Exact tie: the last two logits are the same function.
                let n = w.len() / out_features;
                let (head, tail) = w.split_at_mut((out_features - 1) * n);
                tail.copy_from_slice(&head[(out_features - 2) * n..]);
                b[out_features - 1] = b[out_features - 2];
            }
        })
        .expect("scaling keeps a valid model (finite: |w| <= 1e300 * 1e3)")
}

/// Draws case `index` of a campaign with seed `seed`.
pub fn draw_case(seed: u64, index: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
    let conv = rng.random_bool(0.3);
    let n_out = rng.random_range(1..=4);
    let arch = if conv {
        let c = rng.random_range(1..=2);
        let h = rng.random_range(3..=5);
        let w = rng.random_range(3..=5);
        let k = rng.random_range(2..=3usize).min(h).min(w);
        let conv_layer = (
            rng.random_range(1..=3),
            k,
            rng.random_range(1..=2),
            rng.random_range(0..=1),
        );
        let mut dense = Vec::new();
        if rng.random_bool(0.5) {
            dense.push(rng.random_range(2..=6));
        }
        dense.push(n_out);
        Architecture::conv_net(Shape::Image { c, h, w }, &[conv_layer], &dense)
    } else {
        let depth = rng.random_range(1..=3);
        let mut widths = vec![rng.random_range(1..=4)];
        for _ in 0..depth {
            widths.push(rng.random_range(1..=8));
        }
        widths.push(n_out);
        Architecture::mlp(&widths)
    };
    let base = arch
        .init(Init::Paper, rng.random())
        .expect("the architectures drawn here are valid");
    let mode = match rng.random_range(0..20) {
        0 | 1 => 1,
        2 | 3 => 2,
        4 | 5 => 3,
        6 => 4,
        _ => 0,
    };
    let model = scale_layers(&base, &mut rng, mode);
    let input_box = rng
        .random_bool(0.2)
        .then(|| (-0.5, rng.random_range(0.0..1.0)));
    // Inside the box when there is one; in one case in twenty the first coordinate is
    // just outside it, so that the ball meets the box only when eps reaches it.
    let outside = rng.random_bool(0.05);
    let x: Vec<f64> = (0..model.input_len())
        .map(|i| match input_box {
            Some((_, hi)) if outside && i == 0 => hi + rng.random_range(0.0..0.05),
            Some((lo, hi)) => rng.random_range(lo..=hi),
            None => rng.random_range(-1.0..1.0),
        })
        .collect();
    let eps = match rng.random_range(0..6) {
        0 => 0.0,
        1 => 1e-12,
        2 => rng.random_range(0.0..0.01),
        3 => rng.random_range(0.0..1.0),
        4 => 10f64.powf(rng.random_range(1.0..6.0)),
        _ => rng.random_range(0.0..0.3),
    };
    let description = format!(
        "seed {seed} case {index}: {}{}, eps {eps:e}, box {input_box:?}",
        model.describe(),
        [
            "",
            " (dead first layer)",
            " (always-on hidden layers)",
            " (tied logits)",
            " (first layers scaled to 1e100-1e300)",
        ][mode as usize]
    );
    Case {
        model,
        x,
        eps,
        input_box,
        description,
    }
}

/// Points of the input set: its corners (up to 16) and uniform draws, each checked to lie
/// inside the exact set (a coordinate that rounding put outside is replaced by the
/// centre's).
fn sample_points(dom: &InputDomain, rng: &mut ChaCha8Rng, uniform: usize) -> Vec<Vec<f64>> {
    let (lo, hi) = (dom.lower(), dom.upper());
    let d = lo.len();
    let inside = |i: usize, v: f64| -> bool {
        let (Some(dv), Some(dx), Some(de)) = (
            Dyadic::from_f64(v),
            Dyadic::from_f64(dom.x[i]),
            Dyadic::from_f64(dom.eps),
        ) else {
            return false;
        };
        let diff = dv.add(&dx.neg());
        let ok_ball = diff <= de && diff.neg() <= de;
        let ok_box = dom.input_box.is_none_or(|(a, b)| v >= a && v <= b);
        ok_ball && ok_box
    };
    let fix = |i: usize, v: f64| -> f64 {
        if inside(i, v) {
            v
        } else if inside(i, dom.center[i]) {
            dom.center[i]
        } else {
            dom.x[i].clamp(
                dom.input_box.map_or(f64::NEG_INFINITY, |b| b.0),
                dom.input_box.map_or(f64::INFINITY, |b| b.1),
            )
        }
    };
    let mut pts = Vec::new();
    let corners = if d <= 4 { 1usize << d } else { 16 };
    for s in 0..corners {
        pts.push(
            (0..d)
                .map(|i| {
                    let bit = if d <= 4 {
                        (s >> i) & 1
                    } else {
                        rng.random_range(0..2)
                    };
                    fix(i, if bit == 1 { hi[i] } else { lo[i] })
                })
                .collect(),
        );
    }
    for _ in 0..uniform {
        pts.push(
            (0..d)
                .map(|i| {
                    fix(
                        i,
                        if lo[i] < hi[i] {
                            rng.random_range(lo[i]..=hi[i])
                        } else {
                            lo[i]
                        },
                    )
                })
                .collect(),
        );
    }
    pts
}

fn exact_dot(c: &[f64], v: &[Dyadic]) -> Dyadic {
    let mut acc = Dyadic::zero();
    for (ci, vi) in c.iter().zip(v) {
        if *ci != 0.0 {
            acc = acc.add(&Dyadic::from_f64(*ci).expect("finite").mul(vi));
        }
    }
    acc
}

fn below(v: &Dyadic, bound: f64) -> bool {
    v.cmp_f64(bound) == Some(Ordering::Less)
}

/// Runs every check on one case (see the module docs). `lp` turns the LP checks on.
pub fn check_case(case: &Case, seed: u64, lp: bool) -> Outcome {
    check_case_tampered(case, seed, lp, 0.0)
}

/// As [`check_case`], with every proven `J` raised by `raise_j * max(1, |J|)` before the
/// checks: the campaign's own test that its checks catch a bound that is too high.
pub fn check_case_tampered(case: &Case, seed: u64, lp: bool, raise_j: f64) -> Outcome {
    let run = || -> Outcome {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED);
        let dom = match InputDomain::new(&case.x, case.eps, case.input_box) {
            Ok(d) => d,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let model = &case.model;
        let n_out = model.output_len();
        let ib = match interval_bounds(model, &dom) {
            Ok(b) => b,
            Err(e @ DualError::Overflow { .. }) => return Outcome::Overflow(e.to_string()),
            Err(e) => return Outcome::Violation(format!("interval bounds failed: {e}")),
        };
        let ab = match algorithm1(model, &dom) {
            Ok(b) => b,
            Err(e @ DualError::Overflow { .. }) => return Outcome::Overflow(e.to_string()),
            Err(e) => return Outcome::Violation(format!("Algorithm 1 failed: {e}")),
        };
        let (y, c) = if n_out == 1 {
            (
                usize::MAX,
                network::DMatrix::from_row_slice(2, 1, &[1.0, -1.0]),
            )
        } else {
            let f = match model.forward(&case.x) {
                Ok(f) => f,
                Err(e) => return Outcome::Violation(format!("forward failed: {e}")),
            };
            let y = network::argmax(&f);
            let m = dual::Margins::new(n_out, y, dual::Targets::All).expect("y is a class");
            (y, m.c)
        };
        let rows = c.nrows();
        let j = match dual_objective(model, &dom, &ab, &c, &AlphaRule::Paper) {
            Ok(mut j) => {
                for v in &mut j.values {
                    *v += raise_j * v.abs().max(1.0);
                }
                j
            }
            Err(e @ DualError::Overflow { .. }) => return Outcome::Overflow(e.to_string()),
            Err(e) => return Outcome::Violation(format!("dual objective failed: {e}")),
        };
        if let Some(v) = j.values.iter().find(|v| !v.is_finite()) {
            return Outcome::Violation(format!("a proven J is {v}"));
        }
        let certified = n_out > 1 && certifies(&j.values, usize::MAX);
        let _ = y;
        // The LP, as verified enclosures.
        let mut lp_lower = vec![f64::NEG_INFINITY; rows];
        let mut ns_lower: Vec<Vec<f64>> = vec![Vec::new(); rows];
        let mut lp_optimum = true;
        if lp {
            let lp19 = match lp::Lp19::new(model, &dom, &ab) {
                Ok(l) => l,
                Err(e) => return Outcome::Violation(format!("LP build failed: {e}")),
            };
            let encs = match lp::solve_verified(
                &lp19,
                &c,
                lp::Solver::Clarabel,
                &lp::LpOptions {
                    time_limit: Some(LP_TIME_LIMIT),
                    ..Default::default()
                },
                false,
                &Default::default(),
            ) {
                Ok(e) => e,
                Err(lp::LpError::Dual(e @ DualError::Overflow { .. })) => {
                    return Outcome::Overflow(e.to_string())
                }
                Err(e) => return Outcome::Violation(format!("LP failed: {e}")),
            };
            for (k, e) in encs.iter().enumerate() {
                if !e.proven_lower.is_finite() {
                    return Outcome::Violation(format!("LP proven lower bound {}", e.proven_lower));
                }
                lp_lower[k] = e.proven_lower;
                ns_lower[k] = e.attempts.iter().filter_map(|a| a.proven_lower).collect();
                if let Some(u) = e.upper_at_input {
                    if e.proven_lower > u {
                        return Outcome::Violation(format!(
                            "objective {k}: proven LP lower {} above the proven value {u} at the LP point",
                            e.proven_lower
                        ));
                    }
                }
                if e.is_optimum {
                    let v = e.value().expect("an optimum has a value");
                    if j.values[k] > v + e.tolerance * v.abs().max(1.0) {
                        return Outcome::Violation(format!(
                            "objective {k}: proven J {} above the LP optimum {v}",
                            j.values[k]
                        ));
                    }
                } else {
                    lp_optimum = false;
                }
            }
        }
        // Every sampled point, in exact arithmetic.
        let pts = sample_points(&dom, &mut rng, 24);
        for xs in &pts {
            let pre = match preactivations_exact(model, xs) {
                Ok(p) => p,
                Err(e) => return Outcome::Violation(format!("exact forward failed: {e}")),
            };
            for b in [&ib, &ab] {
                for (layer, zs) in pre.iter().enumerate() {
                    for (k, z) in zs.iter().enumerate() {
                        let (l, u) = (b.lower[layer][k], b.upper[layer][k]);
                        if below(z, l) || z.cmp_f64(u) == Some(Ordering::Greater) {
                            return Outcome::Violation(format!(
                                "{} bounds, affine layer {layer} unit {k}: exact {} outside [{l}, {u}] at {xs:?}",
                                b.source.name(),
                                z.to_f64()
                            ));
                        }
                    }
                }
            }
            let logits = pre.last().expect("logits");
            for k in 0..rows {
                let m = exact_dot(c.row(k).transpose().as_slice(), logits);
                if below(&m, j.values[k]) {
                    return Outcome::Violation(format!(
                        "objective {k}: exact value {} below proven J {} at {xs:?}",
                        m.to_f64(),
                        j.values[k]
                    ));
                }
                if below(&m, lp_lower[k]) {
                    return Outcome::Violation(format!(
                        "objective {k}: exact value {} below the LP's proven lower bound {} at {xs:?}",
                        m.to_f64(),
                        lp_lower[k]
                    ));
                }
                for ns in &ns_lower[k] {
                    if below(&m, *ns) {
                        return Outcome::Violation(format!(
                            "objective {k}: exact value {} below a solver's Neumaier-Shcherbina bound {ns} at {xs:?}",
                            m.to_f64()
                        ));
                    }
                }
                if certified && m.cmp_f64(0.0) != Some(Ordering::Greater) {
                    return Outcome::Violation(format!(
                        "certified, but objective {k} has exact margin {} at {xs:?}",
                        m.to_f64()
                    ));
                }
            }
        }
        Outcome::Passed {
            certified,
            lp_optimum,
            samples: pts.len(),
        }
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome::Violation(format!("panic: {msg}"))
        }
    }
}

/// Counts over a campaign.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub cases: u64,
    pub passed: u64,
    pub certified: u64,
    pub lp_not_optimum: u64,
    pub overflow: u64,
    pub refused: u64,
    pub samples: u64,
    /// Descriptions of the violations (case and what failed).
    pub violations: Vec<String>,
}

impl Tally {
    /// Adds one case's outcome.
    pub fn add(&mut self, case: &Case, o: Outcome) {
        self.cases += 1;
        match o {
            Outcome::Passed {
                certified,
                lp_optimum,
                samples,
            } => {
                self.passed += 1;
                self.certified += certified as u64;
                self.lp_not_optimum += (!lp_optimum) as u64;
                self.samples += samples as u64;
            }
            Outcome::Overflow(_) => self.overflow += 1,
            Outcome::Refused(_) => self.refused += 1,
            Outcome::Violation(v) => self.violations.push(format!("{}: {v}", case.description)),
        }
    }

    /// Merges two tallies.
    pub fn merge(mut self, o: Tally) -> Tally {
        self.cases += o.cases;
        self.passed += o.passed;
        self.certified += o.certified;
        self.lp_not_optimum += o.lp_not_optimum;
        self.overflow += o.overflow;
        self.refused += o.refused;
        self.samples += o.samples;
        self.violations.extend(o.violations);
        self
    }
}

/// Runs cases `start..start + count` of the campaign `seed` in parallel.
pub fn run_campaign(seed: u64, start: u64, count: u64, lp: bool) -> Tally {
    use rayon::prelude::*;
    (start..start + count)
        .into_par_iter()
        .map(|i| {
            let case = draw_case(seed, i);
            let o = check_case(&case, seed ^ i, lp);
            let mut t = Tally::default();
            t.add(&case, o);
            t
        })
        .reduce(Tally::default, Tally::merge)
}
