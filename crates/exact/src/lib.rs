//! Exact answers: the minimum of `c . f(x)` over an input set, enclosed between a proven
//! lower bound and the proven value at a point, by three methods that check each other:
//!
//! - [`bab`]: branch and bound on ReLU splits, CROWN / alpha-CROWN and LP (19) with the
//!   splits at the nodes, pure Rust, the default build;
//! - [`enumerate`]: one LP per activation pattern of the unstable units (small networks,
//!   the tests' reference);
//! - [`milp`]: the mixed-integer program of the network (big-M from proven bounds),
//!   solved by HiGHS (feature `highs`).
//!
//! Invariant: the enclosure's lower end comes only from proven bounds (`dual`'s values,
//! `lp`'s proven LP bounds) over sub-domains that cover the input set, and its upper end
//! from `dual::value_upper_bound` at a point of the input set's inner box. A solver's
//! status or a floating-point value never decides a bound. No I/O, no candle, no clap.

pub mod bab;
pub mod enumerate;
pub mod error;
pub mod milp;
pub mod pgd;

pub use bab::{
    crown_backward, minimise, minimise_from, BabOptions, BabStatus, Branching, Enclosure, LpUse,
    Search, FSB_CANDIDATES,
};
pub use enumerate::{enumerate_patterns, PatternMinimum};
pub use error::{ExactError, Result};
pub use milp::{milp_minimum, MilpOptions, MilpResult, MILP_COMPILED};
pub use pgd::{pgd, PgdOptions};
