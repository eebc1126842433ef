//! The ReLU relaxation, written once: the triangle of the paper's Fig. 2 (the "Planet"
//! relaxation, Ehlers 2017) and the lower slopes of the bound methods.
//!
//! A unit `z = relu(zhat)` with proven bounds `l <= zhat <= u` is
//!
//! * `z = 0` when `u <= 0` (the paper's `I-`), `z = zhat` when `l >= 0` (`I+`);
//! * for `l < 0 < u` (`I`), relaxed to the triangle `z >= 0`, `z >= zhat`,
//!   `z <= d (zhat - l)` with the upper line's slope `d = u / (u - l)`; a bound method
//!   replaces the two lower lines by one, `z >= alpha zhat` with `alpha` in `[0, 1]`
//!   (eq. 7: the dual map `nu = d [nuhat]_+ - alpha [nuhat]_-`);
//!
//! and a linear unit of a graph model (`network::graph`: not a ReLU) is `z = zhat` whatever
//! its bounds. Every consumer reads the relaxation from [`Relaxation`]: the dual objective
//! J and its gradient (`objective.rs`, `methods.rs`), Algorithm 1's `D`
//! (`algorithm1.rs`), CROWN's slopes, the LP (19) rows (`lp::Lp19`), branch and bound's
//! scores (`exact`), and, as a reference its tensor form is tested against, the candle
//! training path (`train::dual`).
//!
//! The slopes are floating-point numbers: any lower slope in `[0, 1]` is valid, and the
//! consumers that prove bounds account for the rounding of `d` themselves (see
//! [`crate::rounding`]).

use crate::bounds::{stability, unit_stability, Stability};

/// The relaxation of one hidden unit with bounds `l <= zhat <= u` (finite, not NaN: the
/// callers validate bounds first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relaxation {
    /// Lower bound on the pre-activation.
    pub l: f64,
    /// Upper bound on the pre-activation.
    pub u: f64,
    /// Which of the cases above the unit is in.
    pub stability: Stability,
}

impl Relaxation {
    /// A ReLU unit with bounds `[l, u]`.
    pub fn relu(l: f64, u: f64) -> Relaxation {
        Relaxation {
            l,
            u,
            stability: stability(l, u),
        }
    }

    /// Unit `j` of a hidden layer whose first `relu_units` units are ReLUs (the rest are
    /// linear units, `network::Model::relu_units`), with bounds `[l, u]`.
    pub fn of(relu_units: usize, j: usize, l: f64, u: f64) -> Relaxation {
        Relaxation {
            l,
            u,
            stability: unit_stability(relu_units, j, l, u),
        }
    }

    /// The slope `d` of the upper line `z <= d (zhat - l)`: `u / (u - l)` for an unstable
    /// unit (the paper's `alpha = u/(u-l)` of Algorithm 1 and J's positive part), `1` for
    /// an active or linear unit, `0` for an inactive one (the diagonal of the paper's `D`).
    pub fn upper_slope(&self) -> f64 {
        match self.stability {
            Stability::Off => 0.0,
            Stability::On | Stability::Linear => 1.0,
            Stability::Unstable => self.u / (self.u - self.l),
        }
    }

    /// The upper line of an unstable unit as an LP row over `(z, zhat)`:
    /// `(u - l) z - u zhat <= -u l` (the triangle's third side, multiplied out so that no
    /// slope is rounded), as `[coefficient of z, coefficient of zhat, right-hand side]`;
    /// `None` for other units (no row).
    pub fn upper_row(&self) -> Option<[f64; 3]> {
        (self.stability == Stability::Unstable)
            .then(|| [self.u - self.l, -self.u, -self.u * self.l])
    }

    /// The triangle's height at `zhat = 0`, `-l d = -u l / (u - l)`: the largest gap between
    /// the upper line and the ReLU (branch and bound's intercept score, BaBSR); `0` for
    /// other units.
    pub fn height(&self) -> f64 {
        match self.stability {
            Stability::Unstable => -self.l * self.upper_slope(),
            _ => 0.0,
        }
    }

    /// CROWN's / DeepPoly's lower slope (Zhang et al. 2018; Singh et al. 2019): `1` when
    /// `u > -l` (the line `z >= zhat` covers more of the triangle), else `0`. Computed
    /// from the bounds alone; only unstable units use it.
    pub fn crown_slope(&self) -> f64 {
        if self.u > -self.l {
            1.0
        } else {
            0.0
        }
    }

    /// The dual map of one unit (eq. 7): `nu = 0` (inactive), `nuhat` (active or linear),
    /// `d [nuhat]_+ - alpha [nuhat]_-` (unstable, lower slope `alpha`), in floating point.
    pub fn dual(&self, nuhat: f64, alpha: f64) -> f64 {
        match self.stability {
            Stability::Off => 0.0,
            Stability::On | Stability::Linear => nuhat,
            Stability::Unstable => self.upper_slope() * nuhat.max(0.0) + alpha * nuhat.min(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_triangle_and_its_slopes() {
        // l = -1, u = 3: d = 3/4, height 3/4, upper line z <= 3/4 (zhat + 1).
        let r = Relaxation::relu(-1.0, 3.0);
        assert_eq!(r.stability, Stability::Unstable);
        assert_eq!(r.upper_slope(), 0.75);
        assert_eq!(r.upper_row(), Some([4.0, -3.0, 3.0]));
        assert_eq!(r.height(), 0.75);
        assert_eq!(r.crown_slope(), 1.0);
        assert_eq!(r.dual(2.0, 0.5), 1.5);
        assert_eq!(r.dual(-2.0, 0.25), -0.5);
        assert_eq!(r.dual(0.0, 0.25), 0.0);
        // l = -3, u = 1: d = 1/4, CROWN's slope 0.
        let r = Relaxation::relu(-3.0, 1.0);
        assert_eq!(r.upper_slope(), 0.25);
        assert_eq!(r.upper_row(), Some([4.0, -1.0, 3.0]));
        assert_eq!(r.height(), 0.75);
        assert_eq!(r.crown_slope(), 0.0);
        // A tie u = -l: slope 0 (the line z >= 0).
        assert_eq!(Relaxation::relu(-2.0, 2.0).crown_slope(), 0.0);
    }

    #[test]
    fn stable_and_linear_units_are_not_relaxed() {
        for (r, d, nu) in [
            (Relaxation::relu(-3.0, -1.0), 0.0, 0.0),
            (Relaxation::relu(-3.0, 0.0), 0.0, 0.0),
            (Relaxation::relu(0.0, 2.0), 1.0, -5.0),
            (Relaxation::relu(1.0, 2.0), 1.0, -5.0),
            (Relaxation::of(2, 2, -3.0, 2.0), 1.0, -5.0),
            (Relaxation::of(2, 5, -3.0, -1.0), 1.0, -5.0),
        ] {
            assert_eq!(r.upper_slope(), d, "{r:?}");
            assert_eq!(r.upper_row(), None, "{r:?}");
            assert_eq!(r.height(), 0.0, "{r:?}");
            assert_eq!(r.dual(-5.0, 0.5), nu, "{r:?}");
        }
        assert_eq!(Relaxation::of(2, 5, -3.0, 2.0).stability, Stability::Linear);
        assert_eq!(
            Relaxation::of(2, 1, -3.0, 2.0).stability,
            Stability::Unstable
        );
    }
}
