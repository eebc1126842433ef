//! The convolutions of [`crate::TensorNet`] on the CPU as im2col + GEMM, forward and
//! backward, as candle custom ops.
//!
//! Why: candle 0.11 computes the input gradient of `conv2d` on the CPU with
//! `conv_transpose2d`, a direct loop parallel over output channels only, and the dual's
//! tensor program convolves tens of thousands of columns per step; these ops turn every
//! direction into one GEMM per image, images spread over the rayon pool (README,
//! *Training benchmark*, before/after).
//!
//! Shapes: input `x` `[N, C, H, W]`, kernel `w` `[O, C, kh, kw]`, output `y`
//! `[N, O, OH, OW]` with `OH = (H + 2 pad - kh) / stride + 1` (likewise `OW`); zero
//! padding, dilation 1, one group, no bias (the caller adds it). Per image, `cols_n` is
//! `[K, P]` with `K = C kh kw` in the kernel's own flattening and `P = OH OW`:
//!
//! * forward: `y_n = W cols_n` (`W` the kernel as `[O, K]`);
//! * input gradient (also the transposed convolution `W^T`): `dx_n = col2im(W^T dy_n)`;
//! * kernel gradient: `dW = sum_n dy_n cols_n^T`, summed per chunk of images, then
//!   across chunks.
//!
//! f32 and f64, contiguous tensors (the wrappers make them so). The result equals
//! candle's `conv2d` / `conv_transpose2d` up to the order of the additions (tests: to
//! 1e-12 relative in f64, gradients included). Other devices (CUDA) keep candle's own
//! kernels: [`crate::TensorNet`] chooses.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// The geometry of one convolution (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// The geometry of `x` (`[N, C, H, W]`) convolved with `w` (`[O, C, kh, kw]`).
    /// Errors: ranks other than 4, channel counts that differ, a zero stride, a kernel
    /// larger than the padded input.
    pub(crate) fn new(
        x: &[usize],
        w: &[usize],
        stride: usize,
        pad: usize,
    ) -> candle_core::Result<Geom> {
        let bad = |msg: String| candle_core::Error::Msg(format!("conv2d (im2col + GEMM): {msg}"));
        let (&[_, c, h, wd], &[o, wc, kh, kw]) = (x, w) else {
            return Err(bad(format!(
                "input {x:?} and kernel {w:?} must both have rank 4"
            )));
        };
        if c != wc || stride == 0 || kh > h + 2 * pad || kw > wd + 2 * pad {
            return Err(bad(format!(
                "input {x:?}, kernel {w:?}, stride {stride}, padding {pad}: channels must agree, the stride be positive and the kernel fit the padded input"
            )));
        }
        Ok(Geom {
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            stride,
            pad,
            oh: (h + 2 * pad - kh) / stride + 1,
            ow: (wd + 2 * pad - kw) / stride + 1,
        })
    }
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    fn out_len(&self) -> usize {
        self.o * self.p()
    }
}

/// The element types the ops run in, with their GEMM (`matrixmultiply`).
trait Elem: Copy + Send + Sync + Default + std::ops::AddAssign + 'static {
    /// `C = A B + beta C` with `A` `[m, k]`, `B` `[k, n]`, `C` `[m, n]` given by row and
    /// column strides.
    ///
    /// # Safety
    /// The pointers and strides must address valid, non-overlapping (for `C`) memory.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        beta: Self,
        c: (*mut Self, isize, isize),
    );
    fn one() -> Self;
}

/// `Elem` for one float type and its `matrixmultiply` GEMM.
macro_rules! elem {
    ($t:ty, $gemm:path) => {
        impl Elem for $t {
            unsafe fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: (*const $t, isize, isize),
                b: (*const $t, isize, isize),
                beta: $t,
                c: (*mut $t, isize, isize),
            ) {
                // SAFETY: forwarded from the caller.
                unsafe {
                    $gemm(
                        m, k, n, 1.0, a.0, a.1, a.2, b.0, b.1, b.2, beta, c.0, c.1, c.2,
                    )
                }
            }
            fn one() -> $t {
                1.0
            }
        }
    };
}
elem!(f32, matrixmultiply::sgemm);
elem!(f64, matrixmultiply::dgemm);

/// `C [m, n] = A [m, k] B [k, n] + beta C` on row-major slices, `A` or `B` optionally
/// read transposed (`ta`, `tb`: the slice holds the transpose, row-major).
#[allow(clippy::too_many_arguments)]
fn gemm<T: Elem>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    ta: bool,
    b: &[T],
    tb: bool,
    beta: T,
    c: &mut [T],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let sa = if ta { (1, m as isize) } else { (k as isize, 1) };
    let sb = if tb { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the lengths are checked above; `c` is a unique borrow.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            (a.as_ptr(), sa.0, sa.1),
            (b.as_ptr(), sb.0, sb.1),
            beta,
            (c.as_mut_ptr(), n as isize, 1),
        )
    }
}

/// The input position read by output position `o` at kernel offset `k`, if inside.
fn tap(o: usize, k: usize, g: &Geom, len: usize) -> Option<usize> {
    (o * g.stride + k).checked_sub(g.pad).filter(|&i| i < len)
}

/// Visits every output row of `cols` (`[K, P]`, each kernel tap `(c, ky, kx)` by output
/// row `oy`): `f(start, kx, image_row)` with the row's start in `cols` and the start of
/// the image row `(c, iy)` it reads, `None` where `iy` falls in the padding.
fn for_each_row(g: &Geom, mut f: impl FnMut(usize, usize, Option<usize>)) {
    for c in 0..g.c {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = ((c * g.kh + ky) * g.kw + kx) * g.p();
                for oy in 0..g.oh {
                    let image_row = tap(oy, ky, g, g.h).map(|iy| (c * g.h + iy) * g.w);
                    f(row + oy * g.ow, kx, image_row);
                }
            }
        }
    }
}

/// `cols` (`[K, P]`) of one image `x` (`[C, H, W]`).
fn im2col<T: Elem>(g: &Geom, x: &[T], cols: &mut [T]) {
    for_each_row(g, |start, kx, image_row| {
        let dst = &mut cols[start..start + g.ow];
        match image_row {
            None => dst.fill(T::default()),
            Some(r) => {
                let src = &x[r..r + g.w];
                for (ox, d) in dst.iter_mut().enumerate() {
                    *d = tap(ox, kx, g, g.w).map_or(T::default(), |ix| src[ix]);
                }
            }
        }
    });
}

/// Adds `cols` (`[K, P]`) back onto one image `x` (`[C, H, W]`): the adjoint of
/// [`im2col`].
fn col2im<T: Elem>(g: &Geom, cols: &[T], x: &mut [T]) {
    for_each_row(g, |start, kx, image_row| {
        let Some(r) = image_row else { return };
        let dst = &mut x[r..r + g.w];
        for (ox, &s) in cols[start..start + g.ow].iter().enumerate() {
            if let Some(ix) = tap(ox, kx, g, g.w) {
                dst[ix] += s;
            }
        }
    });
}

/// `y` (`[N, O, P]`) of `x` (`[N, C, H, W]`) and the kernel `w` (`[O, K]`).
fn forward<T: Elem>(g: &Geom, x: &[T], w: &[T]) -> Vec<T> {
    let mut y = vec![T::default(); x.len() / g.in_len() * g.out_len()];
    y.par_chunks_mut(g.out_len())
        .zip(x.par_chunks(g.in_len()))
        .for_each_init(
            || vec![T::default(); g.k() * g.p()],
            |cols, (yn, xn)| {
                im2col(g, xn, cols);
                gemm(g.o, g.k(), g.p(), w, false, cols, false, T::default(), yn);
            },
        );
    y
}

/// `dx` (`[N, C, H, W]`) of `dy` (`[N, O, P]`): `W^T` applied to every image.
fn transpose<T: Elem>(g: &Geom, dy: &[T], w: &[T]) -> Vec<T> {
    let mut dx = vec![T::default(); dy.len() / g.out_len() * g.in_len()];
    dx.par_chunks_mut(g.in_len())
        .zip(dy.par_chunks(g.out_len()))
        .for_each_init(
            || vec![T::default(); g.k() * g.p()],
            |cols, (dxn, dyn_)| {
                gemm(g.k(), g.o, g.p(), w, true, dyn_, false, T::default(), cols);
                col2im(g, cols, dxn);
            },
        );
    dx
}

/// Images per chunk of the kernel gradient: a fixed count, so that the order of the f32
/// additions, and with it a training run, does not depend on the number of threads.
const KERNEL_GRAD_CHUNK: usize = 64;

/// `dW` (`[O, K]`) `= sum_n dy_n cols_n^T` over the images of `x` and `dy`: one
/// accumulator per chunk of [`KERNEL_GRAD_CHUNK`] images (in parallel), then the chunks
/// summed in order (deterministic: rayon's `reduce` would combine them in an order that
/// depends on work stealing).
fn kernel_grad<T: Elem>(g: &Geom, x: &[T], dy: &[T]) -> Vec<T> {
    let ok = g.o * g.k();
    let parts: Vec<Vec<T>> = x
        .par_chunks(KERNEL_GRAD_CHUNK * g.in_len())
        .zip(dy.par_chunks(KERNEL_GRAD_CHUNK * g.out_len()))
        .map(|(xc, dyc)| {
            let mut cols = vec![T::default(); g.k() * g.p()];
            let mut acc = vec![T::default(); ok];
            for (xn, dyn_) in xc.chunks(g.in_len()).zip(dyc.chunks(g.out_len())) {
                im2col(g, xn, &mut cols);
                gemm(
                    g.o,
                    g.p(),
                    g.k(),
                    dyn_,
                    false,
                    &cols,
                    true,
                    T::one(),
                    &mut acc,
                );
            }
            acc
        })
        .collect();
    let mut dw = vec![T::default(); ok];
    for part in parts {
        dw.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    dw
}

/// What a custom op computes from its two arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `(x, w) -> y`.
    Forward,
    /// `(dy, w) -> W^T dy`: the transposed convolution, the input gradient.
    Transpose,
    /// `(x, dy) -> dW`.
    KernelGrad,
}

struct ConvOp {
    g: Geom,
    kind: Kind,
}

/// The contiguous data of a storage of `len` elements.
fn data<'a, T>(s: &'a [T], l: &Layout, len: usize, what: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) if b - a == len => Ok(&s[a..b]),
        _ => Err(candle_core::Error::Msg(format!(
            "conv2d (im2col + GEMM): {what} of shape {:?} is not a contiguous tensor of {len} elements",
            l.dims()
        ))),
    }
}

impl ConvOp {
    fn run<T: Elem>(
        &self,
        a: &[T],
        la: &Layout,
        b: &[T],
        lb: &Layout,
    ) -> candle_core::Result<(Vec<T>, Shape)> {
        let g = &self.g;
        let n = la.dims()[0];
        let kernel = g.o * g.k();
        Ok(match self.kind {
            Kind::Forward => {
                let x = data(a, la, n * g.in_len(), "input")?;
                let w = data(b, lb, kernel, "kernel")?;
                (forward(g, x, w), Shape::from((n, g.o, g.oh, g.ow)))
            }
            Kind::Transpose => {
                let dy = data(a, la, n * g.out_len(), "output gradient")?;
                let w = data(b, lb, kernel, "kernel")?;
                (transpose(g, dy, w), Shape::from((n, g.c, g.h, g.w)))
            }
            Kind::KernelGrad => {
                let x = data(a, la, n * g.in_len(), "input")?;
                let dy = data(b, lb, n * g.out_len(), "output gradient")?;
                (kernel_grad(g, x, dy), Shape::from((g.o, g.c, g.kh, g.kw)))
            }
        })
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Forward => "conv2d-im2col-gemm",
            Kind::Transpose => "conv-transpose2d-gemm-col2im",
            Kind::KernelGrad => "conv2d-kernel-grad-gemm",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                let (v, s) = self.run(a, l1, b, l2)?;
                Ok((CpuStorage::F32(v), s))
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                let (v, s) = self.run(a, l1, b, l2)?;
                Ok((CpuStorage::F64(v), s))
            }
            _ => Err(candle_core::Error::Msg(format!(
                "{}: f32 or f64 tensors of one dtype, got {:?} and {:?}",
                self.name(),
                s1.dtype(),
                s2.dtype()
            ))),
        }
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.g;
        let op = |kind| ConvOp { g, kind };
        let grad = grad.contiguous()?;
        // A gradient only for an argument that tracks one (not for the constant identity
        // columns the dual starts from): candle would drop it anyway.
        let run =
            |track: bool, x: &Tensor, y: &Tensor, kind| -> candle_core::Result<Option<Tensor>> {
                if track {
                    Ok(Some(x.apply_op2_no_bwd(y, &op(kind))?))
                } else {
                    Ok(None)
                }
            };
        let (ta, tb) = (a.track_op(), b.track_op());
        Ok(match self.kind {
            // y = A(w) x: dx = A^T dy, dw = sum dy cols(x)^T.
            Kind::Forward => (
                run(ta, &grad, b, Kind::Transpose)?,
                run(tb, a, &grad, Kind::KernelGrad)?,
            ),
            // r = A(w)^T y: dy = A dr, dw = sum y (cols(dr))^T.
            Kind::Transpose => (
                run(ta, &grad, b, Kind::Forward)?,
                run(tb, &grad, a, Kind::KernelGrad)?,
            ),
            Kind::KernelGrad => {
                return Err(candle_core::Error::BackwardNotSupported { op: self.name() })
            }
        })
    }
}

/// `conv2d(x, w)` (`[N, C, H, W]` by `[O, C, kh, kw]`, see the module docs), differentiable.
pub(crate) fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    pad: usize,
) -> candle_core::Result<Tensor> {
    let g = Geom::new(x.dims(), w.dims(), stride, pad)?;
    x.contiguous()?.apply_op2(
        &w.contiguous()?,
        ConvOp {
            g,
            kind: Kind::Forward,
        },
    )
}

/// The transposed convolution `W^T y` (`y` `[N, O, OH, OW]`) back onto the input shape
/// `[N, C, h, w]` of [`conv2d`] with the same `stride` and `pad`, differentiable.
pub(crate) fn conv_transpose2d(
    y: &Tensor,
    w: &Tensor,
    (h, wd): (usize, usize),
    stride: usize,
    pad: usize,
) -> candle_core::Result<Tensor> {
    let (n, o, oh, ow) = y.dims4()?;
    let wdims = w.dims();
    let c = if wdims.len() == 4 { wdims[1] } else { 0 };
    let g = Geom::new(&[n, c, h, wd], wdims, stride, pad)?;
    if (g.o, g.oh, g.ow) != (o, oh, ow) {
        return Err(candle_core::Error::Msg(format!(
            "conv_transpose2d (GEMM + col2im): output {:?} does not match the convolution of [{n}, {c}, {h}, {wd}] by {wdims:?} (stride {stride}, padding {pad})",
            y.dims()
        )));
    }
    y.contiguous()?.apply_op2(
        &w.contiguous()?,
        ConvOp {
            g,
            kind: Kind::Transpose,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(shape: &[usize], rng: &mut ChaCha8Rng) -> Var {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Var::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.dims(), b.dims());
        let a: Vec<f64> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f64> = b.flatten_all().unwrap().to_vec1().unwrap();
        let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(&b)
            .fold(0.0, |m, (x, y)| m.max((x - y).abs() / scale))
    }

    /// The ops and their gradients are candle's `conv2d` / `conv_transpose2d` and theirs,
    /// in f64 to 1e-12 relative (only the order of the additions differs), on strides 1-3,
    /// paddings 0-2, non-square kernels and images and one channel or several.
    #[test]
    fn the_gemm_convolutions_and_their_gradients_are_candles() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &(n, c, h, w, o, kh, kw, stride, pad) in &[
            (3, 1, 28, 28, 16, 4, 4, 2, 1),
            (2, 16, 14, 14, 32, 4, 4, 2, 1),
            (4, 3, 9, 7, 5, 3, 2, 1, 0),
            (2, 2, 8, 11, 3, 3, 3, 3, 2),
            (1, 4, 5, 5, 2, 5, 5, 1, 0),
        ] {
            let case =
                format!("x [{n},{c},{h},{w}] w [{o},{c},{kh},{kw}] stride {stride} pad {pad}");
            let x = random(&[n, c, h, w], &mut rng);
            let k = random(&[o, c, kh, kw], &mut rng);
            let ours = conv2d(&x, &k, stride, pad).unwrap();
            let theirs = x.conv2d(&k, pad, stride, 1, 1).unwrap();
            assert!(max_rel(&ours, &theirs) < 1e-12, "forward, {case}");
            // Gradients of <r, y> for a random r.
            let r = random(ours.dims(), &mut rng);
            let go = (ours * r.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gt = (theirs * r.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (v, what) in [(&x, "input"), (&k, "kernel")] {
                let (a, b) = (go.get(v).unwrap(), gt.get(v).unwrap());
                assert!(max_rel(a, b) < 1e-12, "{what} gradient, {case}");
            }
            // The transposed convolution and its gradients.
            let y = random(r.dims(), &mut rng);
            let ours = conv_transpose2d(&y, &k, (h, w), stride, pad).unwrap();
            let out_pad = (h + 2 * pad - kh) % stride;
            let theirs = y.conv_transpose2d(&k, pad, out_pad, stride, 1).unwrap();
            assert!(max_rel(&ours, &theirs) < 1e-12, "transpose, {case}");
            // <A^T y, x> = <y, A x> (the adjoint), and the gradients by that identity.
            let s = random(ours.dims(), &mut rng);
            let lhs = (ours.clone() * s.as_tensor()).unwrap().sum_all().unwrap();
            let ax = conv2d(&s, &k, stride, pad).unwrap();
            let rhs = (ax * y.as_tensor()).unwrap().sum_all().unwrap();
            let (l, rr) = (
                lhs.to_scalar::<f64>().unwrap(),
                rhs.to_scalar::<f64>().unwrap(),
            );
            assert!(
                (l - rr).abs() <= 1e-12 * l.abs().max(1.0),
                "adjoint, {case}: {l} vs {rr}"
            );
            let gl = lhs.backward().unwrap();
            let gr = rhs.backward().unwrap();
            for (v, what) in [(&y, "y"), (&k, "kernel (transpose)"), (&s, "s")] {
                let (a, b) = (gl.get(v).unwrap(), gr.get(v).unwrap());
                assert!(
                    max_rel(a, b) < 1e-12,
                    "{what} gradient through the transpose, {case}"
                );
            }
        }
    }

    /// An argument that tracks no gradient (the dual's constant identity columns) gets
    /// none, and the kernel's gradient is still candle's.
    #[test]
    fn an_untracked_input_gets_no_gradient_and_the_kernel_still_does() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x = random(&[3, 2, 9, 9], &mut rng).as_tensor().detach();
        let k = random(&[4, 2, 3, 3], &mut rng);
        let ours = conv2d(&x, &k, 2, 1)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let theirs = x
            .conv2d(&k, 1, 2, 1, 1)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap();
        let (go, gt) = (ours.backward().unwrap(), theirs.backward().unwrap());
        assert!(go.get(&x).is_none());
        assert!(max_rel(go.get(&k).unwrap(), gt.get(&k).unwrap()) < 1e-12);
    }

    /// f32 runs (training's dtype) and agrees with candle to f32 rounding.
    #[test]
    fn f32_convolutions_agree_with_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = random(&[5, 16, 14, 14], &mut rng)
            .to_dtype(DType::F32)
            .unwrap();
        let k = random(&[32, 16, 4, 4], &mut rng)
            .to_dtype(DType::F32)
            .unwrap();
        let ours = conv2d(&x, &k, 2, 1).unwrap().to_dtype(DType::F64).unwrap();
        let theirs = x
            .conv2d(&k, 1, 2, 1, 1)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap();
        assert!(max_rel(&ours, &theirs) < 1e-5);
    }

    /// The kernel gradient in f32 is the same bit for bit on 1 and 3 threads (its
    /// chunks are fixed and summed in order), so a training run repeats exactly.
    #[test]
    fn the_kernel_gradient_does_not_depend_on_the_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let g = Geom::new(&[300, 4, 10, 10], &[6, 4, 3, 3], 2, 1).unwrap();
        let x: Vec<f32> = (0..300 * g.in_len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let dy: Vec<f32> = (0..300 * g.out_len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| kernel_grad(&g, &x, &dy))
        };
        let one = on(1);
        assert!(one.iter().any(|v| *v != 0.0));
        assert_eq!(one, on(3));
    }

    /// Bad shapes and dtypes are errors naming the shapes, never a panic.
    #[test]
    fn bad_shapes_are_errors() {
        let x = Tensor::zeros((2, 3, 8, 8), DType::F64, &Device::Cpu).unwrap();
        let k = Tensor::zeros((4, 2, 3, 3), DType::F64, &Device::Cpu).unwrap();
        let e = conv2d(&x, &k, 1, 0).unwrap_err().to_string();
        assert!(
            e.contains("[2, 3, 8, 8]") && e.contains("[4, 2, 3, 3]"),
            "{e}"
        );
        let k3 = Tensor::zeros((4, 3, 3), DType::F64, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &k3, 1, 0)
            .unwrap_err()
            .to_string()
            .contains("rank 4"));
        let big = Tensor::zeros((4, 3, 11, 3), DType::F64, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &big, 1, 1).is_err());
        assert!(conv2d(
            &x,
            &Tensor::zeros((4, 3, 3, 3), DType::F64, &Device::Cpu).unwrap(),
            0,
            0
        )
        .is_err());
        let kf = Tensor::zeros((4, 3, 3, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &kf, 1, 0)
            .unwrap_err()
            .to_string()
            .contains("F32"));
        let y = Tensor::zeros((2, 4, 5, 5), DType::F64, &Device::Cpu).unwrap();
        let kk = Tensor::zeros((4, 3, 3, 3), DType::F64, &Device::Cpu).unwrap();
        assert!(conv_transpose2d(&y, &kk, (8, 8), 1, 0).is_err());
    }
}
