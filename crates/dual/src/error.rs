//! Typed errors of the dual bound.

/// What can go wrong when computing a bound.
#[derive(Debug, thiserror::Error)]
pub enum DualError {
    /// The model rejected the input (wrong length, non-finite values).
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// eps must be a finite number >= 0.
    #[error("eps must be a finite number >= 0, got {0}")]
    InvalidEps(f64),
    /// The input box must be finite with lo <= hi.
    #[error("input box [{lo}, {hi}] is invalid: it needs finite lo <= hi")]
    InvalidBox { lo: f64, hi: f64 },
    /// The ball and the box do not intersect.
    #[error("the eps-ball around the input does not meet the box [{lo}, {hi}] at input coordinate {index} (value {value})")]
    EmptyDomain {
        lo: f64,
        hi: f64,
        index: usize,
        value: f64,
    },
    /// Intermediate bounds do not fit the model or are inconsistent.
    #[error("intermediate bounds, hidden layer {layer}: {msg}")]
    Bounds { layer: usize, msg: String },
    /// An alpha vector does not fit or leaves [0, 1].
    #[error("alpha, hidden layer {layer}: {msg}")]
    Alpha { layer: usize, msg: String },
    /// An entry of an objective matrix is NaN or infinite (row and column of `C`).
    #[error("objective matrix entry at row {row}, column {col} is {value}; every entry of C must be a finite number")]
    ObjectiveNotFinite { row: usize, col: usize, value: f64 },
    /// An objective matrix (`rows x n_out`) has the wrong number of columns or no rows.
    #[error("objective matrix is {rows} x {cols}; it needs at least one row and one column per output ({n_out})")]
    ObjectiveShape {
        rows: usize,
        cols: usize,
        n_out: usize,
    },
    /// A value overflowed (or became NaN) while computing a bound: no bound, proven or
    /// nominal, exists in f64 for this input. `layer` is the model's layer index.
    #[error("overflow in {what} at layer {layer}: {detail}; no finite bound can be proven (rescale the model's weights or the input)")]
    Overflow {
        layer: usize,
        what: &'static str,
        detail: String,
    },
    /// Margins need at least two classes.
    #[error("the model has {n_out} output(s): a certificate needs a margin between the label and another class, so at least 2 outputs (bound a single output with objective c = +1 or -1 instead)")]
    NoTargets { n_out: usize },
    /// Options of a search or optimiser out of their range.
    #[error("invalid options: {0}")]
    Options(String),
    /// A margin target equal to the label (the margin `f_y - f_y` is 0 by definition).
    #[error("target {class} is the label itself: its margin is 0 by definition")]
    TargetIsLabel { class: usize },
    /// A class index is out of range.
    #[error("class {class} is out of range for a model with {n_classes} outputs")]
    Class { class: usize, n_classes: usize },
}

/// Result alias of this crate.
pub type Result<T, E = DualError> = std::result::Result<T, E>;
