//! Linear operators of the affine layers (dense matrix, 2-D convolution, permutation) applied to
//! batches of columns, their transposes, and their columns `W e_j`.
//!
//! A batch is a column-major matrix stored in a slice: column `j` is the contiguous range
//! `[j * n, (j + 1) * n)` where `n` is the operator's input (or output) size. Every kernel
//! here is shared by the forward pass and the dual bound, so a model gives the same
//! numbers in every crate. Convolutions are computed as im2col + GEMM per image and
//! their transposes as GEMM + col2im; nothing is ever lowered to a dense matrix.

use rayon::prelude::*;

use crate::real::Real;

/// Columns per parallel task: small enough to spread over cores, large enough that
/// each GEMM call amortises its packing.
const MIN_COLS_PER_TASK: usize = 16;

/// `c = a * b + beta * c` for strided matrices (`m x k` times `k x n`), checked bounds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    (rsb, csb): (usize, usize),
    beta: T,
    c: &mut [T],
    (rsc, csc): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rs: usize, cs: usize, r: usize, cc: usize| (r - 1) * rs + (cc - 1) * cs;
    assert!(
        k == 0 || last(rsa, csa, m, k) < a.len(),
        "gemm: a out of bounds"
    );
    assert!(
        k == 0 || last(rsb, csb, k, n) < b.len(),
        "gemm: b out of bounds"
    );
    assert!(last(rsc, csc, m, n) < c.len(), "gemm: c out of bounds");
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                c[i * rsc + j * csc] *= beta;
            }
        }
        return;
    }
    match product_path(m, n, (rsa, csa)) {
        // The transposed product `c^T = b^T a^T` is the narrow one.
        Path::Transposed => gemm(n, k, m, b, (csb, rsb), a, (csa, rsa), beta, c, (csc, rsc)),
        Path::Narrow => narrow_gemm(m, k, n, a, (rsa, csa), b, (rsb, csb), beta, c, (rsc, csc)),
        // SAFETY: every index the kernel touches is below the asserted maxima above, and
        // the strides are non-negative, so all reads and writes stay inside the slices.
        Path::Packed => unsafe {
            T::packed_gemm(m, k, n, a, (rsa, csa), b, (rsb, csb), beta, c, (rsc, csc))
        },
    }
}

/// Products with at most this many columns (or rows) skip matrixmultiply: it packs the
/// whole of `a` for every call, which costs more than the product of a matrix with a
/// few vectors (the backward pass of one objective row, beta-CROWN's steps).
const NARROW: usize = 4;

/// How [`gemm`] computes a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// [`narrow_gemm`].
    Narrow,
    /// The transposed product (`m <= NARROW < n`), which is narrow.
    Transposed,
    /// matrixmultiply (packed panels).
    Packed,
}

/// The path of an `m x k` times `k x n` product with `a`'s strides `(rsa, csa)`.
fn product_path(m: usize, n: usize, (rsa, csa): (usize, usize)) -> Path {
    if n > NARROW && m <= NARROW {
        Path::Transposed
    } else if n <= NARROW && (csa == 1 || rsa == 1) {
        Path::Narrow
    } else {
        Path::Packed
    }
}

/// [`gemm`] for `n <= NARROW` columns and `a` with contiguous rows or columns, as dot
/// products of `a`'s rows with `b`'s columns, or sums of `a`'s columns scaled by `b`'s
/// entries (entries equal to 0 skipped: in exact arithmetic `0 * a` is 0 for the finite
/// stored weight `a`, so skipping it adds exactly 0, even where `a` rounded to f32 is inf). Each output is a sum of the same `k` products as in
/// any GEMM, in a different order: the rounding-error bounds of the callers (`gamma_k`
/// of the sum of absolute products) hold for every order.
#[allow(clippy::too_many_arguments)]
fn narrow_gemm<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    (rsb, csb): (usize, usize),
    beta: T,
    c: &mut [T],
    (rsc, csc): (usize, usize),
) {
    let zero = T::zero();
    let store = |c: &mut [T], i: usize, j: usize, v: T| {
        let e = &mut c[i * rsc + j * csc];
        *e = if beta == zero { v } else { v + beta * *e };
    };
    // b's columns, contiguous.
    let cols: Vec<T> = (0..n)
        .flat_map(|j| (0..k).map(move |p| b[p * rsb + j * csb]))
        .collect();
    if csa == 1 {
        for i in 0..m {
            let row = &a[i * rsa..i * rsa + k];
            for (j, col) in cols.chunks_exact(k).enumerate() {
                store(c, i, j, dot(row, col));
            }
        }
    } else {
        let mut acc = vec![zero; m];
        for (j, col) in cols.chunks_exact(k).enumerate() {
            acc.fill(zero);
            for (p, &s) in col.iter().enumerate() {
                if s != zero {
                    let column = &a[p * csa..p * csa + m];
                    for (t, &v) in acc.iter_mut().zip(column) {
                        *t += s * v;
                    }
                }
            }
            for (i, &v) in acc.iter().enumerate() {
                store(c, i, j, v);
            }
        }
    }
}

/// `x . y` in eight independent partial sums (so the compiler can vectorise it).
fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (u, v) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += u[l] * v[l];
        }
    }
    let tail: T = xr.iter().zip(yr).map(|(&u, &v)| u * v).sum();
    acc.iter().copied().sum::<T>() + tail
}

/// Geometry of a 2-D convolution over a channel-major image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl ConvGeometry {
    /// Output size of one spatial dimension, `None` if the kernel does not fit.
    pub fn out_dim(input: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
        let padded = input + 2 * padding;
        if stride == 0 || kernel == 0 || padded < kernel {
            None
        } else {
            Some((padded - kernel) / stride + 1)
        }
    }
    /// Values per input image.
    pub fn n_in(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }
    /// Values per output image.
    pub fn n_out(&self) -> usize {
        self.out_channels * self.out_h * self.out_w
    }
    /// Length of one patch (`in_channels * kernel_h * kernel_w`).
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel_h * self.kernel_w
    }
    /// Output pixels per channel.
    pub fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Fills `cols` (`out_pixels x patch`, patch-major) with the patches of `img`.
    fn im2col(&self, img: &[f64], cols: &mut [f64]) {
        let k = self.patch();
        let (s, p) = (self.stride as isize, self.padding as isize);
        for oy in 0..self.out_h {
            for ox in 0..self.out_w {
                let row = &mut cols[(oy * self.out_w + ox) * k..][..k];
                let mut idx = 0;
                for ci in 0..self.in_channels {
                    let plane = &img[ci * self.in_h * self.in_w..][..self.in_h * self.in_w];
                    for ky in 0..self.kernel_h {
                        let iy = oy as isize * s - p + ky as isize;
                        if iy < 0 || iy >= self.in_h as isize {
                            row[idx..idx + self.kernel_w].fill(0.0);
                            idx += self.kernel_w;
                            continue;
                        }
                        let line = &plane[iy as usize * self.in_w..][..self.in_w];
                        for kx in 0..self.kernel_w {
                            let ix = ox as isize * s - p + kx as isize;
                            row[idx] = if ix < 0 || ix >= self.in_w as isize {
                                0.0
                            } else {
                                line[ix as usize]
                            };
                            idx += 1;
                        }
                    }
                }
            }
        }
    }

    /// Adds the patches in `cols` back into `img` (the adjoint of `im2col`).
    fn col2im(&self, cols: &[f64], img: &mut [f64]) {
        let k = self.patch();
        let (s, p) = (self.stride as isize, self.padding as isize);
        for oy in 0..self.out_h {
            for ox in 0..self.out_w {
                let row = &cols[(oy * self.out_w + ox) * k..][..k];
                let mut idx = 0;
                for ci in 0..self.in_channels {
                    let plane = &mut img[ci * self.in_h * self.in_w..][..self.in_h * self.in_w];
                    for ky in 0..self.kernel_h {
                        let iy = oy as isize * s - p + ky as isize;
                        if iy < 0 || iy >= self.in_h as isize {
                            idx += self.kernel_w;
                            continue;
                        }
                        let line = &mut plane[iy as usize * self.in_w..][..self.in_w];
                        for kx in 0..self.kernel_w {
                            let ix = ox as isize * s - p + kx as isize;
                            if ix >= 0 && ix < self.in_w as isize {
                                line[ix as usize] += row[idx];
                            }
                            idx += 1;
                        }
                    }
                }
            }
        }
    }
}

/// The linear part `W` of an affine layer.
#[derive(Debug, Clone, PartialEq)]
pub enum LinearOp {
    /// A dense matrix, row-major `rows x cols` (`[out][in]`).
    Dense {
        weight: Vec<f64>,
        rows: usize,
        cols: usize,
    },
    /// A convolution; `weight` is `[out][in][kh][kw]` flattened row-major.
    Conv {
        weight: Vec<f64>,
        geom: ConvGeometry,
    },
    /// The identity on `n` values (a skip connection carried through a layer, or an
    /// affine map that follows another with no ReLU between; see [`crate::graph`]).
    Identity { n: usize },
    /// A permutation of the values: output `i` is input `src[i]` (`src` a permutation of
    /// `0..n`). A transpose of a tensor's axes (NHWC to NCHW and back, the ONNX
    /// `Transpose` that moves data); exact in floating point, like the identity.
    Permutation { src: Vec<usize> },
    /// A sum of operators on slices: output slice `[out_offset, out_offset + op.n_out)`
    /// receives `op` applied to input slice `[in_offset, in_offset + op.n_in)`, summed
    /// over the terms (a residual `Add` of two branches, a layer that also carries earlier
    /// values). Built by the graph lowering; terms are `Dense`, `Conv` or `Identity`.
    Block {
        n_in: usize,
        n_out: usize,
        terms: Vec<BlockTerm>,
    },
}

/// One term of a [`LinearOp::Block`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlockTerm {
    /// The operator (never itself a block).
    pub op: LinearOp,
    /// First input value the operator reads.
    pub in_offset: usize,
    /// First output value the operator adds into.
    pub out_offset: usize,
}

/// A block's `W x` (`transpose` false: `x` has `n_src = n_in` rows) or `W^T y` (true:
/// `n_src = n_out`), over `ncols` columns: each term's slice of the source through its
/// operator (or its transpose), added into its slice of `out`. A copy term (a skip) adds
/// its slice directly, with the same sums as copying it first.
fn block_apply(
    terms: &[BlockTerm],
    src: &[f64],
    n_src: usize,
    out: &mut [f64],
    n_dst: usize,
    ncols: usize,
    transpose: bool,
) {
    out.fill(0.0);
    for t in terms {
        let (mut from, mut to) = (t.in_offset, t.out_offset);
        let (mut len_from, mut len_to) = (t.op.n_in(), t.op.n_out());
        if transpose {
            (from, to, len_from, len_to) = (to, from, len_to, len_from);
        }
        if let LinearOp::Identity { n } = t.op {
            add_rows(src, n_src, from, out, n_dst, to, n, ncols);
            continue;
        }
        let xs = gather(src, n_src, from, len_from, ncols);
        let mut ys = vec![0.0; len_to * ncols];
        if transpose {
            t.op.apply_transpose(&xs, ncols, &mut ys);
        } else {
            t.op.apply(&xs, ncols, &mut ys);
        }
        add_rows(&ys, len_to, 0, out, n_dst, to, len_to, ncols);
    }
}

/// Copies rows `[off, off + len)` of every column of a column-major batch.
fn gather(x: &[f64], n: usize, off: usize, len: usize, ncols: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(len * ncols);
    for c in 0..ncols {
        out.extend_from_slice(&x[c * n + off..c * n + off + len]);
    }
    out
}

/// Adds rows `[from, from + len)` of every column of `src` (`n_src` rows per column) into
/// rows `[to, to + len)` of the same column of `out` (`n_dst` rows per column).
#[allow(clippy::too_many_arguments)]
fn add_rows(
    src: &[f64],
    n_src: usize,
    from: usize,
    out: &mut [f64],
    n_dst: usize,
    to: usize,
    len: usize,
    ncols: usize,
) {
    for c in 0..ncols {
        for (o, v) in out[c * n_dst + to..c * n_dst + to + len]
            .iter_mut()
            .zip(&src[c * n_src + from..c * n_src + from + len])
        {
            *o += v;
        }
    }
}

impl LinearOp {
    /// The [`LinearOp::Permutation`] that transposes a row-major tensor of dimensions
    /// `dims` (`[c, h, w]`): output axis `i` is input axis `perm[i]`, so the output has
    /// dimensions `perm.map(|p| dims[p])`. `None` when `perm` is not a permutation of
    /// `[0, 1, 2]`.
    pub fn transpose(dims: [usize; 3], perm: [usize; 3]) -> Option<LinearOp> {
        let mut seen = [false; 3];
        for &p in &perm {
            if p > 2 || std::mem::replace(&mut seen[p], true) {
                return None;
            }
        }
        let strides = [dims[1] * dims[2], dims[2], 1];
        let (od, os) = (perm.map(|p| dims[p]), perm.map(|p| strides[p]));
        // Output (a, b, e), row-major over `od`, reads input a*os0 + b*os1 + e*os2.
        let mut src = Vec::with_capacity(od.iter().product());
        for a in 0..od[0] {
            for b in 0..od[1] {
                for e in 0..od[2] {
                    src.push(a * os[0] + b * os[1] + e * os[2]);
                }
            }
        }
        Some(LinearOp::Permutation { src })
    }

    /// Input size (values per column).
    pub fn n_in(&self) -> usize {
        match self {
            LinearOp::Dense { cols, .. } => *cols,
            LinearOp::Conv { geom, .. } => geom.n_in(),
            LinearOp::Identity { n } => *n,
            LinearOp::Permutation { src } => src.len(),
            LinearOp::Block { n_in, .. } => *n_in,
        }
    }

    /// Output size (values per column).
    pub fn n_out(&self) -> usize {
        match self {
            LinearOp::Dense { rows, .. } => *rows,
            LinearOp::Conv { geom, .. } => geom.n_out(),
            LinearOp::Identity { n } => *n,
            LinearOp::Permutation { src } => src.len(),
            LinearOp::Block { n_out, .. } => *n_out,
        }
    }

    /// The weights, flattened row-major (empty for the identity, a permutation (its
    /// weights are ones) and a block, whose weights are its terms').
    pub fn weight(&self) -> &[f64] {
        match self {
            LinearOp::Dense { weight, .. } | LinearOp::Conv { weight, .. } => weight,
            LinearOp::Identity { .. } | LinearOp::Permutation { .. } | LinearOp::Block { .. } => {
                &[]
            }
        }
    }

    /// Multiply-adds of applying the operator to one column.
    pub fn macs_per_column(&self) -> usize {
        match self {
            LinearOp::Dense { rows, cols, .. } => rows * cols,
            LinearOp::Conv { geom, .. } => geom.out_pixels() * geom.patch() * geom.out_channels,
            LinearOp::Identity { n } => *n,
            LinearOp::Permutation { src } => src.len(),
            LinearOp::Block { terms, .. } => terms.iter().map(|t| t.op.macs_per_column()).sum(),
        }
    }

    /// An upper bound on the floating-point operations (products and additions) that
    /// make one entry of `W x` as [`LinearOp::apply`] computes it: the `n` of the error
    /// bound `gamma_n` (dense and conv: the input size, as the error analyses of the
    /// `dual` crate have always used; a block: its input size plus its terms' counts plus
    /// one addition each, so never below the input size either).
    pub fn dot_len(&self) -> usize {
        match self {
            LinearOp::Dense { .. } | LinearOp::Conv { .. } => self.n_in(),
            LinearOp::Identity { .. } | LinearOp::Permutation { .. } => 1,
            LinearOp::Block { n_in, terms, .. } => {
                n_in + terms.iter().map(|t| t.op.dot_len() + 1).sum::<usize>()
            }
        }
    }

    /// The same for one entry of `W^T y` ([`LinearOp::apply_transpose`]): dense, the
    /// rows; conv, `out_channels * kernel_h * kernel_w`; a block, its output size plus its
    /// terms' counts plus one each).
    pub fn dot_len_t(&self) -> usize {
        match self {
            LinearOp::Dense { rows, .. } => *rows,
            LinearOp::Conv { geom: g, .. } => g.out_channels * g.kernel_h * g.kernel_w,
            LinearOp::Identity { .. } | LinearOp::Permutation { .. } => 1,
            LinearOp::Block { n_out, terms, .. } => {
                n_out + terms.iter().map(|t| t.op.dot_len_t() + 1).sum::<usize>()
            }
        }
    }

    /// The same operator with every weight replaced by its absolute value (`|W|`), used
    /// to push interval radii.
    pub fn abs(&self) -> LinearOp {
        match self {
            LinearOp::Dense { weight, rows, cols } => LinearOp::Dense {
                weight: weight.iter().map(|w| w.abs()).collect(),
                rows: *rows,
                cols: *cols,
            },
            LinearOp::Conv { weight, geom } => LinearOp::Conv {
                weight: weight.iter().map(|w| w.abs()).collect(),
                geom: *geom,
            },
            LinearOp::Identity { n } => LinearOp::Identity { n: *n },
            LinearOp::Permutation { src } => LinearOp::Permutation { src: src.clone() },
            LinearOp::Block { n_in, n_out, terms } => LinearOp::Block {
                n_in: *n_in,
                n_out: *n_out,
                terms: terms
                    .iter()
                    .map(|t| BlockTerm {
                        op: t.op.abs(),
                        in_offset: t.in_offset,
                        out_offset: t.out_offset,
                    })
                    .collect(),
            },
        }
    }

    /// `out = W x` for `ncols` columns (`x`: `n_in x ncols`, `out`: `n_out x ncols`).
    pub fn apply(&self, x: &[f64], ncols: usize, out: &mut [f64]) {
        let (ni, no) = (self.n_in(), self.n_out());
        assert_eq!(x.len(), ni * ncols, "apply: input batch size");
        assert_eq!(out.len(), no * ncols, "apply: output batch size");
        match self {
            LinearOp::Dense { weight, rows, cols } => {
                for_column_chunks(x, ni, out, no, ncols, |xc, oc, n| {
                    gemm(
                        *rows,
                        *cols,
                        n,
                        weight,
                        (*cols, 1),
                        xc,
                        (1, ni),
                        0.0,
                        oc,
                        (1, no),
                    );
                });
            }
            LinearOp::Conv { weight, geom } => {
                let (pix, k) = (geom.out_pixels(), geom.patch());
                out.par_chunks_mut(no)
                    .zip(x.par_chunks(ni))
                    .with_min_len(4)
                    .for_each_init(
                        || vec![0.0; pix * k],
                        |cols, (o, xi)| {
                            geom.im2col(xi, cols);
                            // out[c * pix + p] = sum_k cols[p * k + kk] * w[c * k + kk]
                            gemm(
                                pix,
                                k,
                                geom.out_channels,
                                cols,
                                (k, 1),
                                weight,
                                (1, k),
                                0.0,
                                o,
                                (1, pix),
                            );
                        },
                    );
            }
            LinearOp::Identity { .. } => out.copy_from_slice(x),
            LinearOp::Permutation { src } => {
                for (o, xc) in out.chunks_exact_mut(no).zip(x.chunks_exact(ni)) {
                    for (v, &j) in o.iter_mut().zip(src) {
                        *v = xc[j];
                    }
                }
            }
            LinearOp::Block { terms, .. } => block_apply(terms, x, ni, out, no, ncols, false),
        }
    }

    /// `out = W x` for columns stored as `T` (see [`Real`]): [`LinearOp::apply`] itself for
    /// f64; for f32 a dense matrix is rounded to f32 and multiplied in f32 (each entry a
    /// sum of `dot_len` products of the f32 weights, rounded with f32's unit roundoff),
    /// and every other operator is applied in f64 to the exact f64 values of the columns
    /// and its results rounded to f32 once. Either way each entry of `out` is within
    /// `gamma_{dot_len + 2} (|W| |x|)_k + (dot_len + 1) eta` of the exact product for
    /// `T`'s `u` and `eta` (the `+ 2`: the rounding of `W` to `T`, the final rounding).
    pub fn apply_as<T: Real>(&self, x: &[T], ncols: usize, out: &mut [T]) {
        if let (Some(x), Some(out)) = (T::as_f64(x), T::as_f64_mut(out)) {
            return self.apply(x, ncols, out);
        }
        let (ni, no) = (self.n_in(), self.n_out());
        assert_eq!(x.len(), ni * ncols, "apply_as: input batch size");
        assert_eq!(out.len(), no * ncols, "apply_as: output batch size");
        match self {
            LinearOp::Dense { weight, rows, cols } => {
                let w: Vec<T> = weight.iter().map(|&v| T::of(v)).collect();
                for_column_chunks(x, ni, out, no, ncols, |xc, oc, n| {
                    gemm(
                        *rows,
                        *cols,
                        n,
                        &w,
                        (*cols, 1),
                        xc,
                        (1, ni),
                        T::zero(),
                        oc,
                        (1, no),
                    );
                });
            }
            _ => {
                let x64: Vec<f64> = x.iter().map(|v| v.widen()).collect();
                let mut o64 = vec![0.0; out.len()];
                self.apply(&x64, ncols, &mut o64);
                for (o, v) in out.iter_mut().zip(&o64) {
                    *o = T::of(*v);
                }
            }
        }
    }

    /// `out = W^T y` for `ncols` columns (`y`: `n_out x ncols`, `out`: `n_in x ncols`).
    /// For a strided convolution this is the transposed convolution whose output has
    /// exactly the input's shape (the "output padding" is implied by the geometry).
    pub fn apply_transpose(&self, y: &[f64], ncols: usize, out: &mut [f64]) {
        let (ni, no) = (self.n_in(), self.n_out());
        assert_eq!(y.len(), no * ncols, "apply_transpose: input batch size");
        assert_eq!(out.len(), ni * ncols, "apply_transpose: output batch size");
        match self {
            LinearOp::Dense { weight, rows, cols } => {
                for_column_chunks(y, no, out, ni, ncols, |yc, oc, n| {
                    gemm(
                        *cols,
                        *rows,
                        n,
                        weight,
                        (1, *cols),
                        yc,
                        (1, no),
                        0.0,
                        oc,
                        (1, ni),
                    );
                });
            }
            LinearOp::Conv { weight, geom } => {
                let (pix, k) = (geom.out_pixels(), geom.patch());
                out.par_chunks_mut(ni)
                    .zip(y.par_chunks(no))
                    .with_min_len(4)
                    .for_each_init(
                        || vec![0.0; pix * k],
                        |cols, (o, yi)| {
                            // cols[p * k + kk] = sum_c y[c * pix + p] * w[c * k + kk]
                            gemm(
                                pix,
                                geom.out_channels,
                                k,
                                yi,
                                (1, pix),
                                weight,
                                (k, 1),
                                0.0,
                                cols,
                                (k, 1),
                            );
                            o.fill(0.0);
                            geom.col2im(cols, o);
                        },
                    );
            }
            LinearOp::Identity { .. } => out.copy_from_slice(y),
            LinearOp::Permutation { src } => {
                for (o, yc) in out.chunks_exact_mut(ni).zip(y.chunks_exact(no)) {
                    for (&v, &j) in yc.iter().zip(src) {
                        o[j] = v;
                    }
                }
            }
            LinearOp::Block { terms, .. } => block_apply(terms, y, no, out, ni, ncols, true),
        }
    }

    /// Calls `f(j, W_kj)` for every input `j` that output `k` reads (a dense row: all of
    /// them; a convolution row: the kernel's taps inside the image, padding skipped).
    pub fn for_each_in_row(&self, k: usize, mut f: impl FnMut(usize, f64)) {
        self.row_dyn(k, &mut f);
    }

    fn row_dyn(&self, k: usize, f: &mut dyn FnMut(usize, f64)) {
        match self {
            LinearOp::Dense { weight, cols, .. } => {
                for (j, &w) in weight[k * cols..(k + 1) * cols].iter().enumerate() {
                    f(j, w);
                }
            }
            LinearOp::Conv { weight, geom: g } => {
                let (pix, kk) = (g.out_pixels(), g.patch());
                let (co, p) = (k / pix, k % pix);
                let (oy, ox) = (p / g.out_w, p % g.out_w);
                for ci in 0..g.in_channels {
                    for ky in 0..g.kernel_h {
                        let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                        if iy < 0 || iy >= g.in_h as isize {
                            continue;
                        }
                        for kx in 0..g.kernel_w {
                            let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                            if ix < 0 || ix >= g.in_w as isize {
                                continue;
                            }
                            let j = (ci * g.in_h + iy as usize) * g.in_w + ix as usize;
                            f(
                                j,
                                weight[co * kk + (ci * g.kernel_h + ky) * g.kernel_w + kx],
                            );
                        }
                    }
                }
            }
            LinearOp::Identity { .. } => f(k, 1.0),
            LinearOp::Permutation { src } => f(src[k], 1.0),
            LinearOp::Block { terms, .. } => {
                // A row may read one input through two terms (`x + W x`): `f` is then
                // called once per term, and callers add the weights.
                for t in terms {
                    if (t.out_offset..t.out_offset + t.op.n_out()).contains(&k) {
                        t.op.row_dyn(k - t.out_offset, &mut |j, w| f(j + t.in_offset, w));
                    }
                }
            }
        }
    }

    /// `out += scale * W e_unit`: the operator's column for one input unit, written
    /// without touching the other units (a convolution's column is sparse).
    pub fn add_unit_column(&self, unit: usize, scale: f64, out: &mut [f64]) {
        match self {
            LinearOp::Dense { weight, rows, cols } => {
                for (r, o) in out.iter_mut().enumerate().take(*rows) {
                    *o += scale * weight[r * cols + unit];
                }
            }
            LinearOp::Conv { weight, geom } => {
                let plane = geom.in_h * geom.in_w;
                let (ci, rem) = (unit / plane, unit % plane);
                let (iy, ix) = (rem / geom.in_w, rem % geom.in_w);
                let (pix, k) = (geom.out_pixels(), geom.patch());
                for ky in 0..geom.kernel_h {
                    let ty = iy + geom.padding;
                    if ty < ky || (ty - ky) % geom.stride != 0 {
                        continue;
                    }
                    let oy = (ty - ky) / geom.stride;
                    if oy >= geom.out_h {
                        continue;
                    }
                    for kx in 0..geom.kernel_w {
                        let tx = ix + geom.padding;
                        if tx < kx || (tx - kx) % geom.stride != 0 {
                            continue;
                        }
                        let ox = (tx - kx) / geom.stride;
                        if ox >= geom.out_w {
                            continue;
                        }
                        let kk = (ci * geom.kernel_h + ky) * geom.kernel_w + kx;
                        let p = oy * geom.out_w + ox;
                        for c in 0..geom.out_channels {
                            out[c * pix + p] += scale * weight[c * k + kk];
                        }
                    }
                }
            }
            LinearOp::Identity { .. } => out[unit] += scale,
            LinearOp::Permutation { src } => {
                // The one output that reads `unit` (a linear search: this is not on any
                // bound's hot path).
                if let Some(i) = src.iter().position(|&j| j == unit) {
                    out[i] += scale;
                }
            }
            LinearOp::Block { terms, .. } => {
                for t in terms {
                    if (t.in_offset..t.in_offset + t.op.n_in()).contains(&unit) {
                        let n = t.op.n_out();
                        t.op.add_unit_column(
                            unit - t.in_offset,
                            scale,
                            &mut out[t.out_offset..t.out_offset + n],
                        );
                    }
                }
            }
        }
    }
}

/// Runs `f(x_chunk, out_chunk, ncols_in_chunk)` over column chunks in parallel.
fn for_column_chunks<T: Real, F>(x: &[T], ni: usize, out: &mut [T], no: usize, ncols: usize, f: F)
where
    F: Fn(&[T], &mut [T], usize) + Sync,
{
    let threads = rayon::current_num_threads().max(1);
    let per = ncols.div_ceil(threads).max(MIN_COLS_PER_TASK);
    if per >= ncols || ni == 0 || no == 0 {
        f(x, out, ncols);
        return;
    }
    out.par_chunks_mut(no * per)
        .zip(x.par_chunks(ni * per))
        .for_each(|(oc, xc)| f(xc, oc, xc.len() / ni));
}

#[cfg(test)]
mod tests {
    use super::gemm;

    /// `c = a b` for row-major `a` (2 x 3), `b` (3 x 2), `c` (2 x 2).
    fn product(a: &[f64], b: &[f64], c: &mut [f64]) {
        gemm(2, 3, 2, a, (3, 1), b, (2, 1), 0.0, c, (2, 1));
    }

    #[test]
    fn gemm_multiplies_and_scales() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut c = [9.0; 4];
        product(&a, &b, &mut c);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
        // k = 0: c = beta c, no product; row- and column-major output alike.
        let mut c = [1.0, 2.0, 3.0, 4.0];
        gemm(2, 0, 2, &[], (0, 1), &[], (2, 1), 3.0, &mut c, (2, 1));
        assert_eq!(c, [3.0, 6.0, 9.0, 12.0]);
        let mut c = [1.0, 2.0, 3.0, 4.0];
        gemm(2, 0, 2, &[], (0, 1), &[], (2, 1), 3.0, &mut c, (1, 2));
        assert_eq!(c, [3.0, 6.0, 9.0, 12.0]);
        // Empty outputs touch nothing, whatever the other sizes.
        gemm(0, 3, 2, &[], (3, 1), &b, (2, 1), 0.0, &mut [], (2, 1));
        gemm(2, 3, 0, &a, (3, 1), &[], (2, 1), 0.0, &mut [], (2, 1));
    }

    #[test]
    #[should_panic(expected = "gemm: a out of bounds")]
    fn gemm_refuses_a_short_left_factor() {
        product(&[1.0; 5], &[1.0; 6], &mut [0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "gemm: b out of bounds")]
    fn gemm_refuses_a_short_right_factor() {
        product(&[1.0; 6], &[1.0; 5], &mut [0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "gemm: c out of bounds")]
    fn gemm_refuses_a_short_output() {
        product(&[1.0; 6], &[1.0; 6], &mut [0.0; 3]);
    }

    #[test]
    #[should_panic(expected = "gemm: c out of bounds")]
    fn gemm_refuses_a_short_column_major_output() {
        gemm(
            2,
            3,
            2,
            &[1.0; 6],
            (3, 1),
            &[1.0; 6],
            (2, 1),
            0.0,
            &mut [0.0; 3],
            (1, 2),
        );
    }

    /// Narrow products (at most `NARROW` columns or rows: dot products or column sums
    /// instead of matrixmultiply) agree with a plain triple loop on every layout of `a`,
    /// `b` and `c`, with `beta = 0` (the old `c`, NaN here, never read) and `beta != 0`,
    /// zeros in `b` included; and on both sides of the threshold.
    #[test]
    fn narrow_products_agree_with_the_definition() {
        let val = |i: usize| ((i * 7919 % 23) as f64 - 11.0) / 3.0;
        for (m, k, n) in [
            (7, 19, 1),
            (7, 19, 3),
            (7, 19, 4),
            (7, 19, 5),
            (3, 19, 9),
            (1, 5, 1),
            (9, 33, 4),
            (4, 2, 4),
        ] {
            // b with zeros (a third of its entries).
            let a: Vec<f64> = (0..m * k).map(val).collect();
            let b: Vec<f64> = (0..k * n)
                .map(|i| if i % 3 == 1 { 0.0 } else { val(i + 5) })
                .collect();
            // a[i][p], b[p][j] in the row-major index used to fill them.
            let want =
                |i: usize, j: usize| (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f64>();
            for a_rows in [true, false] {
                let (a_buf, sa) = if a_rows {
                    (a.clone(), (k, 1))
                } else {
                    (
                        (0..m * k)
                            .map(|q| a[(q % m) * k + q / m])
                            .collect::<Vec<_>>(),
                        (1, m),
                    )
                };
                for b_rows in [true, false] {
                    let (b_buf, sb) = if b_rows {
                        (b.clone(), (n, 1))
                    } else {
                        (
                            (0..k * n)
                                .map(|q| b[(q % k) * n + q / k])
                                .collect::<Vec<_>>(),
                            (1, k),
                        )
                    };
                    for (sc, beta) in [((n, 1), 0.0), ((1, m), 0.0), ((n, 1), 0.5), ((1, m), -2.0)]
                    {
                        let mut c = vec![if beta == 0.0 { f64::NAN } else { 1.5 }; m * n];
                        gemm(m, k, n, &a_buf, sa, &b_buf, sb, beta, &mut c, sc);
                        for i in 0..m {
                            for j in 0..n {
                                let old = if beta == 0.0 { 0.0 } else { beta * 1.5 };
                                let (got, w) = (c[i * sc.0 + j * sc.1], want(i, j) + old);
                                assert!(
                                    (got - w).abs() <= 1e-12 * (1.0 + w.abs()),
                                    "{m}x{k}x{n} a_rows {a_rows} b_rows {b_rows} c {sc:?} beta {beta}: ({i},{j}) {got} vs {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Which products skip matrixmultiply: at most `NARROW` (4) columns with `a`'s rows
    /// or columns contiguous; at most 4 rows with more columns by the transpose.
    #[test]
    fn narrow_products_take_the_narrow_path() {
        use super::{product_path, Path};
        assert_eq!(product_path(7, 4, (19, 1)), Path::Narrow);
        assert_eq!(product_path(7, 1, (1, 7)), Path::Narrow);
        assert_eq!(product_path(7, 4, (2, 38)), Path::Packed);
        assert_eq!(product_path(7, 5, (19, 1)), Path::Packed);
        assert_eq!(product_path(5, 5, (1, 5)), Path::Packed);
        assert_eq!(product_path(4, 5, (19, 1)), Path::Transposed);
        assert_eq!(product_path(4, 4, (2, 38)), Path::Packed);
    }

    /// `gemm` computes each product with the kernel its path names, bit for bit. The
    /// kernels sum in different orders, and the data tell them apart: a row (or column)
    /// `[1e16, 1 x 7, -1e16, 1 x 7]` times ones is 14 by the narrow dot product (eight
    /// partial sums: the large terms cancel in one of them) and 7 by a sequential sum (the
    /// ones added to 1e16 are rounded away).
    #[test]
    fn gemm_runs_the_kernel_its_path_names() {
        use super::{product_path, Path};
        let k = 16;
        let cancelling = |q: usize| match q % k {
            0 => 1e16,
            8 => -1e16,
            _ => 1.0,
        };
        // Narrow: 5 x 16 times 16 x 3, `a` row-major with the cancelling rows.
        let (m, n) = (5, 3);
        let a: Vec<f64> = (0..m * k).map(cancelling).collect();
        assert_eq!(product_path(m, n, (k, 1)), Path::Narrow);
        let mut c = vec![0.0; m * n];
        gemm(
            m,
            k,
            n,
            &a,
            (k, 1),
            &vec![1.0; k * n],
            (n, 1),
            0.0,
            &mut c,
            (n, 1),
        );
        assert!(c.iter().all(|&v| v == 14.0), "narrow: {c:?}");
        // Packed: the same `a` times 16 x 6 ones, as matrixmultiply computes it.
        let n = 6;
        let b = vec![1.0; k * n];
        assert_eq!(product_path(m, n, (k, 1)), Path::Packed);
        let (mut c, mut want) = (vec![0.0; m * n], vec![0.0; m * n]);
        gemm(m, k, n, &a, (k, 1), &b, (n, 1), 0.0, &mut c, (n, 1));
        // SAFETY: a is m x k, b is k x n, want is m x n, all row-major and full length.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                want.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&c), bits(&want), "packed: {c:?} vs {want:?}");
        // Transposed: 3 x 16 ones times 16 x 6, `b` column-major with the cancelling
        // columns: the narrow dot products of the transposed product.
        let m = 3;
        let b: Vec<f64> = (0..k * n).map(cancelling).collect();
        assert_eq!(product_path(m, n, (k, 1)), Path::Transposed);
        let mut c = vec![0.0; m * n];
        gemm(
            m,
            k,
            n,
            &vec![1.0; m * k],
            (k, 1),
            &b,
            (1, k),
            0.0,
            &mut c,
            (n, 1),
        );
        assert!(c.iter().all(|&v| v == 14.0), "transposed: {c:?}");
    }

    /// Operators with no inputs or no outputs (constructible, though no model has
    /// them) apply to many columns without splitting empty chunks.
    #[test]
    fn empty_operators_apply() {
        use super::LinearOp;
        let no_inputs = LinearOp::Dense {
            weight: vec![],
            rows: 2,
            cols: 0,
        };
        let mut out = vec![7.0; 2 * 100];
        no_inputs.apply(&[], 100, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        let no_outputs = LinearOp::Dense {
            weight: vec![],
            rows: 0,
            cols: 3,
        };
        no_outputs.apply(&[1.0; 300], 100, &mut []);
    }
}
