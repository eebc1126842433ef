//! The input set's inner box (`InputDomain::inner_lower/inner_upper`): every double in it
//! lies in the exact set `[max(x - eps, lo), min(x + eps, hi)]` (checked in exact dyadic
//! arithmetic), and it is the largest such box (the next double outwards is outside, or
//! the box's own end).

use dual::InputDomain;
use network::Dyadic;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Ordering;

fn d(v: f64) -> Dyadic {
    Dyadic::from_f64(v).unwrap()
}

#[test]
fn the_inner_box_is_inside_the_exact_set_and_tight() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut xs: Vec<f64> = (0..4000).map(|_| rng.random_range(-2.0..2.0)).collect();
    xs.extend([0.0, 1.0, 0.1, 0.3, 1e-300, -0.7]);
    for (i, &x) in xs.iter().enumerate() {
        let eps = [0.1, 0.3, 1.0 / 3.0, 0.0, 1e-17, rng.random_range(0.0..1.0)][i % 6];
        for bx in [None, Some((0.0, 1.0)), Some((-0.25, 0.5))] {
            let Ok(dom) = InputDomain::new([x], eps, bx) else {
                continue;
            };
            let (a, b) = (dom.inner_lower[0], dom.inner_upper[0]);
            assert!(a <= b, "x {x} eps {eps} box {bx:?}: [{a}, {b}]");
            // a >= x - eps  <=>  a + eps >= x, exactly.
            let lo_ok = d(a).add(&d(eps)).cmp_f64(x) != Some(Ordering::Less);
            let hi_ok = d(b).add(&d(eps).neg()).cmp_f64(x) != Some(Ordering::Greater);
            assert!(
                lo_ok && hi_ok,
                "x {x} eps {eps}: [{a}, {b}] leaves the ball"
            );
            if let Some((lo, hi)) = bx {
                assert!(a >= lo && b <= hi);
            }
            // Tight: one double further out leaves the ball (or the box).
            let out_lo = a.next_down();
            let outside_lo = d(out_lo).add(&d(eps)).cmp_f64(x) == Some(Ordering::Less)
                || bx.is_some_and(|(lo, _)| out_lo < lo);
            assert!(
                outside_lo,
                "x {x} eps {eps} box {bx:?}: inner lower {a} not tight"
            );
            let out_hi = b.next_up();
            let outside_hi = d(out_hi).add(&d(eps).neg()).cmp_f64(x) == Some(Ordering::Greater)
                || bx.is_some_and(|(_, hi)| out_hi > hi);
            assert!(
                outside_hi,
                "x {x} eps {eps} box {bx:?}: inner upper {b} not tight"
            );
        }
    }
}

#[test]
fn a_box_domain_is_its_own_inner_box() {
    let dom = InputDomain::from_box([0.1, -3.0], [0.3, -3.0]).unwrap();
    assert_eq!(dom.inner_lower.as_slice(), [0.1, -3.0]);
    assert_eq!(dom.inner_upper.as_slice(), [0.3, -3.0]);
}

#[test]
fn a_ball_that_meets_the_box_only_in_rounding_is_empty() {
    // 0.1 + 0.3 = 0.39999999999999999722 < 0.4 exactly (the rounded sum is 0.4): the ball
    // around 0.1 of radius 0.3 misses [0.4, 1]; so does the mirrored case below.
    for (x, bx) in [(0.1, (0.4, 1.0)), (-0.1, (-1.0, -0.4))] {
        let e = InputDomain::new([x], 0.3, Some(bx))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not meet the box"), "{e}");
    }
    // One double further in, it meets the box at a single point or more.
    let d = InputDomain::new([0.1], 0.3, Some((0.4f64.next_down(), 1.0))).unwrap();
    assert!(d.inner_lower[0] <= d.inner_upper[0]);
}
