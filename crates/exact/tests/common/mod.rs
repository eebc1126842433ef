//! Helpers shared by `agreement.rs` and `graph.rs`: the tolerance of exact values and the
//! verified LP (19) value.

#![allow(dead_code)]

use dual::InputDomain;
use lp::{solve_verified, Lp19, LpOptions, Solver, VerifyOptions};
use network::Model;

/// The enclosures close to `1e-6 (1 + |v|)`; LP values are compared with the same.
pub fn tol(v: f64) -> f64 {
    1e-6 * (1.0 + v.abs())
}

/// Proven lower end and solver value of LP (19) over `bounds` (clarabel, verified).
pub fn lp_value(model: &Model, dom: &InputDomain, b: &dual::LayerBounds, c: &[f64]) -> (f64, f64) {
    let lp = Lp19::new(model, dom, b).unwrap();
    let e = solve_verified(
        &lp,
        network::as_row(c),
        Solver::Clarabel,
        &LpOptions::default(),
        false,
        &VerifyOptions::default(),
    )
    .unwrap()
    .pop()
    .unwrap();
    assert!(e.is_optimum, "LP not settled: {}", e.status());
    (e.proven_lower, e.value().unwrap())
}
