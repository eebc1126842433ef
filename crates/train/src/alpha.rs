//! Optimised alpha: maximise J over alpha in [0, 1] per unstable unit by projected
//! gradient ascent (Adam, then clamping into [0, 1]), starting at the paper's
//! `alpha = u/(u-l)`, for fixed intermediate bounds. By strong duality the maximum is the
//! optimum of LP (19) with the same bounds.
//!
//! Each objective row gets its own alpha. J is the backward dual network of eq. 7 in
//! f64, so every iterate is a valid lower bound; the best iterate is returned, hence the
//! result is never below the paper's J.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use dual::{stability, InputDomain, LayerBounds, Stability};
use network::Model;

use crate::error::{Result, TrainError};
use crate::net::TensorNet;

/// Settings of the ascent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlphaOptions {
    pub steps: usize,
    /// Adam's step size at the start; it decays linearly to 0.
    pub lr: f64,
}

impl Default for AlphaOptions {
    fn default() -> Self {
        AlphaOptions {
            steps: 2000,
            lr: 0.05,
        }
    }
}

/// J before and after optimising alpha, per objective row.
#[derive(Debug, Clone, PartialEq)]
pub struct AlphaResult {
    pub j_paper: Vec<f64>,
    pub j: Vec<f64>,
    /// Best alpha per row: `alpha[row][hidden layer][unit]`.
    pub alpha: Vec<Vec<Vec<f64>>>,
    pub steps: usize,
}

struct Consts {
    d: Vec<Tensor>,
    on: Vec<Tensor>,
    unst: Vec<Tensor>,
    ldu: Vec<Tensor>,
}

fn j_of(
    net: &TensorNet,
    dom: (&Tensor, &Tensor),
    k: &Consts,
    alpha: &[Var],
    c: &Tensor,
) -> Result<Tensor> {
    let nl = net.layers.len();
    let mut nu = c.neg()?;
    let mut acc = Tensor::zeros(c.dim(0)?, DType::F64, &net.device)?;
    for t in (0..nl).rev() {
        acc = (acc - nu.broadcast_mul(&net.bias(t)?.unsqueeze(0)?)?.sum(1)?)?;
        let nuhat = net.linear_transpose(t, &nu)?;
        if t == 0 {
            let lin = nuhat.broadcast_mul(dom.0)?.sum(1)?;
            let abs = nuhat.abs()?.broadcast_mul(dom.1)?.sum(1)?;
            acc = ((acc - lin)? - abs)?;
            break;
        }
        let h = t - 1;
        let pos = nuhat.relu()?;
        let neg = nuhat.neg()?.relu()?;
        let relaxed = (pos.broadcast_mul(&k.d[h])? - alpha[h].as_tensor().mul(&neg)?)?;
        nu = (nuhat.broadcast_mul(&k.on[h])? + relaxed.broadcast_mul(&k.unst[h])?)?;
        acc = (acc + pos.broadcast_mul(&k.ldu[h])?.sum(1)?)?;
    }
    Ok(acc)
}

/// Optimises alpha for each row of `c` (row-major, `rows x n_out`).
pub fn optimise_alpha(
    model: &Model,
    domain: &InputDomain,
    bounds: &LayerBounds,
    c: &[f64],
    opts: AlphaOptions,
) -> Result<AlphaResult> {
    bounds.validate(model)?;
    let dev = Device::Cpu;
    let net = TensorNet::from_model(model, DType::F64, &dev)?;
    let n_out = model.output_len();
    if c.is_empty() || !c.len().is_multiple_of(n_out) {
        return Err(TrainError::Config(format!(
            "objective has {} values, not a multiple of {n_out}",
            c.len()
        )));
    }
    let m = c.len() / n_out;
    let ct = Tensor::from_vec(c.to_vec(), (m, n_out), &dev)?;
    let n1 = model.input_len();
    let center = Tensor::from_vec(domain.center.clone(), (1, n1), &dev)?;
    let radius = Tensor::from_vec(domain.radius.clone(), (1, n1), &dev)?;
    let nh = model.hidden_layers();
    let mut k = Consts {
        d: vec![],
        on: vec![],
        unst: vec![],
        ldu: vec![],
    };
    let mut alpha = Vec::with_capacity(nh);
    for h in 0..nh {
        let (l, u) = (&bounds.lower[h], &bounds.upper[h]);
        let n = l.len();
        let (mut d, mut on, mut un, mut ldu) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for j in 0..n {
            match stability(l[j], u[j]) {
                Stability::Off => {}
                Stability::On => on[j] = 1.0,
                Stability::Unstable => {
                    un[j] = 1.0;
                    d[j] = u[j] / (u[j] - l[j]);
                    ldu[j] = l[j] * d[j];
                }
            }
        }
        let row = |v: Vec<f64>| Tensor::from_vec(v, (1, n), &dev);
        let init: Vec<f64> = (0..m).flat_map(|_| d.clone()).collect();
        alpha.push(Var::from_tensor(&Tensor::from_vec(init, (m, n), &dev)?)?);
        k.d.push(row(d)?);
        k.on.push(row(on)?);
        k.unst.push(row(un)?);
        k.ldu.push(row(ldu)?);
    }
    let snapshot = |alpha: &[Var]| -> Result<Vec<Vec<Vec<f64>>>> {
        let per_layer: Vec<Vec<Vec<f64>>> = alpha
            .iter()
            .map(|a| a.as_tensor().to_vec2::<f64>())
            .collect::<Result<_, _>>()?;
        Ok((0..m)
            .map(|r| per_layer.iter().map(|l| l[r].clone()).collect())
            .collect())
    };
    let j0 = j_of(&net, (&center, &radius), &k, &alpha, &ct)?.to_vec1::<f64>()?;
    let mut best = j0.clone();
    let mut best_alpha = snapshot(&alpha)?;
    if nh == 0 || opts.steps == 0 {
        return Ok(AlphaResult {
            j_paper: j0,
            j: best,
            alpha: best_alpha,
            steps: 0,
        });
    }
    let mut opt = AdamW::new(
        alpha.clone(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    for s in 0..opts.steps {
        opt.set_learning_rate(opts.lr * (1.0 - s as f64 / opts.steps as f64));
        let j = j_of(&net, (&center, &radius), &k, &alpha, &ct)?;
        // Ascent on the sum of rows (each row has its own alpha).
        opt.backward_step(&j.sum_all()?.neg()?)?;
        for a in &alpha {
            a.set(&a.as_tensor().clamp(0.0, 1.0)?)?;
        }
        let jv = j_of(&net, (&center, &radius), &k, &alpha, &ct)?.to_vec1::<f64>()?;
        if jv.iter().zip(&best).any(|(a, b)| a > b) {
            let snap = snapshot(&alpha)?;
            for r in 0..m {
                if jv[r] > best[r] {
                    best[r] = jv[r];
                    best_alpha[r] = snap[r].clone();
                }
            }
        }
    }
    Ok(AlphaResult {
        j_paper: j0,
        j: best,
        alpha: best_alpha,
        steps: opts.steps,
    })
}
