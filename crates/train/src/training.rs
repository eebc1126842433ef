//! Standard and robust training with Adam, minibatches and an eps schedule.
//!
//! The robust schedule ramps eps linearly, batch by batch, from `eps_start` to `eps`
//! over the first `ramp_epochs` epochs (the paper: 0.05 to 0.1 over the first half), then
//! holds it. Examples are shuffled each epoch with ChaCha8 seeded by `seed + epoch`.
//!
//! A run can continue an earlier one (`first_epoch`): epochs are numbered, shuffled and
//! scheduled as if the runs were one, except that Adam's moment estimates start afresh.
//! The observer sees every batch and epoch and may stop the run after an epoch
//! (early stopping on a held-out curve is the caller's choice).

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::DType;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use network::{argmax, Dataset};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TrainError};
use crate::loss::{certified, robust_loss, standard_loss};
use crate::net::TensorNet;
use crate::projection::Projection;

/// A training run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Robust loss (Theorem 2) when true, cross-entropy otherwise.
    pub robust: bool,
    pub eps: f64,
    pub eps_start: f64,
    pub ramp_epochs: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    /// Robust runs only: estimate the intermediate bounds with this many Cauchy random
    /// projections per l1 norm (Wong et al. 2018) instead of the exact dual. `None` trains
    /// on the exact bound. Evaluation always uses the exact dual.
    pub projections: Option<usize>,
    /// Number of the first epoch (0 for a fresh run; the epochs already done when
    /// continuing one): epoch `first_epoch + e` gets the eps and shuffle of that epoch.
    pub first_epoch: usize,
}

impl TrainConfig {
    /// eps for batch `b` of `nb` in epoch `e` (0-based, counted from the run's start,
    /// including `first_epoch`).
    pub fn eps_at(&self, e: usize, b: usize, nb: usize) -> f64 {
        if self.ramp_epochs == 0 {
            return self.eps;
        }
        let progress = (e as f64 + b as f64 / nb.max(1) as f64) / self.ramp_epochs as f64;
        if progress >= 1.0 {
            self.eps
        } else {
            self.eps_start + (self.eps - self.eps_start) * progress
        }
    }
}

/// What one epoch did (means over its batches).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochStats {
    pub epoch: usize,
    /// eps of the last batch.
    pub eps: f64,
    pub loss: f64,
    pub error: f64,
    /// Fraction of training examples not certified at the batch's eps (robust runs only;
    /// with projections, by the estimated bound, so only indicative).
    pub robust_error: Option<f64>,
    pub seconds: f64,
}

/// Progress reports for observers (progress bars, logs).
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f64,
    },
    Epoch(EpochStats),
}

/// Trains `net` in place on `data` for `cfg.epochs` epochs, numbered from
/// `cfg.first_epoch`; returns one [`EpochStats`] per epoch run. The observer's
/// `ControlFlow::Break` after an epoch ends the run there (after a batch it is ignored).
pub fn train(
    net: &TensorNet,
    data: &Dataset,
    cfg: &TrainConfig,
    observe: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Vec<EpochStats>> {
    if cfg.projections == Some(0) {
        return Err(TrainError::Config(
            "random projections need k >= 1".to_string(),
        ));
    }
    if cfg.batch_size == 0 || cfg.epochs == 0 || cfg.lr.is_nan() || cfg.lr <= 0.0 {
        return Err(TrainError::Config(format!(
            "batch size, epochs and learning rate must be positive (got {}, {}, {})",
            cfg.batch_size, cfg.epochs, cfg.lr
        )));
    }
    if !(cfg.eps >= 0.0 && cfg.eps_start >= 0.0 && cfg.eps.is_finite() && cfg.eps_start.is_finite())
    {
        return Err(TrainError::Config(format!(
            "eps must be finite and >= 0 (got {} and {})",
            cfg.eps, cfg.eps_start
        )));
    }
    let mut opt = AdamW::new(
        net.vars(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let d = data.dim();
    let nb = data.len().div_ceil(cfg.batch_size);
    let mut history = Vec::with_capacity(cfg.epochs);
    for e in cfg.first_epoch..cfg.first_epoch + cfg.epochs {
        let t = Instant::now();
        let mut idx: Vec<usize> = (0..data.len()).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed.wrapping_add(e as u64),
        ));
        let (mut loss_sum, mut err, mut rob, mut eps) = (0.0, 0usize, 0usize, cfg.eps);
        for (b, chunk) in idx.chunks(cfg.batch_size).enumerate() {
            let mut xs = Vec::with_capacity(chunk.len() * d);
            let mut ys = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let (x, y) = data.example(i);
                xs.extend_from_slice(x.as_slice());
                ys.push(y);
            }
            let x = net.batch(network::DMatrixView::from_slice(&xs, d, xs.len() / d))?;
            let logits = net.forward(&x)?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
            err += logits
                .iter()
                .zip(&ys)
                .filter(|(l, &y)| argmax(l) != y)
                .count();
            let loss = if cfg.robust {
                eps = cfg.eps_at(e, b, nb);
                let projection = cfg.projections.map(|k| Projection {
                    k,
                    seed: cfg
                        .seed
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add((e * nb + b) as u64),
                });
                let (loss, j) = robust_loss(net, &x, &ys, eps, projection)?;
                rob += certified(&j, &ys)?.iter().filter(|c| !**c).count();
                loss
            } else {
                standard_loss(net, &x, &ys)?
            };
            opt.backward_step(&loss)?;
            let lv = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            loss_sum += lv * chunk.len() as f64;
            // A batch cannot stop the run: the epoch's statistics need all its batches.
            let _ = observe(&Progress::Batch {
                epoch: e,
                batch: b,
                batches: nb,
                loss: lv,
            });
        }
        let n = data.len() as f64;
        let stats = EpochStats {
            epoch: e,
            eps,
            loss: loss_sum / n,
            error: err as f64 / n,
            robust_error: cfg.robust.then_some(rob as f64 / n),
            seconds: t.elapsed().as_secs_f64(),
        };
        let flow = observe(&Progress::Epoch(stats.clone()));
        history.push(stats);
        if flow.is_break() {
            break;
        }
    }
    Ok(history)
}
