//! The gradient of a linear function of the logits, `c . f(x)`, with respect to the input,
//! written out by hand (the transpose of each affine map and the ReLU masks): what PGD
//! attacks and falsifiers step along. Floating point, for search only: nothing here is a
//! bound.

use crate::error::Result;
use crate::model::Model;
use crate::vector::{as_column, AsVector};
use nalgebra::{DMatrix, DVector};

/// `c . f(x)` and its gradient with respect to `x` (a subgradient where a ReLU input is
/// exactly 0: the inactive side). `x` has `input_len` entries, `c` one per logit; the
/// gradient has `input_len`.
///
/// Errors: `x` of the wrong length or not finite.
pub fn value_and_gradient(
    model: &Model,
    x: impl AsVector,
    c: impl AsVector,
) -> Result<(f64, DVector<f64>)> {
    model.check_input(&x)?;
    let z = model.preactivations_batch(as_column(&x))?;
    let value = dot(&c, z.last().expect("one affine layer").as_slice());
    Ok((value, gradient_at(model, &z, &c)))
}

/// `a . b` in floating point, summed in index order (deterministic; for search, not for
/// bounds). Vectors of different lengths are summed over the shorter.
pub fn dot(a: impl AsVector, b: impl AsVector) -> f64 {
    a.as_values()
        .iter()
        .zip(b.as_values())
        .map(|(x, y)| x * y)
        .sum()
}

/// The gradient of `c . f(x)` given the pre-activations `z` of `x` (from
/// [`Model::preactivations_batch`] with one column): each affine map's transpose, then
/// the ReLU masks (linear units pass the gradient unchanged).
pub fn gradient_at(model: &Model, z: &[DMatrix<f64>], c: impl AsVector) -> DVector<f64> {
    let aff = model.affine();
    let mut g = c.as_values().to_vec();
    for i in (0..aff.len()).rev() {
        let mut gin = vec![0.0; aff[i].op.n_in()];
        aff[i].op.apply_transpose(&g, 1, &mut gin);
        if i > 0 {
            // ReLU units pass the gradient where active; linear units always.
            let r = model.relu_units(i - 1);
            for (gv, &zv) in gin.iter_mut().zip(&z[i - 1]).take(r) {
                if zv <= 0.0 {
                    *gv = 0.0;
                }
            }
        }
        g = gin;
    }
    DVector::from_vec(g)
}
