//! The floating-point types Algorithm 1's columns may be stored in: `f64` (every bound of
//! the workspace, the default) and `f32` (twice the GEMM throughput, half the memory; the
//! sound f32 path of `dual::algorithm1_with`, issue 14 item 2).
//!
//! The model's parameters stay f64. A kernel that works in `f32` rounds each weight to
//! `f32` where it reads it ([`Real::of`]: to nearest, so `|w - fl32(w)| <= u |w| + eta / 2`
//! with `u = 2^-24` and `eta = 2^-149`), and every product and sum it computes rounds
//! with `u`; the callers' rounding-error bounds use [`Real::UNIT_ROUNDOFF`] and
//! [`Real::ETA`] of the type the columns are stored in (Higham, *Accuracy and Stability
//! of Numerical Algorithms*, 2nd ed., ch. 3). Converting back ([`Real::widen`]) is exact.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, MulAssign};

/// `f32` or `f64`: the element type of a [`crate::LocalBatch`] and of the generic
/// products of [`crate::LinearOp`].
pub trait Real:
    num_traits::Float + AddAssign + MulAssign + Sum + Default + Debug + Send + Sync + 'static
{
    /// Unit roundoff: `2^-53` (f64) or `2^-24` (f32).
    const UNIT_ROUNDOFF: f64;
    /// The smallest positive subnormal: `2^-1074` (f64) or `2^-149` (f32); a product or
    /// conversion that underflows loses at most half of it.
    const ETA: f64;
    /// True for `f64`: conversions from the model's f64 values are exact.
    const EXACT_F64: bool;
    /// `v` rounded to nearest (exact for f64; an f64 beyond f32's range becomes an
    /// infinity, which the callers' finiteness checks turn into an overflow error).
    fn of(v: f64) -> Self;
    /// The exact f64 value.
    fn widen(self) -> f64;
    /// The slice itself when the type is f64 (the f64 kernels then run unchanged).
    fn as_f64(s: &[Self]) -> Option<&[f64]>;
    /// As [`Real::as_f64`], mutably.
    fn as_f64_mut(s: &mut [Self]) -> Option<&mut [f64]>;
    /// `c = a b + beta c` by matrixmultiply (`m x k` times `k x n`, strides in elements).
    ///
    /// # Safety
    /// Every index `(i, j)` of each matrix, times its strides, must be inside its slice.
    #[allow(clippy::too_many_arguments)]
    unsafe fn packed_gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        sa: (usize, usize),
        b: &[Self],
        sb: (usize, usize),
        beta: Self,
        c: &mut [Self],
        sc: (usize, usize),
    );
}

/// [`Real::packed_gemm`] for one type, by matrixmultiply's kernel of that type.
macro_rules! packed_gemm {
    ($t:ty, $kernel:path) => {
        unsafe fn packed_gemm(
            m: usize,
            k: usize,
            n: usize,
            a: &[$t],
            (rsa, csa): (usize, usize),
            b: &[$t],
            (rsb, csb): (usize, usize),
            beta: $t,
            c: &mut [$t],
            (rsc, csc): (usize, usize),
        ) {
            // SAFETY: the caller keeps every index inside the slices.
            unsafe {
                $kernel(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    rsa as isize,
                    csa as isize,
                    b.as_ptr(),
                    rsb as isize,
                    csb as isize,
                    beta,
                    c.as_mut_ptr(),
                    rsc as isize,
                    csc as isize,
                )
            }
        }
    };
}

impl Real for f64 {
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
    const ETA: f64 = f64::from_bits(1);
    const EXACT_F64: bool = true;
    #[inline(always)]
    fn of(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
    fn as_f64(s: &[f64]) -> Option<&[f64]> {
        Some(s)
    }
    fn as_f64_mut(s: &mut [f64]) -> Option<&mut [f64]> {
        Some(s)
    }
    packed_gemm!(f64, matrixmultiply::dgemm);
}

impl Real for f32 {
    const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
    const ETA: f64 = 1.401298464324817e-45; // 2^-149, exact
    const EXACT_F64: bool = false;
    #[inline(always)]
    fn of(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self as f64
    }
    fn as_f64(_: &[f32]) -> Option<&[f64]> {
        None
    }
    fn as_f64_mut(_: &mut [f32]) -> Option<&mut [f64]> {
        None
    }
    packed_gemm!(f32, matrixmultiply::sgemm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_the_types_own() {
        assert_eq!(<f64 as Real>::UNIT_ROUNDOFF, 2f64.powi(-53));
        assert_eq!(<f32 as Real>::UNIT_ROUNDOFF, 2f64.powi(-24));
        assert_eq!(<f64 as Real>::ETA, 2f64.powi(-1074));
        assert_eq!(<f32 as Real>::ETA, 2f64.powi(-149));
        assert_eq!(<f32 as Real>::ETA as f32, f32::from_bits(1));
        // Rounding to f32 is to nearest, within u |v| + eta / 2; back to f64 is exact.
        for v in [0.1, 1.0 / 3.0, -7e-40, 3e38, 1e-46] {
            let r = <f32 as Real>::of(v).widen();
            assert!((r - v).abs() <= <f32 as Real>::UNIT_ROUNDOFF * v.abs() + 2f64.powi(-150));
        }
        assert!(<f32 as Real>::of(1e39).is_infinite());
        assert_eq!(<f64 as Real>::of(0.1), 0.1);
        // Only f64 slices are f64 slices.
        assert_eq!(<f64 as Real>::as_f64(&[0.5, 2.0]), Some(&[0.5, 2.0][..]));
        assert_eq!(<f64 as Real>::as_f64_mut(&mut [0.5]), Some(&mut [0.5][..]));
        assert_eq!(<f32 as Real>::as_f64(&[0.5]), None);
        assert_eq!(<f32 as Real>::as_f64_mut(&mut [0.5]), None);
    }

    /// `LinearOp::apply_as`: f64 is `apply` itself; f32 (dense: f32 weights and GEMM;
    /// conv: f64 product rounded once) is within `gamma_{n+2} (|W| |x|)` for f32's `u` of
    /// the f64 product of the same (f32) columns, and not equal to it (f32 arithmetic). The
    /// dense product's errors exceed one rounding of the result somewhere (it is computed
    /// in f32); the convolution's never do (rounded once).
    #[test]
    fn apply_as_f32_is_within_its_rounding_bound() {
        use crate::{Architecture, Init, Shape};
        let nets = [
            Architecture::mlp(&[30, 20]).init(Init::Paper, 1).unwrap(),
            Architecture::conv_net(Shape::Image { c: 2, h: 5, w: 5 }, &[(3, 3, 1, 1)], &[2])
                .init(Init::Paper, 2)
                .unwrap(),
        ];
        for model in &nets {
            let a = &model.affine()[0];
            let (ni, no, cols) = (a.op.n_in(), a.op.n_out(), 7);
            let x32: Vec<f32> = (0..ni * cols)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let x64: Vec<f64> = x32.iter().map(|v| v.widen()).collect();
            let (mut want, mut abs) = (vec![0.0; no * cols], vec![0.0; no * cols]);
            a.op.apply(&x64, cols, &mut want);
            let ax: Vec<f64> = x64.iter().map(|v| v.abs()).collect();
            a.abs_op.apply(&ax, cols, &mut abs);
            let mut got64 = vec![0.0; no * cols];
            a.op.apply_as(&x64, cols, &mut got64);
            assert_eq!(got64, want);
            let mut got = vec![0f32; no * cols];
            a.op.apply_as(&x32, cols, &mut got);
            let u = <f32 as Real>::UNIT_ROUNDOFF;
            let n = (a.op.dot_len() + 2) as f64;
            let (mut differs, mut beyond_one) = (false, false);
            for ((g, w), m) in got.iter().zip(&want).zip(&abs) {
                let err = (g.widen() - w).abs();
                assert!(err <= 1.01 * n * u * m + 1e-30, "{g} vs {w} (|W||x| = {m})");
                differs |= err > 0.0;
                beyond_one |= err > u * w.abs();
            }
            assert!(differs, "f32 products equal to the f64 ones everywhere");
            let dense = matches!(a.op, crate::LinearOp::Dense { .. });
            assert_eq!(beyond_one, dense, "dense: f32 GEMM; conv: one rounding");
        }
    }
}
