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
    /// standard (PyTorch default) or paper (N(0, 1/sqrt(fan_in)), biases N(0,1))
    #[arg(long, default_value = "standard")]
    init: String,
    /// mnist (the shipped subset's train split) or toy2d (appendix B.1's 12 points)
    #[arg(long, default_value = "mnist")]
    data: String,
    /// standard or robust
    #[arg(long, default_value = "robust")]
    mode: String,
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
    /// cpu or cuda
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let device = train::device(&a.device)?;
    let arch = Architecture::parse(&a.arch)?;
    let init = match a.init.as_str() {
        "standard" => Init::Standard,
        "paper" => Init::Paper,
        o => bail!("--init must be standard or paper, got {o:?}"),
    };
    let robust = match a.mode.as_str() {
        "robust" => true,
        "standard" => false,
        o => bail!("--mode must be standard or robust, got {o:?}"),
    };
    let (train_set, test_set) = match a.data.as_str() {
        "mnist" => data::mnist_split(data::DEFAULT_SPLIT_SEED)?,
        "toy2d" => {
            let d = data::toy2d(12, 0.16, a.seed)?;
            (d.clone(), d)
        }
        o => bail!("--data must be mnist or toy2d, got {o:?}"),
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
            a.data,
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
    let clip = (a.data == "mnist").then_some((0.0, 1.0));
    let row = evaluate(&net, &test_set, &idx, a.eps, clip, 100, a.seed)?;
    let trained = net.to_model()?;
    let meta = json!({
        "created_by": "experiments/src/bin/train.rs",
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "arch": a.arch, "init": a.init, "data": train_set.name, "mode": a.mode,
        "eps": cfg.eps, "eps_start": cfg.eps_start, "ramp_epochs": cfg.ramp_epochs, "epochs": cfg.epochs,
        "batch": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed, "device": a.device,
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
