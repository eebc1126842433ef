//! Tensor shapes flowing between layers: a flat vector or a channel-major image.

use std::fmt;

/// The shape of one example's activation at some point of the network.
///
/// Images are stored channel-major (C, H, W) and flattened in that order, as PyTorch does,
/// so `Flatten` is a pure reshape and never moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A vector of `n` values.
    Flat(usize),
    /// An image of `c` channels of `h` x `w` pixels.
    Image { c: usize, h: usize, w: usize },
}

impl Shape {
    /// Number of scalar values.
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Flat(n) => n,
            Shape::Image { c, h, w } => c * h * w,
        }
    }

    /// The dimensions as a list (`[n]` or `[c, h, w]`), the form used in model files.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Flat(n) => vec![n],
            Shape::Image { c, h, w } => vec![c, h, w],
        }
    }

    /// Builds a shape from `[n]` or `[c, h, w]`.
    pub fn from_dims(dims: &[usize]) -> Option<Shape> {
        match *dims {
            [n] if n > 0 => Some(Shape::Flat(n)),
            [c, h, w] if c > 0 && h > 0 && w > 0 => Some(Shape::Image { c, h, w }),
            _ => None,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shape::Flat(n) => write!(f, "[{n}]"),
            Shape::Image { c, h, w } => write!(f, "[{c}, {h}, {w}]"),
        }
    }
}
