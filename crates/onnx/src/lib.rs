//! ONNX models in and out.
//!
//! [`load_onnx`] reads an ONNX file (the format of the VNN-COMP benchmarks and of most
//! training frameworks' exporters) and lowers its graph onto a [`network::Model`]: a
//! chain of affine maps (Dense, Conv2d) with ReLU between them. The lowering is exact:
//! every constant folded into a weight or a bias (a `Sub` of an input mean, a `Mul` by a
//! scale, a bias split over two `Add`s) is folded only when the folded value is exactly
//! representable in f64 (checked with exact arithmetic), so the model equals the file's
//! network in real arithmetic on its (f32 or f64) weights; anything else is an error
//! naming the node, never a silent approximation. The one opt-in exception is
//! [`ImportOptions::round_batchnorm`]: a `BatchNormalization` folded with rounding, named in
//! [`Imported::rounded`]. [`save_onnx`] writes a model as ONNX
//! (f64 tensors, so that the file holds the model's weights exactly).
//!
//! Supported operators and their limits are listed in [`import`]; graphs that branch
//! (residual `Add` of two computed tensors) need the graph model of issue 11 and are
//! refused with that reason.

pub mod error;
pub mod export;
pub mod import;

pub use error::{OnnxError, Result};
pub use export::{model_to_onnx, model_to_onnx_as, save_onnx, ElemType};
pub use import::{
    import_onnx, import_onnx_with, load_onnx, load_onnx_with, ImportOptions, Imported,
};

/// The protobuf messages of the ONNX format (prost types shipped by tract-onnx).
pub use tract_onnx::pb;
