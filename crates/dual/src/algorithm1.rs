//! Algorithm 1 of the paper: bounds on every pre-activation, layer by layer, from the
//! dual network with the paper's `alpha = u/(u-l)`.
//!
//! With `alpha = u/(u-l)` every `D_i` is a fixed diagonal matrix, so the dual network of
//! the objective `c = +-e_k` at layer `t+1` is linear in `c` and all rows can be computed
//! at once by pushing columns *forward* through the linearised network
//! `zhat_{i+1} = W_i D_i zhat_i + b_i` (this is the paper's Algorithm 1 written with
//! columns instead of rows of `nu`):
//!
//! * one affine column `psi` (the linearised forward pass of the box's centre),
//! * one column `W_1 e_j` per input coordinate with radius `r_j > 0`,
//! * one column `d_j W_i e_j` per unstable unit `j` of every hidden layer `i`
//!   (`d_j = u_j/(u_j - l_j)`), added when the pass reaches that layer.
//!
//! At layer `t+1`, with `M` those columns' values and `m_k` row `k` of `M`:
//!
//! ```text
//! l_k = psi_k - sum_inputs r_j |M_kj| + sum_unstable l_j [-M_kj]_+
//! u_k = psi_k + sum_inputs r_j |M_kj| - sum_unstable l_j [ M_kj]_+
//! ```
//!
//! which is `J(+-e_k)` of eq. 6 over the network truncated after layer `t`. The cost is
//! one batched forward pass of `n_1 + |I_2| + ... ` columns; a new unit's column is the
//! operator's (sparse, for a convolution) column, never a product.

use network::{DVector, LinearOp, LocalBatch, Model, Real};

use crate::bounds::{BoundSource, LayerBounds, Stability};
use crate::domain::InputDomain;
use crate::error::{DualError, Result};
use crate::relax::Relaxation;
use crate::rounding::{error_bound, gamma, gamma_for, ETA, UNIT_ROUNDOFF};

/// Work done by one run of Algorithm 1, for benchmarks and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Algorithm1Stats {
    /// Columns pushed through each affine layer.
    pub columns: Vec<usize>,
    /// Multiply-adds spent applying the affine layers to those columns.
    pub macs: u64,
}

/// Algorithm 1 bounds on `zhat_2 .. zhat_k` (the logits included) for one input set.
///
/// Proven: the pass carries, per unit, a remainder `rem_t >= 0` such that in exact
/// arithmetic `zhat_t` lies within `rem_t` of the symbolic form `psi_t + M_t v` built from
/// the floating-point columns. The rounding of `W D M_t` perturbs row `k`'s coefficients
/// by at most `gamma_{n+2} (|W| |D M_t|)_k`, which over the columns' ranges adds
/// `gamma_{n+2} (|W| D rho_t)_k` with `rho_t = sum_c w_c |M_c|` (the width the bound
/// itself uses), so
///
/// ```text
/// rem_{t+1} = |W| D (rem_t + gamma_{n+2} (rho_t + |psi_t|)) + (rounding of the bias add)
/// ```
///
/// costs one extra matrix-vector product with `|W|` per layer. Products that underflow
/// lose up to `2^-1075` each, which no relative term covers: `rem` also carries
/// `2 (n + 2) 2^-1074 (1 + sum_c w_c)` per layer (the products of a row over the centre
/// and every column's range `w_c`) and the scaling by `D` the same per unit before `|W|`
/// (test: `proven_bounds_hold_where_products_underflow`). Each bound is widened by
/// `rem` and by the rounding of its own sum, then rounded outwards (see
/// [`crate::rounding`]). The slopes `d = fl(u/(u-l))` need no exactness (any slope in
/// [0, 1] gives a valid lower line); the upper line's offset is widened for the rounding
/// of `d`. Overflow is [`crate::DualError::Overflow`] naming the layer.
pub fn algorithm1(model: &Model, domain: &InputDomain) -> Result<LayerBounds> {
    Ok(algorithm1_with_stats(model, domain)?.0)
}

/// As [`algorithm1`], also returning the work done.
pub fn algorithm1_with_stats(
    model: &Model,
    domain: &InputDomain,
) -> Result<(LayerBounds, Algorithm1Stats)> {
    algorithm1_in(model, domain, ColumnForm::Local)
}

/// How Algorithm 1 stores its columns while they pass through convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnForm {
    /// Each column as its window of the layer ([`network::LocalBatch`], auto_LiRPA's
    /// "patches" idea) while the layers are convolutions from the input on; dense from the
    /// first other operator on. The default.
    #[default]
    Local,
    /// Every column as a dense vector the size of its layer: the reference the local form
    /// is tested and benchmarked against (same bounds to rounding).
    Dense,
}

/// The floating-point type Algorithm 1 stores and multiplies its columns in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f64 columns: the default, and the reference.
    #[default]
    F64,
    /// f32 columns (the weights rounded to f32 where the kernels read them; twice the
    /// GEMM throughput and half the memory). The centre's column `psi`, the remainders and
    /// every bound stay f64; the columns' rounding is accounted with f32's unit roundoff
    /// `2^-24` and underflow `2^-149` (see [`algorithm1_with`]), so the bounds are as
    /// proven as the f64 ones and a little wider. A column entry beyond f32's range is an
    /// overflow error (the f64 path may still succeed).
    F32,
}

impl Precision {
    /// `"f64"` or `"f32"`.
    pub fn name(&self) -> &'static str {
        match self {
            Precision::F64 => "f64",
            Precision::F32 => "f32",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Precision, String> {
        match s {
            "f64" => Ok(Precision::F64),
            "f32" => Ok(Precision::F32),
            other => Err(format!("unknown precision {other:?}: expected f64 or f32")),
        }
    }
}

/// Algorithm 1 with the columns stored in `form`; the bounds of both forms are proven
/// and agree to rounding (entries outside a window are exact zeros, see
/// [`network::local`]).
pub fn algorithm1_in(
    model: &Model,
    domain: &InputDomain,
    form: ColumnForm,
) -> Result<(LayerBounds, Algorithm1Stats)> {
    algorithm1_with(model, domain, form, Precision::F64)
}

/// Algorithm 1 with the columns stored in `form` and `precision`.
///
/// f32 ([`Precision::F32`]): the columns are the f32 values the kernels store, and the
/// remainder recurrence of [`algorithm1`] holds with `gamma_{n+6}` for f32's `u` in place
/// of `gamma_{n+3}` in the columns' term `rho_t` (three more roundings per entry: a weight
/// rounded to f32, the scaling by `D` rounded to f64 then to f32, a product of another
/// operator rounded to f32; the centre's term `|psi_t|` keeps f64's `gamma_{n+3}`) and
/// f32's `eta = 2^-149` in the underflow allowances. Two terms have no f64 counterpart:
/// the first layer's columns `W e_j` are rounded to f32 (`2 (u (|W| r)_k + eta sum_j r_j)`
/// over the input box) and a weight below f32's normal range may round to an absolute
/// error up to `eta / 2`, i.e. `eta / 2 sum_j (D rho)_j` over the columns' ranges (added
/// twice to every row of the next layer). The f32 allowance grows with `dot_len` (for a
/// convolution the layer's input size, not its patch): ~5e-5 of each row's width on MNIST
/// (`cargo bench -p dual` prints the widening against f64).
pub fn algorithm1_with(
    model: &Model,
    domain: &InputDomain,
    form: ColumnForm,
    precision: Precision,
) -> Result<(LayerBounds, Algorithm1Stats)> {
    match precision {
        Precision::F64 => run::<f64>(model, domain, form),
        Precision::F32 => run::<f32>(model, domain, form),
    }
}

fn run<T: Real>(
    model: &Model,
    domain: &InputDomain,
    form: ColumnForm,
) -> Result<(LayerBounds, Algorithm1Stats)> {
    model.check_input(&domain.x)?;
    let aff = model.affine();
    let mut stats = Algorithm1Stats::default();

    // Column weights: Input(r) for input coordinates, Unstable(l) for unstable units.
    let mut weights: Vec<ColumnWeight> = Vec::new();
    let first = &aff[0];
    let n = first.op.n_out();
    let mut psi = vec![0.0; n];
    first.op.apply(domain.center.as_slice(), 1, &mut psi);
    for (p, b) in psi.iter_mut().zip(&first.bias) {
        *p += b;
    }
    // psi = fl(W c + b): rem = gamma (|W| |c| + |b| + |psi|).
    let abs_c: Vec<f64> = domain.center.iter().map(|v| v.abs()).collect();
    let wc = abs_apply(first, &abs_c);
    let len = first.op.dot_len() + 3;
    let mut rem: Vec<f64> = (0..n)
        .map(|k| error_bound(len, wc[k] + first.bias[k].abs() + psi[k].abs()))
        .collect();
    let inputs: Vec<usize> = (0..domain.radius.len())
        .filter(|&j| domain.radius[j] > 0.0)
        .collect();
    if !T::EXACT_F64 {
        // The columns W e_j rounded to T: each entry within u |W_kj| + eta / 2, over the
        // box `r_j (u |W_kj| + eta / 2)` (doubled for the rounding of this sum).
        let wr = abs_apply(first, domain.radius.as_slice());
        let r_sum: f64 = inputs.iter().map(|&j| domain.radius[j]).sum();
        for (r, w) in rem.iter_mut().zip(&wr) {
            *r = (*r + 2.0 * (T::UNIT_ROUNDOFF * w + T::ETA * r_sum)).next_up();
        }
    }
    let mut m = match (&first.op, form) {
        (LinearOp::Conv { weight, geom }, ColumnForm::Local) => {
            let mut batch = LocalBatch::<T>::new(geom.out_channels, geom.out_h, geom.out_w);
            for &j in &inputs {
                // W e_j is copied exactly (f64) or rounded to T (accounted above).
                batch.push_conv_unit_column(geom, weight, j, 1.0);
            }
            Columns::Local(batch)
        }
        _ => {
            let mut m = vec![T::zero(); n * inputs.len()];
            let ones = vec![1.0; domain.radius.len()];
            // W e_j is copied exactly (f64) or rounded to T (accounted above).
            add_unit_columns(&first.op, &inputs, &ones, &mut m);
            Columns::Dense(m)
        }
    };
    weights.extend(
        inputs
            .iter()
            .map(|&j| ColumnWeight::Input(domain.radius[j])),
    );
    stats.columns.push(inputs.len() + 1);
    stats.macs += first.op.macs_per_column() as u64;

    let mut lower = Vec::with_capacity(aff.len());
    let mut upper = Vec::with_capacity(aff.len());
    let rows = m.bounds(&psi, n, &weights, &rem, first.layer_index)?;
    lower.push(DVector::from_vec(rows.lower));
    upper.push(DVector::from_vec(rows.upper));
    let mut rho = rows.rho;

    for (t, a) in aff.iter().enumerate().skip(1) {
        let n_prev = a.op.n_in();
        let relu = model.relu_units(t - 1);
        let (l, u) = (
            lower.last().expect("pushed above"),
            upper.last().expect("pushed above"),
        );
        // D for the layer just bounded, and the vector whose image under |W| bounds the
        // new remainder.
        // `g` for the centre's column (always f64), `g_cols` for the columns (T).
        let g = gamma(a.op.dot_len() + 3);
        let g_cols = if T::EXACT_F64 {
            g
        } else {
            gamma_for(a.op.dot_len() + 6, T::UNIT_ROUNDOFF)
        };
        let mut d = vec![0.0; n_prev];
        let mut q = vec![0.0; n_prev];
        let mut unstable = Vec::new();
        let mut l_eff = Vec::new();
        for j in 0..n_prev {
            let rel = Relaxation::of(relu, j, l[j], u[j]);
            d[j] = rel.upper_slope();
            if rel.stability == Stability::Unstable {
                // A slope that underflows (`u < 2^-1022 |l|`) would lose its relative
                // accuracy or drop the unit; any larger slope through `(l, 0)` is still an
                // upper line, and `2^-1022` is exact.
                d[j] = d[j].max(f64::MIN_POSITIVE);
                unstable.push(j);
                // s / d ranges over [0, -l] with the exact slope; widened for the
                // rounding of d.
                let g4 = gamma(4);
                l_eff.push((l[j] * (1.0 + g4) - g4 * l[j].abs().max(u[j])).next_down());
            }
            if d[j] > 0.0 {
                q[j] = if T::EXACT_F64 {
                    d[j] * (rem[j] + g * (rho[j] + psi[j].abs()))
                } else {
                    d[j] * (rem[j] + g_cols * rho[j] + g * psi[j].abs())
                };
            }
        }
        for (&j, &le) in unstable.iter().zip(&l_eff) {
            // The new column d_j W e_j is rounded once per entry (twice for T = f32: the
            // f64 product, then to f32; the `2 eta`: this term's own products may
            // underflow, and T's underflow is in `under` below).
            let u = if T::EXACT_F64 {
                UNIT_ROUNDOFF
            } else {
                UNIT_ROUNDOFF + T::UNIT_ROUNDOFF
            };
            q[j] += 2.0 * u * d[j] * le.abs() + 2.0 * ETA;
        }
        // Underflow, which no relative term covers: each product of the scaling `D M`,
        // `D psi` may lose up to 2^-1075 absolute, i.e. `(1 + sum_c w_c) eta / 2` over the
        // columns' ranges per unit.
        let under_scale = underflow_allowance(1, &weights, T::ETA);
        for j in 0..n_prev {
            if d[j] > 0.0 {
                q[j] += under_scale;
            }
        }
        // T = f32: a weight below f32's normal range rounds with an absolute error up to
        // eta / 2, i.e. `eta / 2 sum_j |(D M)_jc|` per row over the columns' ranges, at
        // most `eta / 2 sum_j d_j (1 + 2u) rho_j + n eta^2 / 4 sum_c w_c`; added twice.
        let tiny = if T::EXACT_F64 {
            0.0
        } else {
            let drho: f64 = (0..n_prev).map(|j| d[j] * rho[j]).sum();
            let w_sum: f64 = weights.iter().map(|w| w.range()).sum();
            (2.0 * T::ETA * (drho + n_prev as f64 * T::ETA * w_sum)).next_up()
        };
        for v in psi.iter_mut().zip(&d) {
            *v.0 *= v.1;
        }
        m.scale_rows(n_prev, &d);

        let n_next = a.op.n_out();
        let old_cols = weights.len();
        let mut psi_next = vec![0.0; n_next];
        a.op.apply(&psi, 1, &mut psi_next);
        for (p, b) in psi_next.iter_mut().zip(&a.bias) {
            *p += b;
        }
        stats.macs += a.op.macs_per_column() as u64;
        let next = match (m, &a.op) {
            (Columns::Local(batch), LinearOp::Conv { weight, geom })
                if batch.shape() == (geom.in_channels, geom.in_h, geom.in_w) =>
            {
                let (mut out, macs) = batch.conv(geom, weight);
                stats.macs += macs;
                for &j in &unstable {
                    out.push_conv_unit_column(geom, weight, j, d[j]);
                }
                Columns::Local(out)
            }
            (Columns::Local(batch), LinearOp::Dense { weight, rows, .. }) => {
                let mut next = vec![T::zero(); n_next * (old_cols + unstable.len())];
                stats.macs += batch.dense(weight, *rows, &mut next[..n_next * old_cols]);
                add_unit_columns(&a.op, &unstable, &d, &mut next[n_next * old_cols..]);
                Columns::Dense(next)
            }
            (old, _) => {
                let mut next = vec![T::zero(); n_next * (old_cols + unstable.len())];
                let dense = old.into_dense();
                if old_cols > 0 {
                    a.op.apply_as(&dense, old_cols, &mut next[..n_next * old_cols]);
                }
                stats.macs += (old_cols * a.op.macs_per_column()) as u64;
                add_unit_columns(&a.op, &unstable, &d, &mut next[n_next * old_cols..]);
                Columns::Dense(next)
            }
        };
        weights.extend(l_eff.iter().map(|&le| ColumnWeight::Unstable(le)));
        stats.columns.push(old_cols + 1);

        let wq = abs_apply(a, &q);
        // `q` carries up to 6 roundings to nearest, the product with |W| `dot_len`, the
        // scaling by `inflate` and the sums below 3 more.
        // (One more for T = f32: `q`'s two gamma terms.)
        let inflate = 1.0 + gamma(a.op.dot_len() + if T::EXACT_F64 { 10 } else { 11 });
        // The products of `W (D M)`, `W (D psi)` and `|W| q` (`dot_len` each per entry) and
        // of the new columns `d_j W e_j` (one each) underflow by up to 2^-1075 each.
        let under = underflow_allowance(a.op.dot_len() + 2, &weights, T::ETA) + tiny;
        rem = (0..n_next)
            .map(|k| {
                (wq[k] * inflate + error_bound(2, psi_next[k].abs() + a.bias[k].abs()) + under)
                    .next_up()
            })
            .collect();
        let rows = next.bounds(&psi_next, n_next, &weights, &rem, a.layer_index)?;
        lower.push(rows.lower.into());
        upper.push(rows.upper.into());
        rho = rows.rho;
        psi = psi_next;
        m = next;
    }
    Ok((
        LayerBounds {
            lower,
            upper,
            source: BoundSource::Algorithm1,
        },
        stats,
    ))
}

/// `fl(|W| x)` for one nonnegative column.
fn abs_apply(a: &network::Affine, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.op.n_out()];
    a.abs_op.apply(x, 1, &mut out);
    out
}

#[derive(Debug, Clone, Copy)]
enum ColumnWeight {
    /// An input coordinate with this radius.
    Input(f64),
    /// An unstable unit with this lower bound (negative).
    Unstable(f64),
}

impl ColumnWeight {
    /// The largest magnitude of the column's variable: the radius, or `|l|`.
    fn range(&self) -> f64 {
        match *self {
            ColumnWeight::Input(r) => r,
            ColumnWeight::Unstable(l) => l.abs(),
        }
    }
}

/// An upper bound on `products * eta * (1 + sum_c w_c)` (`eta = 2^-1074`), twice over:
/// the underflow of `products` floating-point products per entry (at most `eta / 2`
/// each) over the columns' ranges `w_c` (input radii, `|l|` of unstable units) and the
/// centre's row (weight 1). The doubling covers the rounding of the weights' sum (relative
/// `gamma_n < 1`); `next_up` the rounding of the final product (at most `eta / 2` where
/// it is subnormal, relative `u` otherwise).
///
/// Evaluated as `2 products (2^-64 + sum_c 2^-64 w_c) 2^-1010` so that no intermediate
/// overflows for finite ranges (an input radius of 1e305 on 784 pixels gives a finite
/// allowance, not a spurious overflow error); the scaled ranges that underflow lose at
/// most `eta / 2` each, far inside the doubling's slack of `2^-64`.
///
/// `eta`: the smallest subnormal of the arithmetic (`2^-149` when the columns are f32,
/// whose products and conversions then underflow at f32's range).
fn underflow_allowance(products: usize, weights: &[ColumnWeight], eta: f64) -> f64 {
    const S: f64 = 1.0 / 18_446_744_073_709_551_616.0; // 2^-64, exact
    let w: f64 = S + weights.iter().map(|w| w.range() * S).sum::<f64>();
    // eta * 2^64: 2^-1010 for f64, exact.
    (2.0 * products as f64 * w * (eta * 18_446_744_073_709_551_616.0)).next_up()
}

/// Proven bounds of every row of one layer and an upper bound on each row's width (see
/// [`bounds_from_columns`]).
struct RowBounds {
    lower: Vec<f64>,
    upper: Vec<f64>,
    rho: Vec<f64>,
}

/// Algorithm 1's columns (all but `psi`), in one of the two forms of [`ColumnForm`].
enum Columns<T> {
    /// Column-major, `n x columns`.
    Dense(Vec<T>),
    /// Windows of a convolution's output layer.
    Local(LocalBatch<T>),
}

impl<T: Real> Columns<T> {
    fn scale_rows(&mut self, n: usize, d: &[f64]) {
        match self {
            Columns::Dense(m) => scale_rows(m, n, d),
            Columns::Local(batch) => batch.scale_rows(d),
        }
    }

    fn into_dense(self) -> Vec<T> {
        match self {
            Columns::Dense(m) => m,
            Columns::Local(batch) => {
                let mut m = vec![T::zero(); batch.n() * batch.len()];
                batch.to_dense(&mut m);
                m
            }
        }
    }

    fn bounds(
        &self,
        psi: &[f64],
        n: usize,
        weights: &[ColumnWeight],
        rem: &[f64],
        layer: usize,
    ) -> Result<RowBounds> {
        match self {
            Columns::Dense(m) => bounds_from_columns(psi, m, n, weights, rem, layer),
            Columns::Local(batch) => bounds_from_local(psi, batch, weights, rem, layer),
        }
    }
}

/// The new columns `d_j W e_j` of the unstable units, one per `n_out`-long chunk of `out`
/// (each entry `fl(d_j W_kj)`, then rounded to `T`; `out` holds zeros).
fn add_unit_columns<T: Real>(op: &LinearOp, unstable: &[usize], d: &[f64], out: &mut [T]) {
    let n = op.n_out().max(1);
    if let Some(out) = T::as_f64_mut(out) {
        for (col, &j) in out.chunks_mut(n).zip(unstable) {
            op.add_unit_column(j, d[j], col);
        }
        return;
    }
    let mut col64 = vec![0.0; n];
    for (col, &j) in out.chunks_mut(n).zip(unstable) {
        col64.fill(0.0);
        op.add_unit_column(j, d[j], &mut col64[..col.len()]);
        for (o, v) in col.iter_mut().zip(&col64) {
            *o = T::of(*v);
        }
    }
}

fn scale_rows<T: Real>(m: &mut [T], n: usize, d: &[f64]) {
    use rayon::prelude::*;
    if n == 0 {
        return;
    }
    m.par_chunks_mut(n).with_min_len(32).for_each(|col| {
        for (v, s) in col.iter_mut().zip(d) {
            *v = T::of(v.widen() * s);
        }
    });
}

/// Proven `l, u` of every row from the columns (see the module docs), and an upper
/// bound on each row's width `rho = sum_c w_c |M_kc|`: the floating-point value is
/// widened by the remainder `rem` and by the rounding of its own sum.
fn bounds_from_columns<T: Real>(
    psi: &[f64],
    m: &[T],
    n: usize,
    weights: &[ColumnWeight],
    rem: &[f64],
    layer: usize,
) -> Result<RowBounds> {
    use rayon::prelude::*;
    const ROWS: usize = 256;
    let mut lower = vec![0.0; n];
    let mut upper = vec![0.0; n];
    let mut rho = vec![0.0; n];
    lower
        .par_chunks_mut(ROWS)
        .zip(upper.par_chunks_mut(ROWS))
        .zip(rho.par_chunks_mut(ROWS))
        .enumerate()
        .for_each(|(chunk, ((lo, hi), rh))| {
            let start = chunk * ROWS;
            let len = lo.len();
            let mut abs_acc = vec![0.0; len];
            let mut lo_acc = vec![0.0; len];
            let mut hi_acc = vec![0.0; len];
            for (c, w) in weights.iter().enumerate() {
                let col = &m[c * n + start..c * n + start + len];
                match *w {
                    ColumnWeight::Input(r) => {
                        for (acc, v) in abs_acc.iter_mut().zip(col) {
                            *acc += r * v.widen().abs();
                        }
                    }
                    ColumnWeight::Unstable(l) => {
                        for ((a, b), v) in lo_acc.iter_mut().zip(hi_acc.iter_mut()).zip(col) {
                            *a += l * neg_part(v.widen());
                            *b -= l * pos_part(v.widen());
                        }
                    }
                }
            }
            let acc = Sums {
                abs: &abs_acc,
                lo: &lo_acc,
                hi: &hi_acc,
            };
            acc.finish(
                &psi[start..start + len],
                &rem[start..start + len],
                weights.len(),
                (lo, hi, rh),
            );
        });
    check_finite::<T>(&lower, &upper, n, layer)?;
    Ok(RowBounds { lower, upper, rho })
}

/// The three sums of the bound of every row: `abs = sum_inputs r |M_kc|` (>= 0),
/// `lo = sum_unstable l [-M_kc]_+` (<= 0), `hi = -sum_unstable l [M_kc]_+` (>= 0).
struct Sums<'a> {
    abs: &'a [f64],
    lo: &'a [f64],
    hi: &'a [f64],
}

impl Sums<'_> {
    /// Writes the proven `l, u` and the width bound `rho` of each row from its sums over
    /// `columns` columns (summed in any order: the bound `gamma_{columns + 4}` holds for
    /// every order of a recursive or pairwise sum).
    fn finish(
        &self,
        psi: &[f64],
        rem: &[f64],
        columns: usize,
        (lo, hi, rh): (&mut [f64], &mut [f64], &mut [f64]),
    ) {
        let sum_len = columns + 4;
        // error_bound(sum_len, m) with gamma computed once per call.
        let g_sum = gamma(sum_len) * (1.0 + 4.0 * UNIT_ROUNDOFF);
        let eta_sum = (sum_len as f64 + 1.0) * crate::rounding::ETA;
        let inflate_rho = 1.0 + gamma(sum_len);
        for k in 0..psi.len() {
            let p = psi[k];
            let r = rem[k];
            // Every term of abs and hi is >= 0 and of lo <= 0, so these accumulators are
            // (up to rounding) the sums of the terms' magnitudes.
            let width = self.abs[k] + self.hi[k] - self.lo[k];
            let e = (g_sum * (p.abs() + width) + eta_sum).next_up() + r;
            lo[k] = (p - self.abs[k] + self.lo[k] - e).next_down();
            hi[k] = (p + self.abs[k] + self.hi[k] + e).next_up();
            rh[k] = (width * inflate_rho).next_up();
        }
    }
}

/// As [`bounds_from_columns`] for local columns: each column adds its window's terms to
/// the rows it covers (per-thread sums over column chunks, then added: a sum of the same
/// terms in another order, covered by the same bound).
fn bounds_from_local<T: Real>(
    psi: &[f64],
    batch: &LocalBatch<T>,
    weights: &[ColumnWeight],
    rem: &[f64],
    layer: usize,
) -> Result<RowBounds> {
    use rayon::prelude::*;
    let n = batch.n();
    assert_eq!(weights.len(), batch.len(), "one weight per column");
    let zero = || (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let (abs_acc, lo_acc, hi_acc) = (0..batch.len())
        .into_par_iter()
        .with_min_len(64)
        .fold(zero, |(mut abs, mut lo, mut hi), c| {
            for (start, run) in batch.segments(c) {
                let end = start + run.len();
                match weights[c] {
                    ColumnWeight::Input(r) => {
                        for (acc, v) in abs[start..end].iter_mut().zip(run) {
                            *acc += r * v.widen().abs();
                        }
                    }
                    ColumnWeight::Unstable(l) => {
                        for ((a, b), v) in lo[start..end]
                            .iter_mut()
                            .zip(hi[start..end].iter_mut())
                            .zip(run)
                        {
                            *a += l * neg_part(v.widen());
                            *b -= l * pos_part(v.widen());
                        }
                    }
                }
            }
            (abs, lo, hi)
        })
        .reduce(zero, |(mut a1, mut l1, mut h1), (a2, l2, h2)| {
            for (x, y) in a1.iter_mut().zip(&a2) {
                *x += y;
            }
            for (x, y) in l1.iter_mut().zip(&l2) {
                *x += y;
            }
            for (x, y) in h1.iter_mut().zip(&h2) {
                *x += y;
            }
            (a1, l1, h1)
        });
    let (mut lower, mut upper, mut rho) = zero();
    let acc = Sums {
        abs: &abs_acc,
        lo: &lo_acc,
        hi: &hi_acc,
    };
    acc.finish(psi, rem, weights.len(), (&mut lower, &mut upper, &mut rho));
    check_finite::<T>(&lower, &upper, n, layer)?;
    Ok(RowBounds { lower, upper, rho })
}

/// `[v]_+`, keeping a NaN: `f64::max(v, 0.0)` returns 0 for a NaN, which would drop an
/// entry that overflowed (`inf - inf` in a product) from a bound instead of making the
/// bound NaN and then an overflow error.
#[inline]
fn pos_part(v: f64) -> f64 {
    if v > 0.0 {
        v
    } else {
        0.0 * v
    }
}

/// `[-v]_+`, keeping a NaN (see [`pos_part`]).
#[inline]
fn neg_part(v: f64) -> f64 {
    if v < 0.0 {
        -v
    } else {
        0.0 * v
    }
}

/// [`DualError::Overflow`] naming the first unit whose bound is not finite.
fn check_finite<T: Real>(lower: &[f64], upper: &[f64], n: usize, layer: usize) -> Result<()> {
    if let Some(k) = (0..n).find(|&k| !lower[k].is_finite() || !upper[k].is_finite()) {
        return Err(DualError::Overflow {
            layer,
            what: if T::EXACT_F64 {
                "Algorithm 1 bounds"
            } else {
                "Algorithm 1 bounds with f32 columns (f32's range ends at 3.4e38; f64 may succeed)"
            },
            detail: format!("unit {k} of {n} has bounds [{}, {}]", lower[k], upper[k]),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn precisions_parse_and_name_themselves() {
        for p in [Precision::F64, Precision::F32] {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
        }
        assert_eq!(Precision::default(), Precision::F64);
        assert!("f16".parse::<Precision>().unwrap_err().contains("f16"));
    }
    use super::*;

    /// The positive and negative parts are exact on finite values and keep a NaN (an
    /// overflowed column entry must poison the bound, not vanish from it).
    #[test]
    fn positive_and_negative_parts_keep_nan() {
        for (v, pos, neg) in [
            (2.5, 2.5, 0.0),
            (-1.5, 0.0, 1.5),
            (0.0, 0.0, 0.0),
            (-0.0, 0.0, 0.0),
        ] {
            assert_eq!(pos_part(v), pos, "[{v}]_+");
            assert_eq!(neg_part(v), neg, "[-{v}]_+");
        }
        assert!(pos_part(f64::NAN).is_nan() && neg_part(f64::NAN).is_nan());
        assert_eq!(pos_part(f64::INFINITY), f64::INFINITY);
        assert_eq!(neg_part(f64::NEG_INFINITY), f64::INFINITY);
        assert!(pos_part(f64::NEG_INFINITY).is_nan() && neg_part(f64::INFINITY).is_nan());
    }
}
