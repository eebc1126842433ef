//! `train`: standard or robust training of a model on the shipped MNIST subset or the
//! 2-D toy problem; writes the model in the project's model format with every setting,
//! the learning curve and a Table 1 evaluation in its metadata.
//!
//! cargo run --release -p experiments --features training --bin train -- \
//!   --arch mnist-conv --data mnist --mode robust --eps 0.1 --epochs 20 --seed 0 --out models/robust.json
//!
//! `--resume M.json` continues the run that wrote `M.json` (its weights, history and eps
//! schedule; Adam's moments start afresh). `--monitor N` certifies N test digits
//! (spread over the classes) after every epoch (the exact dual bound of Table 1, f64), recorded in the
//! history; `--patience K` stops when that robust error has not improved for K epochs.
//! The model is written to `--out` after every epoch (a checkpoint, `"complete": false`)
//! and once more at the end with the Table 1 evaluation.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::Parser;
use network::{data, Architecture, Init};
use serde_json::{json, Value};
use train::{evaluate, train, Progress, TensorNet, TrainConfig};

#[derive(Parser, Debug)]
#[command(about = "Standard or robust (Wong & Kolter, Theorem 2) training")]
struct Args {
    /// mnist-conv or mlp:W0-W1-...-WL (ignored with --resume: the model's own layers).
    #[arg(long, default_value = "mnist-conv")]
    arch: String,
    /// Continue the run that wrote this model file: its weights, its history (epochs are
    /// numbered on from it) and, unless given here, its eps_start and ramp_epochs.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// After every epoch, clean error and robust-error bound (the exact dual, f64, no
    /// input box, at the final eps) of N test digits spread evenly over the test split,
    /// kept in the history (0 = off).
    #[arg(long, default_value_t = 0)]
    monitor: usize,
    /// Stop when the monitored robust-error bound has not improved for K epochs (needs
    /// --monitor). The last epoch's model is written, not the best one's.
    #[arg(long)]
    patience: Option<usize>,
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
    /// eps at the start of the ramp (default: eps / 2, as the paper's 0.05 -> 0.1, or the
    /// resumed run's).
    #[arg(long)]
    eps_start: Option<f64>,
    /// Epochs of the linear ramp (default: half the epochs, or the resumed run's).
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
    /// Use only N training examples, spread evenly over the split (every class in
    /// proportion; the shipped file is sorted by class) (default: all).
    #[arg(long)]
    train_count: Option<usize>,
    /// Test examples in the final Table 1 evaluation (spread evenly over the test split).
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
    if a.patience.is_some() && a.monitor == 0 {
        bail!("--patience needs --monitor N > 0 (the curve it watches)");
    }
    if a.patience == Some(0) {
        bail!("--patience must be at least 1 epoch");
    }
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
        Some(0) => bail!("--train-count must be at least 1"),
        Some(n) if n < train_set.len() => train_set.subset(
            &experiments::spread(train_set.len(), n),
            &format!("{} ({n} spread evenly)", train_set.name),
        ),
        _ => train_set,
    };
    let (model, prior) = match &a.resume {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--resume {}: cannot read", path.display()))?;
            let (model, meta) = network::model_from_json(&text, &path.display().to_string())?;
            (model, Some(Prior::from_metadata(&meta, path)?))
        }
        None => (Architecture::parse(&a.arch)?.init(init, a.seed)?, None),
    };
    let arch_name = prior.as_ref().map_or(a.arch.clone(), |p| p.arch.clone());
    if model.input_len() != train_set.dim() {
        bail!(
            "--arch {} takes {} inputs but --data {} has {}",
            arch_name,
            model.input_len(),
            arg_name(a.data),
            train_set.dim()
        );
    }
    let net = TensorNet::from_model(&model, DType::F32, &device)?;
    let cfg = TrainConfig {
        robust,
        eps: a.eps,
        eps_start: a
            .eps_start
            .or(prior.as_ref().and_then(|p| p.eps_start))
            .unwrap_or(a.eps / 2.0),
        ramp_epochs: a
            .ramp_epochs
            .or(prior.as_ref().and_then(|p| p.ramp_epochs))
            .unwrap_or(a.epochs / 2),
        epochs: a.epochs,
        batch_size: a.batch,
        lr: a.lr,
        seed: a.seed,
        projections: (a.projections > 0).then_some(a.projections),
        first_epoch: prior.as_ref().map_or(0, |p| p.history.len()),
    };
    let monitor = experiments::spread(test_set.len(), a.monitor);
    let mut history: Vec<Value> = prior.as_ref().map_or_else(Vec::new, |p| p.history.clone());
    let meta = |history: &[Value], train_seconds: f64, table1: Option<Value>| {
        json!({
            "created_by": "experiments/src/bin/train.rs",
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "complete": table1.is_some(),
            "resumed_from": prior.as_ref().map(|p| json!({"file": p.file, "command": p.command, "epochs": p.history.len(), "train_seconds": p.train_seconds})),
            "arch": arch_name, "init": if prior.is_some() { "resumed".to_string() } else { arg_name(a.init) }, "data": train_set.name, "mode": arg_name(a.mode),
            "eps": cfg.eps, "eps_start": cfg.eps_start, "ramp_epochs": cfg.ramp_epochs, "epochs": history.len(),
            "batch": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed, "device": arg_name(a.device),
            "projections": cfg.projections, "train_bound": if cfg.projections.is_some() { "random-projection estimate (Wong et al. 2018)" } else { "exact dual" },
            "monitor": (!monitor.is_empty()).then(|| json!({"test_digits": monitor.len(), "eps": cfg.eps, "bound": "wong-kolter dual, Algorithm 1, paper alpha, no input box", "patience": a.patience})),
            "train_seconds": train_seconds + prior.as_ref().map_or(0.0, |p| p.train_seconds),
            "history": history,
            "table1": table1,
        })
    };
    if let Some(dir) = a.out.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let nb = train_set.len().div_ceil(a.batch.max(1));
    let pb = experiments::progress(
        (a.epochs * nb) as u64,
        if robust { "robust" } else { "standard" },
    );
    let t = Instant::now();
    let mut epoch_line = String::new();
    let mut failure = None;
    let (mut best, mut since_best) = (f64::INFINITY, 0usize);
    train(&net, &train_set, &cfg, &mut |p| match p {
        Progress::Batch { loss, .. } => {
            pb.inc(1);
            pb.set_message(format!("loss {loss:.4} {epoch_line}"));
            ControlFlow::Continue(())
        }
        Progress::Epoch(s) => {
            let step = || -> Result<(Value, Option<(f64, f64)>)> {
                let test = if monitor.is_empty() {
                    None
                } else {
                    let r =
                        dual::robust_error(&net.to_model()?, &test_set, &monitor, cfg.eps, None)?;
                    Some((r.clean_error, r.robust_error))
                };
                let entry = json!({"epoch": s.epoch, "eps": s.eps, "loss": s.loss, "error": s.error,
                    "robust_error": s.robust_error, "seconds": s.seconds,
                    "test_error": test.map(|t| t.0), "test_robust_error": test.map(|t| t.1)});
                Ok((entry, test))
            };
            let test = match step() {
                Ok((entry, test)) => {
                    history.push(entry);
                    test
                }
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            };
            epoch_line = format!(
                "| epoch {} eps {:.3} loss {:.4} err {:.3}{}{}",
                s.epoch,
                s.eps,
                s.loss,
                s.error,
                s.robust_error
                    .map(|r| format!(" robust err {r:.3}"))
                    .unwrap_or_default(),
                test.map(|(c, r)| format!(" | test err {c:.3} robust bound {r:.3}"))
                    .unwrap_or_default()
            );
            pb.suspend(|| eprintln!("{epoch_line}"));
            let checkpoint = net.to_model().map_err(anyhow::Error::from).and_then(|m| {
                let md = meta(&history, t.elapsed().as_secs_f64(), None);
                Ok(network::save_model(&m, Some(&md), &a.out)?)
            });
            if let Err(e) = checkpoint {
                failure = Some(e.context(format!("checkpoint {}", a.out.display())));
                return ControlFlow::Break(());
            }
            if let (Some((_, r)), Some(k)) = (test, a.patience) {
                if r < best {
                    (best, since_best) = (r, 0);
                } else {
                    since_best += 1;
                    if since_best >= k {
                        pb.suspend(|| {
                            eprintln!("stopping: no better robust-error bound in {k} epochs (best {best:.3})")
                        });
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    })?;
    pb.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    let train_seconds = t.elapsed().as_secs_f64();
    let idx = experiments::spread(test_set.len(), a.eval_count);
    let clip = (a.data == DataArg::Mnist).then_some((0.0, 1.0));
    let row = evaluate(&net, &test_set, &idx, a.eps, clip, 100, a.seed)?;
    let trained = net.to_model()?;
    let meta = meta(
        &history,
        train_seconds,
        Some(
            json!({"examples": row.examples, "eps": row.eps, "clean_error": row.clean_error, "fgsm_error": row.fgsm_error, "pgd_error": row.pgd_error, "robust_error_bound": row.robust_error_bound,
                   "attacks": "FGSM; PGD 40 steps of 2.5 eps/40, random start; inside [0,1] for MNIST", "bound": "wong-kolter dual, Algorithm 1, paper alpha, no input box"}),
        ),
    );
    network::save_model(&trained, Some(&meta), &a.out)?;
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"wrote": a.out.display().to_string(), "train_seconds": train_seconds, "table1": meta["table1"]})
        )?
    );
    Ok(())
}

/// What a resumed run takes over from the model file it continues.
struct Prior {
    file: String,
    command: Value,
    arch: String,
    history: Vec<Value>,
    eps_start: Option<f64>,
    ramp_epochs: Option<usize>,
    train_seconds: f64,
}

impl Prior {
    /// Reads the metadata `train` wrote; a model without a history cannot be resumed.
    fn from_metadata(meta: &Value, path: &std::path::Path) -> Result<Prior> {
        let file = path.display().to_string();
        let Some(history) = meta.get("history").and_then(Value::as_array) else {
            bail!("--resume {file}: no metadata.history (only models written by train can be resumed)");
        };
        if history.is_empty() {
            bail!("--resume {file}: metadata.history is empty");
        }
        for (k, h) in history.iter().enumerate() {
            if h.get("epoch").and_then(Value::as_u64) != Some(k as u64) {
                bail!("--resume {file}: history entry {k} is not epoch {k}");
            }
        }
        Ok(Prior {
            command: meta.get("command").cloned().unwrap_or(Value::Null),
            arch: meta
                .get("arch")
                .and_then(Value::as_str)
                .unwrap_or("resumed")
                .to_string(),
            history: history.clone(),
            eps_start: meta.get("eps_start").and_then(Value::as_f64),
            ramp_epochs: meta
                .get("ramp_epochs")
                .and_then(Value::as_u64)
                .map(|r| r as usize),
            train_seconds: meta
                .get("train_seconds")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            file,
        })
    }
}
