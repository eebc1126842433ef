//! The falsifier's exact line search ([`verify::line_minimum`]) and the searches built on
//! it (edge search, coordinate polish): against dense sampling on random networks, and on
//! a thin unsafe region that sampling and signed-gradient steps miss.

use network::{Architecture, DVector, Init, Layer, Model, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verify::{confirms, line_minimum, FalsifyOptions};
use vnnlib::OutputConstraint;

fn constraint(coef: Vec<f64>, rhs: f64) -> OutputConstraint {
    OutputConstraint {
        coef: DVector::from_vec(coef),
        rhs_lo: rhs,
        rhs_hi: rhs,
        line: 1,
        col: 1,
    }
}

/// `max_k (c_k . f(x) - rhs_k)` in floating point.
fn violation(m: &Model, x: &[f64], conj: &[OutputConstraint]) -> f64 {
    let y = m.forward(x).unwrap();
    conj.iter()
        .map(|k| k.coef.dot(&y) - k.rhs_lo)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// On random dense networks (3 inputs, two hidden layers of 12, 3 outputs) and random
/// segments, with a conjunction of two or three constraints: the minimum reported is the
/// float violation at the point reported, the point lies on the segment, and no point of a
/// 20,001-point grid of the segment has a violation below it by more than 1e-9 relative to
/// the violation's scale (the breakpoints are rounded; a missed piece would be off by the
/// piece's depth, orders larger). The grid's minimum is not below the reported one by
/// more than that, and on at least some segments the line search is strictly better than
/// the grid (it finds the kinks between grid points).
#[test]
fn line_minimum_is_the_minimum_along_the_segment() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut strictly_better = 0;
    for case in 0..40u64 {
        let m = Architecture::mlp(&[3, 12, 12, 3])
            .init(Init::Standard, case)
            .unwrap();
        // Two or three constraints, and every fourth case 60 (the bisection over many
        // terms of the maximum).
        let kinds = if case % 4 == 3 {
            60
        } else {
            2 + (case % 2) as usize
        };
        let conj: Vec<OutputConstraint> = (0..kinds)
            .map(|_| {
                constraint(
                    (0..3).map(|_| rng.random_range(-1.0..1.0)).collect(),
                    rng.random_range(-0.5..0.5),
                )
            })
            .collect();
        let a: Vec<f64> = (0..3).map(|_| rng.random_range(-2.0..2.0)).collect();
        let b: Vec<f64> = (0..3).map(|_| rng.random_range(-2.0..2.0)).collect();
        let mut evaluated = 0;
        let (x, v) = line_minimum(&m, &a, &b, &conj, &mut evaluated).unwrap();
        assert_eq!(v, violation(&m, x.as_slice(), &conj));
        assert!(evaluated >= 3, "{evaluated}");
        // x = a + t (b - a) for one t in [0, 1].
        let i = (0..3)
            .max_by(|&i, &j| (b[i] - a[i]).abs().total_cmp(&(b[j] - a[j]).abs()))
            .unwrap();
        let t = (x[i] - a[i]) / (b[i] - a[i]);
        assert!((-1e-12..=1.0 + 1e-12).contains(&t), "t = {t}");
        for k in 0..3 {
            assert!((a[k] + t * (b[k] - a[k]) - x[k]).abs() <= 1e-9, "{x:?}");
        }
        let grid = (0..=20_000)
            .map(|s| {
                let t = s as f64 / 20_000.0;
                let p: Vec<f64> = (0..3).map(|k| a[k] + t * (b[k] - a[k])).collect();
                violation(&m, &p, &conj)
            })
            .fold(f64::INFINITY, f64::min);
        let scale = 1.0 + grid.abs();
        assert!(
            v <= grid + 1e-9 * scale,
            "case {case}: line search {v} above the grid's minimum {grid}"
        );
        if v < grid - 1e-12 * scale {
            strictly_better += 1;
        }
    }
    assert!(
        strictly_better >= 10,
        "only {strictly_better} of 40 segments"
    );
}

/// `y = 0.5 - tent(x0) / w`, with `tent` the ReLU hat of half-width `w = 1e-7` at
/// `x0 = 0.3137`: `y <= 0` only on `|x0 - 0.3137| <= w / 2`, one ten-millionth of [0, 1].
/// With `gated` (3 inputs) the hat's ReLUs are shifted by `1e3 (1 - x1) + 1e3 x2`, so the
/// region is also thin around the edge `x1 = 1, x2 = 0`. Returns the model and the peak.
fn spike(gated: bool) -> (Model, f64) {
    let (a, w, g) = (0.3137 - 1e-7, 1e-7, if gated { 1e3 } else { 0.0 });
    let row: &[f64] = if gated { &[1.0, g, -g] } else { &[1.0] };
    let m = Model::new(
        Shape::Flat(row.len()),
        vec![
            Layer::Dense {
                weight: row.repeat(3),
                bias: vec![-a - g, -(a + w) - g, -(a + 2.0 * w) - g],
                out_features: 3,
                in_features: row.len(),
            },
            Layer::Relu,
            Layer::Dense {
                weight: vec![-1.0 / w, 2.0 / w, -1.0 / w],
                bias: vec![0.5],
                out_features: 1,
                in_features: 3,
            },
        ],
    )
    .unwrap();
    (m, a + w)
}

/// The exact line search reaches the spike's region from the segment [0, 1] alone; the
/// falsifier finds it with the polish on, and (a control that shows the case is hard)
/// not with the polish and edge search off.
#[test]
fn a_thin_unsafe_region_is_found_by_the_line_search_not_by_pgd() {
    let (m, peak) = spike(false);
    let conj = [constraint(vec![1.0], 0.0)];
    let mut evaluated = 0;
    let (x, v) = line_minimum(&m, &[0.0], &[1.0], &conj, &mut evaluated).unwrap();
    assert!(v < -0.49, "{v} at {x:?}");
    assert!((x[0] - peak).abs() < 1e-8, "{x:?}");
    assert!(confirms(&m, &x, &conj).unwrap());
    // A handful of points: the three kinks and the ends, not a dense search.
    assert!(evaluated <= 10, "{evaluated} points");

    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let on = FalsifyOptions::default();
    let (x, _) = verify::falsify(&m, [0.0], [1.0], &conj, &on, &mut rng).unwrap();
    let x = x.expect("the polish reaches the spike");
    assert!(confirms(&m, &x, &conj).unwrap());
    let off = FalsifyOptions {
        polish_dims: 0,
        edge_dims: 0,
        restarts: 200,
        ..Default::default()
    };
    let (x, _) = verify::falsify(&m, [0.0], [1.0], &conj, &off, &mut rng).unwrap();
    assert!(x.is_none(), "PGD alone found {x:?}");
}

/// The edge search: on a 3-input network whose unsafe region is a thin slab along one
/// edge of the box (`x0` near 0.3137, `x1 = 1`, `x2 = 0`; the spike again, gated by the
/// other two coordinates), the default falsifier finds it on the box's edges.
#[test]
fn the_edge_search_finds_a_region_on_an_edge() {
    let (m, _) = spike(true);
    let conj = [constraint(vec![1.0], 0.0)];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let edges_only = FalsifyOptions {
        restarts: 0,
        polish_dims: 0,
        ..Default::default()
    };
    let (x, _) = verify::falsify(&m, [0.0; 3], [1.0; 3], &conj, &edges_only, &mut rng).unwrap();
    let x = x.expect("an edge reaches the region");
    assert!(confirms(&m, &x, &conj).unwrap());
    assert_eq!((x[1], x[2]), (1.0, 0.0), "{x}");
    let none = FalsifyOptions {
        edge_dims: 0,
        ..edges_only
    };
    let (x, _) = verify::falsify(&m, [0.0; 3], [1.0; 3], &conj, &none, &mut rng).unwrap();
    assert!(x.is_none(), "without the edge search: {x:?}");
}

/// A box wider than the largest double (`hi - lo` overflows): the falsifier's random
/// starts, line searches and PGD steps stay finite and inside the box (a random start
/// drawn as `rng.random_range(lo..=hi)` panicked here).
#[test]
fn a_box_wider_than_the_largest_double_is_searched_without_overflow() {
    let m = Architecture::mlp(&[2, 4, 1])
        .init(Init::Standard, 0)
        .unwrap();
    let conj = [constraint(vec![1.0], -1e300)];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (lo, hi) = ([-1e308, -1.0], [1e308, 1.0]);
    let (x, n) = verify::falsify(&m, lo, hi, &conj, &FalsifyOptions::default(), &mut rng).unwrap();
    assert!(n > 10);
    if let Some(x) = x {
        assert!(x
            .iter()
            .zip(lo.iter().zip(hi))
            .all(|(v, (a, b))| *a <= *v && *v <= b));
        assert!(confirms(&m, &x, &conj).unwrap());
    }
    let mut evaluated = 0;
    let (x, v) = line_minimum(&m, &lo, &hi, &conj, &mut evaluated).unwrap();
    assert!(x.iter().all(|v| v.is_finite()) && !v.is_nan(), "{x:?} {v}");
    // Ends of the wrong length are an error, not a panic.
    assert!(line_minimum(&m, &[0.0], &[1.0, 1.0], &conj, &mut evaluated).is_err());
}

/// The edge search counts only coordinates of positive width: on the gated spike with
/// `x2` fixed at 0 (two wide coordinates of three), `edge_dims: 2` still searches the
/// edges (4 segments, not 12) and finds the region.
#[test]
fn the_edge_search_counts_only_coordinates_of_positive_width() {
    let (m, _) = spike(true);
    let conj = [constraint(vec![1.0], 0.0)];
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let opts = FalsifyOptions {
        restarts: 0,
        polish_dims: 0,
        edge_dims: 2,
        ..Default::default()
    };
    let (x, n) =
        verify::falsify(&m, [0.0, 0.0, 0.0], [1.0, 1.0, 0.0], &conj, &opts, &mut rng).unwrap();
    let x = x.expect("an edge reaches the region");
    assert!(confirms(&m, &x, &conj).unwrap());
    assert_eq!((x[1], x[2]), (1.0, 0.0), "{x}");
    assert!(n < 100, "{n} points");
}
