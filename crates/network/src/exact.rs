//! The forward pass in exact arithmetic: the reference that proven bounds are checked
//! against.
//!
//! Every f64 is a dyadic rational `m * 2^e`, and sums and products of dyadic rationals
//! are dyadic, so a ReLU network's pre-activations at a floating-point input are exact
//! [`Dyadic`] numbers (big-integer mantissa, no rounding, no gcd). This is slow (big
//! integers) and meant for tests and the soundness campaign on small networks: a bound
//! is *proven* when it holds against these values, whatever the rounding of the
//! floating-point forward pass.

use std::cmp::Ordering;

use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive, Zero};

use crate::error::Result;
use crate::model::Model;
use crate::vector::AsVector;

/// An exact dyadic rational `mantissa * 2^exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dyadic {
    mantissa: BigInt,
    exp: i64,
}

impl Dyadic {
    /// Zero.
    pub fn zero() -> Dyadic {
        Dyadic {
            mantissa: BigInt::zero(),
            exp: 0,
        }
    }

    /// The exact value of a finite f64 (`None` for NaN or an infinity).
    pub fn from_f64(v: f64) -> Option<Dyadic> {
        if !v.is_finite() {
            return None;
        }
        if v == 0.0 {
            return Some(Dyadic::zero());
        }
        let bits = v.to_bits();
        let sign = if bits >> 63 == 1 { -1i64 } else { 1 };
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, e) = if biased == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), biased - 1075)
        };
        Some(Dyadic {
            mantissa: BigInt::from(m) * sign,
            exp: e,
        })
    }

    fn aligned(&self, other: &Dyadic) -> (BigInt, BigInt, i64) {
        let e = self.exp.min(other.exp);
        (
            &self.mantissa << (self.exp - e) as usize,
            &other.mantissa << (other.exp - e) as usize,
            e,
        )
    }

    /// `self + other`, exactly.
    pub fn add(&self, other: &Dyadic) -> Dyadic {
        if self.mantissa.is_zero() {
            return other.clone();
        }
        if other.mantissa.is_zero() {
            return self.clone();
        }
        let (a, b, e) = self.aligned(other);
        Dyadic {
            mantissa: a + b,
            exp: e,
        }
    }

    /// `self * other`, exactly.
    pub fn mul(&self, other: &Dyadic) -> Dyadic {
        Dyadic {
            mantissa: &self.mantissa * &other.mantissa,
            exp: self.exp + other.exp,
        }
    }

    /// `-self`.
    pub fn neg(&self) -> Dyadic {
        Dyadic {
            mantissa: -&self.mantissa,
            exp: self.exp,
        }
    }

    /// `max(self, 0)`.
    pub fn relu(&self) -> Dyadic {
        if self.mantissa.is_negative() {
            Dyadic::zero()
        } else {
            self.clone()
        }
    }

    /// Exact comparison with a finite f64 (`None` for NaN or an infinity).
    pub fn cmp_f64(&self, v: f64) -> Option<Ordering> {
        let d = Dyadic::from_f64(v)?;
        let (a, b, _) = self.aligned(&d);
        Some(a.cmp(&b))
    }

    /// The nearest f64 (for messages; may round).
    pub fn to_f64(&self) -> f64 {
        // Keep 64 significant bits, then scale.
        let bits = self.mantissa.bits() as i64;
        let shift = (bits - 64).max(0);
        let mut v = (&self.mantissa >> shift as usize)
            .to_f64()
            .unwrap_or(f64::NAN);
        // Scale by 2^e in steps that never overflow or underflow on their own.
        let mut e = (self.exp + shift).clamp(-3000, 3000);
        while e != 0 {
            let step = e.clamp(-1000, 1000);
            v *= 2f64.powi(step as i32);
            e -= step;
        }
        v
    }
}

impl PartialOrd for Dyadic {
    fn partial_cmp(&self, other: &Dyadic) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dyadic {
    fn cmp(&self, other: &Dyadic) -> Ordering {
        let (a, b, _) = self.aligned(other);
        a.cmp(&b)
    }
}

/// Pre-activations `zhat_2, .., zhat_k` of one input, in exact arithmetic (the last
/// entry is the logits). Errors as [`Model::check_input`].
pub fn preactivations_exact(model: &Model, x: impl AsVector) -> Result<Vec<Vec<Dyadic>>> {
    let x = x.as_values();
    model.check_input(x)?;
    let mut z: Vec<Dyadic> = x
        .iter()
        .map(|&v| Dyadic::from_f64(v).expect("checked finite"))
        .collect();
    let aff = model.affine();
    let mut out = Vec::with_capacity(aff.len());
    for (i, a) in aff.iter().enumerate() {
        let mut zhat = Vec::with_capacity(a.op.n_out());
        for k in 0..a.op.n_out() {
            let mut acc = Dyadic::from_f64(a.bias[k]).expect("weights are finite");
            a.op.for_each_in_row(k, |j, wkj| {
                if wkj != 0.0 {
                    let t = Dyadic::from_f64(wkj)
                        .expect("weights are finite")
                        .mul(&z[j]);
                    acc = acc.add(&t);
                }
            });
            zhat.push(acc);
        }
        if i + 1 < aff.len() {
            let r = model.relu_units(i);
            z = zhat
                .iter()
                .enumerate()
                .map(|(j, v)| if j < r { v.relu() } else { v.clone() })
                .collect();
        }
        out.push(zhat);
    }
    Ok(out)
}

/// `c^T f(x)` in exact arithmetic (`c` has one entry per output).
pub fn objective_exact(model: &Model, x: impl AsVector, c: impl AsVector) -> Result<Dyadic> {
    let c = c.as_values();
    let logits = preactivations_exact(model, x)?
        .pop()
        .expect("a model has an affine layer");
    let mut acc = Dyadic::zero();
    for (ci, li) in c.iter().zip(&logits) {
        if *ci != 0.0 {
            acc = acc.add(&Dyadic::from_f64(*ci).expect("finite objective").mul(li));
        }
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dyadic_arithmetic_is_exact() {
        let a = Dyadic::from_f64(1e16).unwrap();
        let b = Dyadic::from_f64(1.5).unwrap();
        let s = a.add(&b).add(&a.neg());
        assert_eq!(s.cmp_f64(1.5), Some(Ordering::Equal));
        let p = Dyadic::from_f64(0.1)
            .unwrap()
            .mul(&Dyadic::from_f64(3.0).unwrap());
        // 0.1 * 3 in floating point is 0.30000000000000004, above the exact product.
        assert_eq!(p.cmp_f64(0.1 * 3.0), Some(Ordering::Less));
        assert_eq!(
            Dyadic::from_f64(f64::from_bits(1)).unwrap().cmp_f64(0.0),
            Some(Ordering::Greater)
        );
        assert_eq!(Dyadic::from_f64(-2.0).unwrap().relu(), Dyadic::zero());
        assert!(Dyadic::from_f64(f64::NAN).is_none());
        assert_eq!(Dyadic::from_f64(-0.75).unwrap().to_f64(), -0.75);
    }
}
