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
    /// numbered on from it) and, unless given here, every setting of that run (data,
    /// training count, eps schedule, batch, lr, seed, projections, monitor, patience,
    /// evaluation count); its mode cannot change. `--epochs` counts the epochs of this
    /// run; 0 only evaluates and writes the model complete.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// After every epoch, clean error and robust-error bound (the exact dual, f64, no
    /// input box, at the final eps) of N test examples spread evenly over the test split
    /// (for toy2d: the 12 training points), kept in the history (default 0 = off).
    #[arg(long)]
    monitor: Option<usize>,
    /// Stop when the monitored robust-error bound has not improved for K epochs (needs
    /// --monitor; counted over the resumed history too, so a resumed run whose patience
    /// is spent trains no epoch; `--monitor 0` clears an inherited patience). The last
    /// epoch's model is written, not the best one's.
    #[arg(long)]
    patience: Option<usize>,
    /// Weight initialisation.
    #[arg(long, value_enum, default_value = "standard")]
    init: InitArg,
    /// Training data [default: mnist].
    #[arg(long, value_enum)]
    data: Option<DataArg>,
    /// Standard or robust (Theorem 2) training [default: robust].
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Final eps of robust training (and the eps of the evaluation) [default: 0.1].
    #[arg(long)]
    eps: Option<f64>,
    /// eps at the start of the ramp (default: eps / 2, as the paper's 0.05 -> 0.1, or the
    /// resumed run's).
    #[arg(long)]
    eps_start: Option<f64>,
    /// Epochs of the linear ramp (default: half the epochs, or the resumed run's).
    #[arg(long)]
    ramp_epochs: Option<usize>,
    /// Epochs of this run.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Minibatch size [default: 50].
    #[arg(long)]
    batch: Option<usize>,
    /// Adam's learning rate [default: 1e-3].
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of the initialisation, shuffles and projections, and of toy2d's points
    /// (a resumed run keeps the first run's points) [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Robust mode: estimate the intermediate bounds with K Cauchy random projections per
    /// l1 norm (Wong et al. 2018) instead of the exact dual; training only, every reported
    /// bound stays exact. 0 = exact dual (the paper's conv net then takes about
    /// 0.4 s per digit on 2 cores: README, Training benchmark) [default: 0].
    #[arg(long)]
    projections: Option<usize>,
    /// Use only N training examples, spread evenly over the split (every class in
    /// proportion; the shipped file is sorted by class) (default: all).
    #[arg(long)]
    train_count: Option<usize>,
    /// Test examples in the final Table 1 evaluation (spread evenly over the test split)
    /// [default: 1000].
    #[arg(long)]
    eval_count: Option<usize>,
    /// Where the tensors live (cuda needs the `cuda` feature).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
    /// The model file to write (JSON; rewritten after every epoch as a checkpoint).
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
    train::keep_freed_memory();
    let a = Args::parse();
    let device = train::device(&arg_name(a.device))?;
    let init = match a.init {
        InitArg::Standard => Init::Standard,
        InitArg::Paper => Init::Paper,
    };
    // The run this one continues, if any: its model, history and settings.
    let (resumed, prior) = match &a.resume {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--resume {}: cannot read", path.display()))?;
            let (model, meta) = network::model_from_json(&text, &path.display().to_string())?;
            (Some(model), Some(Prior::from_metadata(meta, path)?))
        }
        None => (None, None),
    };
    // A setting: the flag, else the resumed run's, else the default.
    let pick = |key: &str| {
        prior
            .as_ref()
            .and_then(|p| p.meta.get(key))
            .filter(|v| !v.is_null())
    };
    let pick_usize = |v: Option<&Value>| v.and_then(Value::as_u64).map(|v| v as usize);
    let enum_from = |key: &str, names: &[&'static str]| -> Option<&'static str> {
        pick(key)
            .and_then(Value::as_str)
            .and_then(|v| names.iter().copied().find(|n| *n == v))
    };
    let mode = match (a.mode, enum_from("mode", &["standard", "robust"])) {
        (Some(m), Some(was)) if arg_name(m) != was => bail!(
            "--mode {}: the resumed run trained in mode {was}; a run cannot change mode (start a new one)",
            arg_name(m)
        ),
        (Some(m), _) => m,
        (None, Some("standard")) => ModeArg::Standard,
        _ => ModeArg::Robust,
    };
    let data_arg = a
        .data
        .unwrap_or(match enum_from("data_arg", &["mnist", "toy2d"]) {
            Some("toy2d") => DataArg::Toy2d,
            _ => DataArg::Mnist,
        });
    let eps = a.eps.or(pick("eps").and_then(Value::as_f64)).unwrap_or(0.1);
    let batch = a.batch.or(pick_usize(pick("batch"))).unwrap_or(50);
    let lr = a.lr.or(pick("lr").and_then(Value::as_f64)).unwrap_or(1e-3);
    let seed = a.seed.or(pick("seed").and_then(Value::as_u64)).unwrap_or(0);
    let projections = a
        .projections
        .or(pick_usize(pick("projections")))
        .unwrap_or(0);
    let train_count = a.train_count.or(pick_usize(pick("train_count")));
    let monitored = |key: &str| pick_usize(pick("monitor").and_then(|m| m.get(key)));
    let monitor_n = a.monitor.or(monitored("test_examples")).unwrap_or(0);
    // An inherited patience goes with an inherited monitor: `--monitor 0` clears both.
    let patience = a
        .patience
        .or(monitored("patience").filter(|_| monitor_n > 0));
    let eval_count = a
        .eval_count
        .or(pick_usize(pick("eval_count")))
        .unwrap_or(1000);
    if patience.is_some() && monitor_n == 0 {
        bail!("--patience needs --monitor N > 0 (the curve it watches)");
    }
    if patience == Some(0) {
        bail!("--patience must be at least 1 epoch");
    }
    if eval_count == 0 {
        bail!("--eval-count must be at least 1 (the Table 1 evaluation)");
    }
    if a.epochs == 0 && prior.is_none() {
        bail!("--epochs 0 only evaluates a resumed run (with --resume)");
    }
    let robust = mode == ModeArg::Robust;
    let (train_set, test_set) = match data_arg {
        DataArg::Mnist => data::mnist_split(data::DEFAULT_SPLIT_SEED)?,
        DataArg::Toy2d => {
            // The points are the first run's: a resumed run's --seed reseeds the
            // shuffles, not the data.
            let data_seed = pick("seed").and_then(Value::as_u64).unwrap_or(seed);
            let d = data::toy2d(12, 0.16, data_seed)?;
            (d.clone(), d)
        }
    };
    let train_set = match train_count {
        Some(0) => bail!("--train-count must be at least 1"),
        Some(n) if n < train_set.len() => train_set.subset(
            &experiments::spread(train_set.len(), n),
            &format!("{} ({n} spread evenly)", train_set.name),
        ),
        _ => train_set,
    };
    let model = match resumed {
        Some(m) => m,
        None => Architecture::parse(&a.arch)?.init(init, seed)?,
    };
    let arch_name = prior.as_ref().map_or(a.arch.clone(), |p| p.arch.clone());
    if model.input_len() != train_set.dim() {
        match &prior {
            Some(p) => bail!(
                "the resumed model {} (arch {arch_name}) takes {} inputs but --data {} has {}",
                p.file,
                model.input_len(),
                arg_name(data_arg),
                train_set.dim()
            ),
            None => bail!(
                "--arch {arch_name} takes {} inputs but --data {} has {}",
                model.input_len(),
                arg_name(data_arg),
                train_set.dim()
            ),
        }
    }
    let net = TensorNet::from_model(&model, DType::F32, &device)?;
    let done_epochs = prior.as_ref().map_or(0, |p| p.history.len());
    let cfg = TrainConfig {
        robust,
        eps,
        eps_start: a
            .eps_start
            .or(pick("eps_start").and_then(Value::as_f64))
            .unwrap_or(eps / 2.0),
        ramp_epochs: a
            .ramp_epochs
            .or(pick_usize(pick("ramp_epochs")))
            .unwrap_or(a.epochs / 2),
        epochs: a.epochs,
        batch_size: batch,
        lr,
        seed,
        projections: (projections > 0).then_some(projections),
        first_epoch: done_epochs,
    };
    let monitor = experiments::spread(test_set.len(), monitor_n);
    let mut history: Vec<Value> = prior.as_ref().map_or_else(Vec::new, |p| p.history.clone());
    let meta = |history: &[Value], train_seconds: f64, table1: Option<Value>| {
        json!({
            "created_by": "experiments/src/bin/train.rs",
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "complete": table1.is_some(),
            "resumed_from": prior.as_ref().map(|p| p.summary()),
            "arch": arch_name, "init": pick("init").cloned().unwrap_or_else(|| arg_name(a.init).into()),
            "data": train_set.name, "data_arg": arg_name(data_arg), "train_count": train_count, "mode": arg_name(mode),
            "eps": cfg.eps, "eps_start": cfg.eps_start, "ramp_epochs": cfg.ramp_epochs, "epochs": history.len(),
            "batch": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed, "device": arg_name(a.device),
            "projections": cfg.projections, "train_bound": if cfg.projections.is_some() { "random-projection estimate (Wong et al. 2018)" } else { "exact dual" },
            "monitor": (!monitor.is_empty()).then(|| json!({"test_examples": monitor.len(), "eps": cfg.eps, "bound": "wong-kolter dual, Algorithm 1, paper alpha, no input box", "patience": patience})),
            "eval_count": eval_count,
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
    // Written to a temporary file and renamed, so that an interrupted write never leaves a
    // truncated model where the last checkpoint was.
    let save = |m: &network::Model, md: &Value| -> Result<()> {
        let mut tmp = a.out.clone().into_os_string();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        network::save_model(m, Some(md), &tmp)?;
        std::fs::rename(&tmp, &a.out)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), a.out.display()))
    };
    let nb = train_set.len().div_ceil(batch.max(1));
    let pb = experiments::progress(
        (a.epochs * nb) as u64,
        if robust { "robust" } else { "standard" },
    );
    let t = Instant::now();
    let mut epoch_line = String::new();
    let mut failure = None;
    // Patience counts over the resumed history too.
    let mut watch = Patience::default();
    for h in &history {
        if let Some(r) = h.get("test_robust_error").and_then(Value::as_f64) {
            watch.see(r);
        }
    }
    let exhausted = patience.filter(|&k| watch.since >= k);
    if let Some(k) = exhausted {
        eprintln!(
            "stopping before training: the resumed history has no better robust-error bound in its last {} epochs (patience {k}, best {:.3})",
            watch.since, watch.best
        );
    }
    if a.epochs > 0 && exhausted.is_none() {
        train(&net, &train_set, &cfg, &mut |p| match p {
            Progress::Batch { loss, .. } => {
                pb.inc(1);
                pb.set_message(format!("loss {loss:.4} {epoch_line}"));
                ControlFlow::Continue(())
            }
            Progress::Epoch(s) => {
                // The f64 model of this epoch: monitored, then checkpointed.
                let step = || -> Result<Monitored> {
                    let model = net.to_model()?;
                    let test = if monitor.is_empty() {
                        None
                    } else {
                        let r = dual::robust_error(&model, &test_set, &monitor, cfg.eps, None)?;
                        Some((r.clean_error, r.robust_error))
                    };
                    let entry = json!({"epoch": s.epoch, "eps": s.eps, "loss": s.loss, "error": s.error,
                        "robust_error": s.robust_error, "seconds": s.seconds,
                        "test_error": test.map(|t| t.0), "test_robust_error": test.map(|t| t.1)});
                    Ok((entry, test, model))
                };
                let (test, model) = match step() {
                    Ok((entry, test, model)) => {
                        history.push(entry);
                        (test, model)
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
                if let Err(e) = save(&model, &meta(&history, t.elapsed().as_secs_f64(), None)) {
                    failure = Some(e.context(format!("checkpoint {}", a.out.display())));
                    return ControlFlow::Break(());
                }
                if let (Some((_, r)), Some(k)) = (test, patience) {
                    if watch.see(r) >= k {
                        let best = watch.best;
                        pb.suspend(|| {
                            eprintln!("stopping: no better robust-error bound in {k} epochs (best {best:.3})")
                        });
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            }
        })?;
    }
    pb.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    let train_seconds = t.elapsed().as_secs_f64();
    let idx = experiments::spread(test_set.len(), eval_count);
    let clip = (data_arg == DataArg::Mnist).then_some((0.0, 1.0));
    let row = evaluate(&net, &test_set, &idx, eps, clip, 100, seed)?;
    let trained = net.to_model()?;
    let meta = meta(
        &history,
        train_seconds,
        Some(
            json!({"examples": row.examples, "eps": row.eps, "clean_error": row.clean_error, "fgsm_error": row.fgsm_error, "pgd_error": row.pgd_error, "robust_error_bound": row.robust_error_bound,
                   "attacks": "FGSM; PGD 40 steps of 2.5 eps/40, random start; inside [0,1] for MNIST", "bound": "wong-kolter dual, Algorithm 1, paper alpha, no input box"}),
        ),
    );
    save(&trained, &meta)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "wrote": a.out.display().to_string(),
            "train_seconds_this_run": train_seconds,
            "train_seconds_total": meta["train_seconds"],
            "epochs_total": history.len(),
            "table1": meta["table1"],
        }))?
    );
    Ok(())
}

/// What a resumed run takes over from the model file it continues.
struct Prior {
    file: String,
    /// Its metadata (settings, history, earlier runs).
    meta: Value,
    arch: String,
    history: Vec<Value>,
    train_seconds: f64,
}

impl Prior {
    /// Reads the metadata `train` wrote; a model without a history cannot be resumed.
    fn from_metadata(meta: Value, path: &std::path::Path) -> Result<Prior> {
        let file = path.display().to_string();
        let Some(history) = meta.get("history").and_then(Value::as_array).cloned() else {
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
            arch: meta
                .get("arch")
                .and_then(Value::as_str)
                .unwrap_or("resumed")
                .to_string(),
            train_seconds: meta
                .get("train_seconds")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            history,
            meta,
            file,
        })
    }

    /// The earlier run as kept in `resumed_from`: its file and every setting (its own
    /// `resumed_from` included, so a chain of runs keeps its first command), without the
    /// history (carried on) and its Table 1 row.
    fn summary(&self) -> Value {
        let mut m = self.meta.clone();
        if let Some(o) = m.as_object_mut() {
            o.remove("history");
            o.remove("table1");
            o.insert("file".into(), self.file.clone().into());
        }
        m
    }
}

/// One epoch's history entry, its monitored (clean error, robust-error bound) and model.
type Monitored = (Value, Option<(f64, f64)>, network::Model);

/// Early stopping: the best monitored robust-error bound and the epochs since it.
struct Patience {
    best: f64,
    since: usize,
}

impl Default for Patience {
    fn default() -> Patience {
        Patience {
            best: f64::INFINITY,
            since: 0,
        }
    }
}

impl Patience {
    /// Records one epoch's bound; returns the epochs since the best (0: this one).
    fn see(&mut self, r: f64) -> usize {
        if r < self.best {
            (self.best, self.since) = (r, 0);
        } else {
            self.since += 1;
        }
        self.since
    }
}
