//! ONNX graph -> [`Model`], exactly or not at all.
//!
//! The importer walks the nodes in file order (ONNX requires a topological order) and
//! follows every tensor computed from the graph input (a path); every other node input
//! must be a constant (an initializer, also when an older exporter lists it among the
//! graph inputs, or the output of a `Constant` node). A tensor read by two nodes starts
//! two branches; an `Add` of two computed tensors joins them (a residual connection).
//! The result is a graph model (`network::graph`).
//!
//! | operator | accepted form | lowered to |
//! |---|---|---|
//! | `MatMul` | `x @ B` (x `[.., K]`, leading dims 1) or `A @ x` (x `[K]` or `[K, 1]`), constant `A`/`B` | Dense |
//! | `Gemm` | `alpha * A' B' + beta * C` with the data as `A` (transA 0 or 1), constant `B`, `C` | Dense |
//! | `Conv` | 2-D, group 1, dilation 1, one stride and one pad for both axes, no auto_pad | Conv2d |
//! | `AveragePool` | square kernel whose area is a power of two, one stride, no padding | AvgPool2d |
//! | `Add`, `Sub`, `Mul`, `Div` | with a constant that broadcasts by NumPy's rule (scalar, per unit, per channel) | folded into the neighbouring affine map |
//! | `Add` | of two computed tensors of one shape (a residual connection) | Add |
//! | `Relu` | | ReLU |
//! | `Flatten`, `Reshape`, `Identity`, `Transpose` | when they do not move data (row-major order kept) | nothing (a Flatten layer where an image becomes a vector) |
//! | `Transpose` | that moves data, from an image into an image (`[1, c, h, w]`-like: NHWC into NCHW and back) | Transpose (a permutation, exact) |
//! | `Constant` | `value` (tensor), `value_float(s)`, `value_int(s)` | a constant |
//!
//! Folding: an elementwise affine map on the data (`Sub` of a mean, `Div` by a scale)
//! is composed with the affine map before it or, when there is none yet, with the next
//! one (the first layer's weights and bias). Each folded number is computed in exact
//! arithmetic and accepted only when it is an f64; otherwise the import fails naming the
//! node, because a rounded fold would make the bounds hold for a slightly different
//! network. Two affine maps with no ReLU between them are kept as two nodes (the graph
//! model gives the inner value linear units; multiplying the weights would round).
//! `BatchNormalization` (inference form) directly after a `Conv`, `Gemm` or `MatMul` is
//! folded into that layer per channel: exactly when `scale / sqrt(var + eps)` and the
//! shift are doubles (rare), else only with [`ImportOptions::round_batchnorm`], which
//! folds in f64 with rounding and lists the node in [`Imported::rounded`]: every result
//! then holds for the folded network (each folded weight within half an ulp of the exact
//! fold), not exactly for the file's. Not supported (an error naming the node):
//! a `BatchNormalization` anywhere else, `Sub`, `Mul` or other operators of two computed tensors, a residual `Add` of a
//! tensor that still waits for an elementwise map to fold, max pooling and average pooling with padding or a window area that is not a power of two, other activations,
//! a `Transpose` that moves data other than among the three axes of an image, external data, and
//! tensor types other than float and double.

use std::collections::HashMap;
use std::path::Path;

use network::{Dyadic, Layer, Model, Node, Shape, Source};
use prost::Message;
use tract_onnx::pb;

use crate::error::{OnnxError, Result};

/// An ONNX model lowered onto a [`Model`], with what the file said about it.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The network (its input shape drops the file's leading batch dimension of 1).
    pub model: Model,
    /// The graph input's name and its dimensions as declared (batch included).
    pub input_name: String,
    pub input_dims: Vec<usize>,
    /// The graph output's name.
    pub output_name: String,
    /// `producer_name` of the file.
    pub producer: String,
    /// The default-domain opset the file imports.
    pub opset: i64,
    /// Number of nodes in the file's graph.
    pub nodes: usize,
    /// Nodes whose constant was folded into a weight or bias (name and operator).
    pub folded: Vec<String>,
    /// Nodes folded with rounding ([`ImportOptions::round_batchnorm`]): when not empty,
    /// the model is the rounded fold, not exactly the file's network.
    pub rounded: Vec<String>,
}

/// Choices of the import that change what network is imported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Fold a `BatchNormalization` whose folded weights are not doubles by rounding them
    /// to the nearest (listed in [`Imported::rounded`]) instead of refusing the file.
    pub round_batchnorm: bool,
}

/// Reads an ONNX file. Errors: I/O, protobuf decoding and every lowering error of
/// [`import_onnx`], each naming the file.
pub fn load_onnx(path: impl AsRef<Path>) -> Result<Imported> {
    load_onnx_with(path, &ImportOptions::default())
}

/// [`load_onnx`] with [`ImportOptions`].
pub fn load_onnx_with(path: impl AsRef<Path>, opts: &ImportOptions) -> Result<Imported> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| OnnxError::Io {
        file: file.clone(),
        error,
    })?;
    import_onnx_with(&bytes, &file, opts)
}

/// Lowers the bytes of an ONNX model onto a [`Model`]; `source` names the file in
/// errors. See the module documentation for what is accepted.
pub fn import_onnx(bytes: &[u8], source: &str) -> Result<Imported> {
    import_onnx_with(bytes, source, &ImportOptions::default())
}

/// [`import_onnx`] with [`ImportOptions`].
pub fn import_onnx_with(bytes: &[u8], source: &str, opts: &ImportOptions) -> Result<Imported> {
    let proto = pb::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode {
        file: source.to_string(),
        error: e.to_string(),
    })?;
    let mut lowering = Lowering::new(source);
    lowering.opts = *opts;
    lowering.run(&proto)
}

/// Decodes one little-endian value of a tensor's raw bytes.
type Decode = fn(&[u8]) -> f64;

/// A constant tensor, as f64 values in row-major order.
#[derive(Debug, Clone)]
struct Tensor {
    dims: Vec<usize>,
    data: Vec<f64>,
}

/// The affine map under construction: `y = W x + b` (dense) or a convolution.
#[derive(Debug, Clone)]
enum Pending {
    Dense {
        /// Row-major `[out][in]`.
        weight: Vec<f64>,
        bias: Vec<f64>,
        out_features: usize,
        in_features: usize,
    },
    Conv {
        weight: Vec<f64>,
        /// One per output channel.
        bias: Vec<f64>,
        out_channels: usize,
        in_channels: usize,
        kernel: (usize, usize),
        stride: usize,
        padding: usize,
        out_hw: (usize, usize),
    },
}

/// An elementwise map `x -> scale * x + shift` waiting to be folded into the next
/// affine map (`None` entries: the identity).
#[derive(Debug, Clone)]
struct Elementwise {
    scale: Vec<f64>,
    shift: Vec<f64>,
    /// The nodes it came from, for errors.
    nodes: Vec<String>,
}

impl Elementwise {
    fn identity(n: usize) -> Elementwise {
        Elementwise {
            scale: vec![1.0; n],
            shift: vec![0.0; n],
            nodes: Vec::new(),
        }
    }
    fn is_identity(&self) -> bool {
        self.scale.iter().all(|&s| s == 1.0) && self.shift.iter().all(|&t| t == 0.0)
    }
}

/// `a * b` when it is an f64 exactly (no rounding, no overflow or underflow).
fn exact_mul(a: f64, b: f64) -> Option<f64> {
    let p = a * b;
    if !p.is_finite() {
        return None;
    }
    if p == 0.0 {
        return (a == 0.0 || b == 0.0).then_some(p);
    }
    // Far from the subnormal range the fused multiply-add gives the exact residual.
    (p.abs() >= 1e-280 && a.mul_add(b, -p) == 0.0).then_some(p)
}

/// `a + b` when it is an f64 exactly (TwoSum's error term is zero).
fn exact_add(a: f64, b: f64) -> Option<f64> {
    let s = a + b;
    if !s.is_finite() {
        return None;
    }
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (err == 0.0).then_some(s)
}

/// `a / b` when it is an f64 exactly.
fn exact_div(a: f64, b: f64) -> Option<f64> {
    if b == 0.0 {
        return None;
    }
    let q = a / b;
    if !q.is_finite() {
        return None;
    }
    if q == 0.0 {
        return (a == 0.0).then_some(q);
    }
    (q.abs() >= 1e-280 && q.mul_add(b, -a) == 0.0).then_some(q)
}

/// `b + sum_j w_j t_j` computed exactly, when the result is an f64.
fn exact_dot_plus(b: f64, w: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let mut acc = Dyadic::from_f64(b)?;
    for (wj, tj) in w {
        if tj != 0.0 && wj != 0.0 {
            acc = acc.add(&Dyadic::from_f64(wj)?.mul(&Dyadic::from_f64(tj)?));
        }
    }
    let v = acc.to_f64();
    (v.is_finite() && acc.cmp_f64(v) == Some(std::cmp::Ordering::Equal)).then_some(v)
}

/// The state of one computed tensor (a path of the graph): where its emitted part lives
/// and what waits to be folded into it.
#[derive(Debug, Clone)]
struct PathState {
    dims: Vec<usize>,
    shape: Shape,
    source: Source,
    last: Option<&'static str>,
    pending: Option<Pending>,
    flatten_after_pending: bool,
    pre: Elementwise,
}

struct Lowering {
    file: String,
    consts: HashMap<String, Tensor>,
    /// Every computed tensor seen so far (a tensor read by two nodes: a branch).
    paths: HashMap<String, PathState>,
    /// The graph under construction.
    nodes: Vec<Node>,
    /// Where the current path's emitted data lives, and the kind of the last non-flatten
    /// node emitted on it (`None`: nothing yet, the graph input).
    source: Source,
    last: Option<&'static str>,
    /// Name of the tensor that carries the data, and its ONNX dimensions.
    current: String,
    dims: Vec<usize>,
    /// The model's shape at this point (what the next layer receives).
    shape: Shape,
    /// The model's input shape (a data-preserving reshape before the first layer
    /// relabels it, when no other node reads the graph input).
    input_shape: Shape,
    /// How many nodes read the graph input.
    input_readers: usize,
    pending: Option<Pending>,
    /// A Flatten to emit after the pending affine map.
    flatten_after_pending: bool,
    pre: Elementwise,
    folded: Vec<String>,
    rounded: Vec<String>,
    opts: ImportOptions,
    /// The node being lowered (index, name, operator), for errors.
    at: (usize, String, String),
}

/// Dimensions of an image: at least three, every axis before the last three of size 1.
fn image_dims(d: &[usize]) -> bool {
    d.len() >= 3 && d[..d.len() - 3].iter().all(|&x| x == 1)
}

fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

impl Lowering {
    fn new(file: &str) -> Lowering {
        Lowering {
            file: file.to_string(),
            consts: HashMap::new(),
            paths: HashMap::new(),
            nodes: Vec::new(),
            source: Source::Input,
            last: None,
            current: String::new(),
            dims: Vec::new(),
            shape: Shape::Flat(0),
            input_shape: Shape::Flat(0),
            input_readers: 0,
            pending: None,
            flatten_after_pending: false,
            pre: Elementwise::identity(0),
            folded: Vec::new(),
            rounded: Vec::new(),
            opts: ImportOptions::default(),
            at: (0, String::new(), String::new()),
        }
    }

    fn graph_err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Graph {
            file: self.file.clone(),
            msg: msg.into(),
        }
    }

    fn node_err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            file: self.file.clone(),
            index: self.at.0,
            name: self.at.1.clone(),
            op: self.at.2.clone(),
            msg: msg.into(),
        }
    }

    /// Appends a graph node reading the current path; the path now continues from it.
    fn emit(&mut self, layer: Layer) {
        let kind = layer.kind();
        let name = format!("n{}_{}_{kind}", self.nodes.len(), self.at.1);
        self.nodes.push(Node {
            name,
            layer,
            inputs: vec![self.source],
        });
        self.source = Source::Node(self.nodes.len() - 1);
        if kind != "flatten" {
            self.last = Some(kind);
        }
    }

    fn save_path(&mut self, name: String) {
        let state = PathState {
            dims: self.dims.clone(),
            shape: self.shape,
            source: self.source,
            last: self.last,
            pending: self.pending.clone(),
            flatten_after_pending: self.flatten_after_pending,
            pre: self.pre.clone(),
        };
        self.paths.insert(name, state);
    }

    fn load_path(&mut self, name: &str) {
        let p = self.paths[name].clone();
        self.current = name.to_string();
        self.dims = p.dims;
        self.shape = p.shape;
        self.source = p.source;
        self.last = p.last;
        self.pending = p.pending;
        self.flatten_after_pending = p.flatten_after_pending;
        self.pre = p.pre;
    }

    /// `Add` of two computed tensors (a residual connection): each branch's pending
    /// affine map is emitted, then an add node reads both.
    fn residual_add(&mut self, node: &pb::NodeProto, a: &str, b: &str) -> Result<()> {
        let mut ends = Vec::new();
        for name in [a, b] {
            self.load_path(name);
            if !self.pre.is_identity() {
                return Err(self.node_err(format!(
                    "input {name:?} ends in an elementwise map ({}) that waits to be folded into an affine map; a residual add of it is not supported",
                    self.pre.nodes.join(", ")
                )));
            }
            self.finish_pending();
            ends.push((self.source, self.dims.clone(), self.shape));
        }
        let (sa, da, sha) = ends[0].clone();
        let (sb, db, shb) = ends[1].clone();
        if da.iter().product::<usize>() != db.iter().product::<usize>() || sha != shb {
            return Err(self.node_err(format!(
                "adds tensors of dimensions {da:?} and {db:?}; a residual add needs one shape (broadcasting two computed tensors is not supported)"
            )));
        }
        let name = format!("n{}_{}_add", self.nodes.len(), self.at.1);
        self.nodes.push(Node {
            name,
            layer: Layer::Add,
            inputs: vec![sa, sb],
        });
        self.source = Source::Node(self.nodes.len() - 1);
        self.last = Some("add");
        self.dims = da;
        self.shape = sha;
        self.pending = None;
        self.flatten_after_pending = false;
        self.pre = Elementwise::identity(sha.numel());
        self.set_output(node)
    }

    fn tensor(&self, t: &pb::TensorProto) -> Result<Tensor> {
        let err = |msg: String| OnnxError::Tensor {
            file: self.file.clone(),
            name: t.name.clone(),
            msg,
        };
        if t.data_location == Some(1) || !t.external_data.is_empty() {
            return Err(err(
                "stored as external data (a separate file); save the model with its weights inside"
                    .into(),
            ));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            if d < 0 {
                return Err(err(format!("negative dimension {d}")));
            }
            dims.push(d as usize);
        }
        let n: usize = dims.iter().product();
        // Raw little-endian bytes when present, else the typed field: (type name, bytes
        // per value, decoder of one value).
        let (name, width, decode, typed): (&str, usize, Decode, Vec<f64>) = match t.data_type {
            1 => (
                "float",
                4,
                |b| f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64,
                t.float_data.iter().map(|&v| v as f64).collect(),
            ),
            11 => (
                "double",
                8,
                |b| f64::from_le_bytes(b.try_into().expect("8 bytes")),
                t.double_data.clone(),
            ),
            // int64: shapes of Reshape.
            7 => (
                "int64",
                8,
                |b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
                t.int64_data.iter().map(|&v| v as f64).collect(),
            ),
            other => {
                return Err(err(format!(
                "data type {other} is not supported (float = 1, double = 11, int64 = 7 for shapes)"
            )))
            }
        };
        let data: Vec<f64> = if t.raw_data.is_empty() {
            typed
        } else if t.raw_data.len() != width * n {
            return Err(err(format!(
                "{name} tensor of {n} values holds {} raw bytes",
                t.raw_data.len()
            )));
        } else {
            t.raw_data.chunks_exact(width).map(decode).collect()
        };
        if data.len() != n {
            return Err(err(format!(
                "dims {dims:?} need {n} values but the tensor holds {}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(err(format!(
                "holds the non-finite value {} at flat index {i}",
                data[i]
            )));
        }
        Ok(Tensor { dims, data })
    }

    fn run(mut self, proto: &pb::ModelProto) -> Result<Imported> {
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| self.graph_err("the model holds no graph"))?;
        let opset = proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(0);
        for t in &graph.initializer {
            let v = self.tensor(t)?;
            self.consts.insert(t.name.clone(), v);
        }
        let data_inputs: Vec<&pb::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !self.consts.contains_key(&i.name))
            .collect();
        if data_inputs.len() != 1 {
            return Err(self.graph_err(format!(
                "the graph must have exactly one input that is not an initializer, found {}: {:?}",
                data_inputs.len(),
                data_inputs.iter().map(|i| &i.name).collect::<Vec<_>>()
            )));
        }
        let input = data_inputs[0];
        let input_dims = self.value_dims(input)?;
        let input_shape = match input_dims.as_slice() {
            [n] => Shape::Flat(*n),
            [1, n] | [n, 1] => Shape::Flat(*n),
            [1, c, h, w] => Shape::Image {
                c: *c,
                h: *h,
                w: *w,
            },
            [c, h, w] => Shape::Image {
                c: *c,
                h: *h,
                w: *w,
            },
            d => {
                return Err(self.graph_err(format!(
                    "input {:?} has dimensions {d:?}; supported: [n], [1, n], [c, h, w] or [1, c, h, w]",
                    input.name
                )))
            }
        };
        if input_shape.numel() == 0 {
            return Err(self.graph_err(format!("input {:?} has no elements", input.name)));
        }
        if graph.output.len() != 1 {
            return Err(self.graph_err(format!(
                "the graph must have exactly one output, found {}",
                graph.output.len()
            )));
        }
        let output_name = graph.output[0].name.clone();
        self.current = input.name.clone();
        self.dims = input_dims.clone();
        self.shape = input_shape;
        self.input_shape = input_shape;
        self.input_readers = graph
            .node
            .iter()
            .filter(|n| n.input.contains(&input.name))
            .count();
        self.pre = Elementwise::identity(input_shape.numel());
        self.save_path(input.name.clone());
        for (index, node) in graph.node.iter().enumerate() {
            self.at = (index, node.name.clone(), node.op_type.clone());
            self.node(node)?;
        }
        self.at = (graph.node.len(), String::new(), "end of graph".into());
        if !self.paths.contains_key(&output_name) {
            return Err(self.graph_err(format!(
                "the graph output {output_name:?} is not computed from the input"
            )));
        }
        self.load_path(&output_name);
        self.finish_pending();
        // A network that ends in a ReLU (or in an elementwise map after one) gets an
        // identity Dense layer, so that its last layer is affine: exact.
        let ends_in_relu = self.last == Some("relu");
        if ends_in_relu {
            let n = self.shape.numel();
            if let Shape::Image { .. } = self.shape {
                self.emit(Layer::Flatten);
                self.shape = Shape::Flat(n);
            }
            let mut weight = vec![0.0; n * n];
            for i in 0..n {
                weight[i * n + i] = self.pre.scale[i];
            }
            self.emit(Layer::Dense {
                weight,
                bias: self.pre.shift.clone(),
                out_features: n,
                in_features: n,
            });
            self.pre = Elementwise::identity(n);
        } else if !self.pre.is_identity() {
            return Err(self.graph_err(format!(
                "an elementwise map ({}) follows the last affine map but could not be folded",
                self.pre.nodes.join(", ")
            )));
        }
        if self.nodes.is_empty() {
            return Err(self.graph_err("the graph has no affine layer (MatMul, Gemm or Conv)"));
        }
        let model = Model::from_graph(self.input_shape, std::mem::take(&mut self.nodes)).map_err(
            |error| OnnxError::Model {
                file: self.file.clone(),
                error,
            },
        )?;
        Ok(Imported {
            model,
            input_name: input.name.clone(),
            input_dims,
            output_name,
            producer: proto.producer_name.clone(),
            opset,
            nodes: graph.node.len(),
            folded: self.folded,
            rounded: self.rounded,
        })
    }

    fn value_dims(&self, v: &pb::ValueInfoProto) -> Result<Vec<usize>> {
        use pb::tensor_shape_proto::dimension::Value as D;
        use pb::type_proto::Value as T;
        let shape = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(T::TensorType(t)) => {
                if t.elem_type != 1 && t.elem_type != 11 {
                    return Err(self.graph_err(format!(
                        "input {:?} has element type {}; supported: float (1), double (11)",
                        v.name, t.elem_type
                    )));
                }
                t.shape.as_ref()
            }
            _ => None,
        };
        let shape = shape.ok_or_else(|| {
            self.graph_err(format!("input {:?} declares no tensor shape", v.name))
        })?;
        let mut dims = Vec::new();
        for (i, d) in shape.dim.iter().enumerate() {
            match &d.value {
                Some(D::DimValue(n)) if *n > 0 => dims.push(*n as usize),
                // A symbolic (or unset) batch dimension: one example at a time.
                Some(D::DimParam(_)) | None if i == 0 && shape.dim.len() > 1 => dims.push(1),
                other => {
                    return Err(self.graph_err(format!(
                        "input {:?}: dimension {i} is {other:?}; only the leading (batch) dimension may be symbolic",
                        v.name
                    )))
                }
            }
        }
        Ok(dims)
    }

    /// The node's inputs split into the data input (which must be `self.current`) and
    /// constants, by position. Empty names (omitted optional inputs) are `None`.
    fn operands(&self, node: &pb::NodeProto) -> Result<Vec<Option<Operand>>> {
        let mut out = Vec::new();
        let mut data = 0;
        for name in &node.input {
            if name.is_empty() {
                out.push(None);
            } else if *name == self.current || self.paths.contains_key(name) {
                data += 1;
                out.push(Some(Operand::Data));
            } else if let Some(t) = self.consts.get(name) {
                out.push(Some(Operand::Const(t.clone())));
            } else {
                return Err(self.node_err(format!(
                    "input {name:?} is neither a tensor computed from the graph input nor a constant (nodes must come in topological order)"
                )));
            }
        }
        if data > 1 {
            return Err(self.node_err(
                "takes two computed tensors; of such operators only Add (a residual connection) is supported",
            ));
        }
        Ok(out)
    }

    fn set_output(&mut self, node: &pb::NodeProto) -> Result<()> {
        if node.output.len() != 1 {
            return Err(self.node_err(format!(
                "has {} outputs; one is supported",
                node.output.len()
            )));
        }
        self.current = node.output[0].clone();
        self.save_path(self.current.clone());
        Ok(())
    }

    fn int_attr(&self, node: &pb::NodeProto, name: &str, default: i64) -> i64 {
        attr(node, name).map(|a| a.i).unwrap_or(default)
    }

    fn node(&mut self, node: &pb::NodeProto) -> Result<()> {
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(self.node_err(format!(
                "operator domain {:?} is not supported",
                node.domain
            )));
        }
        if node.op_type == "Constant" {
            return self.constant(node);
        }
        let data: Vec<String> = node
            .input
            .iter()
            .filter(|n| self.paths.contains_key(*n))
            .cloned()
            .collect();
        if data.len() == 2 && node.op_type == "Add" && node.input.len() == 2 {
            return self.residual_add(node, &data[0], &data[1]);
        }
        if let Some(first) = data.first() {
            let first = first.clone();
            self.load_path(&first);
        }
        let ops = self.operands(node)?;
        if !ops.iter().any(|o| matches!(o, Some(Operand::Data))) {
            return Err(self.node_err(
                "computes on constants only; constant folding of this operator is not supported (fold it before export)",
            ));
        }
        match node.op_type.as_str() {
            "Identity" => self.set_output(node),
            "Relu" => self.relu(node),
            "Flatten" => {
                let axis = self.int_attr(node, "axis", 1);
                let r = self.dims.len() as i64;
                let axis = if axis < 0 { axis + r } else { axis };
                if !(0..=r).contains(&axis) {
                    return Err(self.node_err(format!("axis {axis} out of range for rank {r}")));
                }
                let a: usize = self.dims[..axis as usize].iter().product();
                let b: usize = self.dims[axis as usize..].iter().product();
                self.reshape_to(vec![a, b])?;
                self.set_output(node)
            }
            "Reshape" => {
                let shape = match ops.get(1) {
                    Some(Some(Operand::Const(t))) => t.data.clone(),
                    _ => return Err(self.node_err("the target shape must be a constant")),
                };
                if attr(node, "allowzero").map(|a| a.i).unwrap_or(0) != 0 {
                    return Err(self.node_err("allowzero = 1 is not supported"));
                }
                let total: usize = self.dims.iter().product();
                let mut dims = Vec::new();
                let mut infer = None;
                for (i, &s) in shape.iter().enumerate() {
                    let s = s as i64;
                    if s == 0 {
                        dims.push(*self.dims.get(i).ok_or_else(|| {
                            self.node_err("0 in the target shape copies a dimension the input lacks")
                        })?);
                    } else if s == -1 {
                        if infer.is_some() {
                            return Err(self.node_err("two -1 in the target shape"));
                        }
                        infer = Some(dims.len());
                        dims.push(1);
                    } else if s > 0 {
                        dims.push(s as usize);
                    } else {
                        return Err(self.node_err(format!("invalid target dimension {s}")));
                    }
                }
                if let Some(i) = infer {
                    let rest: usize = dims.iter().product();
                    if rest == 0 || !total.is_multiple_of(rest) {
                        return Err(self.node_err(format!(
                            "cannot infer -1: {total} values into {shape:?}"
                        )));
                    }
                    dims[i] = total / rest;
                }
                self.reshape_to(dims)?;
                self.set_output(node)
            }
            "Transpose" => {
                let r = self.dims.len();
                let perm: Vec<usize> = match attr(node, "perm") {
                    Some(a) => a.ints.iter().map(|&p| p as usize).collect(),
                    None => (0..r).rev().collect(),
                };
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..r).collect::<Vec<_>>() {
                    return Err(self.node_err(format!("perm {perm:?} is not a permutation of 0..{r}")));
                }
                // Data stays in place when the axes of size > 1 keep their order.
                let moved: Vec<usize> = perm.iter().copied().filter(|&p| self.dims[p] > 1).collect();
                let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
                // One that keeps the data order only relabels the dims, except where an
                // image cannot be relabelled as another image (after the first layer, or
                // on a graph input that other nodes read too): a transpose node then, which
                // moves nothing.
                if moved.windows(2).any(|w| w[0] > w[1])
                    || (!self.relabels_input() && self.becomes_another_image(&dims))
                {
                    return self.transpose_image(node, &perm);
                }
                self.reshape_to(dims)?;
                self.set_output(node)
            }
            "MatMul" => self.matmul(node, &ops),
            "Gemm" => self.gemm(node, &ops),
            "Conv" => self.conv(node, &ops),
            "AveragePool" => self.average_pool(node),
            "Add" | "Sub" | "Mul" | "Div" => self.elementwise(node, &ops),
            "BatchNormalization" => self.batchnorm(node, &ops),
            other => Err(self.node_err(format!(
                "operator {other} is not supported (supported: MatMul, Gemm, Conv, AveragePool, Add, Sub, Mul, Div by constants, Add of two computed tensors, Relu, Flatten, Reshape, Transpose, Identity, Constant)"
            ))),
        }
    }

    fn constant(&mut self, node: &pb::NodeProto) -> Result<()> {
        let a = node
            .attribute
            .first()
            .ok_or_else(|| self.node_err("Constant without a value attribute"))?;
        let t = match a.name.as_str() {
            "value" => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| self.node_err("value attribute holds no tensor"))?;
                self.tensor(t)?
            }
            "value_float" => Tensor {
                dims: vec![],
                data: vec![a.f as f64],
            },
            "value_floats" => Tensor {
                dims: vec![a.floats.len()],
                data: a.floats.iter().map(|&v| v as f64).collect(),
            },
            "value_int" => Tensor {
                dims: vec![],
                data: vec![a.i as f64],
            },
            "value_ints" => Tensor {
                dims: vec![a.ints.len()],
                data: a.ints.iter().map(|&v| v as f64).collect(),
            },
            other => {
                return Err(self.node_err(format!("Constant attribute {other} is not supported")))
            }
        };
        if node.output.len() != 1 {
            return Err(self.node_err("Constant must have one output"));
        }
        self.consts.insert(node.output[0].clone(), t);
        Ok(())
    }

    /// A reshape that keeps the data order: updates the ONNX dims, and the model's
    /// shape when an image becomes a vector.
    fn reshape_to(&mut self, dims: Vec<usize>) -> Result<()> {
        let n: usize = dims.iter().product();
        if n != self.dims.iter().product::<usize>() {
            return Err(self.node_err(format!(
                "reshapes {:?} into {dims:?}: the element counts differ",
                self.dims
            )));
        }
        let non1: Vec<usize> = dims.iter().copied().filter(|&d| d != 1).collect();
        if self.relabels_input() {
            // Before the first layer a reshape that keeps the data order only relabels
            // the model's input (e.g. NHWC with one channel read as NCHW).
            self.shape = match dims.as_slice() {
                [.., c, h, w] if image_dims(&dims) => Shape::Image {
                    c: *c,
                    h: *h,
                    w: *w,
                },
                _ => Shape::Flat(n),
            };
            self.input_shape = self.shape;
            self.dims = dims;
            return Ok(());
        }
        if let Shape::Image { .. } = self.shape {
            // Stays an image when the non-1 dims are still (c, h, w) in order.
            let still_image = match self.shape {
                Shape::Image { c, h, w } => {
                    image_dims(&dims) && dims[dims.len() - 3..] == [c, h, w]
                }
                _ => false,
            };
            if !still_image && non1.len() > 1 && dims.len() >= 3 && dims[dims.len() - 1] != n {
                return Err(self.node_err(format!(
                    "reshapes the image {:?} into the image {dims:?}; only flattening an image is supported after the first layer (or on a graph input that several nodes read)",
                    self.dims
                )));
            }
            if !still_image {
                if self.pending.is_some() {
                    self.flatten_after_pending = true;
                } else {
                    self.emit(Layer::Flatten);
                }
                self.shape = Shape::Flat(n);
            }
        } else if dims.len() >= 3 && non1.len() > 1 && dims[dims.len() - 1] != n {
            return Err(self.node_err(format!(
                "reshapes a vector into the image {dims:?}; a dense layer feeding a convolution is not supported"
            )));
        }
        self.dims = dims;
        Ok(())
    }

    /// `AveragePool`: square kernel, one stride, no padding, `ceil_mode` 0, a window area
    /// that is a power of two (see `network::Layer::AvgPool2d`).
    fn average_pool(&mut self, node: &pb::NodeProto) -> Result<()> {
        let ints = |name: &str| attr(node, name).map(|a| a.ints.clone()).unwrap_or_default();
        let k = ints("kernel_shape");
        let strides = ints("strides");
        let pads = ints("pads");
        let (kernel, stride) = match (k.as_slice(), strides.as_slice()) {
            ([a, b], [s, t]) if a == b && s == t && *a > 0 && *s > 0 => (*a as usize, *s as usize),
            ([a, b], []) if a == b && *a > 0 => (*a as usize, 1),
            _ => {
                return Err(self.node_err(format!(
                    "kernel_shape {k:?} and strides {strides:?}: one square 2-D kernel and one stride are supported"
                )))
            }
        };
        if pads.iter().any(|&p| p != 0)
            || self.int_attr(node, "ceil_mode", 0) != 0
            || attr(node, "auto_pad").is_some_and(|a| !a.s.is_empty() && a.s != b"NOTSET")
        {
            return Err(self.node_err("padding, auto_pad and ceil_mode are not supported"));
        }
        if !self.pre.is_identity() {
            return Err(self.node_err(format!(
                "an elementwise map ({}) before a pooling cannot be folded",
                self.pre.nodes.join(", ")
            )));
        }
        self.finish_pending();
        let Shape::Image { c, h, w } = self.shape else {
            return Err(self.node_err(format!("pools {:?}, not an image", self.dims)));
        };
        let od = |d: usize| network::ConvGeometry::out_dim(d, kernel, stride, 0);
        let (Some(oh), Some(ow)) = (od(h), od(w)) else {
            return Err(self.node_err(format!(
                "a {kernel}x{kernel} window does not fit {:?}",
                self.dims
            )));
        };
        self.emit(Layer::AvgPool2d { kernel, stride });
        self.shape = Shape::Image { c, h: oh, w: ow };
        self.dims = vec![1, c, oh, ow];
        self.pre = Elementwise::identity(c * oh * ow);
        self.set_output(node)
    }

    /// Whether a reshape here relabels the model's input: nothing emitted or pending yet
    /// on the path, which reads the graph input, and no other node reads that input (it
    /// would see the input with its declared dims).
    fn relabels_input(&self) -> bool {
        self.nodes.is_empty()
            && self.pending.is_none()
            && self.source == Source::Input
            && self.input_readers <= 1
    }

    /// Whether the image (the current data) would become an image of other dims.
    fn becomes_another_image(&self, dims: &[usize]) -> bool {
        let r = dims.len();
        match self.shape {
            Shape::Image { c, h, w } => {
                image_dims(&self.dims) && image_dims(dims) && dims[r - 3..] != [c, h, w]
            }
            Shape::Flat(_) => false,
        }
    }

    /// A `Transpose` of an image (a tensor whose axes before the last three have size 1:
    /// `[1, c, h, w]`, NHWC `[1, h, w, c]`) into another image, as a [`Layer::Transpose`]
    /// of the last three axes: one that moves data, or one that only moves axes of size 1
    /// where the image cannot be relabelled. An elementwise map waiting for the
    /// next affine map is permuted with the data (exact: it only moves its numbers).
    fn transpose_image(&mut self, node: &pb::NodeProto, perm: &[usize]) -> Result<()> {
        let r = self.dims.len();
        let out: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let image = match self.shape {
            Shape::Image { c, h, w } => image_dims(&self.dims) && self.dims[r - 3..] == [c, h, w],
            Shape::Flat(_) => false,
        };
        if !image || !image_dims(&out) {
            return Err(self.node_err(format!(
                "perm {perm:?} of dimensions {:?} moves data; a transpose that moves data is supported from an image into an image (axes before the last three of size 1, e.g. NHWC [1, h, w, c] into NCHW with perm [0, 3, 1, 2])",
                self.dims
            )));
        }
        // Output axis j of the image reads input image axis perm[r - 3 + j] - (r - 3);
        // an axis of size 1 brought in from the front takes an unused axis of size 1.
        let mut p3: [Option<usize>; 3] = [None; 3];
        for (j, slot) in p3.iter_mut().enumerate() {
            let q = perm[r - 3 + j];
            if q >= r - 3 {
                *slot = Some(q - (r - 3));
            }
        }
        let mut unused = (0..3).filter(|a| !p3.contains(&Some(*a)));
        let p3 = p3.map(|a| a.or_else(|| unused.next()).expect("three axes"));
        let dims = [self.dims[r - 3], self.dims[r - 2], self.dims[r - 1]];
        let op = network::LinearOp::transpose(dims, p3).expect("a permutation of [0, 1, 2]");
        self.finish_pending();
        if !self.pre.is_identity() {
            let n = self.pre.scale.len();
            let (mut scale, mut shift) = (vec![0.0; n], vec![0.0; n]);
            op.apply(&self.pre.scale, 1, &mut scale);
            op.apply(&self.pre.shift, 1, &mut shift);
            (self.pre.scale, self.pre.shift) = (scale, shift);
        }
        self.emit(Layer::Transpose { perm: p3 });
        let od = p3.map(|a| dims[a]);
        self.shape = Shape::Image {
            c: od[0],
            h: od[1],
            w: od[2],
        };
        self.dims = out;
        self.set_output(node)
    }

    /// Emits the pending affine map (and a Flatten that followed it).
    fn finish_pending(&mut self) {
        match self.pending.take() {
            None => {}
            Some(Pending::Dense {
                weight,
                bias,
                out_features,
                in_features,
            }) => self.emit(Layer::Dense {
                weight,
                bias,
                out_features,
                in_features,
            }),
            Some(Pending::Conv {
                weight,
                bias,
                out_channels,
                in_channels,
                kernel,
                stride,
                padding,
                ..
            }) => self.emit(Layer::Conv2d {
                weight,
                bias,
                out_channels,
                in_channels,
                kernel_h: kernel.0,
                kernel_w: kernel.1,
                stride,
                padding,
            }),
        }
        if self.flatten_after_pending {
            self.emit(Layer::Flatten);
            self.flatten_after_pending = false;
        }
    }

    fn relu(&mut self, node: &pb::NodeProto) -> Result<()> {
        if self.pending.is_none() {
            if !self.pre.is_identity() {
                return Err(self.node_err(format!(
                    "a ReLU after an elementwise map ({}) with no affine map before it cannot be represented",
                    self.pre.nodes.join(", ")
                )));
            }
            // relu(relu(x)) = relu(x): nothing to add.
            if self.last == Some("relu") {
                return self.set_output(node);
            }
        }
        self.finish_pending();
        self.emit(Layer::Relu);
        self.pre = Elementwise::identity(self.shape.numel());
        self.set_output(node)
    }

    /// Starts a new affine map on the current data. One that is pending is emitted as a
    /// node of its own (affine after affine: the graph model keeps the inner value as
    /// linear units; composing the two maps would round).
    fn start_affine(&mut self, _what: &str) -> Result<()> {
        self.finish_pending();
        Ok(())
    }

    /// A dense map `W` (`[out][in]` row-major) on the current data, with the pending
    /// elementwise map folded in exactly.
    fn push_dense(&mut self, mut weight: Vec<f64>, out: usize, inp: usize) -> Result<()> {
        if inp != self.shape.numel() {
            return Err(self.node_err(format!(
                "a weight of {inp} inputs applied to {} values",
                self.shape.numel()
            )));
        }
        let mut bias = vec![0.0; out];
        if !self.pre.is_identity() {
            for o in 0..out {
                let row = &mut weight[o * inp..(o + 1) * inp];
                bias[o] =
                    exact_dot_plus(0.0, row.iter().copied().zip(self.pre.shift.iter().copied()))
                        .ok_or_else(|| self.fold_err())?;
                for (w, &s) in row.iter_mut().zip(&self.pre.scale) {
                    *w = exact_mul(*w, s).ok_or_else(|| self.fold_err())?;
                }
            }
            let nodes = std::mem::take(&mut self.pre.nodes);
            self.folded.extend(nodes);
            self.pre = Elementwise::identity(inp);
        }
        if let Shape::Image { .. } = self.shape {
            self.emit(Layer::Flatten);
            self.shape = Shape::Flat(inp);
        }
        self.pending = Some(Pending::Dense {
            weight,
            bias,
            out_features: out,
            in_features: inp,
        });
        self.shape = Shape::Flat(out);
        self.pre = Elementwise::identity(out);
        Ok(())
    }

    fn fold_err(&self) -> OnnxError {
        self.node_err(format!(
            "folding the elementwise map of {} into this layer's weights would round (the folded value is not an f64); export the model with the normalisation folded, or leave it to the input set",
            self.pre.nodes.join(", ")
        ))
    }

    fn matmul(&mut self, node: &pb::NodeProto, ops: &[Option<Operand>]) -> Result<()> {
        self.start_affine("MatMul")?;
        let n_in = self.dims.last().copied().unwrap_or(0);
        match ops {
            [Some(Operand::Data), Some(Operand::Const(b))] => {
                // x [.., K] @ B [K, N] -> [.., N]: W[o][i] = B[i][o].
                if b.dims.len() != 2 || b.dims[0] != n_in {
                    return Err(self.node_err(format!(
                        "data {:?} @ constant {:?}: the constant must be [K, N] with K = {n_in}",
                        self.dims, b.dims
                    )));
                }
                if self.dims[..self.dims.len() - 1].iter().any(|&d| d != 1) {
                    return Err(self.node_err(format!(
                        "data {:?}: only a batch of one example (leading dims 1) is supported",
                        self.dims
                    )));
                }
                let (k, n) = (b.dims[0], b.dims[1]);
                let mut w = vec![0.0; n * k];
                for i in 0..k {
                    for o in 0..n {
                        w[o * k + i] = b.data[i * n + o];
                    }
                }
                self.push_dense(w, n, k)?;
                let mut dims = self.dims.clone();
                *dims.last_mut().expect("rank >= 1") = n;
                self.dims = dims;
            }
            [Some(Operand::Const(a)), Some(Operand::Data)] => {
                // A [M, K] @ x [K] or [K, 1].
                let k = self.dims[0];
                let ok_shape = matches!(self.dims.as_slice(), [_] | [_, 1]);
                if !ok_shape || a.dims.len() != 2 || a.dims[1] != k {
                    return Err(self.node_err(format!(
                        "constant {:?} @ data {:?}: supported is A [M, K] @ x [K] or [K, 1]",
                        a.dims, self.dims
                    )));
                }
                let m = a.dims[0];
                self.push_dense(a.data.clone(), m, k)?;
                self.dims[0] = m;
            }
            _ => return Err(self.node_err("MatMul needs the data and one constant")),
        }
        self.set_output(node)
    }

    fn gemm(&mut self, node: &pb::NodeProto, ops: &[Option<Operand>]) -> Result<()> {
        self.start_affine("Gemm")?;
        let alpha = attr(node, "alpha").map(|a| a.f as f64).unwrap_or(1.0);
        let beta = attr(node, "beta").map(|a| a.f as f64).unwrap_or(1.0);
        let trans_a = self.int_attr(node, "transA", 0) != 0;
        let trans_b = self.int_attr(node, "transB", 0) != 0;
        let (b, c) = match ops {
            [Some(Operand::Data), Some(Operand::Const(b))] => (b.clone(), None),
            [Some(Operand::Data), Some(Operand::Const(b)), None] => (b.clone(), None),
            [Some(Operand::Data), Some(Operand::Const(b)), Some(Operand::Const(c))] => {
                (b.clone(), Some(c.clone()))
            }
            _ => {
                return Err(
                    self.node_err("Gemm is supported with the data as A and constants B (and C)")
                )
            }
        };
        let k = match (self.dims.as_slice(), trans_a) {
            ([1, k], false) | ([k, 1], true) => *k,
            (d, _) => {
                return Err(self.node_err(format!(
                    "data A has dims {d:?} (transA = {}); one example [1, K] (or [K, 1] transposed) is supported",
                    trans_a as u8
                )))
            }
        };
        if b.dims.len() != 2 {
            return Err(self.node_err(format!("B has dims {:?}; a matrix is needed", b.dims)));
        }
        let (bk, n) = if trans_b {
            (b.dims[1], b.dims[0])
        } else {
            (b.dims[0], b.dims[1])
        };
        if bk != k {
            return Err(self.node_err(format!(
                "A has K = {k} columns but B (dims {:?}, transB = {}) has {bk} rows",
                b.dims, trans_b as u8
            )));
        }
        let mut w = vec![0.0; n * k];
        for o in 0..n {
            for i in 0..k {
                let v = if trans_b {
                    b.data[o * k + i]
                } else {
                    b.data[i * n + o]
                };
                w[o * k + i] = if alpha == 1.0 {
                    v
                } else {
                    exact_mul(alpha, v).ok_or_else(|| {
                        self.node_err(format!(
                            "alpha = {alpha} times B rounds; fold alpha before export"
                        ))
                    })?
                };
            }
        }
        self.push_dense(w, n, k)?;
        self.dims = vec![1, n];
        if let Some(c) = c {
            let cv = self.broadcast(&c, n, "C")?;
            let scaled: Vec<f64> = cv
                .iter()
                .map(|&v| exact_mul(beta, v))
                .collect::<Option<_>>()
                .ok_or_else(|| self.node_err(format!("beta = {beta} times C rounds")))?;
            self.add_to_bias(&scaled)?;
        }
        self.set_output(node)
    }

    /// A constant broadcast to the `n` values of the data (scalar or `n` values).
    fn broadcast(&self, c: &Tensor, n: usize, what: &str) -> Result<Vec<f64>> {
        // NumPy's rule, one way (the constant to the data; the data never grows): the
        // axes align from the right, each of the constant's is the data's or 1, and the
        // constant's extra leading axes are 1. Scalars, full tensors, per channel
        // ([C, 1, 1] or [1, C, 1, 1] on NCHW) and per last axis ([C] on NHWC) alike.
        let err = || {
            self.node_err(format!(
                "{what} of dims {:?} does not broadcast to the data's dims {:?} (NumPy's rule: \
                 aligned from the right, each axis equal or 1)",
                c.dims, self.dims
            ))
        };
        let extra = c.dims.len().saturating_sub(self.dims.len());
        if c.dims[..extra].iter().any(|&d| d != 1) {
            return Err(err());
        }
        let cd = &c.dims[extra..];
        let off = self.dims.len() - cd.len();
        if cd
            .iter()
            .zip(&self.dims[off..])
            .any(|(&k, &d)| k != 1 && k != d)
            || c.data.len() != cd.iter().product::<usize>()
            || n != self.dims.iter().product::<usize>()
        {
            return Err(err());
        }
        // The constant's stride along each data axis (0 where it broadcasts).
        let mut stride = vec![0usize; self.dims.len()];
        let mut s = 1;
        for (i, &k) in cd.iter().enumerate().rev() {
            if k != 1 {
                stride[off + i] = s;
            }
            s *= k;
        }
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; self.dims.len()];
        for _ in 0..n {
            out.push(c.data[idx.iter().zip(&stride).map(|(a, b)| a * b).sum::<usize>()]);
            for ax in (0..idx.len()).rev() {
                idx[ax] += 1;
                if idx[ax] < self.dims[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        Ok(out)
    }

    /// Adds `v` (one value per output unit) to the pending map's bias, exactly.
    fn add_to_bias(&mut self, v: &[f64]) -> Result<()> {
        let err = self.node_err("adding this constant to the bias rounds");
        match self.pending.as_mut() {
            Some(Pending::Dense { bias, .. }) => {
                for (b, &x) in bias.iter_mut().zip(v) {
                    *b = exact_add(*b, x).ok_or_else(|| err.clone_msg())?;
                }
            }
            Some(Pending::Conv {
                bias,
                out_hw: (h, w),
                ..
            }) => {
                let hw = *h * *w;
                for (ch, b) in bias.iter_mut().enumerate() {
                    let vals = &v[ch * hw..(ch + 1) * hw];
                    if vals.iter().any(|&x| x != vals[0]) {
                        return Err(err.with_msg(
                            "adds a constant that varies within a channel to a convolution's output; only per-channel biases are supported",
                        ));
                    }
                    *b = exact_add(*b, vals[0]).ok_or_else(|| err.clone_msg())?;
                }
            }
            None => unreachable!("add_to_bias is called with a pending map"),
        }
        Ok(())
    }

    fn elementwise(&mut self, node: &pb::NodeProto, ops: &[Option<Operand>]) -> Result<()> {
        let op = node.op_type.as_str();
        let (c, data_first) = match ops {
            [Some(Operand::Data), Some(Operand::Const(c))] => (c, true),
            [Some(Operand::Const(c)), Some(Operand::Data)] => (c, false),
            _ => return Err(self.node_err(format!("{op} needs the data and one constant"))),
        };
        let n = self.shape.numel();
        if c.data.len() > n {
            return Err(self.node_err(format!(
                "the constant {:?} is larger than the data {:?}: broadcasting that grows the data is not supported",
                c.dims, self.dims
            )));
        }
        let v = self.broadcast(c, n, "the constant")?;
        let label = format!("node {} ({:?}, {op})", self.at.0, self.at.1);
        // As y = s * x + t with s, t per element (x the data).
        let (s, t): (Vec<f64>, Vec<f64>) = match (op, data_first) {
            ("Add", _) => (vec![1.0; n], v.clone()),
            ("Sub", true) => (vec![1.0; n], v.iter().map(|x| -x).collect()),
            ("Sub", false) => (vec![-1.0; n], v.clone()),
            ("Mul", _) => (v.clone(), vec![0.0; n]),
            ("Div", true) => {
                let inv: Option<Vec<f64>> = v.iter().map(|&d| exact_div(1.0, d)).collect();
                match inv {
                    Some(inv) => (inv, vec![0.0; n]),
                    None => {
                        // Divide the pending map exactly, or refuse.
                        return self.divide(node, &v, &label);
                    }
                }
            }
            _ => {
                return Err(
                    self.node_err("a constant divided by the data is not affine; not supported")
                )
            }
        };
        if self.pending.is_some() {
            self.scale_pending(&s)?;
            if t.iter().any(|&x| x != 0.0) {
                self.add_to_bias(&t)?;
            }
            self.folded.push(label);
        } else {
            // Compose with the waiting elementwise map: s * (s0 x + t0) + t.
            for i in 0..n {
                let s0 = self.pre.scale[i];
                let t0 = self.pre.shift[i];
                let ns = exact_mul(s[i], s0);
                let nt = exact_mul(s[i], t0).and_then(|p| exact_add(p, t[i]));
                match (ns, nt) {
                    (Some(a), Some(b)) => {
                        self.pre.scale[i] = a;
                        self.pre.shift[i] = b;
                    }
                    _ => {
                        return Err(self.node_err(
                            "composing this elementwise map with the one before it rounds",
                        ))
                    }
                }
            }
            self.pre.nodes.push(label);
        }
        self.set_output(node)
    }

    /// `BatchNormalization` (inference): `y = scale * (x - mean) / sqrt(var + eps) + B`
    /// per channel (axis 1), folded into the pending affine map: exactly when every
    /// folded number is a double, else with rounding under `round_batchnorm`.
    fn batchnorm(&mut self, node: &pb::NodeProto, ops: &[Option<Operand>]) -> Result<()> {
        let consts: Vec<&Tensor> = match ops {
            [Some(Operand::Data), Some(Operand::Const(a)), Some(Operand::Const(b)), Some(Operand::Const(c)), Some(Operand::Const(d))] =>
            {
                vec![a, b, c, d]
            }
            _ => {
                return Err(self.node_err("needs the data and four constants (scale, B, mean, var)"))
            }
        };
        if self.int_attr(node, "training_mode", 0) != 0 {
            return Err(self.node_err("training_mode = 1 is not an inference network"));
        }
        let eps = attr(node, "epsilon").map_or(1e-5f32, |a| a.f) as f64;
        let channels = match self.shape {
            Shape::Image { c, .. } => c,
            Shape::Flat(n) => n,
        };
        if let Some(t) = consts.iter().find(|t| t.data.len() != channels) {
            return Err(self.node_err(format!(
                "a parameter of dims {:?} for {channels} channels of the data {:?}",
                t.dims, self.dims
            )));
        }
        if self.pending.is_none() || !self.pre.is_identity() {
            return Err(self.node_err(
                "BatchNormalization is folded only directly after a Conv, Gemm or MatMul; fold it into the neighbouring layer before export",
            ));
        }
        if let Some(c) = (0..channels).find(|&c| {
            let v = consts[3].data[c] + eps;
            !(v > 0.0 && v.is_finite()) || consts.iter().any(|t| !t.data[c].is_finite())
        }) {
            return Err(self.node_err(format!(
                "channel {c}: var + epsilon must be positive and every parameter finite (scale {}, B {}, mean {}, var {}, epsilon {eps})",
                consts[0].data[c], consts[1].data[c], consts[2].data[c], consts[3].data[c]
            )));
        }
        let (scale, bias, mean, var) = (
            &consts[0].data,
            &consts[1].data,
            &consts[2].data,
            &consts[3].data,
        );
        // Per channel: s = scale / sqrt(var + eps), t = B - mean * s, exactly if possible.
        let exact: Option<(Vec<f64>, Vec<f64>)> = (0..channels)
            .map(|c| {
                let v = exact_add(var[c], eps)?;
                let r = v.sqrt();
                if r.mul_add(r, -v) != 0.0 {
                    return None;
                }
                let sc = exact_div(scale[c], r)?;
                let t = exact_mul(mean[c], sc).and_then(|m| exact_add(bias[c], -m))?;
                Some((sc, t))
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().unzip());
        let label = format!("node {} ({:?}, BatchNormalization)", self.at.0, self.at.1);
        let units = self.shape.numel();
        let per_unit =
            |v: &[f64]| -> Vec<f64> { (0..units).map(|i| v[i * channels / units]).collect() };
        if let Some((sc, t)) = exact {
            // Exact weights and bias; on failure the map is restored (a fold stops midway).
            let before = self.pending.clone();
            if self.scale_pending(&per_unit(&sc)).is_ok() && self.add_to_bias(&per_unit(&t)).is_ok()
            {
                self.folded.push(label);
                return self.set_output(node);
            }
            self.pending = before;
            if !self.opts.round_batchnorm {
                return Err(self.node_err(
                    "folding BatchNormalization into the layer's weights rounds; fold it before export, or import with round_batchnorm (CLI: --round-batchnorm) to fold with rounding",
                ));
            }
        }
        if !self.opts.round_batchnorm {
            return Err(self.node_err(
                "BatchNormalization's scale / sqrt(var + eps) is not a double, so folding it rounds and the folded network would differ from the file's; fold it before export, or import with round_batchnorm (CLI: --round-batchnorm) to fold with rounding (every result then holds for the rounded network)",
            ));
        }
        // Rounded fold, in f64: w' = w * s, b' = (b - mean) * s + B per output channel.
        let sc: Vec<f64> = (0..channels)
            .map(|c| scale[c] / (var[c] + eps).sqrt())
            .collect();
        let (weight, b, per, n_groups) = match self.pending.as_mut() {
            Some(Pending::Dense {
                weight,
                bias,
                in_features,
                ..
            }) => (weight, bias, *in_features, channels),
            Some(Pending::Conv {
                weight,
                bias,
                in_channels,
                kernel,
                ..
            }) => (weight, bias, *in_channels * kernel.0 * kernel.1, channels),
            None => unreachable!("checked above"),
        };
        for g in 0..n_groups {
            for w in &mut weight[g * per..(g + 1) * per] {
                *w *= sc[g];
            }
            b[g] = (b[g] - mean[g]) * sc[g] + bias[g];
        }
        if weight.iter().chain(b.iter()).any(|v| !v.is_finite()) {
            return Err(self.node_err("folding BatchNormalization overflows"));
        }
        self.rounded.push(label);
        self.set_output(node)
    }

    /// Divides the pending affine map by `v` (per output unit), exactly or not at all.
    fn divide(&mut self, node: &pb::NodeProto, v: &[f64], label: &str) -> Result<()> {
        if self.pending.is_none() {
            return Err(self.node_err(
                "dividing the input by this constant rounds (its reciprocal is not a double); fold the normalisation before export",
            ));
        }
        self.fold_per_unit(
            v,
            exact_div,
            "dividing the layer's weights by this constant rounds; fold the division before export",
        )?;
        self.folded.push(label.to_string());
        self.set_output(node)
    }

    /// Multiplies the pending map's output unit `o` by `s[o]`, exactly.
    fn scale_pending(&mut self, s: &[f64]) -> Result<()> {
        if s.iter().all(|&x| x == 1.0) {
            return Ok(());
        }
        self.fold_per_unit(
            s,
            exact_mul,
            "multiplying the layer's weights by this constant rounds",
        )
    }

    /// Applies `op(., v[o])` to the weights and bias of output unit `o` of the pending
    /// map (a convolution needs one value per channel), exactly or not at all.
    fn fold_per_unit(
        &mut self,
        v: &[f64],
        op: fn(f64, f64) -> Option<f64>,
        rounds: &str,
    ) -> Result<()> {
        let err = self.node_err(rounds);
        // (rows of weights per unit group, value per group)
        let (weight, bias, per, values): (&mut Vec<f64>, &mut Vec<f64>, usize, Vec<f64>) =
            match self.pending.as_mut() {
                Some(Pending::Dense {
                    weight,
                    bias,
                    in_features,
                    ..
                }) => (weight, bias, *in_features, v.to_vec()),
                Some(Pending::Conv {
                    weight,
                    bias,
                    in_channels,
                    kernel,
                    out_hw: (h, w),
                    ..
                }) => {
                    let hw = *h * *w;
                    let mut values = Vec::with_capacity(bias.len());
                    for ch in 0..bias.len() {
                        let vals = &v[ch * hw..(ch + 1) * hw];
                        if vals.iter().any(|&x| x != vals[0]) {
                            return Err(err.with_msg(
                                "scales a convolution's output by a constant that varies within a channel; only per-channel constants fold into it",
                            ));
                        }
                        values.push(vals[0]);
                    }
                    (weight, bias, *in_channels * kernel.0 * kernel.1, values)
                }
                None => unreachable!("fold_per_unit is called with a pending map"),
            };
        for ((b, ws), &x) in bias.iter_mut().zip(weight.chunks_mut(per)).zip(&values) {
            *b = op(*b, x).ok_or_else(|| err.clone_msg())?;
            for w in ws {
                *w = op(*w, x).ok_or_else(|| err.clone_msg())?;
            }
        }
        Ok(())
    }

    fn conv(&mut self, node: &pb::NodeProto, ops: &[Option<Operand>]) -> Result<()> {
        self.start_affine("Conv")?;
        let (w, b) = match ops {
            [Some(Operand::Data), Some(Operand::Const(w))] => (w.clone(), None),
            [Some(Operand::Data), Some(Operand::Const(w)), Some(Operand::Const(b))] => {
                (w.clone(), Some(b.clone()))
            }
            _ => {
                return Err(self
                    .node_err("Conv needs the data X, a constant W and optionally a constant B"))
            }
        };
        let (c, h, wd) = match self.shape {
            Shape::Image { c, h, w } => (c, h, w),
            Shape::Flat(_) => {
                return Err(self.node_err(format!(
                    "Conv on data of dims {:?}; an image [1, C, H, W] is needed",
                    self.dims
                )))
            }
        };
        if self.int_attr(node, "group", 1) != 1 {
            return Err(
                self.node_err("group != 1 (grouped or depthwise convolution) is not supported")
            );
        }
        if w.dims.len() != 4 || w.dims[1] != c {
            return Err(self.node_err(format!(
                "W has dims {:?}; [M, C = {c}, kH, kW] is needed",
                w.dims
            )));
        }
        if let Some(a) = attr(node, "auto_pad") {
            let s = String::from_utf8_lossy(&a.s);
            if s != "NOTSET" {
                return Err(self.node_err(format!(
                    "auto_pad {s} is not supported; give pads explicitly"
                )));
            }
        }
        if self.int_attr(node, "group", 1) != 1 {
            return Err(
                self.node_err("group != 1 (grouped or depthwise convolution) is not supported")
            );
        }
        if let Some(a) = attr(node, "dilations") {
            if a.ints.iter().any(|&d| d != 1) {
                return Err(
                    self.node_err(format!("dilations {:?} are not supported (1 only)", a.ints))
                );
            }
        }
        if let Some(a) = attr(node, "kernel_shape") {
            if a.ints.iter().map(|&k| k as usize).collect::<Vec<_>>() != w.dims[2..] {
                return Err(self.node_err(format!(
                    "kernel_shape {:?} differs from W's dims {:?}",
                    a.ints, w.dims
                )));
            }
        }
        let strides: Vec<i64> = attr(node, "strides")
            .map(|a| a.ints.clone())
            .unwrap_or(vec![1, 1]);
        let pads: Vec<i64> = attr(node, "pads")
            .map(|a| a.ints.clone())
            .unwrap_or(vec![0, 0, 0, 0]);
        if strides.len() != 2 || strides[0] != strides[1] || strides[0] < 1 {
            return Err(self.node_err(format!(
                "strides {strides:?}: one positive stride for both axes is supported"
            )));
        }
        if pads.len() != 4 || pads.iter().any(|&p| p != pads[0]) || pads[0] < 0 {
            return Err(self.node_err(format!(
                "pads {pads:?}: the same pad on every side is supported"
            )));
        }
        let (m, kh, kw) = (w.dims[0], w.dims[2], w.dims[3]);
        let (stride, padding) = (strides[0] as usize, pads[0] as usize);
        let oh = network::ConvGeometry::out_dim(h, kh, stride, padding);
        let ow = network::ConvGeometry::out_dim(wd, kw, stride, padding);
        let (oh, ow) = match (oh, ow) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(self.node_err(format!(
                    "a {kh}x{kw} kernel does not fit the {h}x{wd} input with pad {padding}"
                )))
            }
        };
        let mut weight = w.data.clone();
        let mut bias = match &b {
            Some(b) if b.data.len() == m => b.data.clone(),
            Some(b) => {
                return Err(self.node_err(format!(
                    "B has {} values for {m} output channels",
                    b.data.len()
                )))
            }
            None => vec![0.0; m],
        };
        if !self.pre.is_identity() {
            // Fold x -> s x + t: s must be one value per input channel; t needs no
            // padding (a padded zero would become t after the map).
            let hw = h * wd;
            let mut s_ch = Vec::with_capacity(c);
            let mut t_ch = Vec::with_capacity(c);
            for ch in 0..c {
                let s = &self.pre.scale[ch * hw..(ch + 1) * hw];
                let t = &self.pre.shift[ch * hw..(ch + 1) * hw];
                if s.iter().any(|&x| x != s[0]) || t.iter().any(|&x| x != t[0]) {
                    return Err(self.node_err(format!(
                        "the elementwise map of {} differs between pixels of input channel {ch}; only one scale and one shift per channel fold into a convolution (its weights are shared by every pixel)",
                        self.pre.nodes.join(", ")
                    )));
                }
                s_ch.push(s[0]);
                t_ch.push(t[0]);
            }
            if padding > 0 && t_ch.iter().any(|&t| t != 0.0) {
                return Err(self.node_err(format!(
                    "a shift of the input ({}) cannot be folded into a padded convolution (the padding would be shifted too)",
                    self.pre.nodes.join(", ")
                )));
            }
            let per = kh * kw;
            for (o, bo) in bias.iter_mut().enumerate() {
                // Output channel o's weights, input channel by input channel.
                let rows = &w.data[o * c * per..(o + 1) * c * per];
                let terms = rows
                    .chunks(per)
                    .zip(&t_ch)
                    .flat_map(|(k, &t)| k.iter().map(move |&wv| (wv, t)));
                *bo = exact_dot_plus(*bo, terms).ok_or_else(|| self.fold_err())?;
                let out = &mut weight[o * c * per..(o + 1) * c * per];
                for (k, &s) in out.chunks_mut(per).zip(&s_ch) {
                    for wv in k {
                        *wv = exact_mul(*wv, s).ok_or_else(|| self.fold_err())?;
                    }
                }
            }
            let nodes = std::mem::take(&mut self.pre.nodes);
            self.folded.extend(nodes);
        }
        self.pending = Some(Pending::Conv {
            weight,
            bias,
            out_channels: m,
            in_channels: c,
            kernel: (kh, kw),
            stride,
            padding,
            out_hw: (oh, ow),
        });
        self.shape = Shape::Image { c: m, h: oh, w: ow };
        self.pre = Elementwise::identity(self.shape.numel());
        self.dims = vec![1, m, oh, ow];
        self.set_output(node)
    }
}

/// A node input: the data tensor or a constant.
#[derive(Debug, Clone)]
enum Operand {
    Data,
    Const(Tensor),
}

trait ErrExt {
    fn clone_msg(&self) -> OnnxError;
    fn with_msg(&self, msg: &str) -> OnnxError;
}

impl ErrExt for OnnxError {
    fn clone_msg(&self) -> OnnxError {
        match self {
            OnnxError::Node {
                file,
                index,
                name,
                op,
                msg,
            } => OnnxError::Node {
                file: file.clone(),
                index: *index,
                name: name.clone(),
                op: op.clone(),
                msg: msg.clone(),
            },
            other => OnnxError::Graph {
                file: String::new(),
                msg: other.to_string(),
            },
        }
    }
    fn with_msg(&self, msg: &str) -> OnnxError {
        let mut e = self.clone_msg();
        if let OnnxError::Node { msg: m, .. } = &mut e {
            *m = msg.to_string();
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_helpers_refuse_rounding() {
        assert_eq!(exact_mul(3.0, 0.5), Some(1.5));
        assert_eq!(exact_mul(0.1, 3.0), None);
        assert_eq!(exact_mul(1e300, 1e300), None);
        assert_eq!(exact_mul(0.0, 5.0), Some(0.0));
        assert_eq!(exact_mul(1e-200, 1e-200), None);
        assert_eq!(exact_add(1.0, 2.0), Some(3.0));
        assert_eq!(exact_add(1.0, 1e-17), None);
        assert_eq!(exact_add(f64::MAX, f64::MAX), None);
        assert_eq!(exact_div(1.0, 4.0), Some(0.25));
        assert_eq!(exact_div(1.0, 3.0), None);
        assert_eq!(exact_div(1.0, 0.0), None);
        assert_eq!(
            exact_dot_plus(1.0, [(2.0, 3.0), (0.5, 0.5)].into_iter()),
            Some(7.25)
        );
        assert_eq!(exact_dot_plus(1.0, [(1e-17, 1.0)].into_iter()), None);
    }
}
