//! The fast dual bound of Wong & Kolter (ICML 2018) in f64 on the model's
//! batched GEMM kernels (matrixmultiply, the engine under nalgebra): interval bounds (eq. 42), Algorithm 1 intermediate bounds, the objective
//! J (eq. 6) of the dual network (eq. 7) for any objective matrix and alpha, certificates
//! (Corollaries 1 and 2), robust error and the certified radius (eq. 17).
//!
//! Invariants: no I/O, no candle, no good_lp. Every bound carries how it was obtained
//! ([`DualBound`]: method, alpha rule, intermediate-bound source). Convolutions are
//! handled by the model's convolution and its transpose, never by lowering to a matrix.

pub mod algorithm1;
pub mod bounds;
pub mod certify;
pub mod domain;
pub mod error;
pub mod methods;
pub mod objective;
pub mod relax;
pub mod rounding;
pub mod split;

pub use algorithm1::{algorithm1, algorithm1_with_stats, Algorithm1Stats};
pub use bounds::{
    affine_over_box, interval_bounds, stability, unit_stability, value_upper_bound, BoundSource,
    IndexCounts, LayerBounds, Stability,
};
pub use certify::{
    certified_radius, certified_radius_with, certifies, certify, certify_domain, detect,
    min_over_targets, radius_search, robust_error, robust_error_with, Certificate, RadiusOptions,
    RadiusResult, RadiusStep, RadiusStop, RobustErrorReport,
};
pub use domain::InputDomain;
pub use error::{DualError, Result};
pub use methods::{
    alpha_bounds, bound_given, bound_with_method, certify_with, crown_bounds, crown_slopes,
    method_bounds, method_bounds_with, AlphaOptions, AlphaReport, AlphaStop, Method, MethodBound,
};
pub use objective::{
    dual_objective, margin_objectives, resolve_label, AlphaRule, DualBound, LabelSource, Margins,
    Targets,
};
pub use relax::Relaxation;
pub use split::{check_splits, split_bounds, Phase, Split, SplitBounds};
