//! The model: affine layers (Dense, Conv2d) with ReLU between them, validated when built,
//! and its f64 forward pass for one input or a batch.
//!
//! In the paper's notation (section 3): `zhat_{i+1} = W_i z_i + b_i` for `i = 1..k-1`,
//! `z_i = max(zhat_i, 0)` for `i = 2..k-1`, `z_1 = x`, output `zhat_k`. A [`Model`] holds
//! the `k - 1` affine maps as [`Affine`]; `Flatten` layers are reshapes and carry no data.

use crate::error::{NetworkError, Result};
use crate::ops::{ConvGeometry, LinearOp};
use crate::shape::Shape;

/// One layer as written in a model file, before shapes are resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// `y = W x + b` with `weight` row-major `[out][in]`.
    Dense {
        weight: Vec<f64>,
        bias: Vec<f64>,
        out_features: usize,
        in_features: usize,
    },
    /// 2-D convolution with `weight` `[out][in][kh][kw]` flattened row-major.
    Conv2d {
        weight: Vec<f64>,
        bias: Vec<f64>,
        out_channels: usize,
        in_channels: usize,
        kernel_h: usize,
        kernel_w: usize,
        stride: usize,
        padding: usize,
    },
    /// `max(x, 0)` elementwise.
    Relu,
    /// Reshape an image `[c, h, w]` to a vector (channel-major), no data moved.
    Flatten,
}

impl Layer {
    /// The layer's type name as in model files.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "dense",
            Layer::Conv2d { .. } => "conv2d",
            Layer::Relu => "relu",
            Layer::Flatten => "flatten",
        }
    }
}

/// One affine map `zhat_{i+1} = W_i z_i + b_i` with its resolved shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    /// The linear part `W_i`.
    pub op: LinearOp,
    /// The bias `b_i`, one value per output unit (a conv bias is broadcast per channel
    /// when the model is built, so this always has `out_shape.numel()` entries).
    pub bias: Vec<f64>,
    /// Shape of `z_i`.
    pub in_shape: Shape,
    /// Shape of `zhat_{i+1}`.
    pub out_shape: Shape,
    /// Index of this layer in [`Model::layers`].
    pub layer_index: usize,
    /// `|W|`, every weight replaced by its absolute value (kept so that error bounds
    /// and interval arithmetic need no copy per call).
    pub abs_op: LinearOp,
    /// `sum_k |W_kj|` for every input `j` (floating-point sums; callers that need an
    /// upper bound inflate them for their rounding).
    pub col_abs_sum: Vec<f64>,
}

/// A validated feed-forward ReLU network.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    input_shape: Shape,
    layers: Vec<Layer>,
    affine: Vec<Affine>,
}

fn check_finite(layer: usize, kind: &'static str, tensor: &'static str, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(NetworkError::NonFinite {
            layer,
            kind,
            tensor,
            value: v[index],
            index,
        }),
    }
}

impl Model {
    /// Validates a layer list for an input shape: shapes chain, weights are finite, the
    /// first and last layers are affine (flattens aside), and consecutive affine layers
    /// have exactly one ReLU between them.
    pub fn new(input_shape: Shape, layers: Vec<Layer>) -> Result<Model> {
        let mut shape = input_shape;
        let mut affine: Vec<Affine> = Vec::new();
        // What the previous non-flatten layer was: None (start), Some(true) affine, Some(false) relu.
        let mut prev_affine: Option<bool> = None;
        for (i, layer) in layers.iter().enumerate() {
            let kind = layer.kind();
            match layer {
                Layer::Flatten => {
                    shape = Shape::Flat(shape.numel());
                    continue;
                }
                Layer::Relu => {
                    match prev_affine {
                        None => {
                            return Err(NetworkError::Structure {
                                layer: i,
                                msg: "the model must start with an affine layer (dense or conv2d), not relu".into(),
                            })
                        }
                        Some(false) => {
                            return Err(NetworkError::Structure {
                                layer: i,
                                msg: "two relu layers in a row; remove one".into(),
                            })
                        }
                        Some(true) => {}
                    }
                    prev_affine = Some(false);
                    continue;
                }
                _ => {}
            }
            if prev_affine == Some(true) {
                return Err(NetworkError::Structure {
                    layer: i,
                    msg: format!(
                        "{kind} follows layer {} ({}) with no relu between them; this tool bounds affine maps \
                         separated by ReLUs: insert a relu or merge the two affine maps into one",
                        affine.last().map(|a| a.layer_index).unwrap_or(0),
                        layers[affine.last().map(|a| a.layer_index).unwrap_or(0)].kind()
                    ),
                });
            }
            let (op, bias, out_shape) = match layer {
                Layer::Dense {
                    weight,
                    bias,
                    out_features,
                    in_features,
                } => {
                    let n = match shape {
                        Shape::Flat(n) => n,
                        img => {
                            return Err(NetworkError::Shape {
                                layer: i,
                                kind,
                                expected: format!(
                                "[{in_features}] (a flat vector; add a flatten layer before it)"
                            ),
                                actual: img.to_string(),
                            })
                        }
                    };
                    if n != *in_features {
                        return Err(NetworkError::Shape {
                            layer: i,
                            kind,
                            expected: format!("[{in_features}]"),
                            actual: shape.to_string(),
                        });
                    }
                    if *out_features == 0 {
                        return Err(NetworkError::Layer {
                            layer: i,
                            kind,
                            msg: "has no output units".into(),
                        });
                    }
                    if weight.len() != out_features * in_features {
                        return Err(NetworkError::Layer {
                            layer: i,
                            kind,
                            msg: format!(
                                "weight has {} values but [{out_features}, {in_features}] needs {}",
                                weight.len(),
                                out_features * in_features
                            ),
                        });
                    }
                    if bias.len() != *out_features {
                        return Err(NetworkError::Layer {
                            layer: i,
                            kind,
                            msg: format!(
                                "bias has shape [{}] but the weight has {out_features} rows",
                                bias.len()
                            ),
                        });
                    }
                    check_finite(i, kind, "weight", weight)?;
                    check_finite(i, kind, "bias", bias)?;
                    let op = LinearOp::Dense {
                        weight: weight.clone(),
                        rows: *out_features,
                        cols: *in_features,
                    };
                    (op, bias.clone(), Shape::Flat(*out_features))
                }
                Layer::Conv2d {
                    weight,
                    bias,
                    out_channels,
                    in_channels,
                    kernel_h,
                    kernel_w,
                    stride,
                    padding,
                } => {
                    let (c, h, w) = match shape {
                        Shape::Image { c, h, w } => (c, h, w),
                        flat => {
                            return Err(NetworkError::Shape {
                                layer: i,
                                kind,
                                expected: format!("[{in_channels}, H, W] (an image)"),
                                actual: flat.to_string(),
                            })
                        }
                    };
                    if c != *in_channels {
                        return Err(NetworkError::Shape {
                            layer: i,
                            kind,
                            expected: format!("[{in_channels}, H, W]"),
                            actual: shape.to_string(),
                        });
                    }
                    if *stride == 0 || *out_channels == 0 || *kernel_h == 0 || *kernel_w == 0 {
                        return Err(NetworkError::Layer {
                            layer: i,
                            kind,
                            msg: format!(
                                "stride, kernel size and out_channels must be positive (stride {stride}, kernel \
                                 {kernel_h}x{kernel_w}, out_channels {out_channels})"
                            ),
                        });
                    }
                    let need = out_channels * in_channels * kernel_h * kernel_w;
                    if weight.len() != need {
                        return Err(NetworkError::Layer {
                            layer: i,
                            kind,
                            msg: format!(
                                "weight has {} values but [{out_channels}, {in_channels}, {kernel_h}, {kernel_w}] needs {need}",
                                weight.len()
                            ),
                        });
                    }
                    if bias.len() != *out_channels {
                        return Err(NetworkError::Layer {
                            layer: i,
                            kind,
                            msg: format!("bias has shape [{}] but the weight has {out_channels} output channels", bias.len()),
                        });
                    }
                    let oh = ConvGeometry::out_dim(h, *kernel_h, *stride, *padding);
                    let ow = ConvGeometry::out_dim(w, *kernel_w, *stride, *padding);
                    let (Some(out_h), Some(out_w)) = (oh, ow) else {
                        return Err(NetworkError::Shape {
                            layer: i,
                            kind,
                            expected: format!("an image of at least {kernel_h}x{kernel_w} after padding {padding}"),
                            actual: shape.to_string(),
                        });
                    };
                    check_finite(i, kind, "weight", weight)?;
                    check_finite(i, kind, "bias", bias)?;
                    let geom = ConvGeometry {
                        in_channels: c,
                        out_channels: *out_channels,
                        kernel_h: *kernel_h,
                        kernel_w: *kernel_w,
                        stride: *stride,
                        padding: *padding,
                        in_h: h,
                        in_w: w,
                        out_h,
                        out_w,
                    };
                    let full_bias = bias
                        .iter()
                        .flat_map(|&b| std::iter::repeat_n(b, out_h * out_w))
                        .collect();
                    let op = LinearOp::Conv {
                        weight: weight.clone(),
                        geom,
                    };
                    (
                        op,
                        full_bias,
                        Shape::Image {
                            c: *out_channels,
                            h: out_h,
                            w: out_w,
                        },
                    )
                }
                Layer::Relu | Layer::Flatten => unreachable!("handled above"),
            };
            let abs_op = op.abs();
            let mut col_abs_sum = vec![0.0; op.n_in()];
            abs_op.apply_transpose(&vec![1.0; op.n_out()], 1, &mut col_abs_sum);
            affine.push(Affine {
                op,
                bias,
                in_shape: shape,
                out_shape,
                layer_index: i,
                abs_op,
                col_abs_sum,
            });
            shape = out_shape;
            prev_affine = Some(true);
        }
        match prev_affine {
            None => Err(NetworkError::Structure {
                layer: 0,
                msg: "the model has no affine layer".into(),
            }),
            Some(false) => Err(NetworkError::Structure {
                layer: layers.len() - 1,
                msg: "the model must end with an affine layer (the logits), not relu".into(),
            }),
            Some(true) => Ok(Model {
                input_shape,
                layers,
                affine,
            }),
        }
    }

    /// Shape of one input.
    pub fn input_shape(&self) -> Shape {
        self.input_shape
    }
    /// Number of input values.
    pub fn input_len(&self) -> usize {
        self.input_shape.numel()
    }
    /// Number of outputs (logits).
    pub fn output_len(&self) -> usize {
        self.affine.last().map(|a| a.op.n_out()).unwrap_or(0)
    }
    /// The layers as given (for saving and display).
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    /// The affine maps `W_1..W_{k-1}` in order.
    pub fn affine(&self) -> &[Affine] {
        &self.affine
    }
    /// Number of ReLU layers (`k - 2` in the paper's notation).
    pub fn hidden_layers(&self) -> usize {
        self.affine.len() - 1
    }
    /// Sizes `n_1, .., n_k` of `z_1` and every `zhat_i`.
    pub fn layer_sizes(&self) -> Vec<usize> {
        std::iter::once(self.input_len())
            .chain(self.affine.iter().map(|a| a.op.n_out()))
            .collect()
    }
    /// Number of weights and biases.
    pub fn num_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Dense { weight, bias, .. } | Layer::Conv2d { weight, bias, .. } => {
                    weight.len() + bias.len()
                }
                _ => 0,
            })
            .sum()
    }

    /// A one-line description such as `[1, 28, 28] -> conv2d 16 -> relu -> ... -> dense 10`.
    pub fn describe(&self) -> String {
        let mut s = self.input_shape.to_string();
        for l in &self.layers {
            s.push_str(" -> ");
            match l {
                Layer::Dense { out_features, .. } => s.push_str(&format!("dense {out_features}")),
                Layer::Conv2d {
                    out_channels,
                    kernel_h,
                    kernel_w,
                    stride,
                    padding,
                    ..
                } => s.push_str(&format!(
                    "conv2d {out_channels} {kernel_h}x{kernel_w}/s{stride}/p{padding}"
                )),
                Layer::Relu => s.push_str("relu"),
                Layer::Flatten => s.push_str("flatten"),
            }
        }
        s
    }

    /// Checks that `x` is a finite input of the right length.
    pub fn check_input(&self, x: &[f64]) -> Result<()> {
        if x.len() != self.input_len() {
            return Err(NetworkError::InputLength {
                expected: self.input_len(),
                actual: x.len(),
                shape: self.input_shape.to_string(),
            });
        }
        match x.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(NetworkError::InputNonFinite {
                value: x[index],
                index,
            }),
            None => Ok(()),
        }
    }

    /// Pre-activations `zhat_2, .., zhat_k` of a batch of `ncols` inputs (column-major,
    /// one input per column). The last entry is the logits.
    pub fn preactivations_batch(&self, x: &[f64], ncols: usize) -> Result<Vec<Vec<f64>>> {
        if x.len() != self.input_len() * ncols {
            return Err(NetworkError::InputLength {
                expected: self.input_len() * ncols,
                actual: x.len(),
                shape: format!("{} x {ncols} columns", self.input_shape),
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(NetworkError::InputNonFinite {
                value: x[index],
                index,
            });
        }
        let mut out: Vec<Vec<f64>> = Vec::with_capacity(self.affine.len());
        let mut z: Vec<f64> = x.to_vec();
        for (i, a) in self.affine.iter().enumerate() {
            let no = a.op.n_out();
            let mut zhat = vec![0.0; no * ncols];
            a.op.apply(&z, ncols, &mut zhat);
            for col in zhat.chunks_mut(no) {
                for (v, b) in col.iter_mut().zip(&a.bias) {
                    *v += b;
                }
            }
            if i + 1 < self.affine.len() {
                z = zhat.iter().map(|&v| v.max(0.0)).collect();
            }
            out.push(zhat);
        }
        Ok(out)
    }

    /// Logits of a batch of `ncols` inputs (column-major), `n_out x ncols`.
    pub fn forward_batch(&self, x: &[f64], ncols: usize) -> Result<Vec<f64>> {
        Ok(self
            .preactivations_batch(x, ncols)?
            .pop()
            .unwrap_or_default())
    }

    /// Logits of one input.
    pub fn forward(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.check_input(x)?;
        self.forward_batch(x, 1)
    }

    /// A copy of the model with every affine layer's parameters passed through `f`
    /// (`f(affine_index, weight, bias)`, the layouts of [`Layer`]); the result is
    /// validated like any model (shapes, finite values). For scaled or edited copies in
    /// tests and campaigns.
    pub fn map_parameters(
        &self,
        mut f: impl FnMut(usize, &mut Vec<f64>, &mut Vec<f64>),
    ) -> Result<Model> {
        let mut k = 0;
        let mut layers = self.layers.clone();
        for l in &mut layers {
            if let Layer::Dense { weight, bias, .. } | Layer::Conv2d { weight, bias, .. } = l {
                f(k, weight, bias);
                k += 1;
            }
        }
        Model::new(self.input_shape, layers)
    }

    /// The predicted class (first index of the largest logit).
    pub fn predict(&self, x: &[f64]) -> Result<usize> {
        Ok(argmax(&self.forward(x)?))
    }
}

/// Index of the largest value (the first one on ties); 0 for an empty slice.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
