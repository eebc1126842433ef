//! The columns of the paper's Table 1 over a dataset: clean error, FGSM error, PGD error
//! and the robust error bound (certified by the f64 `dual` crate, not the f32 training
//! program, so the bound reported is exact).

use candle_core::{DType, Tensor};
use network::{argmax, Dataset};

use crate::attack::{fgsm, pgd, PgdConfig};
use crate::error::Result;
use crate::net::TensorNet;

/// One row of Table 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Table1Row {
    pub examples: usize,
    pub eps: f64,
    pub clean_error: f64,
    pub fgsm_error: f64,
    pub pgd_error: f64,
    pub robust_error_bound: f64,
}

fn errors(net: &TensorNet, x: &Tensor, labels: &[usize]) -> Result<usize> {
    let logits = net.forward(x)?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    Ok(logits
        .iter()
        .zip(labels)
        .filter(|(l, &y)| argmax(l) != y)
        .count())
}

/// Evaluates examples `indices` of `data` at `eps` in batches of `batch`; attacks stay in
/// the pixel box `clip` when given. PGD uses [`PgdConfig::new`] seeded by `seed`.
pub fn evaluate(
    net: &TensorNet,
    data: &Dataset,
    indices: &[usize],
    eps: f64,
    clip: Option<(f64, f64)>,
    batch: usize,
    seed: u64,
) -> Result<Table1Row> {
    let model = net.to_model()?;
    let d = data.dim();
    let (mut clean, mut f, mut p) = (0, 0, 0);
    for (k, chunk) in indices.chunks(batch.max(1)).enumerate() {
        let mut xs = Vec::with_capacity(chunk.len() * d);
        let mut ys = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let (x, y) = data.get(i)?;
            xs.extend_from_slice(x.as_slice());
            ys.push(y);
        }
        let x = net.batch(network::DMatrixView::from_slice(&xs, d, xs.len() / d))?;
        clean += errors(net, &x, &ys)?;
        f += errors(net, &fgsm(net, &x, &ys, eps, clip)?, &ys)?;
        p += errors(
            net,
            &pgd(
                net,
                &x,
                &ys,
                &PgdConfig::new(eps, clip, seed.wrapping_add(k as u64)),
            )?,
            &ys,
        )?;
    }
    let rep = dual::robust_error(&model, data, indices, eps, None)?;
    let n = indices.len().max(1) as f64;
    Ok(Table1Row {
        examples: indices.len(),
        eps,
        clean_error: clean as f64 / n,
        fgsm_error: f as f64 / n,
        pgd_error: p as f64 / n,
        robust_error_bound: rep.robust_error,
    })
}
