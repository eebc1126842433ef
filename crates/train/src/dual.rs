//! The dual network as a tensor program: Algorithm 1 and J for an objective matrix per
//! example, batched over examples, differentiable end to end (the robust loss of
//! Theorem 2 backpropagates through the intermediate bounds, as in the paper).
//!
//! The same forward-column formulation as `dual::algorithm1` (see its docs). Examples
//! batch together by collapsing their columns: each set of columns is one `[P, n]`
//! tensor whose rows are the (example, column) pairs that exist (every input pixel of
//! every example; each unit where it is unstable), with the example of each row, so that
//! scaling by an example's `d` is an `index_select` and summing per example an
//! `index_add`, both differentiable. The values are those of `dual` (checked to 1e-9 in
//! f64). (The random-projection estimate of [`crate::projection`] keeps the earlier
//! form: every unit unstable in some example of the batch gets a column in every
//! example, scaled by 0 where it is stable.)

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

/// One set of columns of the dual network, collapsed over the batch: row `p` of `cols`
/// (`[P, n]`) belongs to example `ex[p]` (`[P]`, u32, rows grouped by example) and enters
/// the bounds with weight `w[p]` (`[P]`): the input's radius (`psi -+ w |C|`) or an
/// unstable unit's `l` (`lo += l [-C]_+`, `hi -= l [C]_+`).
struct Columns {
    cols: Tensor,
    ex: Tensor,
    w: Tensor,
    input: bool,
}

impl Columns {
    /// This set's terms of the bounds (`[B, m]`), with `proj` (`[B, n, m]`) applied to
    /// each row by its example's matrix when given.
    fn terms(&self, zeros: &Tensor, proj: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let cols = match proj {
            Some(p) => self
                .cols
                .unsqueeze(1)?
                .matmul(&p.index_select(&self.ex, 0)?)?
                .squeeze(1)?,
            None => self.cols.clone(),
        };
        let w = self.w.unsqueeze(1)?;
        let sum = |v: Tensor| -> Result<Tensor> {
            Ok(zeros.index_add(&self.ex, &v.broadcast_mul(&w)?, 0)?)
        };
        Ok(if self.input {
            let a = sum(cols.abs()?)?;
            (a.neg()?, a)
        } else {
            (sum(cols.neg()?.relu()?)?, sum(cols.relu()?)?.neg()?)
        })
    }
}

/// Lower and upper bounds (`[B, n]`) from `psi` and the columns (objective `C = I`), or
/// `J` for objective rows when `proj` (`[B, n, m]`, the transposed objective matrix) is
/// given.
fn bounds_of(psi: &Tensor, sets: &[Columns], proj: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
    let psi = match proj {
        Some(p) => psi.unsqueeze(1)?.matmul(p)?.squeeze(1)?,
        None => psi.clone(),
    };
    let zeros = psi.zeros_like()?;
    let (mut lo, mut hi) = (psi.clone(), psi);
    for set in sets {
        let (a, b) = set.terms(&zeros, proj)?;
        lo = (lo + a)?;
        hi = (hi + b)?;
    }
    Ok((lo, hi))
}

/// The columns `d_j W_t e_j` of the units of hidden layer `t` unstable in each example
/// (one row per unstable (example, unit) pair, grouped by example), weighted by their
/// `l`; `None` when no unit is unstable.
fn unit_set(
    net: &TensorNet,
    t: usize,
    d: &Tensor,
    l: &Tensor,
    unstable: &Tensor,
) -> Result<Option<Columns>> {
    let (bsz, n_t) = unstable.dims2()?;
    let mask: Vec<u8> = unstable.flatten_all()?.to_vec1::<u8>()?;
    // The units unstable in some example (`any`, ascending) and each one's row there.
    let mut pos = vec![None; n_t];
    let mut any = Vec::new();
    for (j, p) in pos.iter_mut().enumerate() {
        if (0..bsz).any(|b| mask[b * n_t + j] != 0) {
            *p = Some(any.len() as u32);
            any.push(j as u32);
        }
    }
    if any.is_empty() {
        return Ok(None);
    }
    let (mut ex, mut flat, mut row) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..bsz {
        for (j, p) in pos.iter().enumerate() {
            if let Some(r) = p.filter(|_| mask[b * n_t + j] != 0) {
                ex.push(b as u32);
                flat.push((b * n_t + j) as u32);
                row.push(r);
            }
        }
    }
    let dev = d.device();
    let k = any.len();
    let any = Tensor::from_vec(any, k, dev)?;
    let units = Tensor::eye(n_t, d.dtype(), dev)?.index_select(&any, 0)?;
    let base = net.linear(t, &units)?;
    let p = ex.len();
    let flat = Tensor::from_vec(flat, p, dev)?;
    let scale = d.flatten_all()?.index_select(&flat, 0)?;
    let cols = base
        .index_select(&Tensor::from_vec(row, p, dev)?, 0)?
        .broadcast_mul(&scale.unsqueeze(1)?)?;
    Ok(Some(Columns {
        cols,
        ex: Tensor::from_vec(ex, p, dev)?,
        w: l.flatten_all()?.index_select(&flat, 0)?,
        input: false,
    }))
}

/// Algorithm 1 and `J` for the input boxes `center +- radius` (`[B, n_1]` each; for the
/// l-inf ball `radius` is eps everywhere) and objective rows `c` (`[B, m, n_k]`).
///
/// Each example carries its own columns (the input's `n_1` and one per unit unstable in
/// that example), stored as one `[P, n]` tensor per set with the example of each row, as
/// convex_adversarial does: a unit unstable in one example costs nothing in the others.
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
    let ex: Vec<u32> = (0..bsz as u32)
        .flat_map(|b| std::iter::repeat_n(b, n1))
        .collect();
    let mut sets = vec![Columns {
        cols: w_in
            .unsqueeze(0)?
            .broadcast_as((bsz, n1, n2))?
            .reshape((bsz * n1, n2))?,
        ex: Tensor::from_vec(ex, bsz * n1, dev)?,
        w: radius.flatten_all()?,
        input: true,
    }];
    let mut lower = Vec::new();
    let mut upper = Vec::new();
    for t in 1..nl {
        let (l, u) = bounds_of(&psi, &sets, None)?;
        let (d, unstable) = relaxation(&l, &u)?;
        psi = net.affine(t, &(&psi * &d)?)?;
        for set in sets.iter_mut() {
            let scaled = set.cols.mul(&d.index_select(&set.ex, 0)?)?;
            set.cols = net.linear(t, &scaled)?;
        }
        if let Some(set) = unit_set(net, t, &d, &l, &unstable)? {
            sets.push(set);
        }
        lower.push(l);
        upper.push(u);
    }
    let proj = c.transpose(1, 2)?.contiguous()?;
    let (j, _) = bounds_of(&psi, &sets, Some(&proj))?;
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
