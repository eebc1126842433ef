//! `train`: standard or robust training of a model on the shipped MNIST subset or the
//! 2-D toy problem; writes the model in the project's model format with every setting,
//! the learning curve and a Table 1 evaluation in its metadata.
//!
//! cargo run --release -p experiments --features training --bin train -- \
//!   --arch mnist-conv --data mnist --mode robust --eps 0.1 --epochs 20 --seed 0 --out models/robust.json

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::Parser;
use network::{data, Architecture, Init};
use serde_json::json;
use train::{evaluate, train, Progress, TensorNet, TrainConfig};

#[derive(Parser, Debug)]
#[command(about = "Standard or robust (Wong & Kolter, Theorem 2) training")]
struct Args {
    /// mnist-conv or mlp:W0-W1-...-WL
    #[arg(long, default_value = "mnist-conv")]
    arch: String,
    /// Weight initialisation.
    #[arg(long, value_enum, default_value = "standard")]
    init: InitArg,
    /// Training data.
    #[arg(long, value_enum, default_value = "mnist")]
    data: DataArg,
    /// Standard or robust (Theorem 2) training.
    #[arg(long, value_enum, default_value = "robust")]
    mode: ModeArg,
    /// Final eps of robust training (and the eps of the evaluation).
    #[arg(long, default_value_t = 0.1)]
    eps: f64,
    /// eps at the start of the ramp (default: eps / 2, as the paper's 0.05 -> 0.1).
    #[arg(long)]
    eps_start: Option<f64>,
    /// Epochs of the linear ramp (default: half the epochs).
    #[arg(long)]
    ramp_epochs: Option<usize>,
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    #[arg(long, default_value_t = 50)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Robust mode: estimate the intermediate bounds with K Cauchy random projections per
    /// l1 norm (Wong et al. 2018) instead of the exact dual; training only, every reported
    /// bound stays exact. 0 = exact dual (the paper's conv net then takes hours per epoch).
    #[arg(long, default_value_t = 0)]
    projections: usize,
    /// Use only the first N training examples (default: all).
    #[arg(long)]
    train_count: Option<usize>,
    /// Test examples in the final Table 1 evaluation.
    #[arg(long, default_value_t = 1000)]
    eval_count: usize,
    /// Where the tensors live (cuda needs the `cuda` feature).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
    #[arg(long)]
    out: PathBuf,
}

/// Weight initialisation (`network::Init`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum InitArg {
    /// PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Standard,
    /// Appendix B.1: weights N(0, 1/fan_in), biases N(0, 1).
    Paper,
}

/// Training data.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DataArg {
    /// The shipped MNIST subset's train split (its test split for the evaluation).
    Mnist,
    /// Appendix B.1's 12 random 2-D points.
    Toy2d,
}

/// Standard or robust training.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ModeArg {
    /// Cross-entropy on the clean examples.
    Standard,
    /// The robust loss of Theorem 2 (the dual bound's cross-entropy).
    Robust,
}

/// Where the tensors live.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DeviceArg {
    Cpu,
    /// A CUDA GPU (feature `cuda`).
    Cuda,
}

/// A flag value's name as the command line spells it.
fn arg_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

fn main() -> Result<()> {
    let a = Args::parse();
    let device = train::device(&arg_name(a.device))?;
    let arch = Architecture::parse(&a.arch)?;
    let init = match a.init {
        InitArg::Standard => Init::Standard,
        InitArg::Paper => Init::Paper,
    };
    let robust = a.mode == ModeArg::Robust;
    let (train_set, test_set) = match a.data {
        DataArg::Mnist => data::mnist_split(data::DEFAULT_SPLIT_SEED)?,
        DataArg::Toy2d => {
            let d = data::toy2d(12, 0.16, a.seed)?;
            (d.clone(), d)
        }
    };
    let train_set = match a.train_count {
        Some(n) if n < train_set.len() => train_set.subset(
            &(0..n).collect::<Vec<_>>(),
            &format!("{} (first {n})", train_set.name),
        ),
        _ => train_set,
    };
    let model = arch.init(init, a.seed)?;
    if model.input_len() != train_set.dim() {
        bail!(
            "--arch {} takes {} inputs but --data {} has {}",
            a.arch,
            model.input_len(),
            arg_name(a.data),
            train_set.dim()
        );
    }
    let net = TensorNet::from_model(&model, DType::F32, &device)?;
    let cfg = TrainConfig {
        robust,
        eps: a.eps,
        eps_start: a.eps_start.unwrap_or(a.eps / 2.0),
        ramp_epochs: a.ramp_epochs.unwrap_or(a.epochs / 2),
        epochs: a.epochs,
        batch_size: a.batch,
        lr: a.lr,
        seed: a.seed,
        projections: (a.projections > 0).then_some(a.projections),
    };
    let nb = train_set.len().div_ceil(a.batch.max(1));
    let pb = experiments::progress(
        (a.epochs * nb) as u64,
        if robust { "robust" } else { "standard" },
    );
    let t = Instant::now();
    let mut epoch_line = String::new();
    let history = train(&net, &train_set, &cfg, &mut |p| match p {
        Progress::Batch { loss, .. } => {
            pb.inc(1);
            pb.set_message(format!("loss {loss:.4} {epoch_line}"));
        }
        Progress::Epoch(s) => {
            epoch_line = format!(
                "| epoch {} eps {:.3} loss {:.4} err {:.3}{}",
                s.epoch,
                s.eps,
                s.loss,
                s.error,
                s.robust_error
                    .map(|r| format!(" robust err {r:.3}"))
                    .unwrap_or_default()
            );
            pb.suspend(|| eprintln!("{epoch_line}"));
        }
    })?;
    pb.finish_and_clear();
    let train_seconds = t.elapsed().as_secs_f64();
    let idx: Vec<usize> = (0..a.eval_count.min(test_set.len())).collect();
    let clip = (a.data == DataArg::Mnist).then_some((0.0, 1.0));
    let row = evaluate(&net, &test_set, &idx, a.eps, clip, 100, a.seed)?;
    let trained = net.to_model()?;
    let meta = json!({
        "created_by": "experiments/src/bin/train.rs",
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "arch": a.arch, "init": arg_name(a.init), "data": train_set.name, "mode": arg_name(a.mode),
        "eps": cfg.eps, "eps_start": cfg.eps_start, "ramp_epochs": cfg.ramp_epochs, "epochs": cfg.epochs,
        "batch": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed, "device": arg_name(a.device),
        "projections": cfg.projections, "train_bound": if cfg.projections.is_some() { "random-projection estimate (Wong et al. 2018)" } else { "exact dual" },
        "train_seconds": train_seconds,
        "history": history.iter().map(|s| json!({"epoch": s.epoch, "eps": s.eps, "loss": s.loss, "error": s.error, "robust_error": s.robust_error, "seconds": s.seconds})).collect::<Vec<_>>(),
        "table1": {"examples": row.examples, "eps": row.eps, "clean_error": row.clean_error, "fgsm_error": row.fgsm_error, "pgd_error": row.pgd_error, "robust_error_bound": row.robust_error_bound,
                   "attacks": "FGSM; PGD 40 steps of 2.5 eps/40, random start; inside [0,1] for MNIST", "bound": "wong-kolter dual, Algorithm 1, paper alpha, no input box"},
    });
    if let Some(dir) = a.out.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    network::save_model(&trained, Some(&meta), &a.out)?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"wrote": a.out.display().to_string(), "train_seconds": train_seconds, "table1": meta["table1"]})
        )?
    );
    Ok(())
}
