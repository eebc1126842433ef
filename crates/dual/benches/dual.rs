//! Bench binary (`cargo bench -p dual`): the full bound per example (Algorithm 1 for every
//! layer, then J for all 9 margin targets, f64) with ms per example and achieved GFLOP/s
//! (2 flops per multiply-add actually spent in the affine layers, counted by Algorithm 1
//! itself, plus the backward pass for J), on random networks and on the committed
//! paper-architecture models (`models/mnist_conv_{standard,robust}.json`, 50 test digits:
//! every 100th row of the shipped file `mnist_5k.csv.gz`, eps 0.1, pixels clipped to [0, 1]).
//!
//! Every case runs three times in the same run: with dense columns (`ColumnForm::Dense`,
//! the implementation before local columns: "before"), with local columns through the
//! convolutions (`ColumnForm::Local`, the default: "after"), both f64, and with local
//! columns stored and multiplied in f32 (`Precision::F32`, the sound f32 path). The bench
//! checks that the two f64 forms give the same bounds and J to 1e-12 relative, and that
//! every first-layer f32 bound is on the safe side of the f64 one; deeper f32 bounds and J
//! may be a hair tighter than f64's (the paper's alpha makes the bound non-monotone in the
//! intermediate bounds; both are proven), so it prints the largest widening, the largest
//! gain and how often f32 is tighter, and the speed-ups.
//!
//! A reference is timed in the same run: one dense forward pass of the same columns
//! through a plain GEMM (the machine's GEMM rate), so results read as a ratio of the
//! achievable rate. Usage: `cargo bench -p dual --bench dual [-- --quick] [--case TEXT] [--form dense|local]`.

use std::time::Instant;

use dual::{
    algorithm1_with, dual_objective, margin_objectives, AlphaRule, ColumnForm, InputDomain,
    Precision,
};
use network::{Architecture, Init, Model};
use rayon::prelude::*;

struct Case {
    name: &'static str,
    model: Model,
    eps: f64,
    clip: Option<(f64, f64)>,
    inputs: Vec<Vec<f64>>,
}

/// One example's work: multiply-adds, unstable units, and every bound and J (to compare
/// the column forms and precisions): `lower` holds J and every lower bound, `upper` every
/// upper bound.
struct Work {
    macs: u64,
    unstable: usize,
    /// Units of the first affine layer (its bounds are the first in `lower`/`upper`).
    first: usize,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

fn bound_one(case: &Case, x: &[f64], form: ColumnForm, precision: Precision) -> Work {
    let model = &case.model;
    let dom = InputDomain::new(x, case.eps, case.clip).unwrap();
    let (b, stats) = algorithm1_with(model, &dom, form, precision).unwrap();
    let y = model.predict(x).unwrap();
    let n = model.output_len();
    let c = margin_objectives(n, y).unwrap();
    let j = dual_objective(model, &dom, &b, &c, &AlphaRule::Paper).unwrap();
    let back: u64 = model
        .affine()
        .iter()
        .map(|a| (a.op.macs_per_column() * n) as u64)
        .sum();
    let unstable = b.counts(model).iter().map(|c| c.unstable).sum();
    let mut lower: Vec<f64> = j.values.iter().copied().collect();
    let mut upper = Vec::new();
    for (l, u) in b.lower.iter().zip(&b.upper) {
        lower.extend(l.iter());
        upper.extend(u.iter());
    }
    Work {
        macs: stats.macs + back,
        unstable,
        first: model.affine()[0].op.n_out(),
        lower,
        upper,
    }
}

fn gemm_reference_gflops() -> f64 {
    // 1568 x 2800 times 100 x 1568: the shape of the dominant product of the conv net.
    let model = Architecture::mlp(&[1568, 100])
        .init(Init::Paper, 0)
        .unwrap();
    let cols = 2800;
    let x: Vec<f64> = (0..1568 * cols).map(|i| ((i % 13) as f64) / 13.0).collect();
    let mut out = vec![0.0; 100 * cols];
    let op = &model.affine()[0].op;
    op.apply(&x, cols, &mut out);
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        op.apply(&x, cols, &mut out);
    }
    let s = t.elapsed().as_secs_f64();
    2.0 * (1568 * 100 * cols * reps) as f64 / s / 1e9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--case TEXT`: only the cases whose name contains TEXT; `--form dense|local|f32`:
    // one configuration only (for profiling; the speed-up column then reads "-").
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let only_case = flag("--case");
    let only_form = flag("--form");
    let test = network::data::mnist_split(0).unwrap().1;
    let batch = if quick { 6 } else { 50 };
    let mnist: Vec<Vec<f64>> = (0..batch)
        .map(|i| test.example(i).0.as_slice().to_vec())
        .collect();
    // Every 100th row of the shipped file (the 50 digits, 5 of each class).
    let shipped = network::data::mnist_5k().unwrap();
    let every_100th: Vec<Vec<f64>> = (0..batch)
        .map(|i| shipped.example(100 * i).0.as_slice().to_vec())
        .collect();
    let toy: Vec<Vec<f64>> = (0..batch)
        .map(|i| vec![(i as f64 * 0.37) % 1.0, (i as f64 * 0.61) % 1.0])
        .collect();
    let committed = |name: &str| {
        let path = format!("{}/../../models/{name}", env!("CARGO_MANIFEST_DIR"));
        network::load_model(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let cases = [
        Case {
            name: "2-100-100-100-100-2 eps 0.05",
            model: Architecture::mlp(&[2, 100, 100, 100, 100, 2])
                .init(Init::Paper, 0)
                .unwrap(),
            eps: 0.05,
            clip: None,
            inputs: toy,
        },
        Case {
            name: "MLP 784-100-100-10 eps 0.1",
            model: Architecture::mlp(&[784, 100, 100, 10])
                .init(Init::Standard, 0)
                .unwrap(),
            eps: 0.1,
            clip: None,
            inputs: mnist.clone(),
        },
        Case {
            name: "paper MNIST conv net (random) eps 0.1",
            model: Architecture::mnist_conv().init(Init::Standard, 0).unwrap(),
            eps: 0.1,
            clip: None,
            inputs: mnist,
        },
        Case {
            name: "mnist_conv_standard.json eps 0.1 [0,1]",
            model: committed("mnist_conv_standard.json"),
            eps: 0.1,
            clip: Some((0.0, 1.0)),
            inputs: every_100th.clone(),
        },
        Case {
            name: "mnist_conv_robust.json eps 0.1 [0,1]",
            model: committed("mnist_conv_robust.json"),
            eps: 0.1,
            clip: Some((0.0, 1.0)),
            inputs: every_100th,
        },
    ];
    println!("threads: {}", rayon::current_num_threads());
    let gemm = gemm_reference_gflops();
    println!("reference GEMM (100x1568 times 1568x2800, same kernels): {gemm:.1} GFLOP/s\n");
    println!("| network | columns | batch | ms / example | GFLOP / example | GFLOP/s | of reference GEMM | unstable units / example | speed-up |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut widening: Vec<(String, (f64, f64, f64))> = Vec::new();
    for case in cases.iter().filter(|c| {
        only_case
            .as_ref()
            .is_none_or(|t| c.name.contains(t.as_str()))
    }) {
        let mut dense_ms = f64::NAN;
        let mut local_ms = f64::NAN;
        let mut dense_work: Vec<Work> = Vec::new();
        let mut local_work: Vec<Work> = Vec::new();
        for (form, precision, label) in [
            (ColumnForm::Dense, Precision::F64, "dense f64 (before)"),
            (ColumnForm::Local, Precision::F64, "local f64 (after)"),
            (ColumnForm::Local, Precision::F32, "f32 local"),
        ]
        .into_iter()
        .filter(|(_, p, l)| {
            only_form
                .as_ref()
                .is_none_or(|f| l.starts_with(f.as_str()) && (f != "local" || *p == Precision::F64))
        }) {
            // Warm-up on one example.
            bound_one(case, &case.inputs[0], form, precision);
            let t = Instant::now();
            let work: Vec<Work> = case
                .inputs
                .par_iter()
                .map(|x| bound_one(case, x, form, precision))
                .collect();
            let s = t.elapsed().as_secs_f64();
            let n = case.inputs.len() as f64;
            let macs: u64 = work.iter().map(|w| w.macs).sum();
            let unstable: usize = work.iter().map(|w| w.unstable).sum();
            let gflop = 2.0 * macs as f64 / 1e9;
            let ms = 1e3 * s / n;
            let speedup = match (form, precision) {
                (ColumnForm::Dense, _) => {
                    dense_ms = ms;
                    String::from("1x")
                }
                (ColumnForm::Local, Precision::F64) => {
                    local_ms = ms;
                    if !dense_work.is_empty() {
                        same_values(case.name, &dense_work, &work);
                    }
                    format!("{:.2}x", dense_ms / ms)
                }
                (ColumnForm::Local, Precision::F32) => {
                    if !local_work.is_empty() {
                        let c = compare(&local_work, &work);
                        widening.push((case.name.to_string(), c));
                    }
                    format!("{:.2}x ({:.2}x local f64)", dense_ms / ms, local_ms / ms)
                }
            };
            println!(
                "| {} | {} | {} | {:.2} | {:.3} | {:.1} | {:.2}x | {:.0} | {} |",
                case.name,
                label,
                case.inputs.len(),
                ms,
                gflop / n,
                gflop / s,
                gflop / s / gemm,
                unstable as f64 / n,
                speedup
            );
            match (form, precision) {
                (ColumnForm::Dense, _) => dense_work = work,
                (ColumnForm::Local, Precision::F64) => local_work = work,
                _ => {}
            }
        }
    }
    println!(
        "\nlocal and dense f64 columns gave the same bounds and J (1e-12 relative) on every example"
    );
    println!("f32 against f64 (first-layer bounds on the safe side on every example; relative to the f64 bound's width u - l, or to max(1, |J|)): largest widening, largest gain, share of values where f32 is tighter:");
    for (name, (w, g, t)) in widening {
        println!("  {name}: {w:.2e}, {g:.2e}, {:.2}%", 100.0 * t);
    }
}

/// The two f64 forms agree to 1e-12 relative.
fn same_values(name: &str, a: &[Work], b: &[Work]) {
    for (e, (x, y)) in a.iter().zip(b).enumerate() {
        for (p, q) in x
            .lower
            .iter()
            .chain(&x.upper)
            .zip(y.lower.iter().chain(&y.upper))
        {
            let rel = (p - q).abs() / p.abs().max(q.abs()).max(1.0);
            assert!(rel <= 1e-12, "{name}: example {e}: dense {p} vs local {q}");
        }
    }
}

/// How the proven f32 values sit against the f64 ones. The first layer's f32 bounds are
/// always on the safe side (the same interval, its f32 columns' rounding added), asserted.
/// Deeper bounds and J need not be: with the paper's `alpha = u / (u - l)` the bound is
/// not monotone in the intermediate bounds, so the slightly wider f32 intermediate bounds
/// can give a slightly higher J (both proven; `crates/dual/tests/proven.rs` checks f32 in
/// exact arithmetic). Returns the largest widening and the largest gain (f32 tighter than
/// f64), each relative to the f64 bound's width (bounds) or `max(1, |J|)` (J), and the
/// share of values where f32 is tighter; a gain beyond `1e-3` of that scale fails.
fn compare(f64s: &[Work], f32s: &[Work]) -> (f64, f64, f64) {
    let (mut widen, mut gain) = (0.0f64, 0.0f64);
    let (mut tighter, mut total) = (0usize, 0usize);
    for (e, (x, y)) in f64s.iter().zip(f32s).enumerate() {
        let n_j = x.lower.len() - x.upper.len();
        let mut one = |i: usize, loose: f64, scale: f64, first: bool| {
            total += 1;
            let rel = loose / scale;
            if rel >= 0.0 {
                widen = widen.max(rel);
            } else {
                assert!(
                    !first,
                    "example {e}: a first-layer f32 bound tighter than f64 (#{i})"
                );
                assert!(
                    -rel <= 1e-3,
                    "example {e}: f32 tighter than f64 by {:e} (#{i})",
                    -rel
                );
                gain = gain.max(-rel);
                tighter += 1;
            }
        };
        for (i, (p, q)) in x.lower.iter().zip(&y.lower).enumerate() {
            let (scale, first) = if i < n_j {
                (p.abs().max(1.0), false)
            } else {
                let k = i - n_j;
                ((x.upper[k] - p).max(f64::MIN_POSITIVE), k < x.first)
            };
            one(i, p - q, scale, first);
        }
        for (k, (p, q)) in x.upper.iter().zip(&y.upper).enumerate() {
            let scale = (p - x.lower[n_j + k]).max(f64::MIN_POSITIVE);
            one(k, q - p, scale, k < x.first);
        }
    }
    (widen, gain, tighter as f64 / total.max(1) as f64)
}
