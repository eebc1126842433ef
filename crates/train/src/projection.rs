//! The random-projection estimate of the dual bound (Wong, Schmidt, Metzen, Kolter 2018,
//! "Scaling provable adversarial defenses", section 3.2), for **training only**: every
//! bound this project reports or certifies comes from the exact dual.
//!
//! Algorithm 1 spends its time on columns: one per input coordinate (784 for MNIST) and
//! one per unstable unit, each pushed through the rest of the network. The bounds only
//! need two kinds of sums over those columns:
//!
//! * the input term `sum_i r_i |C_ij|` (an l1 norm, `r` the ball's radius), and
//! * the unstable term `sum_{i in I} l_i [C_ij]_+`, which with `[x]_+ = (x + |x|)/2` is
//!   `(1/2) sum_i l_i C_ij + (1/2) sum_i l_i |C_ij|`: an exact part that is a single
//!   column (the vector `l d` pushed through the network like the bias) and an l1 norm.
//!
//! An l1 norm `||v||_1` is estimated by `median_k |v^T R_k|` over `k` independent
//! standard Cauchy vectors `R_k` (a Cauchy vector's projection is Cauchy with scale
//! `||v||_1`, whose absolute value has median `||v||_1`), so each of those sums needs
//! only `k` columns instead of one per input or unstable unit. Where a set has at most
//! `k` members the exact columns are cheaper and used instead.
//!
//! The estimated bounds `l, u` then fix `d` and the unstable sets, and `J` for the
//! objective rows is computed exactly from them by the backward dual network (eq. 6-7),
//! as in the paper's follow-up. With `l, u` only estimates, that `J` is not a bound; it
//! is a training signal. The backward pass is checked against `dual_bound` with exact
//! bounds to 1e-9.

use candle_core::{Tensor, D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Cauchy, Distribution};

use crate::dual::{add_unstable, push, relaxation, unit_columns, unstable_units, TensorDual};
use crate::error::{Result, TrainError};
use crate::net::TensorNet;

/// How many Cauchy projections estimate each l1 norm, and the seed of the projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projection {
    /// Projections per l1 norm (the follow-up paper uses 50); at least 1.
    pub k: usize,
    pub seed: u64,
}

/// `[b, k, n]` standard Cauchy samples.
fn cauchy(rng: &mut ChaCha8Rng, shape: (usize, usize, usize), like: &Tensor) -> Result<Tensor> {
    let dist = Cauchy::new(0.0, 1.0).expect("unit Cauchy is valid");
    let n = shape.0 * shape.1 * shape.2;
    let v: Vec<f64> = (0..n).map(|_| dist.sample(rng)).collect();
    Ok(Tensor::from_vec(v, shape, like.device())?.to_dtype(like.dtype())?)
}

/// Median over dimension 1 of `|p|` for `p` of shape `[b, k, n]`: `[b, n]`. For even `k`
/// the mean of the two middle values. Differentiable (a gather of sorted indices).
fn median_abs(p: &Tensor) -> Result<Tensor> {
    let k = p.dim(1)?;
    let a = p.abs()?.transpose(1, 2)?.contiguous()?;
    let order = a.arg_sort_last_dim(true)?;
    let pick = |i: usize| -> Result<Tensor> {
        let idx = order.narrow(D::Minus1, i, 1)?.contiguous()?;
        Ok(a.gather(&idx, D::Minus1)?.squeeze(D::Minus1)?)
    };
    if k % 2 == 1 {
        pick(k / 2)
    } else {
        Ok(((pick(k / 2 - 1)? + pick(k / 2)?)? * 0.5)?)
    }
}

/// One group of columns pushed through the network.
enum Term {
    /// Exact columns `[B, K, n]` with their unit's `l` (`[B, K]`, 0 where stable).
    Exact { cols: Tensor, l: Tensor },
    /// `k` Cauchy projections `[B, k, n]` of the columns scaled by `|l|`: the median of
    /// their absolute values estimates `sum_i |l_i| |C_ij|`.
    Projected { p: Tensor },
}

/// Input term: exact radius-weighted columns `[B, n1, n]` or projections of them.
enum InputTerm {
    Exact(Tensor),
    Projected(Tensor),
}

/// Estimated Algorithm 1 bounds and the exact `J` given them (see the module docs).
/// Shapes as [`crate::dual::dual_bound`].
pub fn projected_dual_bound(
    net: &TensorNet,
    center: &Tensor,
    radius: &Tensor,
    c: &Tensor,
    proj: Projection,
) -> Result<TensorDual> {
    if proj.k == 0 {
        return Err(TrainError::Config(
            "random projections need k >= 1".to_string(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(proj.seed);
    let dev = &net.device;
    let dt = center.dtype();
    let bsz = center.dim(0)?;
    let nl = net.layers.len();
    let n1 = net.layers[0].n_in;
    let n2 = net.layers[0].n_out;
    let mut psi = net.affine(0, center)?;
    // Sum of the exact halves `l d` of every unstable term, pushed like psi without bias.
    let mut shift: Option<Tensor> = None;
    let mut input = if n1 <= proj.k {
        let eye = Tensor::eye(n1, dt, dev)?;
        let w = net.linear(0, &eye)?.unsqueeze(0)?;
        InputTerm::Exact(w.broadcast_mul(&radius.unsqueeze(2)?)?)
    } else {
        let r =
            cauchy(&mut rng, (bsz, proj.k, n1), center)?.broadcast_mul(&radius.unsqueeze(1)?)?;
        InputTerm::Projected(
            net.linear(0, &r.reshape((bsz * proj.k, n1))?)?
                .reshape((bsz, proj.k, n2))?,
        )
    };
    let mut terms: Vec<Term> = Vec::new();
    let mut lower = Vec::new();
    let mut upper = Vec::new();
    let mut relax = Vec::new();
    for t in 1..nl {
        // Bounds on the inputs of layer t.
        let spread = match &input {
            InputTerm::Exact(cols) => cols.abs()?.sum(1)?,
            InputTerm::Projected(p) => median_abs(p)?,
        };
        let mut lo = (&psi - &spread)?;
        let mut hi = (&psi + &spread)?;
        if let Some(s) = &shift {
            let half = (s * 0.5)?;
            lo = (lo - &half)?;
            hi = (hi - &half)?;
        }
        for term in &terms {
            match term {
                Term::Exact { cols, l } => (lo, hi) = add_unstable(lo, hi, cols, l)?,
                Term::Projected { p } => {
                    let half = (median_abs(p)? * 0.5)?;
                    lo = (lo - &half)?;
                    hi = (hi + &half)?;
                }
            }
        }
        let (d, unstable) = relaxation(&lo, &hi)?;
        let zeros = d.zeros_like()?;
        let lmask = unstable.where_cond(&lo, &zeros)?;
        let dmask = unstable.where_cond(&d, &zeros)?;
        // Push everything through layer t.
        psi = net.affine(t, &(&psi * &d)?)?;
        if let Some(s) = &shift {
            shift = Some(net.linear(t, &(s * &d)?)?);
        }
        input = match input {
            InputTerm::Exact(cols) => InputTerm::Exact(push(net, t, &cols, &d)?),
            InputTerm::Projected(p) => InputTerm::Projected(push(net, t, &p, &d)?),
        };
        for term in terms.iter_mut() {
            *term = match term {
                Term::Exact { cols, l } => Term::Exact {
                    cols: push(net, t, cols, &d)?,
                    l: l.clone(),
                },
                Term::Projected { p } => Term::Projected {
                    p: push(net, t, p, &d)?,
                },
            };
        }
        // New columns for layer t's unstable units.
        let n_t = net.layers[t].n_in;
        let idx = unstable_units(&unstable)?;
        if !idx.is_empty() {
            if idx.len() <= proj.k {
                let (cols, l) = unit_columns(net, t, idx, &dmask, &lmask)?;
                terms.push(Term::Exact { cols, l });
            } else {
                // The exact half: sum_i l_i C_ij is one column, pushed like psi.
                let s = net.linear(t, &(&lmask * &dmask)?)?;
                shift = Some(match shift {
                    Some(old) => (old + s)?,
                    None => s,
                });
                let r = cauchy(&mut rng, (bsz, proj.k, n_t), center)?
                    .broadcast_mul(&(lmask.abs()? * &dmask)?.unsqueeze(1)?)?;
                let p = net.linear(t, &r.reshape((bsz * proj.k, n_t))?)?.reshape((
                    bsz,
                    proj.k,
                    net.layers[t].n_out,
                ))?;
                terms.push(Term::Projected { p });
            }
        }
        lower.push(lo);
        upper.push(hi);
        relax.push((d, lmask));
    }
    let j = backward_j(net, center, radius, c, &relax)?;
    Ok(TensorDual { lower, upper, j })
}

/// `J` (eq. 6-7) for the objective rows `c` (`[B, m, n_k]`) by the backward dual
/// network, given per hidden layer `d` (`[B, n]`) and `l` on the unstable units (0
/// elsewhere).
pub fn backward_j(
    net: &TensorNet,
    center: &Tensor,
    radius: &Tensor,
    c: &Tensor,
    relax: &[(Tensor, Tensor)],
) -> Result<Tensor> {
    let (bsz, m, _) = c.dims3()?;
    let nl = net.layers.len();
    // nu_{k} = -c; the J terms are summed into `j` ([B, m]).
    let mut nu = c.neg()?;
    let mut j = Tensor::zeros((bsz, m), center.dtype(), center.device())?;
    for t in (0..nl).rev() {
        let b = net.bias(t)?;
        j = (j - nu.broadcast_mul(&b.unsqueeze(0)?.unsqueeze(0)?)?.sum(2)?)?;
        let n_in = net.layers[t].n_in;
        let nl_out = net.layers[t].n_out;
        let nu_hat = net
            .linear_transpose(t, &nu.reshape((bsz * m, nl_out))?)?
            .reshape((bsz, m, n_in))?;
        if t == 0 {
            let xt = nu_hat.broadcast_mul(&center.unsqueeze(1)?)?.sum(2)?;
            let l1 = nu_hat.abs()?.broadcast_mul(&radius.unsqueeze(1)?)?.sum(2)?;
            j = (j - xt - l1)?;
        } else {
            let (d, l) = &relax[t - 1];
            nu = nu_hat.broadcast_mul(&d.unsqueeze(1)?)?;
            let pos = nu.relu()?.broadcast_mul(&l.unsqueeze(1)?)?.sum(2)?;
            j = (j + pos)?;
        }
    }
    Ok(j)
}
