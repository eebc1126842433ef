//! Typed errors of the exact methods.

/// What stops an exact minimum from being computed.
#[derive(Debug, thiserror::Error)]
pub enum ExactError {
    /// Options out of range (tolerances, budgets, the objective's length).
    #[error("exact options: {0}")]
    Options(String),
    /// A bound could not be computed (overflow, bad input, a split outside the model).
    #[error(transparent)]
    Dual(#[from] dual::DualError),
    /// LP (19) could not be built or a bound from it computed.
    #[error(transparent)]
    Lp(#[from] lp::LpError),
    /// The model rejected an input.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// A method this build does not have (e.g. the MILP without the `highs` feature).
    #[error("{0}")]
    NotCompiled(String),
    /// The MILP solver stopped without an answer it can stand behind.
    #[error("MILP: {0}")]
    Milp(String),
}

/// Result alias of this crate.
pub type Result<T, E = ExactError> = std::result::Result<T, E>;
