//! Typed errors of the LP crate. A solve that stops short of a proven optimum is an
//! error carrying the solver's own status, never a value.

/// What can go wrong when building or solving LP (19).
#[derive(Debug, thiserror::Error)]
pub enum LpError {
    /// The model, input or bounds were rejected before anything was built.
    #[error(transparent)]
    Dual(#[from] dual::DualError),
    /// The solver did not prove optimality; `status` is its own word for why.
    #[error("{solver} stopped without a proven optimum: status {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotOptimal {
        solver: &'static str,
        status: String,
        detail: Option<String>,
    },
    /// The solver named is not compiled into this build.
    #[error("built without {solver}; rebuild with --features {feature}")]
    NotCompiled {
        solver: &'static str,
        feature: &'static str,
    },
    /// The solver name is unknown.
    #[error("unknown solver {0:?} (known: microlp, clarabel, highs)")]
    UnknownSolver(String),
}

/// Result alias of this crate.
pub type Result<T, E = LpError> = std::result::Result<T, E>;
