//! The input set: the l-infinity ball `||x' - x||_inf <= eps`, optionally intersected
//! with a box such as pixels in [0, 1]. It is kept as a box `center +- radius` per
//! coordinate, so that the input term of J (`-x^T nuhat_1 - eps ||nuhat_1||_1` in eq. 6)
//! becomes `-center^T nuhat_1 - sum_i radius_i |nuhat_1i|`, which is the same number in
//! paper mode (no box: center = x, radius = eps exactly).

use crate::error::{DualError, Result};
use network::{AsVector, DVector};

/// A box-shaped input set around an example.
#[derive(Debug, Clone, PartialEq)]
pub struct InputDomain {
    /// The example `x` (`n` entries, the model's input length).
    pub x: DVector<f64>,
    /// The ball's radius.
    pub eps: f64,
    /// The optional box intersected with the ball (`None`: paper mode).
    pub input_box: Option<(f64, f64)>,
    /// Centre of the (intersected) box, `n` entries.
    pub center: DVector<f64>,
    /// Half-width of the (intersected) box, per coordinate, `n` entries.
    pub radius: DVector<f64>,
    /// Lower corner of the *inner* box: the exact set's lower ends rounded up, so that
    /// every double in `[inner_lower, inner_upper]` lies in the exact input set (where
    /// counterexamples and the best points of an exact minimum are taken).
    pub inner_lower: DVector<f64>,
    /// Upper corner of the inner box (the exact upper ends rounded down).
    pub inner_upper: DVector<f64>,
}

/// `a + b` rounded up (`up`) or down in exact arithmetic, from the rounded sum and its
/// exact error (TwoSum, Knuth): `a + b = s + e` exactly.
fn sum_directed(a: f64, b: f64, up: bool) -> f64 {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    match (up, e) {
        (true, e) if e > 0.0 => s.next_up(),
        (false, e) if e < 0.0 => s.next_down(),
        _ => s,
    }
}

impl InputDomain {
    /// The ball `||x' - x||_inf <= eps`, intersected with `input_box` if given.
    ///
    /// Errors: `eps` negative or not finite, `x` not finite, a box that is not finite or
    /// has `lo > hi`, or an intersection that is empty in exact arithmetic.
    pub fn new(x: impl AsVector, eps: f64, input_box: Option<(f64, f64)>) -> Result<InputDomain> {
        let x = x.as_values();
        if !eps.is_finite() || eps < 0.0 {
            return Err(DualError::InvalidEps(eps));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(network::NetworkError::InputNonFinite {
                value: x[i],
                index: i,
            }
            .into());
        }
        let (center, radius) = match input_box {
            None => (x.to_vec(), vec![eps; x.len()]),
            Some((lo, hi)) => {
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(DualError::InvalidBox { lo, hi });
                }
                let mut c = Vec::with_capacity(x.len());
                let mut r = Vec::with_capacity(x.len());
                for (index, &v) in x.iter().enumerate() {
                    let a = (v - eps).max(lo);
                    let b = (v + eps).min(hi);
                    // Empty in exact arithmetic: x - eps > hi or x + eps < lo (the rounded
                    // ends alone can meet where the exact ones do not: 0.1 + 0.3 < 0.4).
                    if sum_directed(v, -eps, true) > hi || sum_directed(v, eps, false) < lo {
                        return Err(DualError::EmptyDomain {
                            lo,
                            hi,
                            index,
                            value: v,
                        });
                    }
                    let mid = 0.5 * (a + b);
                    // The radius must cover the exact intersection despite the rounding
                    // of `v -+ eps` and of the midpoint: widen to the outward-rounded ends.
                    let a_dn = (v - eps).next_down().max(lo);
                    let b_up = (v + eps).next_up().min(hi);
                    let rad = (b_up - mid).max(mid - a_dn).next_up().max(0.5 * (b - a));
                    c.push(mid);
                    r.push(rad);
                }
                (c, r)
            }
        };
        // The exact set is [max(x - eps, lo), min(x + eps, hi)]; `x` itself lies in it
        // (or the box's end does), so the inner box is never empty.
        let (box_lo, box_hi) = input_box.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
        let inner_lower: Vec<f64> = x
            .iter()
            .map(|&v| sum_directed(v, -eps, true).max(box_lo).min(v.max(box_lo)))
            .collect();
        let inner_upper: Vec<f64> = x
            .iter()
            .map(|&v| sum_directed(v, eps, false).min(box_hi).max(v.min(box_hi)))
            .collect();
        Ok(InputDomain {
            x: DVector::from_column_slice(x),
            eps,
            input_box,
            center: center.into(),
            radius: radius.into(),
            inner_lower: inner_lower.into(),
            inner_upper: inner_upper.into(),
        })
    }

    /// Corners of a box that contains the input set in exact arithmetic
    /// (`center -+ radius` rounded outwards): what proven bounds range over.
    pub fn enclosing_box(&self) -> (DVector<f64>, DVector<f64>) {
        let lo: Vec<f64> = self
            .center
            .iter()
            .zip(&self.radius)
            .map(|(c, r)| (c - r).next_down())
            .collect();
        let hi: Vec<f64> = self
            .center
            .iter()
            .zip(&self.radius)
            .map(|(c, r)| (c + r).next_up())
            .collect();
        (lo.into(), hi.into())
    }

    /// Lower corner of the box (`center - radius`, rounded to nearest).
    pub fn lower(&self) -> DVector<f64> {
        &self.center - &self.radius
    }

    /// Upper corner of the box (`center + radius`, rounded to nearest).
    pub fn upper(&self) -> DVector<f64> {
        &self.center + &self.radius
    }

    /// The box `[lower, upper]` itself (a VNNLIB input set): `center` is the rounded
    /// midpoint and `radius` covers both ends in exact arithmetic; `x` is the centre and
    /// `eps` the largest radius (for reports; bounds use `center` and `radius`).
    ///
    /// Errors: lengths differ, a bound is not finite, or `lower > upper` somewhere
    /// ([`DualError::InvalidBox`]).
    pub fn from_box(lower: impl AsVector, upper: impl AsVector) -> Result<InputDomain> {
        let (lower, upper) = (lower.as_values(), upper.as_values());
        if lower.len() != upper.len() {
            return Err(DualError::Options(format!(
                "box corners of lengths {} and {}",
                lower.len(),
                upper.len()
            )));
        }
        let mut center = Vec::with_capacity(lower.len());
        let mut radius = Vec::with_capacity(lower.len());
        for (&lo, &hi) in lower.iter().zip(upper) {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(DualError::InvalidBox { lo, hi });
            }
            // Halves first: lo + hi may overflow.
            let mid = 0.5 * lo + 0.5 * hi;
            let mid = mid.clamp(lo, hi);
            let rad = (hi - mid).next_up().max((mid - lo).next_up());
            if !rad.is_finite() {
                return Err(DualError::InvalidBox { lo, hi });
            }
            center.push(mid);
            radius.push(rad);
        }
        let eps = radius.iter().fold(0.0f64, |a, &r| a.max(r));
        let center = DVector::from_vec(center);
        Ok(InputDomain {
            x: center.clone(),
            eps,
            input_box: None,
            center,
            radius: radius.into(),
            inner_lower: DVector::from_column_slice(lower),
            inner_upper: DVector::from_column_slice(upper),
        })
    }
}
