//! Typed errors of the verifier.

/// What stops a property from being checked on a model.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The property's variables do not match the model.
    #[error("the property declares {prop_inputs} inputs X_i and {prop_outputs} outputs Y_j but the model takes {model_inputs} inputs and returns {model_outputs} outputs")]
    Mismatch {
        prop_inputs: usize,
        prop_outputs: usize,
        model_inputs: usize,
        model_outputs: usize,
    },
    /// Options out of range.
    #[error("verify options: {0}")]
    Options(String),
    /// A benchmark folder's files (instances, verdicts, rows) are missing or malformed.
    #[error("{0}")]
    Suite(String),
    /// A bound could not be computed (overflow, bad input).
    #[error(transparent)]
    Dual(#[from] dual::DualError),
    /// LP (19) could not be built or bounded (not a solver that stops short: that only
    /// leaves the LP's bound at the dual's).
    #[error(transparent)]
    Lp(#[from] lp::LpError),
    /// The model rejected an input.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
}

/// Result alias of this crate.
pub type Result<T, E = VerifyError> = std::result::Result<T, E>;
