//! Errors of reading and parsing a property: each names the file and, for a parse
//! error, the line and column (1-based) where the offending form starts.

use thiserror::Error;

/// Everything that can go wrong reading a VNNLIB file.
#[derive(Debug, Error)]
pub enum VnnlibError {
    /// The file could not be read (or decompressed).
    #[error("{file}: {err}")]
    Io { file: String, err: std::io::Error },
    /// Not well-formed: unbalanced parentheses, a bad number, an empty file.
    #[error("{file}:{line}:{col}: {msg}")]
    Syntax {
        file: String,
        line: usize,
        col: usize,
        msg: String,
    },
    /// Well-formed, but outside the dialect this parser accepts (see the crate docs).
    #[error("{file}:{line}:{col}: {msg}")]
    Dialect {
        file: String,
        line: usize,
        col: usize,
        msg: String,
    },
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, VnnlibError>;
