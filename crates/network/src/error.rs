//! Typed errors of the network crate: every variant names where the problem is
//! (file, layer index, shapes) so that a user can fix their input. Each message is
//! complete on its own (wrapped errors are part of the text, not a separate source),
//! so a chain printer shows it once.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading or evaluating a model or a dataset.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Reading or writing a file failed.
    #[error("{}: {error}", file.display())]
    Io {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file is not valid JSON (truncated, a NaN literal, a trailing comma, ...).
    #[error("{file}: not valid JSON: {error}")]
    Json {
        file: String,
        error: serde_json::Error,
    },
    /// The file is JSON but not a model of the documented format.
    #[error("{file}: {msg}")]
    Format { file: String, msg: String },
    /// An error inside a model file, wrapped with the file's name.
    #[error("{file}: {error}")]
    InFile {
        file: String,
        error: Box<NetworkError>,
    },
    /// A layer is malformed on its own (bad parameters, wrong tensor shape).
    #[error("layer {layer} ({kind}): {msg}")]
    Layer {
        layer: usize,
        kind: &'static str,
        msg: String,
    },
    /// A layer receives an input of a shape it cannot take.
    #[error("layer {layer} ({kind}): expects input shape {expected} but receives {actual}")]
    Shape {
        layer: usize,
        kind: &'static str,
        expected: String,
        actual: String,
    },
    /// A weight or bias is NaN or infinite.
    #[error(
        "layer {layer} ({kind}): {tensor} holds the non-finite value {value} at flat index {index}"
    )]
    NonFinite {
        layer: usize,
        kind: &'static str,
        tensor: &'static str,
        value: f64,
        index: usize,
    },
    /// The layer sequence is not affine maps with ReLU between them.
    #[error("layer {layer}: {msg}")]
    Structure { layer: usize, msg: String },
    /// An input vector does not fit the model.
    #[error("input has length {actual} but the model expects {expected} values (shape {shape})")]
    InputLength {
        expected: usize,
        actual: usize,
        shape: String,
    },
    /// An input vector holds NaN or infinity.
    #[error("input holds the non-finite value {value} at index {index}")]
    InputNonFinite { value: f64, index: usize },
    /// A dataset file is malformed.
    #[error("{file}: {msg}")]
    Data { file: String, msg: String },
    /// An architecture description could not be understood.
    #[error("architecture {spec:?}: {msg}")]
    Architecture { spec: String, msg: String },
}

/// Result alias of this crate.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;
