//! Graph models and their lowering into the layered normal form every bound method reads.
//!
//! A graph model (JSON version 2, ONNX) is a list of nodes in topological order, each
//! reading the graph input or earlier nodes: dense, conv2d, avgpool2d, transpose, flatten, relu and add (a
//! residual connection), with affine maps allowed to follow each other with no ReLU
//! between (input normalisation, a folded batch norm). The bound methods of the paper
//! and of the field (IBP, Wong-Kolter / Fast-Lin, CROWN / DeepPoly, alpha-CROWN, LP (19))
//! are written for a chain `zhat_{t+1} = W_t z_t + b_t`, `z_t = act(zhat_t)`; the graph
//! is lowered to exactly such a chain whose hidden layers hold two kinds of unit:
//!
//! - **ReLU units**, `z = max(zhat, 0)` (the outputs of relu nodes);
//! - **linear units**, `z = zhat`: a value that an affine map reads without a ReLU
//!   between (the inner value of affine-after-affine), or a value carried unchanged
//!   across layers to the node that reads it later (a skip connection), as convex_adversarial's
//!   `DualDense` reads earlier layers and auto_LiRPA's `BoundAdd` sums its inputs.
//!
//! Units `0..relu_units` of each hidden layer are the ReLUs, the rest linear. Each layer
//! is a concatenation of *slots* (one value each, channel-major); each affine map is a
//! [`LinearOp::Block`] of terms `op(slot)` added into the output slots (or a plain dense,
//! conv or identity map when the layer is one slot). The lowering never multiplies or adds
//! two weights or biases that the file holds separately unless the floating-point result
//! is exact (an `add` of two biases is folded only when every sum is exact), so the normal
//! form computes, in exact arithmetic, the very function the graph describes: bounds of
//! the normal form are bounds of the graph. A linear unit is never relaxed: every method
//! treats it as an always-active unit, so a skip or an affine-after-affine costs no
//! tightness (the dual variable passes through it unchanged, as in the dual of
//! convex_adversarial's residual layers).
//!
//! Invariant of every block (relied on by the exact-copy arguments of Algorithm 1 and by
//! the LP rows): for any input unit and output unit at most one term covers both. The
//! lowering keeps it by giving every (source slot, output slot) pair at most one term: an
//! `add` whose two branches read the same slot keeps one branch as a slot of its own.

use std::collections::HashMap;

use crate::error::{NetworkError, Result};
use crate::model::{check_finite, Affine, Layer, Node, Source};
use crate::ops::{BlockTerm, ConvGeometry, LinearOp};
use crate::shape::Shape;

/// The normal form of a graph: the affine maps and the ReLU units of each hidden layer.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub affine: Vec<Affine>,
    pub relu_units: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Input,
    Relu,
    Linear,
}

/// A sum of operators applied to slots, plus a bias: the pre-activation of a slot, or a
/// value on its way to one.
#[derive(Debug, Clone)]
struct Expr {
    terms: Vec<(LinearOp, usize)>,
    bias: Vec<f64>,
    shape: Shape,
    node: usize,
}

#[derive(Debug)]
struct Slot {
    kind: Kind,
    /// `None` for the input.
    expr: Option<Expr>,
    shape: Shape,
    level: usize,
    node: usize,
}

/// A node's output: a slot (seen with a shape: flatten only relabels), or an expression
/// not yet placed in a layer.
#[derive(Debug, Clone)]
enum Val {
    Slot(usize, Shape),
    Expr(Expr),
}

struct Lowering {
    slots: Vec<Slot>,
    /// Materialised node values: node index -> linear slot.
    materialised: HashMap<usize, usize>,
}

fn structure(node: usize, msg: impl Into<String>) -> NetworkError {
    NetworkError::Structure {
        layer: node,
        msg: msg.into(),
    }
}

impl Lowering {
    fn level_of(&self, e: &Expr) -> usize {
        1 + e
            .terms
            .iter()
            .map(|(_, s)| self.slots[*s].level)
            .max()
            .unwrap_or(0)
    }

    fn new_slot(&mut self, kind: Kind, e: Expr) -> usize {
        let level = self.level_of(&e);
        self.slots.push(Slot {
            kind,
            shape: e.shape,
            node: e.node,
            level,
            expr: Some(e),
        });
        self.slots.len() - 1
    }

    /// The identity expression reading a slot.
    fn identity(&self, s: usize, shape: Shape, node: usize) -> Expr {
        let n = self.slots[s].shape.numel();
        Expr {
            terms: vec![(LinearOp::Identity { n }, s)],
            bias: vec![0.0; n],
            shape,
            node,
        }
    }

    /// The value as a slot: an expression becomes a linear slot (once per node value).
    fn as_slot(&mut self, v: &Val, value: usize) -> (usize, Shape) {
        match v {
            Val::Slot(s, sh) => (*s, *sh),
            Val::Expr(e) => {
                if let Some(&s) = self.materialised.get(&value) {
                    return (s, e.shape);
                }
                let s = self.new_slot(Kind::Linear, e.clone());
                self.materialised.insert(value, s);
                (s, e.shape)
            }
        }
    }

    fn as_expr(&self, v: &Val, node: usize) -> Expr {
        match v {
            Val::Slot(s, sh) => self.identity(*s, *sh, node),
            Val::Expr(e) => e.clone(),
        }
    }
}

/// Whether `a + b` is exact in floating point for every entry. With `s = fl(x + y)`,
/// the difference `s - x` is computed exactly when `|x| >= |y|` (and `s - y` when
/// `|y| >= |x|`: the Fast2Sum lemma, Dekker 1971), so `fl(s - x) == y` and
/// `fl(s - y) == x` together mean `s == x + y` exactly (an overflow gives `s - x = inf`,
/// never `y`).
fn sums_exact(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(&x, &y)| {
        let s = x + y;
        s - x == y && s - y == x
    })
}

/// Lowers a graph (nodes in topological order; the last is the output) into the normal
/// form; see the module docs. Errors name the node (its index, as `layer i`), its kind
/// and the shapes.
pub(crate) fn lower(input_shape: Shape, nodes: &[Node]) -> Result<Lowered> {
    if nodes.is_empty() {
        return Err(structure(0, "the model has no layer"));
    }
    let mut lw = Lowering {
        slots: vec![Slot {
            kind: Kind::Input,
            expr: None,
            shape: input_shape,
            level: 0,
            node: 0,
        }],
        materialised: HashMap::new(),
    };
    // vals[0] is the input, vals[i + 1] node i's output.
    let mut vals: Vec<Val> = vec![Val::Slot(0, input_shape)];
    for (i, node) in nodes.iter().enumerate() {
        let kind = node.layer.kind();
        let arity = if matches!(node.layer, Layer::Add) {
            2
        } else {
            1
        };
        if node.inputs.len() != arity {
            return Err(structure(
                i,
                format!(
                    "{kind} node {:?} reads {} values but takes {arity}",
                    node.name,
                    node.inputs.len()
                ),
            ));
        }
        let mut ins = Vec::with_capacity(arity);
        for src in &node.inputs {
            ins.push(match *src {
                Source::Input => 0,
                Source::Node(j) if j < i => j + 1,
                Source::Node(j) => {
                    return Err(structure(
                        i,
                        format!(
                            "{kind} node {:?} reads node {j}, which is not an earlier node \
                             (nodes must be in topological order)",
                            node.name
                        ),
                    ))
                }
            });
        }
        let v = match &node.layer {
            Layer::Dense { .. }
            | Layer::Conv2d { .. }
            | Layer::AvgPool2d { .. }
            | Layer::Transpose { .. } => {
                let (s, shape) = lw.as_slot(&vals[ins[0]].clone(), ins[0]);
                let (op, bias, out_shape) = crate::graph::resolve_op(i, &node.layer, &shape)?;
                Val::Expr(Expr {
                    terms: vec![(op, s)],
                    bias,
                    shape: out_shape,
                    node: i,
                })
            }
            Layer::Relu => match &vals[ins[0]] {
                Val::Slot(s, sh) if lw.slots[*s].kind == Kind::Relu => Val::Slot(*s, *sh),
                Val::Slot(s, sh) => {
                    let e = lw.identity(*s, *sh, i);
                    Val::Slot(lw.new_slot(Kind::Relu, e), *sh)
                }
                Val::Expr(e) => {
                    // The slot keeps the node of the affine map that computes it.
                    let sh = e.shape;
                    Val::Slot(lw.new_slot(Kind::Relu, e.clone()), sh)
                }
            },
            Layer::Flatten => {
                let flat = |sh: Shape| Shape::Flat(sh.numel());
                match &vals[ins[0]] {
                    Val::Slot(s, sh) => Val::Slot(*s, flat(*sh)),
                    Val::Expr(e) => {
                        let mut e = e.clone();
                        e.shape = flat(e.shape);
                        Val::Expr(e)
                    }
                }
            }
            Layer::Add => {
                let (va, vb) = (vals[ins[0]].clone(), vals[ins[1]].clone());
                let shape_of = |v: &Val| match v {
                    Val::Slot(_, sh) => *sh,
                    Val::Expr(e) => e.shape,
                };
                let (sa, sb) = (shape_of(&va), shape_of(&vb));
                if sa != sb {
                    return Err(NetworkError::Shape {
                        layer: i,
                        kind,
                        expected: format!("two inputs of one shape (the first is {sa})"),
                        actual: sb.to_string(),
                    });
                }
                let mut a = lw.as_expr(&va, i);
                let mut b = lw.as_expr(&vb, i);
                let shares_slot = b
                    .terms
                    .iter()
                    .any(|(_, s)| a.terms.iter().any(|(_, t)| t == s));
                if shares_slot || !sums_exact(&a.bias, &b.bias) {
                    // Keep the second branch as a slot of its own (see the module docs).
                    let (s, sh) = lw.as_slot(&vb, ins[1]);
                    b = lw.identity(s, sh, i);
                    if b.terms
                        .iter()
                        .any(|(_, s)| a.terms.iter().any(|(_, t)| t == s))
                    {
                        // x + x: the first branch reads the same slot; give it its own too.
                        let sh = a.shape;
                        let s = lw.new_slot(Kind::Linear, a.clone());
                        a = lw.identity(s, sh, i);
                    }
                }
                for (x, y) in a.bias.iter_mut().zip(&b.bias) {
                    *x += y;
                }
                a.terms.extend(b.terms);
                a.node = i;
                Val::Expr(a)
            }
        };
        vals.push(v);
    }
    let last = nodes.len() - 1;
    let out = lw.as_expr(&vals[last + 1], last);
    finish(lw, out)
}

/// Places the slots the output needs in layers (carrying skips with linear slots) and
/// builds the affine maps.
fn finish(mut lw: Lowering, out: Expr) -> Result<Lowered> {
    // The slots the output reads, transitively.
    let mut needed = vec![false; lw.slots.len()];
    let mut stack: Vec<usize> = out.terms.iter().map(|(_, s)| *s).collect();
    while let Some(s) = stack.pop() {
        if !std::mem::replace(&mut needed[s], true) {
            if let Some(e) = &lw.slots[s].expr {
                stack.extend(e.terms.iter().map(|(_, t)| *t));
            }
        }
    }
    let depth = lw.level_of(&out);
    // Carry every term's source up to the layer just below its expression.
    let mut carries: HashMap<(usize, usize), usize> = HashMap::new();
    let mut carry = |lw: &mut Lowering, s: usize, to: usize| -> usize {
        let mut cur = s;
        for level in lw.slots[s].level + 1..=to {
            cur = match carries.get(&(s, level)) {
                Some(&c) => c,
                None => {
                    let e = lw.identity(cur, lw.slots[cur].shape, lw.slots[s].node);
                    let c = lw.new_slot(Kind::Linear, e);
                    debug_assert_eq!(lw.slots[c].level, level);
                    carries.insert((s, level), c);
                    c
                }
            };
        }
        cur
    };
    let original = lw.slots.len();
    let mut used: Vec<usize> = (0..original).filter(|&s| needed[s]).collect();
    for &s in &used.clone() {
        let Some(mut e) = lw.slots[s].expr.take() else {
            continue;
        };
        let below = lw.slots[s].level - 1;
        for (_, src) in &mut e.terms {
            *src = carry(&mut lw, *src, below);
        }
        lw.slots[s].expr = Some(e);
    }
    let mut out = out;
    for (_, src) in &mut out.terms {
        *src = carry(&mut lw, *src, depth - 1);
    }
    used.extend(original..lw.slots.len());
    // Layers 1..depth-1: ReLU slots first, then linear ones; offsets within the layer.
    let mut layer_slots: Vec<Vec<usize>> = vec![Vec::new(); depth];
    layer_slots[0].push(0);
    for kind in [Kind::Relu, Kind::Linear] {
        for &s in &used {
            let sl = &lw.slots[s];
            // (Every used slot lies below the output's level: the output reads it.)
            if sl.kind == kind {
                layer_slots[sl.level].push(s);
            }
        }
    }
    let mut offset = vec![0usize; lw.slots.len()];
    let mut sizes = vec![0usize; depth + 1];
    let mut relu_units = Vec::with_capacity(depth.saturating_sub(1));
    for (level, slots) in layer_slots.iter().enumerate() {
        for &s in slots {
            offset[s] = sizes[level];
            sizes[level] += lw.slots[s].shape.numel();
        }
        if level > 0 {
            relu_units.push(
                slots
                    .iter()
                    .filter(|&&s| lw.slots[s].kind == Kind::Relu)
                    .map(|&s| lw.slots[s].shape.numel())
                    .sum(),
            );
        }
    }
    sizes[depth] = out.shape.numel();
    let shape_of = |slots: &[usize], lw: &Lowering| match slots {
        [s] => lw.slots[*s].shape,
        _ => Shape::Flat(slots.iter().map(|&s| lw.slots[s].shape.numel()).sum()),
    };
    let mut affine = Vec::with_capacity(depth);
    for t in 0..depth {
        // The expressions of layer t + 1 with their output offsets.
        let outs: Vec<(&Expr, usize)> = if t + 1 == depth {
            vec![(&out, 0)]
        } else {
            layer_slots[t + 1]
                .iter()
                .map(|&s| (lw.slots[s].expr.as_ref().expect("not the input"), offset[s]))
                .collect()
        };
        let (n_in, n_out) = (sizes[t], sizes[t + 1]);
        let mut terms = Vec::new();
        let mut bias = vec![0.0; n_out];
        for (e, off) in &outs {
            bias[*off..*off + e.bias.len()].copy_from_slice(&e.bias);
            for (op, src) in &e.terms {
                debug_assert_eq!(lw.slots[*src].level, t);
                terms.push(BlockTerm {
                    op: op.clone(),
                    in_offset: offset[*src],
                    out_offset: *off,
                });
            }
        }
        // One term covers both layers whole: every slot of layer t is read by a term of
        // layer t + 1 (carries make each source exactly one level below its reader), and
        // every slot of layer t + 1 has a term.
        let op = match terms.as_slice() {
            [one] => {
                debug_assert!(one.op.n_in() == n_in && one.op.n_out() == n_out);
                one.op.clone()
            }
            _ => LinearOp::Block { n_in, n_out, terms },
        };
        let node = outs[0].0.node;
        // (Layer 0 is the input slot alone: its shape is the input's.)
        let in_shape = shape_of(&layer_slots[t], &lw);
        let out_shape = if t + 1 == depth {
            out.shape
        } else {
            shape_of(&layer_slots[t + 1], &lw)
        };
        affine.push(Affine::new(op, bias, in_shape, out_shape, node));
    }
    Ok(Lowered { affine, relu_units })
}
/// The linear map of a dense or conv node reading a value of shape `shape`: its
/// operator, its bias (one value per output unit: a conv bias broadcast per channel) and
/// its output shape. Checks shapes, parameter sizes and finite values.
pub(crate) fn resolve_op(
    i: usize,
    layer: &Layer,
    shape: &Shape,
) -> Result<(LinearOp, Vec<f64>, Shape)> {
    let kind = layer.kind();
    Ok(match layer {
        Layer::Dense {
            weight,
            bias,
            out_features,
            in_features,
        } => {
            let n = match *shape {
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
            let (c, h, w) = match *shape {
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
                    msg: format!(
                        "bias has shape [{}] but the weight has {out_channels} output channels",
                        bias.len()
                    ),
                });
            }
            let oh = ConvGeometry::out_dim(h, *kernel_h, *stride, *padding);
            let ow = ConvGeometry::out_dim(w, *kernel_w, *stride, *padding);
            let (Some(out_h), Some(out_w)) = (oh, ow) else {
                return Err(NetworkError::Shape {
                    layer: i,
                    kind,
                    expected: format!(
                        "an image of at least {kernel_h}x{kernel_w} after padding {padding}"
                    ),
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
        Layer::AvgPool2d { kernel, stride } => {
            let (k, s) = (*kernel, *stride);
            let Shape::Image { c, h, w } = *shape else {
                return Err(NetworkError::Shape {
                    layer: i,
                    kind,
                    expected: "an image [c, h, w]".into(),
                    actual: shape.to_string(),
                });
            };
            let area = k * k;
            if k == 0 || s == 0 || !area.is_power_of_two() {
                return Err(NetworkError::Layer {
                    layer: i,
                    kind,
                    msg: format!(
                        "kernel {k}, stride {s}: both must be positive and the window's area \
                         {area} a power of two (1/{area} must be a double for the model to be \
                         the average exactly)"
                    ),
                });
            }
            let (Some(out_h), Some(out_w)) = (
                ConvGeometry::out_dim(h, k, s, 0),
                ConvGeometry::out_dim(w, k, s, 0),
            ) else {
                return Err(NetworkError::Shape {
                    layer: i,
                    kind,
                    expected: format!("an image of at least {k}x{k}"),
                    actual: shape.to_string(),
                });
            };
            // Channel ci of the output averages channel ci of the input: weight 1/area on
            // the diagonal blocks, 0 elsewhere (exact: area is a power of two).
            let mut weight = vec![0.0; c * c * area];
            for ci in 0..c {
                weight[(ci * c + ci) * area..(ci * c + ci + 1) * area].fill(1.0 / area as f64);
            }
            let geom = ConvGeometry {
                in_channels: c,
                out_channels: c,
                kernel_h: k,
                kernel_w: k,
                stride: s,
                padding: 0,
                in_h: h,
                in_w: w,
                out_h,
                out_w,
            };
            (
                LinearOp::Conv { weight, geom },
                vec![0.0; c * out_h * out_w],
                Shape::Image {
                    c,
                    h: out_h,
                    w: out_w,
                },
            )
        }
        Layer::Transpose { perm } => {
            let Shape::Image { c, h, w } = *shape else {
                return Err(NetworkError::Shape {
                    layer: i,
                    kind,
                    expected: "an image [c, h, w] (a transpose permutes its three axes)".into(),
                    actual: shape.to_string(),
                });
            };
            let Some(op) = LinearOp::transpose([c, h, w], *perm) else {
                return Err(NetworkError::Layer {
                    layer: i,
                    kind,
                    msg: format!("perm {perm:?} is not a permutation of [0, 1, 2]"),
                });
            };
            let od = perm.map(|p| [c, h, w][p]);
            (
                op,
                vec![0.0; c * h * w],
                Shape::Image {
                    c: od[0],
                    h: od[1],
                    w: od[2],
                },
            )
        }
        Layer::Relu | Layer::Flatten | Layer::Add => unreachable!("not an affine node"),
    })
}
