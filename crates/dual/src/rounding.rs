//! Rounding-error accounting that turns floating-point bounds into *proven* ones.
//!
//! A value is proven when it holds in exact real arithmetic for the stored weights and
//! inputs, whatever the rounding (`DESIGN.md`, "Proven numbers"). Every bound of this
//! crate is made proven with a priori error bounds (Higham, *Accuracy and Stability of
//! Numerical Algorithms*, 2nd ed., ch. 3): for any summation order, with or without FMA,
//!
//! ```text
//! |fl(sum_i a_i b_i) - sum_i a_i b_i| <= gamma_n sum_i |a_i b_i| + n eta,
//! gamma_n = n u / (1 - n u),  u = 2^-53,  eta = 2^-1074 (gradual underflow)
//! ```
//!
//! The error bounds are themselves computed in floating point, so each is inflated by a
//! few units of roundoff and the final subtraction is rounded outwards with
//! `next_down`/`next_up`. A non-finite number anywhere is an overflow, never a bound.

/// Unit roundoff of f64, `u = 2^-53`.
pub const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// The smallest positive subnormal f64, `eta = 2^-1074`: the absolute error of a
/// product that underflows.
pub const ETA: f64 = f64::from_bits(1);

/// `gamma_n = n u / (1 - n u)`, inflated by `1 + 8u` so that its own rounding cannot
/// make it too small; `+inf` when `n u >= 1/2` (no useful bound exists).
pub fn gamma(n: usize) -> f64 {
    gamma_for(n, UNIT_ROUNDOFF)
}

/// [`gamma`] for arithmetic with unit roundoff `u` (`2^-24` for f32, see
/// [`network::Real`]): `n u / (1 - n u)` computed in f64 and inflated alike.
pub fn gamma_for(n: usize, u: f64) -> f64 {
    let nu = n as f64 * u;
    if nu >= 0.5 {
        return f64::INFINITY;
    }
    (nu / (1.0 - nu) * (1.0 + 8.0 * UNIT_ROUNDOFF)).next_up()
}

/// An upper bound on the rounding error of a floating-point sum of `n` products (or of
/// `n` operations in all) whose absolute values add up to `abs_sum`.
pub fn error_bound(n: usize, abs_sum: f64) -> f64 {
    (gamma(n) * abs_sum * (1.0 + 4.0 * UNIT_ROUNDOFF) + (n as f64 + 1.0) * ETA).next_up()
}

/// A lower bound on the exact value `a * b` from its rounded product.
pub fn mul_down(a: f64, b: f64) -> f64 {
    let p = a * b;
    (p - p.abs() * (2.0 * UNIT_ROUNDOFF) - ETA).next_down()
}

/// An upper bound on the exact value `a * b` from its rounded product.
pub fn mul_up(a: f64, b: f64) -> f64 {
    -mul_down(-a, b)
}

/// A lower bound on the exact `a - b`.
pub fn sub_down(a: f64, b: f64) -> f64 {
    (a - b).next_down()
}

/// A sum whose exact value is bounded from below: terms are added in floating point and
/// the rounding error of the whole sum (every term's own rounding included, counted
/// with [`RoundedSum::add_rounded`]) is subtracted at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoundedSum {
    sum: f64,
    abs: f64,
    ops: usize,
}

impl RoundedSum {
    /// An empty sum.
    pub fn new() -> RoundedSum {
        RoundedSum::default()
    }

    /// Adds a term that is exact (e.g. a lower bound already rounded down).
    pub fn add_exact(&mut self, t: f64) {
        self.sum += t;
        self.abs += t.abs();
        self.ops += 1;
    }

    /// Adds a term computed with `roundings` rounding errors of its own (e.g. one for a
    /// product `a * b`).
    pub fn add_rounded(&mut self, t: f64, roundings: usize) {
        self.sum += t;
        self.abs += t.abs();
        self.ops += 1 + roundings;
    }

    /// Adds the product `a * b` (one rounding).
    pub fn add_product(&mut self, a: f64, b: f64) {
        self.add_rounded(a * b, 1);
    }

    /// The floating-point value of the sum (not proven).
    pub fn nominal(&self) -> f64 {
        self.sum
    }

    /// A lower bound on the exact sum; `None` if anything overflowed or was NaN.
    pub fn lower(&self) -> Option<f64> {
        let v = (self.sum - error_bound(self.ops, self.abs)).next_down();
        v.is_finite().then_some(v)
    }
}

/// The largest absolute value of a vector (NaN propagates as NaN).
pub fn max_abs(v: impl network::AsVector) -> f64 {
    v.as_values().iter().fold(0.0f64, |m, &x| {
        if x.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(x.abs())
        }
    })
}

/// Magnitudes of a layer's operator that the error bounds need.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMagnitude<'a> {
    /// The model's floating-point column sums `sum_k |W_kj|`; see [`OpMagnitude::col_abs`].
    col_abs_sum: &'a [f64],
    inflate_c: f64,
    /// Products in one entry of `W^T y` (dense: rows; conv: out channels x kernel).
    pub dot_len_t: usize,
}

impl<'a> OpMagnitude<'a> {
    /// The magnitudes of one affine layer, from the column sums the model keeps
    /// ([`network::Affine::col_abs_sum`]), inflated for their rounding (each a sum of at
    /// most `dot_len_t` nonnegative terms).
    pub fn of(a: &'a network::Affine) -> OpMagnitude<'a> {
        let dot_len_t = a.op.dot_len_t();
        OpMagnitude {
            col_abs_sum: &a.col_abs_sum,
            inflate_c: 1.0 + gamma(dot_len_t + 1),
            dot_len_t,
        }
    }

    /// An upper bound on `sum_k |W_kj|` for input `j`.
    pub fn col_abs(&self, j: usize) -> f64 {
        (self.col_abs_sum[j] * self.inflate_c).next_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_grows_and_saturates() {
        assert!(gamma(1) > UNIT_ROUNDOFF);
        assert!(gamma(10) > 10.0 * UNIT_ROUNDOFF);
        assert!(gamma(1 << 52).is_infinite());
    }

    /// The documented formulas, pinned: each helper is at least the stated bound and
    /// above it by no more than its stated inflation (a few units of roundoff).
    #[test]
    fn helpers_equal_their_formulas() {
        assert_eq!(UNIT_ROUNDOFF, 2f64.powi(-53));
        assert_eq!(ETA, 2f64.powi(-1074));
        for n in [1usize, 2, 3, 10, 785, 1 << 20] {
            let nu = n as f64 * UNIT_ROUNDOFF;
            let exact = nu / (1.0 - nu);
            let g = gamma(n);
            assert!(g >= exact * (1.0 + 8.0 * UNIT_ROUNDOFF), "gamma({n}) = {g}");
            assert!(
                g <= exact * (1.0 + 12.0 * UNIT_ROUNDOFF),
                "gamma({n}) = {g}"
            );
            for s in [0.0, 1.0, 3.5e-3, 7e200] {
                let want = g * s + (n as f64 + 1.0) * ETA;
                let e = error_bound(n, s);
                assert!(e >= want, "error_bound({n}, {s}) = {e} < {want}");
                assert!(
                    e <= want * (1.0 + 8.0 * UNIT_ROUNDOFF) + ETA,
                    "error_bound({n}, {s}) = {e}"
                );
            }
        }
        // With nothing to multiply the bound is the underflow term alone, rounded up.
        for n in [1usize, 7, 100] {
            assert_eq!(error_bound(n, 0.0), ((n as f64 + 1.0) * ETA).next_up());
        }
        // Products that underflow to zero: the bracket still contains the exact product.
        assert!(mul_up(1e-200, 1e-200) > 0.0);
        assert!(mul_down(1e-200, -1e-200) < 0.0);
        assert!(mul_down(1e-200, 1e-200) <= 0.0);
        // Differences: a lower bound within one ulp of the rounded difference.
        for (a, b) in [(3.0, 1.0), (0.3, 0.1), (1e16, -1.5), (-2.0, 5.0)] {
            let d = sub_down(a, b);
            let err = {
                // Two-sum: a - b = s + t exactly.
                let s = a - b;
                let bb = s - a;
                (a - (s - bb)) - (b + bb)
            };
            assert!(d - (a - b) <= err, "sub_down({a}, {b}) = {d}");
            assert!(d >= (a - b).next_down(), "sub_down({a}, {b}) = {d}");
        }
        // Counting: a term with no rounding of its own counts as one operation, a product
        // as two.
        let (mut x, mut y) = (RoundedSum::new(), RoundedSum::new());
        x.add_rounded(0.75, 0);
        y.add_exact(0.75);
        assert_eq!(x, y);
        x.add_rounded(1.0, 3);
        y.add_exact(1.0);
        assert_eq!(
            x.lower().unwrap(),
            (1.75 - error_bound(5, 1.75)).next_down()
        );
        assert!(x.lower().unwrap() < y.lower().unwrap());
    }

    #[test]
    fn operator_magnitudes_bound_the_column_sums() {
        let dense = network::Model::new(
            network::Shape::Flat(2),
            vec![network::Layer::Dense {
                weight: vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6],
                bias: vec![0.0; 3],
                out_features: 3,
                in_features: 2,
            }],
        )
        .unwrap();
        let a = &dense.affine()[0];
        let m = OpMagnitude::of(a);
        assert_eq!(m.dot_len_t, 3);
        for j in 0..2 {
            let s = a.col_abs_sum[j];
            let want = s * (1.0 + gamma(4));
            assert!(s > 0.5 && m.col_abs(j) >= want, "column {j}");
            assert!(
                m.col_abs(j) <= want * (1.0 + 4.0 * UNIT_ROUNDOFF),
                "column {j}"
            );
        }
        let conv = network::Architecture::conv_net(
            network::Shape::Image { c: 2, h: 6, w: 6 },
            &[(3, 4, 2, 1)],
            &[2],
        )
        .init(network::Init::Paper, 0)
        .unwrap();
        assert_eq!(OpMagnitude::of(&conv.affine()[0]).dot_len_t, 3 * 4 * 4);
    }

    #[test]
    fn lower_sum_contains_the_exact_sum_under_cancellation() {
        // 1e16 + 1.5 - 1e16 = 1.5 exactly; in floating point the first sum rounds to
        // 1e16 + 2, so the nominal sum is 2 and above the exact value.
        let mut s = RoundedSum::new();
        for t in [1e16, 1.5, -1e16] {
            s.add_exact(t);
        }
        assert_eq!(s.nominal(), 2.0);
        let lo = s.lower().unwrap();
        assert!(lo <= 1.5, "lower bound {lo} above the exact sum 1.5");
        assert!(lo > -20.0, "lower bound {lo} is needlessly loose");
    }

    #[test]
    fn overflow_has_no_lower_bound() {
        let mut s = RoundedSum::new();
        s.add_product(1e308, 10.0);
        assert_eq!(s.lower(), None);
        let mut s = RoundedSum::new();
        s.add_exact(f64::NAN);
        assert_eq!(s.lower(), None);
    }

    #[test]
    fn directed_products_bracket_the_exact_product() {
        // 0.1 * 3 is not representable; the bracket must contain the exact product of
        // the stored doubles, checked here with an error-free transformation (FMA).
        for (a, b) in [
            (0.1, 3.0),
            (1.0 / 3.0, 7.0),
            (-2.5e-300f64, 1e-20f64),
            (1e300, -1e7),
        ] {
            let p = a * b;
            let err = a.mul_add(b, -p); // exact: a*b = p + err
            let (lo, hi) = (mul_down(a, b), mul_up(a, b));
            assert!(
                lo - p <= err && err <= hi - p,
                "{a} * {b}: [{lo}, {hi}] vs {p} + {err}"
            );
        }
        assert_eq!(max_abs([1.0, -3.0, 2.0]), 3.0);
        assert!(max_abs([1.0, f64::NAN]).is_nan());
    }
}
