//! Every operator the importer accepts, in small f32 graphs built here, checked against
//! tract on random inputs; and every refusal, checked for its message (node index, name,
//! operator and reason).

use onnx_io::{import_onnx, import_onnx_with, pb, ImportOptions};
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tract_onnx::prelude::*;

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: 1,
        float_data: data.to_vec(),
        ..Default::default()
    }
}

fn int64s(name: &str, data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

fn info(name: &str, dims: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value as D, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
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

fn attr_i(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 2,
        i: v,
        ..Default::default()
    }
}
fn attr_f(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 1,
        f: v,
        ..Default::default()
    }
}
fn attr_is(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<pb::AttributeProto>) -> pb::NodeProto {
    pb::NodeProto {
        name: format!("{op}_{output}"),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

fn model(
    input: &[usize],
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    out: &str,
    out_dims: &[usize],
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: inits,
            input: vec![info("x", input)],
            output: vec![info(out, out_dims)],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    // Multiples of 1/8: exact in f32, so folds of 0.5 or 2 stay exact.
    (0..n)
        .map(|_| rng.random_range(-8i32..8) as f32 / 8.0)
        .collect()
}

fn tract_run(bytes: &[u8], dims: &[usize], x: &[f64]) -> Vec<f64> {
    let m = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input: Tensor =
        tract_ndarray::ArrayD::from_shape_vec(dims.to_vec(), x.iter().map(|&v| v as f32).collect())
            .unwrap()
            .into();
    let out = m.run(tvec!(input.into())).unwrap();
    out[0]
        .clone()
        .into_tensor()
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect()
}

/// Our forward pass equals tract's on 10 random inputs (values on a 1/8 grid with
/// weights on a 1/8 grid: every f32 product and sum of these small graphs is exact, so
/// the two must agree exactly).
fn agrees(what: &str, bytes: &[u8], dims: &[usize]) {
    let imp = import_onnx(bytes, what).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..10 {
        let x: Vec<f64> = rand_vec(&mut rng, imp.model.input_len())
            .iter()
            .map(|&v| v as f64)
            .collect();
        let ours = imp.model.forward(&x).unwrap();
        let theirs = tract_run(bytes, dims, &x);
        assert_eq!(ours.as_slice(), theirs, "{what}: x = {x:?}");
    }
}

fn refused(what: &str, bytes: &[u8], needles: &[&str]) {
    let e = import_onnx(bytes, "g.onnx").expect_err(what).to_string();
    for n in needles {
        assert!(e.contains(n), "{what}: {e:?} lacks {n:?}");
    }
    assert!(e.starts_with("g.onnx: "), "{what}: {e}");
}

#[test]
fn gemm_with_alpha_beta_and_transposes() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (ta, tb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let (k, n) = (4, 3);
        let x_dims = if ta == 1 { vec![k, 1] } else { vec![1, k] };
        let b_dims = if tb == 1 { vec![n, k] } else { vec![k, n] };
        let w2 = rand_vec(&mut rng, 2 * n);
        let bytes = model(
            &x_dims,
            vec![
                node(
                    "Gemm",
                    &["x", "B", "C"],
                    "h",
                    vec![
                        attr_f("alpha", 0.5),
                        attr_f("beta", 2.0),
                        attr_i("transA", ta),
                        attr_i("transB", tb),
                    ],
                ),
                node("Relu", &["h"], "r", vec![]),
                node("MatMul", &["r", "W2"], "y", vec![]),
            ],
            vec![
                tensor("B", &b_dims, &rand_vec(&mut rng, k * n)),
                tensor("C", &[n], &rand_vec(&mut rng, n)),
                tensor("W2", &[n, 2], &w2),
            ],
            "y",
            &[1, 2],
        );
        agrees(&format!("gemm transA {ta} transB {tb}"), &bytes, &x_dims);
    }
}

#[test]
fn matmul_on_either_side_with_normalisation_folded_exactly() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    // (x - m) / 2 * 4 + 1 -> W1 @ . (constant on the left, x a vector [3]) -> Add -> Relu
    // -> Mul 0.5 -> MatMul (x on the left) -> Sub (bias) -> Relu at the end.
    let bytes = model(
        &[3],
        vec![
            node("Sub", &["x", "m"], "a", vec![]),
            node("Div", &["a", "two"], "b", vec![]),
            node("Mul", &["b", "four"], "c", vec![]),
            node("Add", &["c", "one"], "d", vec![]),
            node("MatMul", &["W1", "d"], "e", vec![]),
            node("Add", &["e", "b1"], "f", vec![]),
            node("Relu", &["f"], "g", vec![]),
            node("Mul", &["g", "half"], "h", vec![]),
            node("Identity", &["h"], "h2", vec![]),
            node("MatMul", &["h2", "W2"], "i", vec![]),
            node("Sub", &["i", "b2"], "j", vec![]),
            node("Relu", &["j"], "y", vec![]),
        ],
        vec![
            tensor("m", &[3], &rand_vec(&mut rng, 3)),
            tensor("two", &[], &[2.0]),
            tensor("four", &[1], &[4.0]),
            tensor("one", &[], &[1.0]),
            tensor("W1", &[5, 3], &rand_vec(&mut rng, 15)),
            tensor("b1", &[5], &rand_vec(&mut rng, 5)),
            tensor("half", &[], &[0.5]),
            tensor("W2", &[5, 2], &rand_vec(&mut rng, 10)),
            tensor("b2", &[2], &rand_vec(&mut rng, 2)),
        ],
        "y",
        &[2],
    );
    agrees("normalised mlp ending in relu", &bytes, &[3]);
    let imp = import_onnx(&bytes, "n").unwrap();
    // Sub, Div, Mul, Add (input), Add (bias), Mul (after the ReLU), Sub (bias).
    assert_eq!(imp.folded.len(), 7, "{:?}", imp.folded);
}

#[test]
fn conv_flatten_reshape_transpose_constant() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let bytes = model(
        &[1, 6, 6, 1],
        vec![
            // NHWC with one channel -> NCHW: no data moves.
            node(
                "Transpose",
                &["x"],
                "t",
                vec![attr_is("perm", &[0, 3, 1, 2])],
            ),
            node("Mul", &["t", "s"], "t2", vec![]),
            node(
                "Conv",
                &["t2", "K1", "c1"],
                "a",
                vec![
                    attr_is("strides", &[1, 1]),
                    attr_is("pads", &[1, 1, 1, 1]),
                    attr_is("kernel_shape", &[3, 3]),
                ],
            ),
            node("Add", &["a", "cb"], "a2", vec![]),
            node("Relu", &["a2"], "r", vec![]),
            node("Conv", &["r", "K2"], "b", vec![attr_is("strides", &[2, 2])]),
            node("Relu", &["b"], "r2", vec![]),
            node(
                "Constant",
                &[],
                "shape",
                vec![pb::AttributeProto {
                    name: "value".into(),
                    r#type: 4,
                    t: Some(int64s("", &[1, -1])),
                    ..Default::default()
                }],
            ),
            node("Reshape", &["r2", "shape"], "f", vec![]),
            node("Gemm", &["f", "W", "bias"], "y", vec![attr_i("transB", 1)]),
        ],
        vec![
            tensor("s", &[], &[2.0]),
            tensor("K1", &[2, 1, 3, 3], &rand_vec(&mut rng, 18)),
            tensor("c1", &[2], &rand_vec(&mut rng, 2)),
            tensor("cb", &[1, 2, 1, 1], &rand_vec(&mut rng, 2)),
            tensor("K2", &[3, 2, 2, 2], &rand_vec(&mut rng, 24)),
            tensor("W", &[4, 27], &rand_vec(&mut rng, 108)),
            tensor("bias", &[4], &rand_vec(&mut rng, 4)),
        ],
        "y",
        &[1, 4],
    );
    agrees("conv net", &bytes, &[1, 6, 6, 1]);
    let flat = model(
        &[1, 2, 3, 3],
        vec![
            node("Conv", &["x", "K"], "a", vec![]),
            node("Relu", &["a"], "r", vec![]),
            node("Flatten", &["r"], "f", vec![attr_i("axis", 1)]),
            node("MatMul", &["f", "W"], "y", vec![]),
        ],
        vec![
            tensor("K", &[2, 2, 2, 2], &rand_vec(&mut rng, 16)),
            tensor("W", &[8, 3], &rand_vec(&mut rng, 24)),
        ],
        "y",
        &[1, 3],
    );
    agrees("conv flatten matmul", &flat, &[1, 2, 3, 3]);
}

/// `Transpose` that moves data: an NHWC input with several channels into NCHW (with a
/// per-unit scaling before it, permuted with the data), a conv's output back into NHWC
/// before the flatten (as TensorFlow exports do), and a transpose right after a conv whose
/// scaling waits to be folded; tract agrees exactly, and the export round-trips.
#[test]
fn transposes_that_move_data() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let nhwc = model(
        &[1, 3, 4, 2],
        vec![
            node("Mul", &["x", "s"], "xs", vec![]),
            node(
                "Transpose",
                &["xs"],
                "t",
                vec![attr_is("perm", &[0, 3, 1, 2])],
            ),
            node(
                "Conv",
                &["t", "K", "c"],
                "a",
                vec![attr_is("pads", &[1, 1, 1, 1])],
            ),
            node("Relu", &["a"], "r", vec![]),
            node(
                "Transpose",
                &["r"],
                "back",
                vec![attr_is("perm", &[0, 2, 3, 1])],
            ),
            node("Flatten", &["back"], "f", vec![attr_i("axis", 1)]),
            node("MatMul", &["f", "W"], "y", vec![]),
        ],
        vec![
            // Per unit in the NHWC order of the data it scales, one value per channel
            // (what folds into a conv: the importer must permute it with the data).
            tensor("s", &[1, 3, 4, 2], &[0.5, -2.0].repeat(12)),
            tensor("K", &[3, 2, 2, 2], &rand_vec(&mut rng, 24)),
            tensor("c", &[3], &rand_vec(&mut rng, 3)),
            tensor("W", &[60, 2], &rand_vec(&mut rng, 120)),
        ],
        "y",
        &[1, 2],
    );
    agrees("nhwc net", &nhwc, &[1, 3, 4, 2]);
    let imp = import_onnx(&nhwc, "nhwc").unwrap();
    let kinds: Vec<&str> = imp.model.layers().iter().map(|l| l.kind()).collect();
    assert_eq!(
        kinds,
        [
            "transpose",
            "conv2d",
            "relu",
            "transpose",
            "flatten",
            "dense"
        ],
        "{}",
        imp.model.describe()
    );
    assert_eq!(
        imp.model.input_shape(),
        network::Shape::Image { c: 3, h: 4, w: 2 }
    );
    // The export writes the transposes back; the file reads back as the same model and
    // tract runs it.
    let bytes = onnx_io::model_to_onnx_as(&imp.model, onnx_io::ElemType::F32).encode_to_vec();
    let back = import_onnx(&bytes, "back").unwrap();
    assert_eq!(back.model, imp.model);
    agrees("nhwc net exported", &bytes, &[1, 3, 4, 2]);

    let after_conv = model(
        &[1, 2, 3, 3],
        vec![
            node("Conv", &["x", "K"], "a", vec![]),
            node("Mul", &["a", "h"], "a2", vec![]),
            node(
                "Transpose",
                &["a2"],
                "t",
                vec![attr_is("perm", &[0, 2, 3, 1])],
            ),
            node("Relu", &["t"], "r", vec![]),
            node("Flatten", &["r"], "f", vec![attr_i("axis", 1)]),
            node("Gemm", &["f", "W"], "y", vec![attr_i("transB", 1)]),
        ],
        vec![
            tensor("K", &[2, 2, 2, 2], &rand_vec(&mut rng, 16)),
            tensor("h", &[], &[0.5]),
            tensor("W", &[3, 8], &rand_vec(&mut rng, 24)),
        ],
        "y",
        &[1, 3],
    );
    agrees("transpose after a conv", &after_conv, &[1, 2, 3, 3]);
    // Per channel of an NHWC input: a [C] constant broadcasts along the last axis
    // (NumPy's rule), then the transpose permutes the folded map with the data.
    let nhwc_norm = model(
        &[1, 3, 4, 2],
        vec![
            node("Sub", &["x", "mean"], "xm", vec![]),
            node("Div", &["xm", "sd"], "xs", vec![]),
            node(
                "Transpose",
                &["xs"],
                "t",
                vec![attr_is("perm", &[0, 3, 1, 2])],
            ),
            node("Conv", &["t", "K"], "a", vec![]),
            node("Relu", &["a"], "r", vec![]),
            node("Flatten", &["r"], "f", vec![attr_i("axis", 1)]),
            node("MatMul", &["f", "W"], "y", vec![]),
        ],
        vec![
            tensor("mean", &[2], &[0.5, -0.25]),
            tensor("sd", &[1, 1, 1, 2], &[0.5, 2.0]),
            tensor("K", &[3, 2, 2, 2], &rand_vec(&mut rng, 24)),
            tensor("W", &[18, 2], &rand_vec(&mut rng, 36)),
        ],
        "y",
        &[1, 2],
    );
    agrees("nhwc per-channel normalisation", &nhwc_norm, &[1, 3, 4, 2]);
    // A conv with one output channel back into NHWC: the transpose moves only an axis of
    // size 1 (no data), yet the image changes dims: a transpose node, not a refusal.
    let one_channel = model(
        &[1, 2, 3, 3],
        vec![
            node("Conv", &["x", "K"], "a", vec![]),
            node(
                "Transpose",
                &["a"],
                "t",
                vec![attr_is("perm", &[0, 2, 3, 1])],
            ),
            node("Relu", &["t"], "r", vec![]),
            node("Flatten", &["r"], "f", vec![attr_i("axis", 1)]),
            node("MatMul", &["f", "W"], "y", vec![]),
        ],
        vec![
            tensor("K", &[1, 2, 2, 2], &rand_vec(&mut rng, 8)),
            tensor("W", &[4, 2], &rand_vec(&mut rng, 8)),
        ],
        "y",
        &[1, 2],
    );
    agrees(
        "one-channel conv back into NHWC",
        &one_channel,
        &[1, 2, 3, 3],
    );
    // The graph input read by two nodes, one of them through a transpose that keeps the
    // data order but changes the image's dims: the input keeps its declared shape for the
    // other reader (the relabelling it allows with one reader would change it for both).
    let two_readers = model(
        &[1, 2, 1, 3],
        vec![
            node(
                "Transpose",
                &["x"],
                "t",
                vec![attr_is("perm", &[0, 1, 3, 2])],
            ),
            node(
                "Conv",
                &["t", "K1"],
                "a",
                vec![attr_is("pads", &[1, 1, 1, 1])],
            ),
            node("Flatten", &["a"], "fa", vec![attr_i("axis", 1)]),
            node(
                "Conv",
                &["x", "K2"],
                "b",
                vec![attr_is("pads", &[1, 1, 1, 1])],
            ),
            node("Flatten", &["b"], "fb", vec![attr_i("axis", 1)]),
            node("Add", &["fa", "fb"], "s", vec![]),
            node("Relu", &["s"], "r", vec![]),
            node("MatMul", &["r", "W"], "y", vec![]),
        ],
        vec![
            // 3x3 kernels padded by 1 fit both [2, 3, 1] and [2, 1, 3]: read with the
            // wrong shape, the second conv would still run (on the wrong pixels).
            tensor("K1", &[1, 2, 3, 3], &rand_vec(&mut rng, 18)),
            tensor("K2", &[1, 2, 3, 3], &rand_vec(&mut rng, 18)),
            tensor("W", &[3, 2], &rand_vec(&mut rng, 6)),
        ],
        "y",
        &[1, 2],
    );
    agrees("graph input read by two nodes", &two_readers, &[1, 2, 1, 3]);
    // A scale that differs within a channel cannot fold into a conv: the error says so.
    let mut nodes = vec![node("Mul", &["x", "s"], "xs", vec![])];
    nodes.push(node(
        "Transpose",
        &["xs"],
        "t",
        vec![attr_is("perm", &[0, 3, 1, 2])],
    ));
    nodes.push(node("Conv", &["t", "K"], "y", vec![]));
    refused(
        "per-pixel scale before a conv",
        &model(
            &[1, 3, 4, 2],
            nodes,
            vec![
                tensor("s", &[1, 3, 4, 2], &rand_vec(&mut rng, 24)),
                tensor("K", &[3, 2, 2, 2], &rand_vec(&mut rng, 24)),
            ],
            "y",
            &[1, 3, 2, 3],
        ),
        &["node 2", "Conv", "differs between pixels of input channel"],
    );
}

#[test]
fn refusals_name_the_node_and_the_reason() {
    let w = tensor("W", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let relu_mm = |first: pb::NodeProto, extra: Vec<pb::TensorProto>| {
        let mut inits = vec![w.clone()];
        inits.extend(extra);
        model(
            &[1, 2],
            vec![
                first,
                node("Relu", &["a"], "r", vec![]),
                node("MatMul", &["r", "W"], "y", vec![]),
            ],
            inits,
            "y",
            &[1, 2],
        )
    };
    refused(
        "sigmoid",
        &relu_mm(node("Sigmoid", &["x"], "a", vec![]), vec![]),
        &["node 0", "Sigmoid", "not supported"],
    );
    refused(
        "division that rounds",
        &model(
            &[1, 2],
            vec![
                node("Div", &["x", "three"], "d", vec![]),
                node("MatMul", &["d", "W"], "y", vec![]),
            ],
            vec![w.clone(), tensor("three", &[], &[3.0])],
            "y",
            &[1, 2],
        ),
        &["node 0", "Div", "rounds"],
    );
    refused(
        "difference of two branches",
        &model(
            &[1, 2],
            vec![
                node("MatMul", &["x", "W"], "a", vec![]),
                node("Relu", &["a"], "r", vec![]),
                node("Sub", &["r", "x"], "y", vec![]),
            ],
            vec![w.clone()],
            "y",
            &[1, 2],
        ),
        &["node 2", "Sub", "only Add (a residual connection)"],
    );
    refused(
        "batch norm",
        &model(
            &[1, 2],
            vec![
                node("MatMul", &["x", "W"], "a", vec![]),
                node(
                    "BatchNormalization",
                    &["a", "g", "g", "g", "g"],
                    "y",
                    vec![],
                ),
            ],
            vec![w.clone(), tensor("g", &[2], &[1.0, 3.0])],
            "y",
            &[1, 2],
        ),
        &["node 1", "BatchNormalization", "rounds", "round_batchnorm"],
    );
    refused(
        "a transpose that moves a non-1 axis before the image's three",
        &model(
            &[1, 2, 3, 4],
            vec![node(
                "Transpose",
                &["x"],
                "t",
                vec![attr_is("perm", &[2, 1, 0, 3])],
            )],
            vec![],
            "t",
            &[3, 2, 1, 4],
        ),
        &[
            "node 0",
            "Transpose",
            "moves data",
            "from an image into an image",
        ],
    );
    refused(
        "grouped conv",
        &model(
            &[1, 2, 3, 3],
            vec![node("Conv", &["x", "K"], "y", vec![attr_i("group", 2)])],
            vec![tensor("K", &[2, 1, 2, 2], &[1.0; 8])],
            "y",
            &[1, 2, 2, 2],
        ),
        &["node 0", "Conv", "group"],
    );
    let mut nan = w.clone();
    nan.float_data[1] = f32::NAN;
    refused(
        "nan weight",
        &model(
            &[1, 2],
            vec![node("MatMul", &["x", "W"], "y", vec![])],
            vec![nan],
            "y",
            &[1, 2],
        ),
        &["tensor \"W\"", "non-finite"],
    );
    refused(
        "shape mismatch",
        &model(
            &[1, 3],
            vec![node("MatMul", &["x", "W"], "y", vec![])],
            vec![w.clone()],
            "y",
            &[1, 2],
        ),
        &["node 0", "MatMul", "K = 3"],
    );
    refused(
        "not protobuf",
        b"\xff\xff\xff garbage",
        &["not an ONNX model"],
    );
    let mut short = w.clone();
    short.float_data.clear();
    short.raw_data = vec![0u8; 12];
    refused(
        "raw bytes of the wrong length",
        &model(
            &[1, 2],
            vec![node("MatMul", &["x", "W"], "y", vec![])],
            vec![short],
            "y",
            &[1, 2],
        ),
        &[
            "tensor \"W\"",
            "float tensor of 4 values holds 12 raw bytes",
        ],
    );
}

#[test]
fn division_and_channel_scaling_fold_into_a_pending_layer_when_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    // Weights and biases multiples of 3/8: dividing by 3 is exact (1/3 is not a double).
    let w: Vec<f32> = rand_vec(&mut rng, 6).iter().map(|v| v * 3.0).collect();
    let b: Vec<f32> = rand_vec(&mut rng, 3).iter().map(|v| v * 3.0).collect();
    let bytes = model(
        &[1, 2],
        vec![
            node("MatMul", &["x", "W"], "a", vec![]),
            node("Add", &["a", "b"], "a2", vec![]),
            node("Div", &["a2", "three"], "y", vec![]),
        ],
        vec![
            tensor("W", &[2, 3], &w),
            tensor("b", &[3], &b),
            tensor("three", &[], &[3.0]),
        ],
        "y",
        &[1, 3],
    );
    agrees("exact division of a dense layer", &bytes, &[1, 2]);
    // A convolution's output scaled per channel ([1, C, 1, 1]), then divided by 2.
    let conv = model(
        &[1, 1, 3, 3],
        vec![
            node("Conv", &["x", "K", "kb"], "a", vec![]),
            node("Mul", &["a", "s"], "b", vec![]),
            node("Div", &["b", "two"], "c", vec![]),
            node("Relu", &["c"], "r", vec![]),
            node("Flatten", &["r"], "f", vec![]),
            node("MatMul", &["f", "W"], "y", vec![]),
        ],
        vec![
            tensor("K", &[2, 1, 2, 2], &rand_vec(&mut rng, 8)),
            tensor("kb", &[2], &rand_vec(&mut rng, 2)),
            tensor("s", &[1, 2, 1, 1], &[0.5, -4.0]),
            tensor("two", &[], &[2.0]),
            tensor("W", &[8, 2], &rand_vec(&mut rng, 16)),
        ],
        "y",
        &[1, 2],
    );
    agrees("per-channel scaling of a convolution", &conv, &[1, 1, 3, 3]);
    // Dividing a dense layer by 3 when its weights are not multiples of 3 rounds: refused.
    let rounds = model(
        &[1, 2],
        vec![
            node("MatMul", &["x", "W"], "a", vec![]),
            node("Div", &["a", "three"], "y", vec![]),
        ],
        vec![
            tensor("W", &[2, 2], &[1.0, 2.0, 0.5, 0.25]),
            tensor("three", &[], &[3.0]),
        ],
        "y",
        &[1, 2],
    );
    refused("inexact division", &rounds, &["node 1", "Div", "rounds"]);
}

/// Graphs the graph model carries (issue 11): a residual `Add` of two computed tensors
/// (dense and conv, with the skip from the input and from a ReLU), two affine maps with
/// no ReLU between, and a ReLU of the input; each equals tract's forward pass exactly.
#[test]
fn residual_and_affine_after_affine_graphs_import() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let w = tensor("W", &[2, 2], &rand_vec(&mut rng, 4));
    let v = tensor("V", &[2, 2], &rand_vec(&mut rng, 4));
    agrees(
        "relu(x W) + x",
        &model(
            &[1, 2],
            vec![
                node("MatMul", &["x", "W"], "a", vec![]),
                node("Relu", &["a"], "r", vec![]),
                node("Add", &["r", "x"], "y", vec![]),
            ],
            vec![w.clone()],
            "y",
            &[1, 2],
        ),
        &[1, 2],
    );
    agrees(
        "x W V (affine after affine) then relu, skip, head",
        &model(
            &[1, 2],
            vec![
                node("MatMul", &["x", "W"], "a", vec![]),
                node("MatMul", &["a", "V"], "b", vec![]),
                node("Relu", &["b"], "r", vec![]),
                node("MatMul", &["r", "W"], "c", vec![]),
                node("Add", &["c", "r"], "s", vec![]),
                node("Relu", &["s"], "t", vec![]),
                node("MatMul", &["t", "V"], "y", vec![]),
            ],
            vec![w.clone(), v.clone()],
            "y",
            &[1, 2],
        ),
        &[1, 2],
    );
    agrees(
        "relu of the input",
        &model(
            &[1, 2],
            vec![
                node("Relu", &["x"], "r", vec![]),
                node("MatMul", &["r", "W"], "y", vec![]),
            ],
            vec![w.clone()],
            "y",
            &[1, 2],
        ),
        &[1, 2],
    );
    // A conv residual block: y = flatten(relu(conv2(relu(conv1(x))) + x)) W.
    let k1 = tensor("K1", &[2, 2, 3, 3], &rand_vec(&mut rng, 36));
    let k2 = tensor("K2", &[2, 2, 3, 3], &rand_vec(&mut rng, 36));
    let b1 = tensor("B1", &[2], &rand_vec(&mut rng, 2));
    let head = tensor("H", &[18, 2], &rand_vec(&mut rng, 36));
    let pads = || {
        vec![
            attr_is("pads", &[1, 1, 1, 1]),
            attr_is("kernel_shape", &[3, 3]),
        ]
    };
    agrees(
        "conv residual block",
        &model(
            &[1, 2, 3, 3],
            vec![
                node("Conv", &["x", "K1", "B1"], "c1", pads()),
                node("Relu", &["c1"], "r1", vec![]),
                node("Conv", &["r1", "K2"], "c2", pads()),
                node("Add", &["c2", "x"], "s", vec![]),
                node("Relu", &["s"], "r2", vec![]),
                node("Flatten", &["r2"], "f", vec![attr_i("axis", 1)]),
                node("MatMul", &["f", "H"], "y", vec![]),
            ],
            vec![k1, k2, b1, head],
            "y",
            &[1, 2],
        ),
        &[1, 2, 3, 3],
    );
    // Average pooling (2x2, stride 2) after a conv and its ReLU, exported and re-imported.
    let k3 = tensor("K3", &[2, 1, 3, 3], &rand_vec(&mut rng, 18));
    let head2 = tensor("H2", &[8, 2], &rand_vec(&mut rng, 16));
    let pooled = model(
        &[1, 1, 4, 4],
        vec![
            node("Conv", &["x", "K3"], "c", pads()),
            node("Relu", &["c"], "r", vec![]),
            node(
                "AveragePool",
                &["r"],
                "p",
                vec![
                    attr_is("kernel_shape", &[2, 2]),
                    attr_is("strides", &[2, 2]),
                ],
            ),
            node("Flatten", &["p"], "f", vec![attr_i("axis", 1)]),
            node("MatMul", &["f", "H2"], "y", vec![]),
        ],
        vec![k3, head2],
        "y",
        &[1, 2],
    );
    agrees("conv, relu, 2x2 average pooling", &pooled, &[1, 1, 4, 4]);
    let m = import_onnx(&pooled, "pool").unwrap().model;
    let again = import_onnx(&onnx_io::model_to_onnx(&m).encode_to_vec(), "again")
        .unwrap()
        .model;
    assert_eq!(again, m);
}

/// A `Conv -> BatchNormalization -> Relu -> Flatten -> Gemm -> BatchNormalization` net.
fn batchnorm_net(eps: f32, var: [f32; 2], var_out: [f32; 3]) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    model(
        &[1, 1, 4, 4],
        vec![
            node("Conv", &["x", "K", "c"], "a", vec![]),
            node(
                "BatchNormalization",
                &["a", "g", "b", "m", "v"],
                "n",
                vec![attr_f("epsilon", eps)],
            ),
            node("Relu", &["n"], "r", vec![]),
            node("Flatten", &["r"], "f", vec![attr_i("axis", 1)]),
            node("Gemm", &["f", "W", "bias"], "z", vec![attr_i("transB", 1)]),
            node(
                "BatchNormalization",
                &["z", "g2", "b2", "m2", "v2"],
                "y",
                vec![attr_f("epsilon", eps)],
            ),
        ],
        vec![
            tensor("K", &[2, 1, 3, 3], &rand_vec(&mut rng, 18)),
            tensor("c", &[2], &rand_vec(&mut rng, 2)),
            tensor("g", &[2], &[1.0, -0.5]),
            tensor("b", &[2], &[0.25, -0.125]),
            tensor("m", &[2], &[0.5, 1.0]),
            tensor("v", &[2], &var),
            tensor("W", &[3, 8], &rand_vec(&mut rng, 24)),
            tensor("bias", &[3], &rand_vec(&mut rng, 3)),
            tensor("g2", &[3], &[2.0, 1.0, 0.5]),
            tensor("b2", &[3], &[0.0, 0.5, -1.0]),
            tensor("m2", &[3], &[0.125, 0.0, -0.25]),
            tensor("v2", &[3], &var_out),
        ],
        "y",
        &[1, 3],
    )
}

#[test]
fn batchnorm_folds_exactly_when_it_can_and_rounds_only_when_asked() {
    // eps 0 and variances 4, 1/4, 1, 16, 1/16: every scale / sqrt(var) is a double, so the
    // fold is exact and the model equals tract's run of the file exactly.
    let exact = batchnorm_net(0.0, [4.0, 0.25], [1.0, 16.0, 0.0625]);
    agrees("batch norm, exact", &exact, &[1, 1, 4, 4]);
    let imp = import_onnx(&exact, "bn.onnx").unwrap();
    assert!(imp.rounded.is_empty(), "{:?}", imp.rounded);
    assert_eq!(
        imp.folded
            .iter()
            .filter(|f| f.contains("BatchNormalization"))
            .count(),
        2
    );
    // The default eps (1e-5) and variance 3: the fold rounds, so it is refused unless asked.
    let rounding = batchnorm_net(1e-5, [3.0, 0.7], [1.3, 2.0, 0.5]);
    let e = import_onnx(&rounding, "bn.onnx").unwrap_err().to_string();
    assert!(
        e.contains("node 1") && e.contains("BatchNormalization") && e.contains("--round-batchnorm"),
        "{e}"
    );
    let opts = ImportOptions {
        round_batchnorm: true,
    };
    let imp = import_onnx_with(&rounding, "bn.onnx", &opts).unwrap();
    assert_eq!(imp.rounded.len(), 2, "{:?}", imp.rounded);
    assert!(imp.rounded[0].contains("node 1"), "{:?}", imp.rounded);
    // The rounded fold agrees with tract (f32 throughout) to f32 rounding.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..10 {
        let x: Vec<f64> = rand_vec(&mut rng, 16).iter().map(|&v| v as f64).collect();
        let ours = imp.model.forward(&x).unwrap();
        let theirs = tract_run(&rounding, &[1, 1, 4, 4], &x);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                "{ours:?} vs {theirs:?}"
            );
        }
    }
    // Not after an affine map: refused, also with rounding allowed.
    let after_relu = model(
        &[1, 2],
        vec![
            node("Relu", &["x"], "r", vec![]),
            node(
                "BatchNormalization",
                &["r", "g", "g", "g", "g"],
                "y",
                vec![],
            ),
        ],
        vec![tensor("g", &[2], &[1.0, 1.0])],
        "y",
        &[1, 2],
    );
    // A variance that makes var + eps zero or negative is named as such.
    let bad = batchnorm_net(0.0, [4.0, 0.0], [1.0, 16.0, 0.0625]);
    let e = import_onnx_with(&bad, "bn.onnx", &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("channel 1: var + epsilon must be positive"),
        "{e}"
    );
    let e = import_onnx_with(&after_relu, "g.onnx", &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("node 1") && e.contains("directly after a Conv, Gemm or MatMul"),
        "{e}"
    );
}
