//! Vectors at the public boundary of every crate: nalgebra's `DVector` (owned results)
//! and `DVectorView` (borrowed arguments). An argument is taken as `impl AsVector`, which
//! nalgebra vectors and column views, and plain `f64` slices, `Vec`s and arrays (and
//! references to any of them) implement, so that a caller holding either needs no copy
//! and no conversion. Kernels inside the crates keep working on contiguous slices (the
//! view of a column vector with unit row stride is one).

use nalgebra::{DMatrixView, DVector, DVectorView};

/// Anything read as a vector of `f64`: `DVector`, `DVectorView` (e.g. a column of a
/// `DMatrix`), `[f64]`, `Vec<f64>`, `[f64; N]`, and references to them.
pub trait AsVector {
    /// The values as a contiguous nalgebra view.
    fn as_vector(&self) -> DVectorView<'_, f64>;

    /// The values as a slice (the layout the kernels take).
    fn as_values(&self) -> &[f64] {
        self.as_vector().data.into_slice()
    }
}

impl AsVector for [f64] {
    fn as_vector(&self) -> DVectorView<'_, f64> {
        DVectorView::from_slice(self, self.len())
    }
}

impl AsVector for Vec<f64> {
    fn as_vector(&self) -> DVectorView<'_, f64> {
        self.as_slice().as_vector()
    }
}

impl<const N: usize> AsVector for [f64; N] {
    fn as_vector(&self) -> DVectorView<'_, f64> {
        self.as_slice().as_vector()
    }
}

impl AsVector for DVector<f64> {
    fn as_vector(&self) -> DVectorView<'_, f64> {
        self.as_view()
    }
}

impl AsVector for DVectorView<'_, f64> {
    fn as_vector(&self) -> DVectorView<'_, f64> {
        self.as_view()
    }
}

impl<T: AsVector + ?Sized> AsVector for &T {
    fn as_vector(&self) -> DVectorView<'_, f64> {
        (**self).as_vector()
    }
}

impl<T: AsVector + ?Sized> AsVector for &mut T {
    fn as_vector(&self) -> DVectorView<'_, f64> {
        (**self).as_vector()
    }
}

/// A vector as a one-column matrix (a batch of one), without a copy.
pub fn as_column(x: &(impl AsVector + ?Sized)) -> DMatrixView<'_, f64> {
    let s = x.as_values();
    DMatrixView::from_slice(s, s.len(), 1)
}

/// A vector as a one-row matrix (a single objective `c` as the matrix `C` of eq. 4),
/// without a copy.
pub fn as_row(x: &(impl AsVector + ?Sized)) -> DMatrixView<'_, f64> {
    let s = x.as_values();
    DMatrixView::from_slice(s, 1, s.len())
}

/// Serialises a vector as a plain array of numbers (for results files:
/// `#[serde(serialize_with = "network::vector::serialize_vector")]`).
pub fn serialize_vector<S: serde::Serializer>(v: &DVector<f64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter())
}

/// [`serialize_vector`] for an optional vector (`null` when absent).
pub fn serialize_opt_vector<S: serde::Serializer>(
    v: &Option<DVector<f64>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_seq(v.iter()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn sum(x: impl AsVector) -> f64 {
        x.as_values().iter().sum()
    }

    #[test]
    fn every_form_reads_the_same_values() {
        let v = vec![1.0, 2.0, 4.0];
        let d = DVector::from_vec(v.clone());
        let m = DMatrix::from_vec(3, 2, vec![0.0, 0.0, 0.0, 1.0, 2.0, 4.0]);
        assert_eq!(sum(&v), 7.0);
        assert_eq!(sum(v.as_slice()), 7.0);
        assert_eq!(sum([1.0, 2.0, 4.0]), 7.0);
        assert_eq!(sum(&d), 7.0);
        assert_eq!(sum(d.as_view()), 7.0);
        assert_eq!(sum(m.column(1)), 7.0);
        assert_eq!(m.column(1).as_values(), &[1.0, 2.0, 4.0]);
        assert_eq!(as_column(&v).shape(), (3, 1));
        assert_eq!(as_row(&v).shape(), (1, 3));
        assert_eq!(as_row(&v)[(0, 2)], 4.0);
    }

    #[derive(serde::Serialize)]
    struct Row {
        #[serde(serialize_with = "serialize_vector")]
        v: DVector<f64>,
        #[serde(serialize_with = "serialize_opt_vector")]
        some: Option<DVector<f64>>,
        #[serde(serialize_with = "serialize_opt_vector")]
        none: Option<DVector<f64>>,
    }

    #[test]
    fn vectors_serialise_as_plain_arrays() {
        let r = Row {
            v: DVector::from_vec(vec![1.5, -2.0]),
            some: Some(DVector::from_vec(vec![0.25])),
            none: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"v":[1.5,-2.0],"some":[0.25],"none":null}"#
        );
    }
}
