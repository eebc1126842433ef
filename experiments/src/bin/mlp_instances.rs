//! `mlp_instances` (issue 13): the MNIST MLP benchmark as VNN-COMP instances. For each
//! standard-trained MLP (default the committed `models/mnist_mlp_256x2.onnx`,
//! `_256x4.onnx`, `_256x6.onnx`: 784-256xK-10; `.json` model files work too) and each eps (default 0.03 and 0.05), the
//! l-infinity ball around N test digits (default 15, spread evenly over the shipped test
//! split, which is sorted by class) clipped to [0, 1], as a VNNLIB property whose unsafe
//! region is "some other class scores at least the true label's" (a disjunction of one
//! constraint `Y_t >= Y_label` per other class t); the networks as ONNX (an `.onnx`
//! model copied as it is; a `.json` one exported, f32 when every weight is an f32, else
//! f64: exactly the model either way); and
//! `instances.csv` (onnx, vnnlib, timeout: 120 s for 2 hidden layers, 300 s for more, the
//! issue's budgets) that `convex-outer vnncomp --dir DIR` runs. A digit that a network
//! misclassifies gives an instance that is `sat` at its centre.
//!
//! Writes `DIR/` (default `benchmarks/mnist_mlp`; generated, not committed) and prints
//! one line per network with its clean accuracy on the chosen digits.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use network::{data, load_model};

#[derive(Parser, Debug)]
#[command(about = "The MNIST MLP benchmark (issue 13) as VNNLIB + ONNX + instances.csv")]
struct Args {
    /// Model files, .onnx or .json (784 inputs, 10 outputs) [default: the committed
    /// models/mnist_mlp_256x{2,4,6}.onnx].
    #[arg(long, num_args = 1..)]
    models: Vec<PathBuf>,
    /// Radii of the l-infinity balls (pixels in [0, 1]).
    #[arg(long, num_args = 1.., default_values_t = [0.03, 0.05])]
    eps: Vec<f64>,
    /// Test digits per network and eps (spread evenly over the shipped test split).
    #[arg(long, default_value_t = 15)]
    digits: usize,
    /// Seed of the shipped subset's stratified train/test split.
    #[arg(long, default_value_t = data::DEFAULT_SPLIT_SEED)]
    seed: u64,
    /// Timeout (s) of instances of networks with 2 hidden layers, and of deeper ones.
    #[arg(long, num_args = 2, default_values_t = [120.0, 300.0])]
    timeouts: Vec<f64>,
    /// Folder that receives the instances.
    #[arg(long, default_value = "benchmarks/mnist_mlp")]
    out_dir: PathBuf,
}

/// The VNNLIB text: the clipped ball and the unsafe region of the true label.
fn property(x: &[f64], eps: f64, label: usize, n_out: usize, what: &str) -> String {
    let mut s = format!(
        "; {what}: l-infinity ball of radius {eps} clipped to [0, 1]; unsafe: some class \
         other than the label {label} scores at least as high\n"
    );
    for i in 0..x.len() {
        writeln!(s, "(declare-const X_{i} Real)").unwrap();
    }
    for j in 0..n_out {
        writeln!(s, "(declare-const Y_{j} Real)").unwrap();
    }
    for (i, &v) in x.iter().enumerate() {
        // Shortest round-trip decimals of the f64 ends (the reader takes them exactly).
        let (lo, hi) = ((v - eps).max(0.0), (v + eps).min(1.0));
        writeln!(s, "(assert (>= X_{i} {lo:?}))\n(assert (<= X_{i} {hi:?}))").unwrap();
    }
    s.push_str("(assert (or\n");
    for t in (0..n_out).filter(|&t| t != label) {
        writeln!(s, "    (and (>= Y_{t} Y_{label}))").unwrap();
    }
    s.push_str("))\n");
    s
}

fn main() -> Result<()> {
    let a = Args::parse();
    let models = if a.models.is_empty() {
        ["256x2", "256x4", "256x6"]
            .iter()
            .map(|k| experiments::committed_model(&format!("mnist_mlp_{k}.onnx")))
            .collect()
    } else {
        a.models.clone()
    };
    if a.digits == 0 || a.eps.iter().any(|e| !(e.is_finite() && *e > 0.0)) {
        bail!("--digits must be positive and every --eps a positive number");
    }
    if a.timeouts.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
        bail!("--timeouts must be two positive numbers of seconds");
    }
    // Instances are named after the model's file stem and the eps: two models of one
    // stem (or one eps twice) would overwrite each other's files.
    let stems: Vec<String> = models
        .iter()
        .map(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
                .with_context(|| format!("{}: no file name", p.display()))
        })
        .collect::<Result<_>>()?;
    for (i, s) in stems.iter().enumerate() {
        if stems[..i].contains(s) {
            bail!("two models named {s:?} (--models): their instances would overwrite each other; rename one");
        }
    }
    for (i, e) in a.eps.iter().enumerate() {
        if a.eps[..i].contains(e) {
            bail!("--eps {e} is given twice");
        }
    }
    let (_, test) = data::mnist_split(a.seed)?;
    if a.digits > test.len() {
        bail!(
            "--digits {} is more than the {} test digits",
            a.digits,
            test.len()
        );
    }
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating {}", a.out_dir.display()))?;
    let mut csv = String::new();
    for (path, stem) in models.iter().zip(&stems) {
        let is_onnx = path.extension().is_some_and(|e| e == "onnx");
        let model = if is_onnx {
            onnx_io::load_onnx(path)?.model
        } else {
            load_model(path).with_context(|| format!("loading {}", path.display()))?
        };
        if model.input_len() != 784 || model.output_len() != 10 {
            bail!(
                "{}: the benchmark needs 784 inputs and 10 outputs, the model has {} and {}",
                path.display(),
                model.input_len(),
                model.output_len()
            );
        }
        let f32_exact = model.affine().iter().all(|af| {
            af.op
                .weight()
                .iter()
                .chain(&af.bias)
                .all(|&w| (w as f32) as f64 == w)
        });
        let ty = if f32_exact {
            onnx_io::ElemType::F32
        } else {
            onnx_io::ElemType::F64
        };
        let onnx = format!("{stem}.onnx");
        if is_onnx {
            std::fs::copy(path, a.out_dir.join(&onnx))
                .with_context(|| format!("copying {}", path.display()))?;
        } else {
            onnx_io::save_onnx(&model, a.out_dir.join(&onnx), ty)?;
        }
        let timeout = if model.affine().len() <= 3 {
            a.timeouts[0]
        } else {
            a.timeouts[1]
        };
        let mut correct = 0;
        for k in 0..a.digits {
            let idx = k * test.len() / a.digits;
            let (x, label) = test.example(idx);
            let x = x.as_slice();
            correct += usize::from(network::argmax(model.forward(x)?.as_slice()) == label);
            for &eps in &a.eps {
                let name = format!("{stem}_test{idx}_eps{eps}.vnnlib");
                let what = format!("{stem}, test digit {idx} of split seed {}", a.seed);
                std::fs::write(a.out_dir.join(&name), property(x, eps, label, 10, &what))?;
                writeln!(csv, "{onnx},{name},{timeout}").unwrap();
            }
        }
        println!(
            "{stem}: {} ({}), {correct} of {} digits classified correctly, timeout {timeout} s",
            model.describe(),
            if is_onnx {
                "ONNX as given"
            } else if f32_exact {
                "exported as f32 ONNX"
            } else {
                "exported as f64 ONNX"
            },
            a.digits
        );
    }
    std::fs::write(a.out_dir.join("instances.csv"), csv)?;
    println!(
        "{} instances in {}; run them with `convex-outer vnncomp --dir {} --out RESULTS.csv`",
        models.len() * a.digits * a.eps.len(),
        a.out_dir.display(),
        a.out_dir.display()
    );
    Ok(())
}
