//! Losses: the standard cross-entropy and the robust loss of Theorem 2 (eq. 13-14),
//! `L(-J_eps(x, g(e_y 1^T - I)), y)` with cross-entropy, and the robust error it bounds.

use candle_core::{DType, Tensor};

use crate::dual::{dual_bound, margin_objectives};
use crate::error::Result;
use crate::net::TensorNet;
use crate::projection::{projected_dual_bound, Projection};

/// Labels as a `u32` tensor for cross-entropy.
pub fn label_tensor(labels: &[usize], dev: &candle_core::Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
        labels.len(),
        dev,
    )?)
}

/// Mean cross-entropy of the logits.
pub fn standard_loss(net: &TensorNet, x: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let logits = net.forward(x)?;
    Ok(candle_nn::loss::cross_entropy(
        &logits,
        &label_tensor(labels, &net.device)?,
    )?)
}

/// The robust loss and the `J` it was computed from (`[B, n_classes]`, entry `y` is 0).
/// With `projection`, the intermediate bounds are the random-projection estimate
/// ([`crate::projection`]) and `J` is a training signal, not a bound.
pub fn robust_loss(
    net: &TensorNet,
    x: &Tensor,
    labels: &[usize],
    eps: f64,
    projection: Option<Projection>,
) -> Result<(Tensor, Tensor)> {
    let n = net.layers.last().map(|l| l.n_out).unwrap_or(0);
    let c = margin_objectives(labels, n, x.dtype(), &net.device)?;
    let radius = (x.ones_like()? * eps)?;
    let d = match projection {
        None => dual_bound(net, x, &radius, &c)?,
        Some(p) => projected_dual_bound(net, x, &radius, &c, p)?,
    };
    let loss = candle_nn::loss::cross_entropy(&d.j.neg()?, &label_tensor(labels, &net.device)?)?;
    Ok((loss, d.j))
}

/// Per example: is it certified (`J_t > 0` for every `t != y`)?
pub fn certified(j: &Tensor, labels: &[usize]) -> Result<Vec<bool>> {
    let v = j.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    Ok(v.iter()
        .zip(labels)
        .map(|(row, &y)| row.iter().enumerate().all(|(t, &x)| t == y || x > 0.0))
        .collect())
}
