//! The dual network as a tensor program: Algorithm 1 and J for an objective matrix per
//! example, batched over examples, differentiable end to end (the robust loss of
//! Theorem 2 backpropagates through the intermediate bounds, as in the paper).
//!
//! The same forward-column formulation as `dual::algorithm1` (see its docs), with one
//! difference that makes examples batch together: every unit that is unstable in at least
//! one example of the batch gets a column in every example, scaled by `d_j` where it is
//! unstable and by 0 where it is stable, so the shapes do not depend on the example. The
//! values are those of `dual` (checked to 1e-9 in f64).

use candle_core::{DType, Tensor};

use crate::error::Result;
use crate::net::TensorNet;

/// Bounds on every hidden pre-activation and `J` for each objective row.
#[derive(Debug, Clone)]
pub struct TensorDual {
    /// `[B, n]` per hidden layer.
    pub lower: Vec<Tensor>,
    pub upper: Vec<Tensor>,
    /// `[B, m]`: `J(c)` for each of the `m` objective rows of each example.
    pub j: Tensor,
}

/// `d` of the paper's alpha (u/(u-l) on unstable units, 1 on stably-on, 0 on stably-off)
/// and the unstable mask.
pub(crate) fn relaxation(l: &Tensor, u: &Tensor) -> Result<(Tensor, Tensor)> {
    let unstable = l.lt(0.0)?.mul(&u.gt(0.0)?)?;
    let on = l.ge(0.0)?;
    let ones = l.ones_like()?;
    let zeros = l.zeros_like()?;
    let denom = unstable.where_cond(&(u - l)?, &ones)?;
    let d = unstable.where_cond(&u.div(&denom)?, &on.where_cond(&ones, &zeros)?)?;
    Ok((d, unstable))
}

/// Lower and upper bounds from the columns (objective `C = I`), or `J` for objective
/// rows when `proj` (`[B, n, m]`, the transposed objective matrix) is given.
fn combine(
    psi: &Tensor,
    cin: &Tensor,
    radius: &Tensor,
    unst: &[(Tensor, Tensor)],
    proj: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    let (psi, cin) = match proj {
        Some(p) => (psi.unsqueeze(1)?.matmul(p)?.squeeze(1)?, cin.matmul(p)?),
        None => (psi.clone(), cin.clone()),
    };
    let abs = radius.unsqueeze(1)?.matmul(&cin.abs()?)?.squeeze(1)?;
    let mut lo = (&psi - &abs)?;
    let mut hi = (&psi + &abs)?;
    for (cols, l) in unst {
        let cols = match proj {
            Some(p) => cols.matmul(p)?,
            None => cols.clone(),
        };
        let l = l.unsqueeze(1)?;
        lo = (lo + l.matmul(&cols.neg()?.relu()?)?.squeeze(1)?)?;
        hi = (hi - l.matmul(&cols.relu()?)?.squeeze(1)?)?;
    }
    Ok((lo, hi))
}

/// Algorithm 1 and `J` for the input boxes `center +- radius` (`[B, n_1]` each; for the
/// l-inf ball `radius` is eps everywhere) and objective rows `c` (`[B, m, n_k]`).
pub fn dual_bound(
    net: &TensorNet,
    center: &Tensor,
    radius: &Tensor,
    c: &Tensor,
) -> Result<TensorDual> {
    let dev = &net.device;
    let dt = center.dtype();
    let bsz = center.dim(0)?;
    let nl = net.layers.len();
    let n1 = net.layers[0].n_in;
    let mut psi = net.affine(0, center)?;
    let n2 = net.layers[0].n_out;
    let w_in = net.linear(0, &Tensor::eye(n1, dt, dev)?)?;
    let mut cin = w_in
        .unsqueeze(0)?
        .broadcast_as((bsz, n1, n2))?
        .contiguous()?;
    let mut unst: Vec<(Tensor, Tensor)> = Vec::new();
    let mut lower = Vec::new();
    let mut upper = Vec::new();
    for t in 1..nl {
        let (l, u) = combine(&psi, &cin, radius, &unst, None)?;
        let (d, unstable) = relaxation(&l, &u)?;
        let n_t = net.layers[t].n_in;
        let n_next = net.layers[t].n_out;
        let dcol = d.unsqueeze(1)?;
        psi = net.affine(t, &(&psi * &d)?)?;
        let k = cin.dim(1)?;
        cin = net
            .linear(t, &cin.broadcast_mul(&dcol)?.reshape((bsz * k, n_t))?)?
            .reshape((bsz, k, n_next))?;
        for (cols, _) in unst.iter_mut() {
            let k = cols.dim(1)?;
            *cols = net
                .linear(t, &cols.broadcast_mul(&dcol)?.reshape((bsz * k, n_t))?)?
                .reshape((bsz, k, n_next))?;
        }
        // Columns only for units unstable in at least one example of the batch.
        let any: Vec<u8> = unstable.max(0)?.to_vec1::<u8>()?;
        let idx: Vec<u32> = (0..n_t as u32).filter(|&j| any[j as usize] != 0).collect();
        if !idx.is_empty() {
            let k = idx.len();
            let idx = Tensor::from_vec(idx, k, dev)?;
            let zeros = d.zeros_like()?;
            let dmask = unstable.where_cond(&d, &zeros)?.index_select(&idx, 1)?;
            let lmask = unstable.where_cond(&l, &zeros)?.index_select(&idx, 1)?;
            let units = Tensor::eye(n_t, dt, dev)?.index_select(&idx, 0)?;
            let w_t = net.linear(t, &units)?;
            let new_cols = w_t.unsqueeze(0)?.broadcast_mul(&dmask.unsqueeze(2)?)?;
            unst.push((new_cols, lmask));
        }
        lower.push(l);
        upper.push(u);
    }
    let proj = c.transpose(1, 2)?.contiguous()?;
    let (j, _) = combine(&psi, &cin, radius, &unst, Some(&proj))?;
    Ok(TensorDual { lower, upper, j })
}

/// The margin objectives `c_t = e_y - e_t` of every example: `[B, n, n]`.
pub fn margin_objectives(
    labels: &[usize],
    n: usize,
    dtype: DType,
    dev: &candle_core::Device,
) -> Result<Tensor> {
    let mut v = vec![0.0f64; labels.len() * n * n];
    for (b, &y) in labels.iter().enumerate() {
        for t in 0..n {
            if t != y {
                v[b * n * n + t * n + y] = 1.0;
                v[b * n * n + t * n + t] = -1.0;
            }
        }
    }
    Ok(Tensor::from_vec(v, (labels.len(), n, n), dev)?.to_dtype(dtype)?)
}
