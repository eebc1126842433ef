//! The certified-radius search (eq. 17) on margins whose root is known exactly.
//!
//! `radius_search` sees only `g(eps)`, so synthetic margins pin down what it does:
//! linear, convex, concave and kinked margins (the shapes a ReLU network's J takes), a
//! margin that rounds a hair negative at its root, one that turns NaN, and the edge cases
//! (never certified, always certified, out of steps). The step sequences are pinned: they
//! are what a change to the step rule (capped Newton before a bracket exists, false
//! position with Illinois weights inside it, bisection when a margin is NaN, the guards
//! off the bracket's ends) changes.

use dual::{radius_search, DualError, RadiusOptions, RadiusResult, RadiusStop};

fn run(g: impl Fn(f64) -> f64, opts: RadiusOptions) -> RadiusResult {
    radius_search(|e| Ok(g(e)), opts).unwrap()
}

fn kinds(r: &RadiusResult) -> Vec<&'static str> {
    r.steps.iter().map(|s| s.kind).collect()
}

/// The result brackets `root` within the relative tolerance, certified side below.
fn assert_brackets(r: &RadiusResult, root: f64, opts: RadiusOptions) {
    assert_eq!(r.stop, RadiusStop::Converged, "{r:?}");
    let up = r.upper.unwrap();
    assert!(
        r.radius <= root && root <= up,
        "[{}, {up}] vs root {root}",
        r.radius
    );
    assert!(
        up - r.radius <= opts.rel_tol * r.radius,
        "bracket too wide: {r:?}"
    );
    assert!(r
        .steps
        .iter()
        .all(|s| s.margin > 0.0 || s.eps >= root || s.margin.is_nan()));
    // Every certified step is at or below the radius; every failing one at or above upper.
    for s in &r.steps {
        if s.margin > 0.0 {
            assert!(s.eps <= r.radius, "{s:?}");
        } else {
            assert!(s.eps >= up, "{s:?}");
        }
    }
}

#[test]
fn linear_margins_converge_in_four_steps_near_initial() {
    let opts = RadiusOptions::default();
    for root in [0.0123, 0.5, 3.0, 2e-5] {
        let r = run(|e| 1.0 - e / root, opts);
        assert_brackets(&r, root, opts);
        assert!(
            kinds(&r).iter().all(|&k| k != "bisect"),
            "{root}: {:?}",
            kinds(&r)
        );
        // A root 300x `initial` is reached by Newton steps of at most 8x.
        assert!(r.steps.len() <= 6, "{root}: {:?}", r.steps);
    }
    let r = run(|e| 1.0 - e / 0.0123, opts);
    assert_eq!(
        kinds(&r),
        ["start", "expand", "newton", "secant"],
        "{:?}",
        r.steps
    );
}

#[test]
fn curved_and_kinked_margins_converge_by_false_position() {
    let opts = RadiusOptions::default();
    // Convex and decreasing, no libm (traces must not depend on the platform's exp):
    // 1 / (1 + e / 0.007) - 0.5 has its root at 0.007.
    let root = 0.007;
    let convex = run(|e| 1.0 / (1.0 + e / 0.007) - 0.5, opts);
    // The same with its root exactly at the first eps tried: the margin there is exactly
    // 0, and the next step goes just inside it.
    let at_initial = run(|e| 1.0 / (1.0 + e / 0.01) - 0.5, opts);
    assert_brackets(&at_initial, 0.01, opts);
    assert_eq!(kinds(&at_initial), ["start", "expand", "secant"]);
    assert_brackets(&convex, root, opts);
    let concave = run(|e| 1.0 - (e / 0.07).powi(2), opts);
    assert_brackets(&concave, 0.07, opts);
    // Slope -1 up to 0.02, then -20 (units turning unstable): root at 0.02 + 0.98/20.
    let kinked = run(
        |e| {
            if e < 0.02 {
                1.0 - e
            } else {
                0.98 - 20.0 * (e - 0.02)
            }
        },
        opts,
    );
    assert_brackets(&kinked, 0.02 + 0.98 / 20.0, opts);
    // Pinned: false position with Illinois weights; Newton (capped at 8x) only before
    // a bracket exists.
    assert_eq!(
        kinds(&convex),
        ["start", "expand", "secant", "secant", "secant", "secant", "secant"]
    );
    assert_eq!(
        kinds(&concave),
        ["start", "expand", "newton", "secant", "secant", "secant", "secant", "secant"]
    );
    assert_eq!(
        kinds(&kinked),
        ["start", "expand", "newton", "secant", "secant", "secant"]
    );
}

#[test]
fn a_margin_that_rounds_negative_at_its_root_is_bracketed_by_false_position() {
    // Exactly linear, but the proven value sits 1e-12 below: the root moves down by
    // 1e-12 * root; Newton from a failing point overshoots; false position closes it.
    let root = 0.25;
    let opts = RadiusOptions::default();
    let r = run(|e| 1.0 - e / root - 1e-12, opts);
    assert_brackets(&r, root * (1.0 - 1e-12), opts);
    assert!(r.steps.len() <= 6, "{:?}", r.steps);
}

#[test]
fn nan_and_plateaus_are_bracketed_by_bisection_and_illinois() {
    // Certified below 0.3, NaN above: no false position through a NaN, so the search
    // bisects towards 0.3.
    let opts = RadiusOptions::default();
    let r = run(|e| if e < 0.3 { 1.0 } else { f64::NAN }, opts);
    assert_brackets(&r, 0.3, opts);
    assert!(kinds(&r).contains(&"bisect"), "{:?}", kinds(&r));
    // A flat margin that drops to a negative plateau: two failures in a row bisect.
    let r = run(|e| if e < 0.3 { 1.0 } else { -1.0 }, opts);
    assert_brackets(&r, 0.3, opts);
    // The Illinois weights halve the kept end's margin each time, so false position on
    // a step still closes the bracket, at about bisection's pace.
    let k = kinds(&r);
    assert!(r.steps.len() <= 20, "{} steps: {k:?}", r.steps.len());
}

#[test]
fn edge_cases_stop_with_their_reason() {
    let opts = RadiusOptions::default();
    // Not certified at 0 (or NaN there): one evaluation, radius 0, upper 0.
    for g0 in [-1.0, 0.0, f64::NAN] {
        let r = run(move |_| g0, opts);
        assert_eq!(r.stop, RadiusStop::NotCertifiedAtZero);
        assert_eq!((r.radius, r.upper, r.steps.len()), (0.0, Some(0.0), 1));
    }
    // Always certified: doubling from `initial` reaches `max_eps` exactly.
    let o = RadiusOptions {
        initial: 0.5,
        max_eps: 3.0,
        ..opts
    };
    let r = run(|_| 1.0, o);
    assert_eq!(r.stop, RadiusStop::ReachedMaxEps);
    assert_eq!((r.radius, r.upper), (3.0, None));
    assert_eq!(kinds(&r), ["start", "expand", "expand", "expand", "expand"]);
    assert_eq!(
        r.steps.iter().map(|s| s.eps).collect::<Vec<_>>(),
        [0.0, 0.5, 1.0, 2.0, 3.0]
    );
    // A linear margin that Newton predicts past max_eps: capped at max_eps.
    let r = run(|e| 1.0 - e / 100.0, o);
    assert_eq!(r.stop, RadiusStop::ReachedMaxEps);
    assert_eq!(r.radius, 3.0);
    // Out of steps: the last certified eps, and the failing one.
    let o = RadiusOptions {
        max_steps: 3,
        ..opts
    };
    let r = run(|e| 1.0 - e / 0.0123, o);
    assert_eq!(r.stop, RadiusStop::MaxSteps);
    assert_eq!(r.steps.len(), 3);
    assert_eq!(r.radius, 0.01);
    assert!(r.upper.unwrap() > 0.0123);
    // Errors of the margin pass through.
    let e = radius_search(|_| Err(DualError::NoTargets { n_out: 1 }), opts).unwrap_err();
    assert!(matches!(e, DualError::NoTargets { .. }), "{e}");
}

#[test]
fn options_out_of_range_are_errors_not_panics() {
    let d = RadiusOptions::default();
    for o in [
        RadiusOptions {
            rel_tol: f64::NAN,
            ..d
        },
        RadiusOptions { rel_tol: 4.0, ..d },
        RadiusOptions { rel_tol: 0.0, ..d },
        RadiusOptions { rel_tol: 1.0, ..d },
        RadiusOptions { initial: 0.0, ..d },
        RadiusOptions {
            max_eps: f64::INFINITY,
            ..d
        },
        RadiusOptions { max_eps: 0.0, ..d },
    ] {
        let e = radius_search(|e| Ok(1.0 - e), o).unwrap_err();
        assert!(matches!(e, DualError::Options(_)), "{e}");
    }
}

/// A margin of exactly 0 is not a certificate (a tie): beyond the root the margin stays
/// at 0, and the search must still stop below the root, not run to `max_eps`.
#[test]
fn a_zero_margin_is_not_certified() {
    let opts = RadiusOptions::default();
    let r = run(|e| (1.0 - e / 0.3).max(0.0), opts);
    assert_brackets(&r, 0.3, opts);
}

/// Golden traces: every eps the search evaluates, bit for bit, on five margins. Any
/// change to the step rule (the Newton cap, the aim above or below the prediction, the
/// guards, the Illinois weights, when to bisect) changes one of them; a deliberate change
/// updates them here with the new step counts in the README.
#[test]
fn step_traces_are_pinned() {
    let opts = RadiusOptions::default();
    type Margin = Box<dyn Fn(f64) -> f64>;
    let cases: [(&str, Margin); 7] = [
        ("linear", Box::new(|e| 1.0 - e / 0.0123)),
        ("convex", Box::new(|e| 1.0 / (1.0 + e / 0.007) - 0.5)),
        ("concave", Box::new(|e| 1.0 - (e / 0.07).powi(2))),
        (
            "kinked",
            Box::new(|e| {
                if e < 0.02 {
                    1.0 - e
                } else {
                    0.98 - 20.0 * (e - 0.02)
                }
            }),
        ),
        ("plateau", Box::new(|e| if e < 0.3 { 1.0 } else { -1.0 })),
        // Flat in floating point (1e-310 per unit eps is below the rounding of 1): the
        // slope is 0, no Newton step exists, and the search expands by 2x to max_eps.
        ("nearly flat", Box::new(|e| 1.0 - 1e-310 * e)),
        // Flat, then a cliff just past the first eps: the prediction lands within a guard
        // of the certified end and is clamped a guard above it.
        (
            "cliff",
            Box::new(|e| {
                if e <= 0.01 {
                    1.0
                } else {
                    1.0 - 1e6 * (e - 0.01)
                }
            }),
        ),
    ];
    let want: [&[u64]; 7] = [
        &[
            0,
            4576918229304087675,
            4578247634268012215,
            4578242647882504790,
        ],
        &[
            0,
            4576918229304087675,
            4576052313196533895,
            4574858291478261980,
            4574587440531253633,
            4574725577287770604,
            4574718530403100554,
        ],
        &[
            0,
            4576918229304087675,
            4590429028186199163,
            4589227888141581936,
            4589677205666560289,
            4589735849776164977,
            4589707114156577517,
            4589710969967898188,
        ],
        &[
            0,
            4576918229304087675,
            4590429028186199163,
            4589511751390822258,
            4589638818317145785,
            4589635182819100042,
        ],
        &[
            0,
            4576918229304087675,
            4581421828931458171,
            4585925428558828667,
            4590429028186199163,
            4594932627813569659,
            4599436227440940155,
            4597813490423206017,
            4598717452580123854,
            4599199158736999164,
            4598957044200395955,
            4599080744180838805,
            4599017572834546757,
            4599051831484151101,
            4599073796721059360,
            4599079393636638017,
            4599075244634647900,
        ],
        &[
            0,
            4576918229304087675,
            4581421828931458171,
            4585925428558828667,
            4590429028186199163,
            4594932627813569659,
            4599436227440940155,
            4603939827068310651,
            4608443426695681147,
            4612947026323051643,
            4617450625950422139,
            4621819117588971520,
        ],
        &[
            0,
            4576918229304087675,
            4581421828931458171,
            4576919670455968434,
        ],
    ];
    for ((name, g), want) in cases.into_iter().zip(want) {
        let r = run(g, opts);
        let trace: Vec<u64> = r.steps.iter().map(|s| s.eps.to_bits()).collect();
        let as_f64 = |t: &[u64]| t.iter().map(|&b| f64::from_bits(b)).collect::<Vec<_>>();
        assert_eq!(
            trace,
            want,
            "{name}: {:?} vs {:?}",
            as_f64(&trace),
            as_f64(want)
        );
    }
}
