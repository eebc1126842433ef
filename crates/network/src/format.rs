//! The model file format, version 1: JSON, documented in the README.
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
use crate::model::{Layer, Model};
use crate::shape::Shape;

/// The value of the `format` key.
pub const FORMAT_NAME: &str = "convex-outer-model";
/// The version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// Loads a model file; every error names the file.
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|error| NetworkError::Io {
        file: path.to_path_buf(),
        error,
    })?;
    Ok(model_from_json(&text, &path.display().to_string())?.0)
}

/// Saves a model (and optional metadata object) as a version-1 model file.
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
    for key in obj.keys() {
        if !["format", "version", "input_shape", "layers", "metadata"].contains(&key.as_str()) {
            return Err(fmt_err(
                source,
                format!(
                    "unknown key {key:?} (expected format, version, input_shape, layers, metadata)"
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
    match obj.get("version").and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(fmt_err(
                source,
                format!("model format version {v} is not supported by this build (it reads version {FORMAT_VERSION})"),
            ))
        }
        None => return Err(fmt_err(source, "missing or non-integer \"version\"")),
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
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| fmt_err(source, "missing \"layers\" (a list)"))?;
    let wrap = |e: NetworkError| NetworkError::InFile {
        file: source.to_string(),
        error: Box::new(e),
    };
    let mut layers = Vec::with_capacity(layers_json.len());
    for (i, l) in layers_json.iter().enumerate() {
        layers.push(parse_layer(i, l).map_err(wrap)?);
    }
    let model = Model::new(input_shape, layers).map_err(wrap)?;
    let metadata = obj.get("metadata").cloned().unwrap_or(Value::Null);
    Ok((model, metadata))
}

fn parse_layer(i: usize, v: &Value) -> Result<Layer> {
    let obj = v
        .as_object()
        .ok_or_else(|| layer_err(i, "?", "each layer must be a JSON object"))?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| layer_err(i, "?", "missing \"type\" (dense, conv2d, relu or flatten)"))?;
    let allowed: &[&str] = match ty {
        "dense" => &["type", "weight", "bias"],
        "conv2d" => &["type", "weight", "bias", "stride", "padding"],
        "relu" | "flatten" => &["type"],
        other => {
            return Err(layer_err(
                i,
                "?",
                format!("unknown layer type {other:?} (known: dense, conv2d, relu, flatten)"),
            ))
        }
    };
    let kind: &'static str = match ty {
        "dense" => "dense",
        "conv2d" => "conv2d",
        "relu" => "relu",
        _ => "flatten",
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(layer_err(
            i,
            kind,
            format!("unknown key {k:?} (allowed: {})", allowed.join(", ")),
        ));
    }
    match kind {
        "relu" => return Ok(Layer::Relu),
        "flatten" => return Ok(Layer::Flatten),
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

/// Serialises a model (and optional metadata) as version-1 JSON text.
pub fn model_to_json(model: &Model, metadata: Option<&Value>) -> String {
    let mut root = Map::new();
    root.insert("format".into(), FORMAT_NAME.into());
    root.insert("version".into(), FORMAT_VERSION.into());
    root.insert("input_shape".into(), model.input_shape().dims().into());
    let layers: Vec<Value> = model
        .layers()
        .iter()
        .map(|l| {
            let mut o = Map::new();
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
                Layer::Relu | Layer::Flatten => {}
            }
            Value::Object(o)
        })
        .collect();
    root.insert("layers".into(), Value::Array(layers));
    if let Some(m) = metadata {
        if !m.is_null() {
            root.insert("metadata".into(), m.clone());
        }
    }
    serde_json::to_string(&Value::Object(root)).expect("a JSON value always serialises")
}
