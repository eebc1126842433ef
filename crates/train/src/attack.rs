//! l-inf attacks: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2017).
//!
//! PGD starts at a uniform random point of the ball, takes `steps` signed-gradient steps
//! of size `step_size` on the cross-entropy and projects back onto the ball (and the
//! input box when given) after each. Defaults: 40 steps of `2.5 eps / 40` (Madry's rule
//! of thumb: the steps can cross the ball 2.5 times), one random start.

use candle_core::{Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TrainError};
use crate::loss::label_tensor;
use crate::net::TensorNet;

/// PGD settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PgdConfig {
    pub eps: f64,
    pub steps: usize,
    pub step_size: f64,
    /// Box the adversarial point must stay in (pixels: (0, 1)); `None` for none.
    pub clip: Option<(f64, f64)>,
    pub seed: u64,
}

impl PgdConfig {
    /// 40 steps of 2.5 eps / 40 with a random start.
    pub fn new(eps: f64, clip: Option<(f64, f64)>, seed: u64) -> PgdConfig {
        PgdConfig {
            eps,
            steps: 40,
            step_size: 2.5 * eps / 40.0,
            clip,
            seed,
        }
    }
}

fn input_gradient(net: &TensorNet, x: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let xv = Var::from_tensor(x)?;
    let logits = net.forward(xv.as_tensor())?;
    let loss = candle_nn::loss::cross_entropy(&logits, &label_tensor(labels, &net.device)?)?;
    let grads = loss.backward()?;
    grads
        .get(xv.as_tensor())
        .cloned()
        .ok_or_else(|| TrainError::Config("no gradient reached the input".into()))
}

fn project(x_adv: &Tensor, x: &Tensor, eps: f64, clip: Option<(f64, f64)>) -> Result<Tensor> {
    let lo = (x - eps)?;
    let hi = (x + eps)?;
    let mut p = x_adv.maximum(&lo)?.minimum(&hi)?;
    if let Some((a, b)) = clip {
        p = p.clamp(a, b)?;
    }
    Ok(p)
}

/// One signed-gradient step of size eps from `x`.
pub fn fgsm(
    net: &TensorNet,
    x: &Tensor,
    labels: &[usize],
    eps: f64,
    clip: Option<(f64, f64)>,
) -> Result<Tensor> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(TrainError::Config(format!(
            "eps must be finite and >= 0, got {eps}"
        )));
    }
    let g = input_gradient(net, x, labels)?;
    project(&(x + (g.sign()? * eps)?)?, x, eps, clip)
}

/// Projected gradient ascent on the cross-entropy within the ball (see the module docs).
pub fn pgd(net: &TensorNet, x: &Tensor, labels: &[usize], cfg: &PgdConfig) -> Result<Tensor> {
    if !(cfg.eps.is_finite() && cfg.eps >= 0.0) {
        return Err(TrainError::Config(format!(
            "eps must be finite and >= 0, got {}",
            cfg.eps
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n = x.elem_count();
    let noise: Vec<f64> = (0..n)
        .map(|_| cfg.eps * (2.0 * rng.random::<f64>() - 1.0))
        .collect();
    let noise = Tensor::from_vec(noise, x.shape(), &net.device)?.to_dtype(x.dtype())?;
    let mut adv = project(&(x + noise)?, x, cfg.eps, cfg.clip)?;
    for _ in 0..cfg.steps {
        let g = input_gradient(net, &adv, labels)?;
        adv = project(&(adv + (g.sign()? * cfg.step_size)?)?, x, cfg.eps, cfg.clip)?;
    }
    Ok(adv)
}
