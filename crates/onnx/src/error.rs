//! Typed errors of the ONNX crate: every message names the file and, for a graph
//! problem, the node (its name, operator and index in the file's node list).

/// Everything that can go wrong while reading or writing an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// Reading or writing the file failed.
    #[error("{file}: {error}")]
    Io { file: String, error: std::io::Error },
    /// The bytes are not an ONNX protobuf message.
    #[error("{file}: not an ONNX model (protobuf decoding failed: {error})")]
    Decode { file: String, error: String },
    /// A problem of the graph as a whole (inputs, outputs, no graph).
    #[error("{file}: {msg}")]
    Graph { file: String, msg: String },
    /// A node this importer cannot lower exactly onto the model.
    #[error("{file}: node {index} ({name:?}, {op}): {msg}")]
    Node {
        file: String,
        index: usize,
        name: String,
        op: String,
        msg: String,
    },
    /// A tensor (initializer or constant) is malformed or of an unsupported type.
    #[error("{file}: tensor {name:?}: {msg}")]
    Tensor {
        file: String,
        name: String,
        msg: String,
    },
    /// The lowered layers do not form a valid model (shapes, non-finite weights).
    #[error("{file}: {error}")]
    Model {
        file: String,
        error: network::NetworkError,
    },
}

/// Result alias of this crate.
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
