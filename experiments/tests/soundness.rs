//! The soundness campaign's checks, on a seeded subset (the full campaign is the
//! `soundness` binary; `.ci/run` runs a larger subset with `--ignored`).

use experiments::soundness::{
    check_case, check_case_tampered, draw_case, run_campaign, Case, Outcome,
};
use network::{Architecture, Init};

/// 300 cases (dense and conv, weights 1e-6..1e6, dead / always-on layers, ties, boxes),
/// with the LP: no violation, and most cases pass every check (the rest overflow or
/// have an empty input set, both refused with an error).
#[test]
fn a_seeded_subset_has_no_violation() {
    let t = run_campaign(7, 0, 300, true);
    assert!(t.violations.is_empty(), "{:#?}", t.violations);
    assert_eq!(t.cases, 300);
    assert!(t.passed >= 200, "only {} of 300 passed: {t:?}", t.passed);
    assert!(t.samples >= 200 * 25, "{t:?}");
}

/// The checks catch a J that is too high: at eps = 0 the proven J is the exact margin to
/// within rounding, so raising it by 1e-6 relative puts it above a sampled point.
#[test]
fn the_campaign_catches_a_bound_that_is_too_high() {
    let model = Architecture::mlp(&[3, 6, 6, 3])
        .init(Init::Paper, 4)
        .unwrap();
    let case = Case {
        model,
        x: vec![0.2, -0.4, 0.7],
        eps: 0.0,
        input_box: None,
        description: "eps 0".into(),
    };
    assert!(matches!(check_case(&case, 1, true), Outcome::Passed { .. }));
    match check_case_tampered(&case, 1, false, 1e-6) {
        Outcome::Violation(v) => assert!(v.contains("below proven J"), "{v}"),
        o => panic!("a raised J was not caught: {o:?}"),
    }
}

/// Cases are reproducible from (seed, index).
#[test]
fn cases_are_drawn_from_their_seed() {
    let (a, b) = (draw_case(3, 17), draw_case(3, 17));
    assert_eq!(a.model, b.model);
    assert_eq!(a.x, b.x);
    assert_eq!(a.description, b.description);
    assert_ne!(draw_case(3, 18).description, a.description);
}

/// The CI subset: `cargo test -p experiments --test soundness -- --ignored` runs
/// `SOUNDNESS_CASES` cases (default 20,000) of seed 1.
#[test]
#[ignore]
fn ci_subset() {
    let n: u64 = std::env::var("SOUNDNESS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let t0 = std::time::Instant::now();
    let t = run_campaign(1, 0, n, true);
    eprintln!(
        "soundness subset: {} cases, {} passed, {} overflow, {} refused, {} certified, {} LPs not settled, {} violations, {:.1} s",
        t.cases,
        t.passed,
        t.overflow,
        t.refused,
        t.certified,
        t.lp_not_optimum,
        t.violations.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(t.violations.is_empty(), "{:#?}", t.violations);
}
