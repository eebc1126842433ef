//! The model: affine layers (Dense, Conv2d) with ReLU between them, validated when built,
//! and its f64 forward pass for one input or a batch.
//!
//! In the paper's notation (section 3): `zhat_{i+1} = W_i z_i + b_i` for `i = 1..k-1`,
//! `z_i = max(zhat_i, 0)` for `i = 2..k-1`, `z_1 = x`, output `zhat_k`. A [`Model`] holds
//! the `k - 1` affine maps as [`Affine`]; `Flatten` layers are reshapes and carry no data.

use crate::error::{NetworkError, Result};
use crate::ops::LinearOp;
use crate::shape::Shape;
use crate::vector::{as_column, AsVector};
use nalgebra::{DMatrix, DMatrixView, DVector};

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
    /// The sum of two values of the same shape (a residual connection); graph models only.
    Add,
    /// Average pooling over `kernel x kernel` windows of an image, moved by `stride`, no
    /// padding: a convolution with the fixed weight `1 / kernel^2` on each channel. The
    /// area `kernel^2` must be a power of two, so that the weight is a double and the model
    /// is the file's pooling exactly (the worked example of ARCHITECTURE.md's "How to add
    /// a node kind").
    AvgPool2d { kernel: usize, stride: usize },
    /// A transpose of an image's three axes, moving data: output axis `i` is input axis
    /// `perm[i]` (ONNX `Transpose` with `perm = [0, 1 + perm[0], 1 + perm[1], 1 + perm[2]]`
    /// on a batch of one). An NHWC image read as `[h, w, c]` becomes channel-major with
    /// `perm = [2, 0, 1]`; `[1, 2, 0]` turns a channel-major image into NHWC order (before
    /// a flatten, as networks exported from TensorFlow do). A linear map with weights 0
    /// and 1, so exact: the normal form holds it as a [`LinearOp::Permutation`].
    Transpose { perm: [usize; 3] },
}

impl Layer {
    /// The layer's type name as in model files.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "dense",
            Layer::Conv2d { .. } => "conv2d",
            Layer::Relu => "relu",
            Layer::Flatten => "flatten",
            Layer::Add => "add",
            Layer::AvgPool2d { .. } => "avgpool2d",
            Layer::Transpose { .. } => "transpose",
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
    /// Index in [`Model::layers`] of the node whose output this map computes (the first
    /// such node when the layer holds several values), for messages.
    pub layer_index: usize,
    /// `|W|`, every weight replaced by its absolute value (kept so that error bounds
    /// and interval arithmetic need no copy per call).
    pub abs_op: LinearOp,
    /// `sum_k |W_kj|` for every input `j` (floating-point sums; callers that need an
    /// upper bound inflate them for their rounding).
    pub col_abs_sum: Vec<f64>,
}

impl Affine {
    /// An affine map with its magnitudes (`|W|` and its column sums) precomputed.
    pub fn new(
        op: LinearOp,
        bias: Vec<f64>,
        in_shape: Shape,
        out_shape: Shape,
        layer_index: usize,
    ) -> Affine {
        let abs_op = op.abs();
        let mut col_abs_sum = vec![0.0; op.n_in()];
        abs_op.apply_transpose(&vec![1.0; op.n_out()], 1, &mut col_abs_sum);
        Affine {
            op,
            bias,
            in_shape,
            out_shape,
            layer_index,
            abs_op,
            col_abs_sum,
        }
    }
}

impl PartialEq for Model {
    fn eq(&self, other: &Model) -> bool {
        self.input_shape == other.input_shape
            && self.layers == other.layers
            && self.inputs == other.inputs
    }
}

/// Where a node reads a value: the graph input or an earlier node's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The model's input `x`.
    Input,
    /// The output of node `i` (an earlier node).
    Node(usize),
}

/// One node of a graph model: an operation and the values it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// A name for messages and files (ONNX node names, JSON v2 `name`).
    pub name: String,
    /// The operation.
    pub layer: Layer,
    /// What it reads: one value, two for [`Layer::Add`].
    pub inputs: Vec<Source>,
}

/// A validated feed-forward ReLU network: its nodes as given, and the layered normal
/// form of [`crate::graph`] that every bound method reads: affine maps
/// `zhat_{i+1} = W_i z_i + b_i` and hidden layers whose first `relu_units` units are
/// ReLUs and the rest linear. Two models are equal when their input shapes, layers and
/// the inputs of every node are (node names are labels and do not count).
#[derive(Debug, Clone)]
pub struct Model {
    input_shape: Shape,
    layers: Vec<Layer>,
    names: Vec<String>,
    inputs: Vec<Vec<Source>>,
    chain: bool,
    affine: Vec<Affine>,
    relu_units: Vec<usize>,
}

pub(crate) fn check_finite(
    layer: usize,
    kind: &'static str,
    tensor: &'static str,
    v: &[f64],
) -> Result<()> {
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
    /// A chain model: each layer reads the previous one's output (the first reads the
    /// input), as in a version-1 model file. Validates shapes and finite weights. Affine
    /// layers may follow each other with no ReLU between (input normalisation, a folded
    /// batch norm): the lowering of [`crate::graph`] keeps the inner value as a layer of
    /// linear units, never multiplying the weights together (that would round).
    pub fn new(input_shape: Shape, layers: Vec<Layer>) -> Result<Model> {
        let nodes = layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| Node {
                name: format!("layer{i}"),
                inputs: vec![if i == 0 {
                    Source::Input
                } else {
                    Source::Node(i - 1)
                }],
                layer,
            })
            .collect();
        Model::from_graph(input_shape, nodes)
    }

    /// A graph model: nodes in topological order, each reading the graph input or earlier
    /// nodes' outputs; the last node is the output (the logits). Lowered by
    /// [`crate::graph`] into the layered normal form every bound method uses. Errors name
    /// the node, its kind and the shapes.
    pub fn from_graph(input_shape: Shape, nodes: Vec<Node>) -> Result<Model> {
        let lowered = crate::graph::lower(input_shape, &nodes)?;
        let chain = nodes.iter().enumerate().all(|(i, n)| {
            n.inputs
                == [if i == 0 {
                    Source::Input
                } else {
                    Source::Node(i - 1)
                }]
        });
        let mut layers = Vec::with_capacity(nodes.len());
        let mut names = Vec::with_capacity(nodes.len());
        let mut inputs = Vec::with_capacity(nodes.len());
        for n in nodes {
            layers.push(n.layer);
            names.push(n.name);
            inputs.push(n.inputs);
        }
        Ok(Model {
            input_shape,
            layers,
            names,
            inputs,
            chain,
            affine: lowered.affine,
            relu_units: lowered.relu_units,
        })
    }

    /// The model whose output is `zhat_{t+2}`, the output of affine map `t` (its first
    /// `t + 1` affine maps, the same hidden layers): what bounds of one hidden layer are
    /// computed on. Its [`Model::layers`] are the nodes up to that map's node (for
    /// display; a truncated model is not meant to be saved).
    pub fn truncated(&self, t: usize) -> Model {
        let t = t.min(self.affine.len() - 1);
        let last = self.affine[t].layer_index;
        Model {
            input_shape: self.input_shape,
            layers: self.layers[..=last].to_vec(),
            names: self.names[..=last].to_vec(),
            inputs: self.inputs[..=last].to_vec(),
            chain: self.chain,
            affine: self.affine[..=t].to_vec(),
            relu_units: self.relu_units[..t].to_vec(),
        }
    }

    /// Whether every node reads the one before it (a version-1 chain).
    pub fn is_chain(&self) -> bool {
        self.chain
    }

    /// Whether the model is in the paper's form: every affine map a single dense or conv
    /// layer and every hidden unit a ReLU (no skips, no affine-after-affine). The candle
    /// training path and the ONNX export need it.
    pub fn is_plain(&self) -> bool {
        self.layers.iter().all(|l| {
            matches!(
                l,
                Layer::Dense { .. } | Layer::Conv2d { .. } | Layer::Relu | Layer::Flatten
            )
        }) && self
            .affine
            .iter()
            .all(|a| matches!(a.op, LinearOp::Dense { .. } | LinearOp::Conv { .. }))
            && self
                .relu_units
                .iter()
                .zip(&self.affine[1..])
                .all(|(&r, a)| r == a.op.n_in())
    }

    /// Units `0..relu_units(i)` of hidden layer `i` (the input of affine map `i + 1`) are
    /// ReLUs; the rest are linear (identity: a skip carried through the layer, or the
    /// output of an affine map that feeds another). Chain models of the paper's form have
    /// only ReLUs.
    pub fn relu_units(&self, hidden: usize) -> usize {
        self.relu_units[hidden]
    }

    /// [`Model::relu_units`] of every hidden layer.
    pub fn relu_all(&self) -> &[usize] {
        &self.relu_units
    }

    /// `z = act(zhat)` for hidden layer `hidden`, in place over `ncols` columns: ReLU on
    /// the ReLU units, identity on the linear ones.
    pub fn activate(&self, hidden: usize, zhat: &mut [f64]) {
        let n = self.affine[hidden].op.n_out();
        let r = self.relu_units[hidden];
        for col in zhat.chunks_mut(n.max(1)) {
            for v in &mut col[..r] {
                *v = v.max(0.0);
            }
        }
    }

    /// The nodes with their names and inputs (a chain's nodes read the one before), as
    /// given; a copy (for saving and export).
    pub fn nodes(&self) -> Vec<Node> {
        self.layers
            .iter()
            .zip(&self.names)
            .zip(&self.inputs)
            .map(|((layer, name), inputs)| Node {
                name: name.clone(),
                layer: layer.clone(),
                inputs: inputs.clone(),
            })
            .collect()
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
    /// Number of hidden layers (`k - 2` in the paper's notation); see
    /// [`Model::relu_units`] for which of their units are ReLUs.
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
                Layer::Add => s.push_str("add"),
                Layer::AvgPool2d { kernel, stride } => {
                    s.push_str(&format!("avgpool2d {kernel}x{kernel}/s{stride}"))
                }
                Layer::Transpose { perm } => {
                    s.push_str(&format!("transpose {},{},{}", perm[0], perm[1], perm[2]))
                }
            }
        }
        if !self.chain {
            s.push_str(" (a graph: ");
            let names: Vec<String> = self
                .inputs
                .iter()
                .enumerate()
                .map(|(i, inp)| {
                    let from: Vec<String> = inp
                        .iter()
                        .map(|src| match src {
                            Source::Input => "input".to_string(),
                            Source::Node(j) => self.names[*j].clone(),
                        })
                        .collect();
                    format!("{} <- {}", self.names[i], from.join(" + "))
                })
                .collect();
            s.push_str(&names.join(", "));
            s.push(')');
        }
        s
    }

    /// Checks that `x` is a finite input of the right length.
    pub fn check_input(&self, x: impl AsVector) -> Result<()> {
        let x = x.as_values();
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

    /// Pre-activations `zhat_2, .., zhat_k` of a batch of inputs, one per column of `x`
    /// (`input_len x n`); entry `i` is `n_i x n`. The last entry is the logits.
    ///
    /// Errors: `x` with the wrong number of rows, or not finite.
    pub fn preactivations_batch<'a>(
        &self,
        x: impl Into<DMatrixView<'a, f64>>,
    ) -> Result<Vec<DMatrix<f64>>> {
        let x = x.into();
        let ncols = x.ncols();
        if x.nrows() != self.input_len() {
            return Err(NetworkError::InputLength {
                expected: self.input_len(),
                actual: x.nrows(),
                shape: format!(
                    "{}; the batch has {} rows and {ncols} columns, one input per column",
                    self.input_shape,
                    x.nrows()
                ),
            });
        }
        // Column-major, one input after the other: the layout the operators take (the
        // view's strides are respected by its iterator).
        let x: Vec<f64> = x.iter().copied().collect();
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(NetworkError::InputNonFinite {
                value: x[index],
                index,
            });
        }
        let mut out: Vec<DMatrix<f64>> = Vec::with_capacity(self.affine.len());
        let mut z: Vec<f64> = x;
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
                z = zhat.clone();
                self.activate(i, &mut z);
            }
            out.push(DMatrix::from_vec(no, ncols, zhat));
        }
        Ok(out)
    }

    /// Logits of a batch of inputs, one per column of `x` (`input_len x n`): `n_out x n`.
    pub fn forward_batch<'a>(&self, x: impl Into<DMatrixView<'a, f64>>) -> Result<DMatrix<f64>> {
        let mut pre = self.preactivations_batch(x)?;
        Ok(pre.pop().expect("a model has an affine layer"))
    }

    /// Logits of one input (`input_len` entries): `n_out` entries.
    ///
    /// Errors: `x` of the wrong length or not finite.
    pub fn forward(&self, x: impl AsVector) -> Result<DVector<f64>> {
        self.check_input(&x)?;
        let logits = self.forward_batch(as_column(&x))?;
        Ok(DVector::from_vec(logits.data.into()))
    }

    /// A copy of the model with every dense and conv layer's parameters passed through `f`
    /// (`f(index among those layers, weight, bias)`, the layouts of [`Layer`]); the result is
    /// validated like any model (shapes, finite values). For scaled or edited copies in
    /// tests and campaigns.
    pub fn map_parameters(
        &self,
        mut f: impl FnMut(usize, &mut Vec<f64>, &mut Vec<f64>),
    ) -> Result<Model> {
        let mut k = 0;
        let mut nodes = self.nodes();
        for n in &mut nodes {
            if let Layer::Dense { weight, bias, .. } | Layer::Conv2d { weight, bias, .. } =
                &mut n.layer
            {
                f(k, weight, bias);
                k += 1;
            }
        }
        Model::from_graph(self.input_shape, nodes)
    }

    /// The predicted class (first index of the largest logit).
    pub fn predict(&self, x: impl AsVector) -> Result<usize> {
        Ok(argmax(&self.forward(x)?))
    }
}

/// Index of the largest value (the first one on ties); 0 for an empty vector.
pub fn argmax(v: impl AsVector) -> usize {
    let v = v.as_values();
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
