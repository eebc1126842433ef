//! Bench binary (`cargo bench -p dual`): the full bound per example (Algorithm 1 for every
//! layer, then J for all 9 margin targets, f64) on the three networks, with ms
//! per example and achieved GFLOP/s (2 flops per multiply-add actually spent in the
//! affine layers, counted by Algorithm 1 itself, plus the backward pass for J).
//!
//! A reference is timed in the same run: one dense forward pass of the same columns
//! through a plain GEMM (the machine's GEMM rate), so results read as a ratio of the
//! achievable rate. Usage: `cargo bench -p dual --bench dual [-- --quick]`.

use std::time::Instant;

use dual::{algorithm1_with_stats, dual_objective, margin_objectives, AlphaRule, InputDomain};
use network::{Architecture, Init, Model};
use rayon::prelude::*;

struct Case {
    name: &'static str,
    model: Model,
    eps: f64,
    inputs: Vec<Vec<f64>>,
}

fn bound_one(model: &Model, x: &[f64], eps: f64) -> (u64, usize) {
    let dom = InputDomain::new(x, eps, None).unwrap();
    let (b, stats) = algorithm1_with_stats(model, &dom).unwrap();
    let y = model.predict(x).unwrap();
    let n = model.output_len();
    let c = margin_objectives(n, y).unwrap();
    let j = dual_objective(model, &dom, &b, &c, &AlphaRule::Paper).unwrap();
    std::hint::black_box(&j);
    let back: u64 = model
        .affine()
        .iter()
        .map(|a| (a.op.macs_per_column() * n) as u64)
        .sum();
    let unstable = b.counts(model).iter().map(|c| c.unstable).sum();
    (stats.macs + back, unstable)
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
    let quick = std::env::args().any(|a| a == "--quick");
    let (test, _) = (network::data::mnist_split(0).unwrap().1, ());
    let batch = if quick { 6 } else { 50 };
    let mnist: Vec<Vec<f64>> = (0..batch)
        .map(|i| test.example(i).0.as_slice().to_vec())
        .collect();
    let toy: Vec<Vec<f64>> = (0..batch)
        .map(|i| vec![(i as f64 * 0.37) % 1.0, (i as f64 * 0.61) % 1.0])
        .collect();
    let cases = vec![
        Case {
            name: "2-100-100-100-100-2 eps 0.05",
            model: Architecture::mlp(&[2, 100, 100, 100, 100, 2])
                .init(Init::Paper, 0)
                .unwrap(),
            eps: 0.05,
            inputs: toy,
        },
        Case {
            name: "MLP 784-100-100-10 eps 0.1",
            model: Architecture::mlp(&[784, 100, 100, 10])
                .init(Init::Standard, 0)
                .unwrap(),
            eps: 0.1,
            inputs: mnist.clone(),
        },
        Case {
            name: "paper MNIST conv net (random) eps 0.1",
            model: Architecture::mnist_conv().init(Init::Standard, 0).unwrap(),
            eps: 0.1,
            inputs: mnist,
        },
    ];
    println!("threads: {}", rayon::current_num_threads());
    let gemm = gemm_reference_gflops();
    println!("reference GEMM (100x1568 times 1568x2800, same kernels): {gemm:.1} GFLOP/s\n");
    println!("| network | batch | ms / example | GFLOP / example | GFLOP/s | of reference GEMM | unstable units / example |");
    println!("|---|---|---|---|---|---|---|");
    for case in &cases {
        // Warm-up on one example.
        bound_one(&case.model, &case.inputs[0], case.eps);
        let t = Instant::now();
        let work: Vec<(u64, usize)> = case
            .inputs
            .par_iter()
            .map(|x| bound_one(&case.model, x, case.eps))
            .collect();
        let s = t.elapsed().as_secs_f64();
        let n = case.inputs.len() as f64;
        let macs: u64 = work.iter().map(|w| w.0).sum();
        let unstable: usize = work.iter().map(|w| w.1).sum();
        let gflop = 2.0 * macs as f64 / 1e9;
        println!(
            "| {} | {} | {:.2} | {:.3} | {:.1} | {:.2}x | {:.0} |",
            case.name,
            case.inputs.len(),
            1e3 * s / n,
            gflop / n,
            gflop / s,
            gflop / s / gemm,
            unstable as f64 / n
        );
    }
}
