//! `InputDomain::from_box`: the box `[lower, upper]` as a centre and a radius that cover
//! it in exact arithmetic, with clear errors for a bad box.

use dual::{DualError, InputDomain};
use network::Dyadic;

/// `center - radius <= lo` and `center + radius >= hi`, exactly.
fn covers(d: &InputDomain, lo: &[f64], hi: &[f64]) -> bool {
    (0..lo.len()).all(|i| {
        let c = Dyadic::from_f64(d.center[i]).unwrap();
        let r = Dyadic::from_f64(d.radius[i]).unwrap();
        let down = c.add(&r.neg());
        let up = c.add(&r);
        down.cmp_f64(lo[i]) != Some(std::cmp::Ordering::Greater)
            && up.cmp_f64(hi[i]) != Some(std::cmp::Ordering::Less)
    })
}

#[test]
fn the_box_is_covered_exactly_and_tightly() {
    let lo = [0.1, -1e308, -3.0, 0.6798577687, 5.0, -0.5, 1e-300];
    let hi = [0.3, 1e308, -3.0, 0.5 + 0.5, 5.0 + 2e-15, 0.5, 2e-300];
    let d = InputDomain::from_box(lo, hi).unwrap();
    assert!(covers(&d, &lo, &hi));
    for i in 0..lo.len() {
        assert!(d.center[i] >= lo[i] && d.center[i] <= hi[i], "centre {i}");
        let half = 0.5 * hi[i] - 0.5 * lo[i];
        // At most a few ulps above the half-width (and never below it).
        assert!(
            d.radius[i] >= half && d.radius[i] <= half + 4.0 * half.abs() * f64::EPSILON + 1e-320,
            "radius {i}: {} vs {half}",
            d.radius[i]
        );
    }
    assert_eq!(d.center[2], -3.0);
    assert_eq!(d.center[0], 0.5 * 0.1 + 0.5 * 0.3);
    assert_eq!(d.x, d.center);
    assert_eq!(d.eps, d.radius.iter().cloned().fold(0.0, f64::max));
    assert_eq!(d.input_box, None);
    // Every corner of the box lies in the domain's enclosure.
    let (elo, ehi) = d.enclosing_box();
    for i in 0..lo.len() {
        assert!(elo[i] <= lo[i] && ehi[i] >= hi[i]);
    }
}

#[test]
fn asymmetric_rounding_of_the_midpoint_is_covered() {
    // Boxes whose midpoint rounds: the radius must reach both ends.
    let mut seed = 12345u64;
    for _ in 0..10_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let a = (seed >> 11) as f64 / (1u64 << 53) as f64 * 10.0 - 5.0;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = (seed >> 11) as f64 / (1u64 << 53) as f64 * 1e-3;
        let (lo, hi) = ([a], [a + w]);
        let d = InputDomain::from_box(lo, hi).unwrap();
        assert!(covers(&d, &lo, &hi), "[{a}, {}]", a + w);
    }
}

#[test]
fn bad_boxes_are_refused() {
    assert!(
        matches!(InputDomain::from_box([1.0], [0.0]), Err(DualError::InvalidBox { lo, hi }) if lo == 1.0 && hi == 0.0)
    );
    assert!(matches!(
        InputDomain::from_box([f64::NAN], [0.0]),
        Err(DualError::InvalidBox { .. })
    ));
    assert!(matches!(
        InputDomain::from_box([0.0], [f64::INFINITY]),
        Err(DualError::InvalidBox { .. })
    ));
    assert!(matches!(
        InputDomain::from_box([-f64::MAX], [f64::MAX]),
        Err(DualError::InvalidBox { .. })
    ));
    let e = InputDomain::from_box([0.0, 1.0], [1.0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("lengths 2 and 1"), "{e}");
}
