//! Exact decimal numbers (`m * 10^e` with a big-integer `m`) and their f64 enclosures.

use num_bigint::BigInt;
use num_traits::{Signed, Zero};
use std::cmp::Ordering;

/// The exact value `mantissa * 10^exp` of a number as a file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    mantissa: BigInt,
    exp: i64,
}

impl Decimal {
    /// Zero.
    pub fn zero() -> Decimal {
        Decimal {
            mantissa: BigInt::zero(),
            exp: 0,
        }
    }

    /// Parses `-0.5`, `1`, `5.8e-05`, `+3.`, `.25`, `1E3`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Decimal> {
        let (neg, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (num, exp_part) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = match num.find('.') {
            Some(i) => (&num[..i], &num[i + 1..]),
            None => (num, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut exp: i64 = match exp_part {
            Some(e) => {
                let (sign, digits) = match e.as_bytes().first()? {
                    b'-' => (-1, &e[1..]),
                    b'+' => (1, &e[1..]),
                    _ => (1, e),
                };
                if digits.is_empty()
                    || digits.len() > 6
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                sign * digits.parse::<i64>().ok()?
            }
            None => 0,
        };
        exp -= frac.len() as i64;
        let digits = format!("{int}{frac}");
        let mut mantissa: BigInt = digits.parse().ok()?;
        if neg {
            mantissa = -mantissa;
        }
        Decimal { mantissa, exp }.checked()
    }

    /// The exact value of a finite f64.
    pub fn from_f64(v: f64) -> Option<Decimal> {
        if !v.is_finite() {
            return None;
        }
        // v = m 2^e = m 5^-e 10^e for e < 0.
        let (m, e) = f64_parts(v);
        Some(if e >= 0 {
            Decimal {
                mantissa: m << e as usize,
                exp: 0,
            }
        } else {
            Decimal {
                mantissa: m * BigInt::from(5).pow((-e) as u32),
                exp: e,
            }
        })
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa.is_zero()
    }

    pub fn neg(&self) -> Decimal {
        Decimal {
            mantissa: -&self.mantissa,
            exp: self.exp,
        }
    }

    /// The exact sum; `None` when an exponent or mantissa leaves [`Decimal::LIMIT`].
    pub fn add(&self, o: &Decimal) -> Option<Decimal> {
        let e = self.exp.min(o.exp);
        let scale = |d: &Decimal| -> Option<BigInt> {
            let k = u32::try_from(d.exp - e)
                .ok()
                .filter(|&k| k <= Self::LIMIT)?;
            Some(&d.mantissa * BigInt::from(10).pow(k))
        };
        Decimal {
            mantissa: scale(self)? + scale(o)?,
            exp: e,
        }
        .checked()
    }

    /// The exact product; `None` when an exponent or mantissa leaves [`Decimal::LIMIT`].
    pub fn mul(&self, o: &Decimal) -> Option<Decimal> {
        Decimal {
            mantissa: &self.mantissa * &o.mantissa,
            exp: self.exp.checked_add(o.exp)?,
        }
        .checked()
    }

    /// Exponents (of 10) and mantissa digits beyond this are refused: far outside f64's
    /// range and precision, and each costs big-integer work proportional to its size.
    pub const LIMIT: u32 = 20_000;

    fn checked(self) -> Option<Decimal> {
        (self.exp.unsigned_abs() <= u64::from(Self::LIMIT)
            && self.mantissa.bits() <= 4 * u64::from(Self::LIMIT))
        .then_some(self)
    }

    /// Compares with a finite f64, exactly.
    pub fn cmp_f64(&self, v: f64) -> Ordering {
        let (m, e) = f64_parts(v);
        // self = M 10^E, v = m 2^e: compare M 10^E 2^-e with m, clearing denominators.
        let mut lhs = self.mantissa.clone();
        let mut rhs = m;
        if self.exp >= 0 {
            lhs *= BigInt::from(10).pow(self.exp as u32);
        } else {
            rhs *= BigInt::from(10).pow((-self.exp) as u32);
        }
        if e >= 0 {
            rhs <<= e as usize;
        } else {
            lhs <<= (-e) as usize;
        }
        lhs.cmp(&rhs)
    }

    /// The nearest f64 (correctly rounded; infinite beyond the range).
    pub fn nearest(&self) -> f64 {
        format!("{}e{}", self.mantissa, self.exp)
            .parse()
            .unwrap_or(f64::NAN)
    }

    /// `[lo, hi]`: the largest f64 `<=` and the smallest f64 `>=` the exact value (equal
    /// when it is representable); `None` beyond the f64 range.
    pub fn enclosure(&self) -> Option<(f64, f64)> {
        let v = self.nearest();
        if !v.is_finite() {
            return None;
        }
        let (lo, hi) = match self.cmp_f64(v) {
            Ordering::Equal => (v, v),
            Ordering::Less => (v.next_down(), v),
            Ordering::Greater => (v, v.next_up()),
        };
        (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
    }

    /// The f64 equal to this number, if one is.
    pub fn exact_f64(&self) -> Option<f64> {
        let v = self.nearest();
        (v.is_finite() && self.cmp_f64(v) == Ordering::Equal).then_some(v)
    }

    /// The sign: -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        if self.mantissa.is_positive() {
            1
        } else if self.mantissa.is_negative() {
            -1
        } else {
            0
        }
    }
}

/// `v = m * 2^e` exactly (`v` finite).
fn f64_parts(v: f64) -> (BigInt, i64) {
    if v == 0.0 {
        return (BigInt::zero(), 0);
    }
    let bits = v.to_bits();
    let neg = bits >> 63 == 1;
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (m, e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased - 1075)
    };
    let m = BigInt::from(m);
    (if neg { -m } else { m }, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_enclose_their_exact_value() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        for (s, v) in [
            ("-0.5", -0.5),
            ("1", 1.0),
            ("5.8e-05", 5.8e-05),
            ("1E3", 1000.0),
            (".25", 0.25),
            ("+3.", 3.0),
        ] {
            let (lo, hi) = d(s).enclosure().unwrap();
            assert!(lo <= v && v <= hi, "{s}: [{lo}, {hi}]");
            assert!(hi == lo || hi == lo.next_up(), "{s}");
        }
        // 0.1 is not a double: the enclosure has two ends, on either side of 0.1.
        let (lo, hi) = d("0.1").enclosure().unwrap();
        assert_eq!(hi, lo.next_up());
        assert_eq!(d("0.1").cmp_f64(lo), Ordering::Greater);
        assert_eq!(d("0.1").cmp_f64(hi), Ordering::Less);
        assert_eq!(d("-0.5").exact_f64(), Some(-0.5));
        assert_eq!(d("0.1").exact_f64(), None);
        assert_eq!(
            d("0.700434925").add(&d("-0.700434925")),
            Some(Decimal {
                mantissa: BigInt::zero(),
                exp: -9
            })
        );
        assert!(d("0.1").add(&d("0.2")).unwrap().cmp_f64(0.3) != Ordering::Equal);
        assert_eq!(d("2").mul(&d("-1.5")).unwrap().exact_f64(), Some(-3.0));
        // Beyond the limits: refused, not wrapped around or allocated.
        let big = d("1e19999");
        assert_eq!(big.mul(&big), None);
        assert_eq!(d("1e-19999").add(&big), None);
        assert_eq!(Decimal::parse("1e999999"), None);
        assert_eq!(d("1.7976931348623158e308").enclosure(), None);
        assert_eq!(
            Decimal::from_f64(0.1).unwrap().cmp_f64(0.1),
            Ordering::Equal
        );
        assert_eq!(d("1e400").enclosure(), None);
        for bad in [
            "", "-", ".", "1.2.3", "e5", "1e", "0x10", "1,5", "inf", "nan",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
        assert_eq!(d("-0.5").signum(), -1);
    }
}
