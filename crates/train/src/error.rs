//! Typed errors of the training crate.

/// What can go wrong in the tensor programs, training and attacks.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor operation failed (shapes, device, dtype).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The model or dataset was rejected.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// A bound computation was rejected.
    #[error(transparent)]
    Dual(#[from] dual::DualError),
    /// CUDA was asked for in a build without it.
    #[error("built without CUDA; rebuild with --features cuda")]
    NoCuda,
    /// A training or attack setting is out of range.
    #[error("{0}")]
    Config(String),
}

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
