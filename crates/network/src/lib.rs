//! The model every crate of the workspace shares: affine layers (dense and 2-D
//! convolution) with ReLU between them, its f64 forward pass, seeded random
//! initialisation, a documented JSON model file format and the datasets (the shipped
//! MNIST subset, IDX files, the 2-D toy problem).
//!
//! Invariant: a model loaded once gives the same numbers wherever it is evaluated,
//! because the linear operators in [`ops`] are the only implementation of `W x` and
//! `W^T y` in the workspace's f64 forward passes; [`local`] applies the same operators to
//! columns stored as windows (Algorithm 1's columns through convolutions), equal to
//! [`ops`]'s products up to the order of their sums.
//!
//! Vectors and matrices that cross a public API of the workspace are nalgebra's, re-exported
//! here ([`DVector`], [`DMatrix`] and their views): arguments are taken as
//! [`vector::AsVector`] (a `DVector`, a column view, or a plain `&[f64]`/`Vec<f64>`/array)
//! or as anything that converts into a `DMatrixView` (a batch: one example per column);
//! results are owned `DVector`/`DMatrix`. The kernels ([`ops::LinearOp`]) and the stored
//! parameters ([`Layer`], in the model file's layouts) stay flat slices: the GEMMs run on
//! matrixmultiply, nalgebra's own engine, without a copy.

pub mod data;
pub mod error;
pub mod exact;
pub mod format;
pub mod grad;
pub mod graph;
pub mod init;
pub mod local;
pub mod model;
pub mod ops;
pub mod real;
pub mod shape;
pub mod vector;

pub use data::Dataset;
pub use error::{NetworkError, Result};
pub use exact::{objective_exact, preactivations_exact, Dyadic};
pub use format::{load_model, model_from_json, model_to_json, save_model};
pub use grad::value_and_gradient;
pub use init::{
    init_spec, residual_net, residual_parameters, Architecture, Init, LayerSpec,
    MAX_RESIDUAL_PARAMETERS,
};
pub use local::{LocalBatch, Window};
pub use model::{argmax, Affine, Layer, Model, Node, Source};
/// The vector and matrix types of every crate's public API (nalgebra's, re-exported so
/// that callers need no version of their own): inputs are taken as anything that converts
/// into a view (`&[f64]`, `&DVector`, a column of a `DMatrix`), results are owned.
pub use nalgebra::{DMatrix, DMatrixView, DVector, DVectorView};
pub use ops::{BlockTerm, ConvGeometry, LinearOp};
pub use real::Real;
pub use shape::Shape;
pub use vector::{as_column, as_row, AsVector};
