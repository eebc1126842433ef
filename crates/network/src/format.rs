//! The model file format: JSON, documented in the README. Version 1 is a chain of layers;
//! version 2 a graph of named nodes, each with the values it reads (`"input"` or earlier
//! nodes' names), which can say residual connections (`add`) and affine maps that follow
//! each other:
//!
//! ```json
//! { "format": "convex-outer-model", "version": 2, "input_shape": [4],
//!   "nodes": [
//!     {"name": "fc1", "type": "dense", "inputs": ["input"], "weight": [[...]], "bias": [...]},
//!     {"name": "r1", "type": "relu", "inputs": ["fc1"]},
//!     {"name": "fc2", "type": "dense", "inputs": ["r1"], "weight": [[...]], "bias": [...]},
//!     {"name": "sum", "type": "add", "inputs": ["r1", "fc2"]},
//!     {"name": "out", "type": "dense", "inputs": ["sum"], "weight": [[...]], "bias": [...]} ] }
//! ```
//!
//! The last node is the output. A chain model is saved as version 1 (every version-1 file
//! still loads); any other graph as version 2.
//!
//! Version 1:
//!
//! ```json
//! { "format": "convex-outer-model", "version": 1,
//!   "input_shape": [1, 28, 28],
//!   "layers": [
//!     {"type": "conv2d", "weight": [[[[...]]]], "bias": [...], "stride": 2, "padding": 1},
//!     {"type": "relu"},
//!     {"type": "flatten"},
//!     {"type": "dense", "weight": [[...]], "bias": [...]} ],
//!   "metadata": { "free-form": "object, kept on load and save" } }
//! ```
//!
//! Dense weights are `[out][in]`, conv weights `[out][in][kh][kw]` (PyTorch's layout) and
//! `flatten` is channel-major, so PyTorch state dicts convert by renaming. Numbers are
//! written in shortest round-trip form, so save then load gives bit-identical weights.
//! Unknown keys are refused (a typo such as `"strides"` must not be silently ignored).

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{NetworkError, Result};
use crate::model::{Layer, Model, Node, Source};
use crate::shape::Shape;

/// The value of the `format` key.
pub const FORMAT_NAME: &str = "convex-outer-model";
/// The version this build writes for chain models (graphs are written as
/// [`FORMAT_VERSION_GRAPH`]); both are read.
pub const FORMAT_VERSION: u64 = 1;
/// The version of graph model files.
pub const FORMAT_VERSION_GRAPH: u64 = 2;

/// Loads a model file; every error names the file.
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|error| NetworkError::Io {
        file: path.to_path_buf(),
        error,
    })?;
    Ok(model_from_json(&text, &path.display().to_string())?.0)
}

/// Saves a model (and optional metadata object): version 1 for a chain, else version 2.
pub fn save_model(model: &Model, metadata: Option<&Value>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let text = model_to_json(model, metadata);
    std::fs::write(path, text).map_err(|error| NetworkError::Io {
        file: path.to_path_buf(),
        error,
    })
}

fn fmt_err(file: &str, msg: impl Into<String>) -> NetworkError {
    NetworkError::Format {
        file: file.to_string(),
        msg: msg.into(),
    }
}

fn layer_err(layer: usize, kind: &'static str, msg: impl Into<String>) -> NetworkError {
    NetworkError::Layer {
        layer,
        kind,
        msg: msg.into(),
    }
}

/// Parses a model from JSON text; `source` names the text in errors (a file name).
/// Returns the model and its `metadata` object (or `null`).
pub fn model_from_json(text: &str, source: &str) -> Result<(Model, Value)> {
    let root: Value = serde_json::from_str(text).map_err(|error| NetworkError::Json {
        file: source.to_string(),
        error,
    })?;
    let obj = root
        .as_object()
        .ok_or_else(|| fmt_err(source, "the top level must be a JSON object"))?;
    let version = obj.get("version").and_then(Value::as_u64);
    // An unsupported version is named before anything else (its keys may differ).
    if let Some(v) = version.filter(|v| ![FORMAT_VERSION, FORMAT_VERSION_GRAPH].contains(v)) {
        return Err(fmt_err(
            source,
            format!("model format version {v} is not supported by this build (it reads versions {FORMAT_VERSION} and {FORMAT_VERSION_GRAPH})"),
        ));
    }
    if version.is_none() {
        return Err(fmt_err(source, "missing or non-integer \"version\""));
    }
    let list_key = if version == Some(FORMAT_VERSION_GRAPH) {
        "nodes"
    } else {
        "layers"
    };
    for key in obj.keys() {
        if !["format", "version", "input_shape", list_key, "metadata"].contains(&key.as_str()) {
            return Err(fmt_err(
                source,
                format!(
                    "unknown key {key:?} (expected format, version, input_shape, {list_key}, metadata)"
                ),
            ));
        }
    }
    match obj.get("format").and_then(Value::as_str) {
        Some(FORMAT_NAME) => {}
        Some(other) => {
            return Err(fmt_err(
                source,
                format!("\"format\" is {other:?}, expected {FORMAT_NAME:?}"),
            ))
        }
        None => {
            return Err(fmt_err(
                source,
                format!("missing \"format\": {FORMAT_NAME:?}"),
            ))
        }
    }
    let dims = obj
        .get("input_shape")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            fmt_err(
                source,
                "missing \"input_shape\" (a list such as [784] or [1, 28, 28])",
            )
        })?;
    let dims: Vec<usize> = dims
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| fmt_err(source, "\"input_shape\" must hold positive integers"))?;
    let input_shape = Shape::from_dims(&dims).ok_or_else(|| {
        fmt_err(
            source,
            format!("\"input_shape\" {dims:?} must be [n] or [c, h, w] with positive entries"),
        )
    })?;
    let layers_json = obj
        .get(list_key)
        .and_then(Value::as_array)
        .ok_or_else(|| fmt_err(source, format!("missing \"{list_key}\" (a list)")))?;
    let wrap = |e: NetworkError| NetworkError::InFile {
        file: source.to_string(),
        error: Box::new(e),
    };
    let model = if list_key == "nodes" {
        let mut nodes: Vec<Node> = Vec::with_capacity(layers_json.len());
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        for (i, l) in layers_json.iter().enumerate() {
            let node = parse_node(i, l, &index).map_err(wrap)?;
            if node.name == "input" || index.insert(node.name.clone(), i).is_some() {
                return Err(wrap(layer_err(
                    i,
                    node.layer.kind(),
                    format!(
                        "name {:?} is already taken (names are unique and \"input\" is the graph input)",
                        node.name
                    ),
                )));
            }
            nodes.push(node);
        }
        Model::from_graph(input_shape, nodes).map_err(wrap)?
    } else {
        let mut layers = Vec::with_capacity(layers_json.len());
        for (i, l) in layers_json.iter().enumerate() {
            layers.push(parse_layer(i, l, false).map_err(wrap)?);
        }
        Model::new(input_shape, layers).map_err(wrap)?
    };
    let metadata = obj.get("metadata").cloned().unwrap_or(Value::Null);
    Ok((model, metadata))
}

/// A version-2 node: its layer, `name` and `inputs` (names of earlier nodes or `"input"`).
fn parse_node(
    i: usize,
    v: &Value,
    index: &std::collections::HashMap<String, usize>,
) -> Result<Node> {
    let layer = parse_layer(i, v, true)?;
    let kind = layer.kind();
    let obj = v.as_object().expect("checked by parse_layer");
    let name = match obj.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        Some(other) => {
            return Err(layer_err(
                i,
                kind,
                format!("\"name\" must be a non-empty string, got {other}"),
            ))
        }
        None => return Err(layer_err(i, kind, "missing \"name\"")),
    };
    let inputs = obj.get("inputs").and_then(Value::as_array).ok_or_else(|| {
        layer_err(
            i,
            kind,
            "missing \"inputs\" (a list of earlier node names or \"input\")",
        )
    })?;
    let mut sources = Vec::with_capacity(inputs.len());
    for v in inputs {
        let n = v
            .as_str()
            .ok_or_else(|| layer_err(i, kind, format!("\"inputs\" must hold names, got {v}")))?;
        sources.push(match (n, index.get(n)) {
            ("input", _) => Source::Input,
            (_, Some(&j)) => Source::Node(j),
            (_, None) => {
                return Err(layer_err(
                    i,
                    kind,
                    format!("reads {n:?}, which is not the name of an earlier node (or \"input\")"),
                ))
            }
        });
    }
    Ok(Node {
        name,
        layer,
        inputs: sources,
    })
}

fn parse_layer(i: usize, v: &Value, graph: bool) -> Result<Layer> {
    let obj = v
        .as_object()
        .ok_or_else(|| layer_err(i, "?", "each layer must be a JSON object"))?;
    let ty = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        layer_err(
            i,
            "?",
            "missing \"type\" (dense, conv2d, relu, flatten, or add in version 2)",
        )
    })?;
    let allowed: &[&str] = match ty {
        "dense" => &["type", "weight", "bias", "name", "inputs"],
        "conv2d" => &[
            "type", "weight", "bias", "stride", "padding", "name", "inputs",
        ],
        "relu" | "flatten" => &["type", "name", "inputs"],
        "avgpool2d" => &["type", "kernel", "stride", "name", "inputs"],
        "transpose" => &["type", "perm", "name", "inputs"],
        "add" if graph => &["type", "name", "inputs"],
        "add" => {
            return Err(layer_err(
                i,
                "add",
                "add reads two values: write the model as a version 2 (graph) file with \"nodes\"",
            ))
        }
        other => {
            return Err(layer_err(
                i,
                "?",
                format!(
                    "unknown layer type {other:?} (known: dense, conv2d, relu, flatten, avgpool2d, transpose, add)"
                ),
            ))
        }
    };
    let allowed = if graph {
        allowed
    } else {
        &allowed[..allowed.len() - 2]
    };
    let kind: &'static str = match ty {
        "dense" => "dense",
        "conv2d" => "conv2d",
        "relu" => "relu",
        "add" => "add",
        "avgpool2d" => "avgpool2d",
        "transpose" => "transpose",
        _ => "flatten",
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(layer_err(
            i,
            kind,
            format!("unknown key {k:?} (allowed: {})", allowed.join(", ")),
        ));
    }
    let get_usize = |key: &str, default: usize| -> Result<usize> {
        match obj.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().map(|x| x as usize).ok_or_else(|| {
                layer_err(
                    i,
                    kind,
                    format!("\"{key}\" must be a non-negative integer, got {v}"),
                )
            }),
        }
    };
    match kind {
        "relu" => return Ok(Layer::Relu),
        "flatten" => return Ok(Layer::Flatten),
        "add" => return Ok(Layer::Add),
        "avgpool2d" => {
            let kernel = get_usize("kernel", 0)?;
            if kernel == 0 {
                return Err(layer_err(i, kind, "missing or zero \"kernel\""));
            }
            return Ok(Layer::AvgPool2d {
                kernel,
                stride: get_usize("stride", kernel)?,
            });
        }
        "transpose" => {
            let bad = || {
                layer_err(
                    i,
                    kind,
                    format!(
                        "\"perm\" must be three axis indices (e.g. [2, 0, 1]), got {}",
                        obj.get("perm").map_or("nothing".into(), |v| v.to_string())
                    ),
                )
            };
            let perm = obj
                .get("perm")
                .and_then(Value::as_array)
                .ok_or_else(bad)?
                .iter()
                .map(|v| v.as_u64().map(|p| p as usize))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(bad)?;
            let perm: [usize; 3] = perm.try_into().map_err(|_| bad())?;
            return Ok(Layer::Transpose { perm });
        }
        _ => {}
    }
    let weight = obj
        .get("weight")
        .ok_or_else(|| layer_err(i, kind, "missing \"weight\""))?;
    let bias = obj
        .get("bias")
        .ok_or_else(|| layer_err(i, kind, "missing \"bias\""))?;
    let rank = if kind == "dense" { 2 } else { 4 };
    let (wshape, w) =
        parse_tensor(weight, rank).map_err(|m| layer_err(i, kind, format!("weight: {m}")))?;
    let (bshape, b) =
        parse_tensor(bias, 1).map_err(|m| layer_err(i, kind, format!("bias: {m}")))?;
    if bshape[0] != wshape[0] {
        return Err(layer_err(
            i,
            kind,
            format!(
                "bias has shape {bshape:?} but weight has shape {wshape:?} ({} outputs)",
                wshape[0]
            ),
        ));
    }
    if kind == "dense" {
        return Ok(Layer::Dense {
            weight: w,
            bias: b,
            out_features: wshape[0],
            in_features: wshape[1],
        });
    }
    Ok(Layer::Conv2d {
        weight: w,
        bias: b,
        out_channels: wshape[0],
        in_channels: wshape[1],
        kernel_h: wshape[2],
        kernel_w: wshape[3],
        stride: get_usize("stride", 1)?,
        padding: get_usize("padding", 0)?,
    })
}

/// Parses a nested JSON array of numbers of the given rank into (shape, row-major values).
fn parse_tensor(v: &Value, rank: usize) -> std::result::Result<(Vec<usize>, Vec<f64>), String> {
    let mut shape = Vec::with_capacity(rank);
    let mut cur = v;
    for d in 0..rank {
        let arr = cur.as_array().ok_or_else(|| {
            format!(
                "expected a nested list of rank {rank}, but level {d} is {}",
                kind_of(cur)
            )
        })?;
        if arr.is_empty() {
            return Err(format!("dimension {d} is empty"));
        }
        shape.push(arr.len());
        cur = &arr[0];
    }
    let mut out = Vec::with_capacity(shape.iter().product());
    fn walk(
        v: &Value,
        shape: &[usize],
        path: &mut Vec<usize>,
        out: &mut Vec<f64>,
    ) -> std::result::Result<(), String> {
        if shape.is_empty() {
            return match v.as_f64() {
                Some(x) if x.is_finite() => {
                    out.push(x);
                    Ok(())
                }
                _ => Err(format!(
                    "entry {path:?} is {}, not a finite number",
                    kind_of(v)
                )),
            };
        }
        let arr = v
            .as_array()
            .ok_or_else(|| format!("entry {path:?} is {}, expected a list", kind_of(v)))?;
        if arr.len() != shape[0] {
            return Err(format!(
                "ragged: entry {path:?} has {} elements but the first one at this level has {}",
                arr.len(),
                shape[0]
            ));
        }
        for (j, x) in arr.iter().enumerate() {
            path.push(j);
            walk(x, &shape[1..], path, out)?;
            path.pop();
        }
        Ok(())
    }
    walk(v, &shape, &mut Vec::new(), &mut out)?;
    Ok((shape, out))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn nested(values: &[f64], shape: &[usize]) -> Value {
    if shape.len() == 1 {
        return Value::Array(values.iter().map(|&x| Value::from(x)).collect());
    }
    let step: usize = shape[1..].iter().product();
    Value::Array(
        values
            .chunks(step)
            .map(|c| nested(c, &shape[1..]))
            .collect(),
    )
}

/// Serialises a model (and optional metadata) as JSON text: version 1 for a chain,
/// version 2 (nodes with names and inputs) for any other graph.
pub fn model_to_json(model: &Model, metadata: Option<&Value>) -> String {
    let mut root = Map::new();
    let graph = !model.is_chain();
    root.insert("format".into(), FORMAT_NAME.into());
    root.insert(
        "version".into(),
        if graph {
            FORMAT_VERSION_GRAPH
        } else {
            FORMAT_VERSION
        }
        .into(),
    );
    root.insert("input_shape".into(), model.input_shape().dims().into());
    let nodes = model.nodes();
    let layers: Vec<Value> = nodes
        .iter()
        .map(|node| {
            let l = &node.layer;
            let mut o = Map::new();
            if graph {
                o.insert("name".into(), node.name.clone().into());
                let inputs: Vec<Value> = node
                    .inputs
                    .iter()
                    .map(|s| match s {
                        Source::Input => "input".into(),
                        Source::Node(j) => nodes[*j].name.clone().into(),
                    })
                    .collect();
                o.insert("inputs".into(), Value::Array(inputs));
            }
            o.insert("type".into(), l.kind().into());
            match l {
                Layer::Dense {
                    weight,
                    bias,
                    out_features,
                    in_features,
                } => {
                    o.insert(
                        "weight".into(),
                        nested(weight, &[*out_features, *in_features]),
                    );
                    o.insert("bias".into(), nested(bias, &[bias.len()]));
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
                    o.insert(
                        "weight".into(),
                        nested(weight, &[*out_channels, *in_channels, *kernel_h, *kernel_w]),
                    );
                    o.insert("bias".into(), nested(bias, &[bias.len()]));
                    o.insert("stride".into(), (*stride).into());
                    o.insert("padding".into(), (*padding).into());
                }
                Layer::AvgPool2d { kernel, stride } => {
                    o.insert("kernel".into(), (*kernel).into());
                    o.insert("stride".into(), (*stride).into());
                }
                Layer::Transpose { perm } => {
                    o.insert("perm".into(), perm.to_vec().into());
                }
                Layer::Relu | Layer::Flatten | Layer::Add => {}
            }
            Value::Object(o)
        })
        .collect();
    root.insert(
        if graph { "nodes" } else { "layers" }.into(),
        Value::Array(layers),
    );
    if let Some(m) = metadata {
        if !m.is_null() {
            root.insert("metadata".into(), m.clone());
        }
    }
    serde_json::to_string(&Value::Object(root)).expect("a JSON value always serialises")
}
