//! Bench binary (`cargo bench -p train --bench step [-- --batch B] [--reps R]
//! [--projections K] [--full]`): one training step (forward, backward, Adam) of the
//! paper's MNIST conv net on the CPU in f32: standard, robust with K random projections
//! (default 50) and, with `--full`, robust with the exact dual (Theorem 2 loss at eps
//! 0.1), measured in the same run on the same batch of the shipped MNIST subset.

use std::time::Instant;

/// The allocator of the `train` binary (every experiment binary links mimalloc): with the
/// system allocator every large temporary tensor is mapped fresh from the kernel.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{DType, Device};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use network::{data::mnist_split, Architecture, Init};
use train::{robust_loss, standard_loss, Projection, TensorNet};

fn arg(name: &str, default: usize) -> usize {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // As the `train` binary does: freed tensors' pages are reused, not returned.
    train::keep_freed_memory();
    let batch = arg("--batch", 50);
    let reps = arg("--reps", 2);
    let k = arg("--projections", 50);
    // The exact-dual step takes minutes at batch 50; opt in with --full.
    let full = std::env::args().any(|a| a == "--full");
    let (train_set, _) = mnist_split(0).unwrap();
    let model = Architecture::mnist_conv().init(Init::Standard, 0).unwrap();
    let net = TensorNet::from_model(&model, DType::F32, &Device::Cpu).unwrap();
    let mut opt = AdamW::new(
        net.vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let xs: Vec<f64> = (0..batch)
        .flat_map(|i| train_set.example(i).0.as_slice().to_vec())
        .collect();
    let ys: Vec<usize> = (0..batch).map(|i| train_set.labels[i]).collect();
    let x = net
        .batch(network::DMatrixView::from_slice(&xs, 784, xs.len() / 784))
        .unwrap();
    println!(
        "paper MNIST conv net, batch {batch}, f32, CPU ({} threads), {reps} reps after one warm-up",
        rayon_threads()
    );
    let mut time = |robust: bool, projections: Option<usize>| -> f64 {
        let mut step = || {
            let loss = if robust {
                let p = projections.map(|k| Projection { k, seed: 0 });
                robust_loss(&net, &x, &ys, 0.1, p).unwrap().0
            } else {
                standard_loss(&net, &x, &ys).unwrap()
            };
            opt.backward_step(&loss).unwrap();
        };
        step();
        let t = Instant::now();
        for _ in 0..reps {
            step();
        }
        t.elapsed().as_secs_f64() * 1e3 / reps as f64
    };
    let s = time(false, None);
    let p = time(true, Some(k));
    println!("| step | ms | / standard |\n|---|---|---|\n| standard | {s:.1} | 1 |");
    println!(
        "| robust, {k} random projections, eps 0.1 | {p:.1} | {:.0}x |",
        p / s
    );
    if full {
        let r = time(true, None);
        println!("| robust, exact dual, eps 0.1 | {r:.1} | {:.0}x |", r / s);
        println!("exact / projected: {:.1}x", r / p);
    }
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
