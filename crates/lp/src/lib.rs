//! The exact primal LP (19) of the convex outer adversarial polytope (appendix A.1),
//! solved by microlp and clarabel (pure Rust, default build) or HiGHS (feature `highs`),
//! with "LP-last" bounds (Algorithm 1's l, u) or "LP-all" bounds (every pre-activation
//! bounded by LP itself).
//!
//! Every solution carries its solver, raw status, primal point, row multipliers,
//! iterations and time; a solver that stops short of its optimal status yields
//! [`LpError::NotOptimal`], never a value. A status is not a proof: [`verified`] turns
//! each solve into an enclosure with a proven lower bound (Neumaier-Shcherbina) and
//! retries other solvers where one fails. The real network evaluated at the LP's input point closes the chain
//! `dual J <= LP <= exact minimum <= c^T f(x'_LP)`.
//!
//! Invariant: knows nothing of candle; the model and the bounds come from `network` and
//! `dual`.

pub mod build;
pub mod error;
pub mod lp_all;
pub mod solve;
pub mod verified;

pub use build::{Lp19, LpSize, RowKind, ZVar};
pub use error::{LpError, Result};
pub use lp_all::lp_all_bounds;
#[cfg(feature = "highs")]
pub use solve::highs_status_is_value;
pub use solve::{
    clarabel_status_is_value, good_lp_status_is_value, solve, solve_many, LpOptions, LpSolution,
    Solver,
};
pub use verified::{
    fallback_options, proven_lower_bound, solve_verified, Attempt, LpEnclosure, VerifyOptions,
};
