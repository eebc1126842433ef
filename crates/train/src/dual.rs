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
/// and the unstable mask: the tensor form of [`dual::Relaxation::upper_slope`] and
/// [`dual::Relaxation::stability`] (the one definition of the triangle; a test checks
/// this against it elementwise).
pub(crate) fn relaxation(l: &Tensor, u: &Tensor) -> Result<(Tensor, Tensor)> {
    let unstable = l.lt(0.0)?.mul(&u.gt(0.0)?)?;
    // Active: l >= 0 and u > 0 (a unit with u <= 0 is inactive first, as in `dual`: for
    // l = u = 0 both give z = 0, and the slopes agree).
    let on = l.ge(0.0)?.mul(&u.gt(0.0)?)?;
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
        (lo, hi) = add_unstable(lo, hi, &cols, l)?;
    }
    Ok((lo, hi))
}

/// Adds one group of unstable units' terms to the bounds: with columns `C` (`[B, K, n]`)
/// and their units' `l` (`[B, K]`, 0 for stable units), `lo += l [-C]_+` and
/// `hi -= l [C]_+`.
pub(crate) fn add_unstable(
    lo: Tensor,
    hi: Tensor,
    cols: &Tensor,
    l: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let l = l.unsqueeze(1)?;
    Ok((
        (lo + l.matmul(&cols.neg()?.relu()?)?.squeeze(1)?)?,
        (hi - l.matmul(&cols.relu()?)?.squeeze(1)?)?,
    ))
}

/// The units of a hidden layer that are unstable (`unstable`: `[B, n]` mask) in at least
/// one example of the batch.
pub(crate) fn unstable_units(unstable: &Tensor) -> Result<Vec<u32>> {
    let any: Vec<u8> = unstable.max(0)?.to_vec1::<u8>()?;
    Ok((0..any.len() as u32)
        .filter(|&j| any[j as usize] != 0)
        .collect())
}

/// The new columns `d_j W_t e_j` of units `idx` of hidden layer `t` (`[B, K, n_out]`)
/// and their `l` (`[B, K]`), from `d` and `l` masked to 0 where a unit is stable.
pub(crate) fn unit_columns(
    net: &TensorNet,
    t: usize,
    idx: Vec<u32>,
    dmask: &Tensor,
    lmask: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (k, n_t) = (idx.len(), net.layers[t].n_in);
    let idx = Tensor::from_vec(idx, k, dmask.device())?;
    let units = Tensor::eye(n_t, dmask.dtype(), dmask.device())?.index_select(&idx, 0)?;
    let w_t = net.linear(t, &units)?;
    let cols = w_t
        .unsqueeze(0)?
        .broadcast_mul(&dmask.index_select(&idx, 1)?.unsqueeze(2)?)?;
    Ok((cols, lmask.index_select(&idx, 1)?))
}

/// Columns `[B, K, n]` through hidden layer `t`'s relaxation (scaled by `d`, `[B, n]`) and
/// the next affine layer's linear part: `[B, K, n_next]`.
pub(crate) fn push(net: &TensorNet, t: usize, cols: &Tensor, d: &Tensor) -> Result<Tensor> {
    let (b, k, n) = cols.dims3()?;
    Ok(net
        .linear(
            t,
            &cols.broadcast_mul(&d.unsqueeze(1)?)?.reshape((b * k, n))?,
        )?
        .reshape((b, k, net.layers[t].n_out))?)
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
        psi = net.affine(t, &(&psi * &d)?)?;
        cin = push(net, t, &cin, &d)?;
        for (cols, _) in unst.iter_mut() {
            *cols = push(net, t, cols, &d)?;
        }
        // Columns only for units unstable in at least one example of the batch.
        let idx = unstable_units(&unstable)?;
        if !idx.is_empty() {
            let zeros = d.zeros_like()?;
            let dmask = unstable.where_cond(&d, &zeros)?;
            let lmask = unstable.where_cond(&l, &zeros)?;
            unst.push(unit_columns(net, t, idx, &dmask, &lmask)?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The tensor relaxation is `dual::Relaxation` elementwise: the same slope, bit for bit,
    /// and the same unstable set, on ordinary, tied and degenerate bounds.
    #[test]
    fn the_tensor_relaxation_is_duals() {
        let pairs: [(f64, f64); 10] = [
            (-1.0, 3.0),
            (-3.0, 1.0),
            (-2.0, 2.0),
            (0.0, 2.0),
            (1.0, 2.0),
            (-3.0, 0.0),
            (-3.0, -1.0),
            (0.0, 0.0),
            (-1e-300, 1e-300),
            (-0.1, 7.3),
        ];
        let l: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let u: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let lt = Tensor::from_vec(l.clone(), (1, l.len()), &Device::Cpu).unwrap();
        let ut = Tensor::from_vec(u.clone(), (1, u.len()), &Device::Cpu).unwrap();
        let (d, unstable) = relaxation(&lt, &ut).unwrap();
        let d: Vec<f64> = d.flatten_all().unwrap().to_vec1().unwrap();
        let unstable: Vec<f64> = unstable
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (k, &(l, u)) in pairs.iter().enumerate() {
            let r = dual::Relaxation::relu(l, u);
            assert_eq!(d[k], r.upper_slope(), "[{l}, {u}]");
            assert_eq!(
                unstable[k] == 1.0,
                r.stability == dual::Stability::Unstable,
                "[{l}, {u}]"
            );
        }
    }
}
