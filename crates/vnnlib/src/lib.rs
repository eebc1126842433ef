//! VNNLIB properties in the dialect of the International Verification of Neural Networks
//! Competition (VNN-COMP), parsed into what a verifier needs: input boxes and, for each,
//! the unsafe region of the outputs as a disjunction of conjunctions of linear
//! constraints.
//!
//! The dialect: `(declare-const X_i Real)` for the inputs and `(declare-const Y_j Real)`
//! for the outputs (variables by index, in any order, `X_0 .. X_{n-1}` all declared),
//! then `(assert F)` forms whose conjunction states the *unsafe* region, where `F` is
//! built from `and`, `or`, `<=` and `>=` over linear terms (numbers as the files write
//! them, variables, `+`, `-`, and `*` by a number). Comments start with `;`. A file may
//! be gzipped. Within each disjunct, atoms on inputs must bound one `X_i` by a number
//! (the input set is a box or a union of boxes, as in ACAS Xu property 6), atoms on
//! outputs are linear in `Y`; an atom relating an `X` to a `Y`, a strict comparison or
//! any other operator is an error with line and column, never a guess.
//!
//! The property holds (`unsat` in VNN-COMP's words) when no input of any case's box
//! reaches any conjunction of that case's unsafe region.
//!
//! Numbers are decimals, most of which no f64 represents: every constant is kept as an
//! enclosure `[lo, hi]` of its exact value, and the boxes are rounded outwards (they
//! contain the exact box), so a proof over them is a proof for the file's real numbers.
//! Coefficients of variables must be exactly representable (the files use 1 and -1).

mod decimal;
mod error;
mod property;
mod sexpr;

pub use decimal::Decimal;
pub use error::{Result, VnnlibError};
pub use property::{parse_property, read_property, Case, InputBox, OutputConstraint, Property};
