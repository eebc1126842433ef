//! The shared model as candle tensors: one [`candle_core::Var`] per weight and bias, in
//! f32 for training or f64 for cross-checks, on the CPU or (feature `cuda`) a GPU.
//!
//! A batch is a `[rows, n]` tensor (one flattened channel-major example per row); a conv
//! layer reshapes it to `[rows, c, h, w]`, convolves, and flattens back, so dense and
//! conv layers compose the same way as in `network`.

use candle_core::{DType, Device, Tensor, Var};
use network::{Layer, LinearOp, Model, Shape};

use crate::error::{Result, TrainError};

/// The device to run on: `"cpu"` or `"cuda"` (GPU 0; only with the `cuda` feature).
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if cfg!(feature = "cuda") {
                Ok(Device::new_cuda(0)?)
            } else {
                Err(TrainError::NoCuda)
            }
        }
        o => Err(TrainError::Config(format!(
            "unknown device {o:?} (cpu or cuda)"
        ))),
    }
}

/// The linear part of one affine layer.
#[derive(Debug, Clone)]
pub enum TensorOp {
    /// `w`: `[out, in]`.
    Dense { w: Var },
    /// `w`: `[out, in, kh, kw]`.
    Conv {
        w: Var,
        stride: usize,
        padding: usize,
        in_chw: (usize, usize, usize),
        out_chw: (usize, usize, usize),
    },
}

/// One affine layer `W z + b`.
#[derive(Debug, Clone)]
pub struct TensorAffine {
    pub op: TensorOp,
    /// `[out]` for dense, `[out_channels]` for conv.
    pub b: Var,
    pub n_in: usize,
    pub n_out: usize,
}

/// A model as tensors (see the module docs).
#[derive(Debug, Clone)]
pub struct TensorNet {
    pub input_shape: Shape,
    pub layers: Vec<TensorAffine>,
    /// The layer list of the source model, for writing it back.
    template: Model,
    pub dtype: DType,
    pub device: Device,
}

impl TensorNet {
    /// Copies a model's weights into tensors.
    /// Errors: a model not in the paper's form ([`Model::is_plain`]: residual
    /// connections, affine-after-affine), which the tensor dual of this crate does not
    /// implement.
    pub fn from_model(model: &Model, dtype: DType, device: &Device) -> Result<TensorNet> {
        if !model.is_plain() {
            return Err(TrainError::Config(format!(
                "the model ({}) has residual connections, pooling, transposes or affine maps with no \
                 ReLU between; training and the candle bounds support chains of dense/conv layers \
                 with one ReLU between them (the f64 bounds of `dual`, `lp` and `exact` support graphs)",
                model.describe()
            )));
        }
        let mut layers = Vec::new();
        let mut li = 0;
        for a in model.affine() {
            let layer = &model.layers()[a.layer_index];
            let (op, bias) = match (&a.op, layer) {
                (LinearOp::Dense { weight, rows, cols }, Layer::Dense { bias, .. }) => {
                    let w = Tensor::from_vec(weight.clone(), (*rows, *cols), device)?
                        .to_dtype(dtype)?;
                    (
                        TensorOp::Dense {
                            w: Var::from_tensor(&w)?,
                        },
                        bias.clone(),
                    )
                }
                (LinearOp::Conv { weight, geom: g }, Layer::Conv2d { bias, .. }) => {
                    let w = Tensor::from_vec(
                        weight.clone(),
                        (g.out_channels, g.in_channels, g.kernel_h, g.kernel_w),
                        device,
                    )?
                    .to_dtype(dtype)?;
                    (
                        TensorOp::Conv {
                            w: Var::from_tensor(&w)?,
                            stride: g.stride,
                            padding: g.padding,
                            in_chw: (g.in_channels, g.in_h, g.in_w),
                            out_chw: (g.out_channels, g.out_h, g.out_w),
                        },
                        bias.clone(),
                    )
                }
                _ => unreachable!("Model keeps affine ops and layers in step"),
            };
            let nb = bias.len();
            let b = Tensor::from_vec(bias, nb, device)?.to_dtype(dtype)?;
            layers.push(TensorAffine {
                op,
                b: Var::from_tensor(&b)?,
                n_in: a.op.n_in(),
                n_out: a.op.n_out(),
            });
            li += 1;
        }
        debug_assert_eq!(li, model.affine().len());
        Ok(TensorNet {
            input_shape: model.input_shape(),
            layers,
            template: model.clone(),
            dtype,
            device: device.clone(),
        })
    }

    /// Writes the current weights back into a [`Model`] (f64).
    pub fn to_model(&self) -> Result<Model> {
        let mut layers = self.template.layers().to_vec();
        for (a, t) in self.template.affine().iter().zip(&self.layers) {
            let w = match &t.op {
                TensorOp::Dense { w } | TensorOp::Conv { w, .. } => w
                    .as_tensor()
                    .to_dtype(DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?,
            };
            let b = t.b.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?;
            match &mut layers[a.layer_index] {
                Layer::Dense { weight, bias, .. } | Layer::Conv2d { weight, bias, .. } => {
                    *weight = w;
                    *bias = b;
                }
                _ => unreachable!("affine layer index points at an affine layer"),
            }
        }
        Ok(Model::new(self.input_shape, layers)?)
    }

    /// Every trainable variable.
    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|l| {
                let w = match &l.op {
                    TensorOp::Dense { w } | TensorOp::Conv { w, .. } => w.clone(),
                };
                [w, l.b.clone()]
            })
            .collect()
    }

    /// `W_t x` for `x` of shape `[rows, n_in]` (no bias).
    pub fn linear(&self, t: usize, x: &Tensor) -> Result<Tensor> {
        let l = &self.layers[t];
        let rows = x.dim(0)?;
        Ok(match &l.op {
            TensorOp::Dense { w } => x.matmul(&w.as_tensor().t()?)?,
            TensorOp::Conv {
                w,
                stride,
                padding,
                in_chw: (c, h, ww),
                ..
            } => {
                let x = x.reshape((rows, *c, *h, *ww))?;
                let y = if self.device.is_cpu() {
                    crate::conv::conv2d(&x, w.as_tensor(), *stride, *padding)?
                } else {
                    x.conv2d(w.as_tensor(), *padding, *stride, 1, 1)?
                };
                y.reshape((rows, l.n_out))?
            }
        })
    }

    /// `W_t^T y` for `y` of shape `[rows, n_out]`: the transposed convolution with the
    /// output padding that returns exactly the input's shape.
    pub fn linear_transpose(&self, t: usize, y: &Tensor) -> Result<Tensor> {
        let l = &self.layers[t];
        let rows = y.dim(0)?;
        Ok(match &l.op {
            TensorOp::Dense { w } => y.matmul(w.as_tensor())?,
            TensorOp::Conv {
                w,
                stride,
                padding,
                in_chw: (c, h, ww),
                out_chw: (co, oh, ow),
            } => {
                let y = y.reshape((rows, *co, *oh, *ow))?;
                let r = if self.device.is_cpu() {
                    crate::conv::conv_transpose2d(&y, w.as_tensor(), (*h, *ww), *stride, *padding)?
                } else {
                    let kh = w.as_tensor().dim(2)?;
                    let out_pad = (h + 2 * padding - kh) % stride;
                    y.conv_transpose2d(w.as_tensor(), *padding, out_pad, *stride, 1)?
                };
                debug_assert_eq!(r.dims()[1..], [*c, *h, *ww]);
                r.reshape((rows, l.n_in))?
            }
        })
    }

    /// The bias of layer `t` as a `[n_out]` vector (a conv bias repeated per pixel).
    pub fn bias(&self, t: usize) -> Result<Tensor> {
        let l = &self.layers[t];
        Ok(match &l.op {
            TensorOp::Dense { .. } => l.b.as_tensor().clone(),
            TensorOp::Conv {
                out_chw: (c, h, w), ..
            } => {
                l.b.as_tensor()
                    .reshape((*c, 1))?
                    .broadcast_as((*c, h * w))?
                    .reshape(c * h * w)?
            }
        })
    }

    /// `W_t x + b_t`.
    pub fn affine(&self, t: usize, x: &Tensor) -> Result<Tensor> {
        Ok(self.linear(t, x)?.broadcast_add(&self.bias(t)?)?)
    }

    /// Logits of a batch `[B, n_in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut z = x.clone();
        for t in 0..self.layers.len() {
            z = self.affine(t, &z)?;
            if t + 1 < self.layers.len() {
                z = z.relu()?;
            }
        }
        Ok(z)
    }

    /// A batch of examples, one per column of `x` (`input_len x b`, the layout of
    /// [`network::Model::forward_batch`]), as the tensor `(b, input_len)`.
    pub fn batch<'a>(&self, x: impl Into<network::DMatrixView<'a, f64>>) -> Result<Tensor> {
        let x = x.into();
        let (n, b) = x.shape();
        // Column-major `n x b` is row-major `(b, n)`: one example per tensor row.
        let data: Vec<f64> = x.iter().copied().collect();
        Ok(Tensor::from_vec(data, (b, n), &self.device)?.to_dtype(self.dtype)?)
    }
}
