//! The fast dual bound of Wong & Kolter (ICML 2018) in f64 on the model's
//! batched GEMM kernels (matrixmultiply, the engine under nalgebra): interval bounds (eq. 42), Algorithm 1 intermediate bounds, the objective
//! J (eq. 6) of the dual network (eq. 7) for any objective matrix and alpha, certificates
//! (Corollaries 1 and 2), robust error and the certified radius (eq. 17).
//!
//! Invariants: no I/O, no candle, no good_lp. Every bound carries how it was obtained
//! ([`DualBound`]: method, alpha rule, intermediate-bound source). Convolutions are
//! handled by the model's convolution and its transpose, never by lowering to a matrix.
//!
//! Vectors and matrices at the boundary are nalgebra's (re-exported by `network`):
//! inputs are taken as anything that reads as a vector (`DVector`, a column view, `&[f64]`),
//! an objective matrix `C` as a `DMatrix` (`rows x n_out`, one objective per row, as in
//! eq. 4), and results are `DVector`s:
//!
//! ```
//! use dual::{algorithm1, dual_objective, margin_objectives, AlphaRule, InputDomain};
//! use network::{Architecture, DVector, Init};
//!
//! let model = Architecture::mlp(&[2, 10, 3]).init(Init::Paper, 0)?;
//! let x = DVector::from_vec(vec![0.1, -0.2]);
//! let logits = model.forward(&x)?; // DVector, 3 entries
//! let y = network::argmax(&logits);
//! let domain = InputDomain::new(&x, 0.05, None)?; // a slice works too: &[0.1, -0.2]
//! let bounds = algorithm1(&model, &domain)?; // bounds.lower[i]: DVector per layer
//! let c = margin_objectives(3, y)?; // DMatrix 3 x 3, rows e_y - e_t
//! let j = dual_objective(&model, &domain, &bounds, &c, &AlphaRule::Paper)?;
//! assert_eq!(j.values.len(), 3); // proven J per row (row y is 0)
//! assert!(j.values[y] <= 0.0);
//! // One objective row: `network::as_row`.
//! let single = dual_objective(&model, &domain, &bounds, network::as_row(&[1.0, 0.0, -1.0]), &AlphaRule::Paper)?;
//! assert_eq!(single.values.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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

pub use algorithm1::{
    algorithm1, algorithm1_in, algorithm1_with, algorithm1_with_stats, Algorithm1Stats, ColumnForm,
    Precision,
};
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
    alpha_bounds, beta_crown, beta_crown_batch, beta_crown_from, bound_given, bound_with_method,
    certify_with, crown_bounds, crown_slopes, method_bounds, method_bounds_with, AlphaOptions,
    AlphaReport, AlphaStop, BetaBound, BetaNode, BetaState, Method, MethodBound,
};
pub use objective::{
    dual_objective, margin_objectives, objective_rows, resolve_label, AlphaRule, DualBound,
    LabelSource, Margins, Targets,
};
pub use relax::Relaxation;
pub use split::{check_splits, child_bounds, split_bounds, Phase, Split, SplitBounds};
