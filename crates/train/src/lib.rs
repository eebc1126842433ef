//! The Wong-Kolter dual as a differentiable candle program (f32 for training, f64 for
//! cross-checks against `dual`), the robust loss of Theorem 2, robust and standard
//! training, FGSM and PGD attacks. (Optimised alpha is `dual`'s f64 `alpha` method.)
//!
//! CPU by default; candle's CUDA backend behind the `cuda` feature (asking for CUDA in a
//! build without it is [`TrainError::NoCuda`]). Models come from and go back to
//! `network::Model`, so every crate reads what training writes.

pub mod attack;
mod conv;
pub mod dual;
pub mod error;
pub mod eval;
pub mod loss;
mod memory;
pub mod net;
pub mod projection;
pub mod training;

pub use attack::{fgsm, pgd, PgdConfig};
pub use dual::{dual_bound, margin_objectives, TensorDual};
pub use error::{Result, TrainError};
pub use eval::{evaluate, Table1Row};
pub use loss::{certified, robust_loss, standard_loss};
pub use memory::keep_freed_memory;
pub use net::{device, TensorNet};
pub use projection::{projected_dual_bound, Projection};
pub use training::{train, EpochStats, Progress, TrainConfig};
