//! [`Model`] -> ONNX, so that other tools (onnxruntime, VNN-COMP verifiers) can run and
//! check what this project trains.
//!
//! The graph takes `input` of dims `[1, n]` (a vector model) or `[1, c, h, w]` (an image
//! model) and returns `output` `[1, classes]`. Dense layers become `MatMul` by `W^T` and `Add` of the bias,
//! convolutions `Conv` (one stride, the same pad on every side), then `Relu` and
//! `Flatten`. Tensors are double (ONNX type 11) by default, so the file holds the model's
//! weights exactly and [`crate::import_onnx`] reads back the same model bit for bit;
//! [`ElemType::F32`] writes float tensors for runtimes without double kernels
//! (onnxruntime has no double `Conv` on CPU), a rounded network.

use std::path::Path;

use network::{Layer, Model, Shape, Source};
use prost::Message;
use tract_onnx::pb;

use crate::error::{OnnxError, Result};

/// The element type of an exported file's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// ONNX `double` (11): the model's weights exactly.
    F64,
    /// ONNX `float` (1): weights rounded to the nearest f32, for runtimes without
    /// double kernels (onnxruntime's CPU `Conv`, most accelerators). The file is then a
    /// slightly different network; importing it gives that rounded network.
    F32,
}

impl ElemType {
    fn code(self) -> i32 {
        match self {
            ElemType::F64 => 11,
            ElemType::F32 => 1,
        }
    }
}

fn tensor(name: &str, dims: &[usize], data: &[f64], ty: ElemType) -> pb::TensorProto {
    let raw_data = match ty {
        ElemType::F64 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ElemType::F32 => data
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
    };
    pb::TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: ty.code(),
        raw_data,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize], ty: ElemType) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value as D, Dimension};
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: ty.code(),
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(D::DimValue(d as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: 7, // INTS
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: 2, // INT
        i: v,
        ..Default::default()
    }
}

/// The ONNX message of a model (opset 13, IR version 7), double tensors.
pub fn model_to_onnx(model: &Model) -> pb::ModelProto {
    model_to_onnx_as(model, ElemType::F64)
}

/// The ONNX message of a model with tensors of type `ty`.
pub fn model_to_onnx_as(model: &Model, ty: ElemType) -> pb::ModelProto {
    let input_dims: Vec<usize> = match model.input_shape() {
        Shape::Flat(n) => vec![1, n],
        Shape::Image { c, h, w } => vec![1, c, h, w],
    };
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let graph = model.nodes();
    let n_layers = graph.len();
    let value_name = |j: usize| {
        if j + 1 == n_layers {
            "output".to_string()
        } else {
            format!("t{j}")
        }
    };
    for (i, gnode) in graph.iter().enumerate() {
        let layer = &gnode.layer;
        let out = value_name(i);
        // What the node reads: the graph input or earlier nodes' outputs.
        let reads: Vec<String> = gnode
            .inputs
            .iter()
            .map(|s| match s {
                Source::Input => "input".to_string(),
                Source::Node(j) => value_name(*j),
            })
            .collect();
        let current = reads[0].clone();
        let mut node = pb::NodeProto {
            name: format!("layer{i}_{}", layer.kind()),
            output: vec![out.clone()],
            ..Default::default()
        };
        match layer {
            Layer::Dense {
                weight,
                bias,
                out_features,
                in_features,
            } => {
                // MatMul by W^T ([in, out]) then Add of the bias: the two most widely
                // supported operators (tract's f64 Gemm mishandles its f32 beta).
                let (w, b) = (format!("layer{i}_weight_t"), format!("layer{i}_bias"));
                let (o, k) = (*out_features, *in_features);
                let mut wt = vec![0.0; o * k];
                for r in 0..o {
                    for c in 0..k {
                        wt[c * o + r] = weight[r * k + c];
                    }
                }
                inits.push(tensor(&w, &[k, o], &wt, ty));
                inits.push(tensor(&b, &[o], bias, ty));
                let mm = format!("layer{i}_matmul");
                nodes.push(pb::NodeProto {
                    name: format!("layer{i}_dense_matmul"),
                    op_type: "MatMul".into(),
                    input: vec![current.clone(), w],
                    output: vec![mm.clone()],
                    ..Default::default()
                });
                node.op_type = "Add".into();
                node.input = vec![mm, b];
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
                let (w, b) = (format!("layer{i}_weight"), format!("layer{i}_bias"));
                inits.push(tensor(
                    &w,
                    &[*out_channels, *in_channels, *kernel_h, *kernel_w],
                    weight,
                    ty,
                ));
                inits.push(tensor(&b, &[*out_channels], bias, ty));
                node.op_type = "Conv".into();
                node.input = vec![current.clone(), w, b];
                let p = *padding as i64;
                node.attribute = vec![
                    ints("kernel_shape", &[*kernel_h as i64, *kernel_w as i64]),
                    ints("strides", &[*stride as i64, *stride as i64]),
                    ints("pads", &[p, p, p, p]),
                ];
            }
            Layer::Relu => {
                node.op_type = "Relu".into();
                node.input = vec![current.clone()];
            }
            Layer::Flatten => {
                node.op_type = "Flatten".into();
                node.input = vec![current.clone()];
                node.attribute = vec![int("axis", 1)];
            }
            Layer::Add => {
                node.op_type = "Add".into();
                node.input = reads.clone();
            }
            Layer::AvgPool2d { kernel, stride } => {
                node.op_type = "AveragePool".into();
                node.input = vec![current.clone()];
                let (k, s) = (*kernel as i64, *stride as i64);
                node.attribute = vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s])];
            }
            Layer::Transpose { perm } => {
                // The batch axis stays first.
                node.op_type = "Transpose".into();
                node.input = vec![current.clone()];
                let p = perm.map(|a| a as i64 + 1);
                node.attribute = vec![ints("perm", &[0, p[0], p[1], p[2]])];
            }
        }
        nodes.push(node);
    }
    pb::ModelProto {
        ir_version: 7,
        producer_name: "convex-outer".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "convex_outer_model".into(),
            node: nodes,
            initializer: inits,
            input: vec![value_info("input", &input_dims, ty)],
            output: vec![value_info("output", &[1, model.output_len()], ty)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes `model` as an ONNX file with tensors of type `ty`. Errors: I/O, naming the
/// file.
pub fn save_onnx(model: &Model, path: impl AsRef<Path>, ty: ElemType) -> Result<()> {
    let path = path.as_ref();
    std::fs::write(path, model_to_onnx_as(model, ty).encode_to_vec()).map_err(|error| {
        OnnxError::Io {
            file: path.display().to_string(),
            error,
        }
    })
}
