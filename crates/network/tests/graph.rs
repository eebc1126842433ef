//! Graph models (`network::graph`): the lowering to the layered normal form computes the
//! very function the graph describes (checked in exact arithmetic against an interpreter
//! that walks the nodes and never sees the lowering), its blocks keep their invariant and
//! their four kernels agree, version-2 files round-trip, and malformed graphs are clear
//! errors naming the node.

use network::{
    load_model, model_from_json, model_to_json, objective_exact, preactivations_exact,
    residual_net, Dyadic, Init, Layer, LinearOp, Model, Node, Shape, Source,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn testdata(p: &str) -> String {
    format!("{}/../../testdata/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn d(v: f64) -> Dyadic {
    Dyadic::from_f64(v).unwrap()
}

/// The graph's function in exact arithmetic, node by node: each dense or conv node as a
/// one-layer model of its own (its rows by `for_each_in_row`), relu, flatten and add
/// elementwise. Shares nothing with the lowering but the single-layer operators.
fn interpret(model: &Model, x: &[f64]) -> Vec<Dyadic> {
    let nodes = model.nodes();
    let mut vals: Vec<(Vec<Dyadic>, Shape)> = Vec::new();
    let input = (x.iter().map(|&v| d(v)).collect(), model.input_shape());
    for node in &nodes {
        let get = |s: &Source| match s {
            Source::Input => input.clone(),
            Source::Node(j) => vals[*j].clone(),
        };
        let (v, shape) = get(&node.inputs[0]);
        let out = match &node.layer {
            Layer::Dense { .. } | Layer::Conv2d { .. } => {
                let one = Model::new(shape, vec![node.layer.clone()]).unwrap();
                let a = &one.affine()[0];
                // The bias as the node states it: per output (dense), per channel (conv).
                let bias = |k: usize| match &node.layer {
                    Layer::Dense { bias, .. } => bias[k],
                    Layer::Conv2d { bias, .. } => bias[k / (a.op.n_out() / bias.len())],
                    _ => 0.0,
                };
                let mut out = Vec::new();
                for k in 0..a.op.n_out() {
                    let mut acc = d(bias(k));
                    a.op.for_each_in_row(k, |j, w| acc = acc.add(&d(w).mul(&v[j])));
                    out.push(acc);
                }
                (out, a.out_shape)
            }
            Layer::AvgPool2d {
                kernel: k,
                stride: s,
            } => {
                // The window means, written out (no convolution).
                let Shape::Image { c, h, w } = shape else {
                    panic!("pooling a vector")
                };
                let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
                let inv = d(1.0 / (k * k) as f64);
                let mut out = Vec::new();
                for ch in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = d(0.0);
                            for dy in 0..*k {
                                for dx in 0..*k {
                                    acc = acc.add(&v[(ch * h + oy * s + dy) * w + ox * s + dx]);
                                }
                            }
                            out.push(acc.mul(&inv));
                        }
                    }
                }
                (out, Shape::Image { c, h: oh, w: ow })
            }
            Layer::Transpose { perm } => {
                // Output (a, b, e) is the input at the coordinates it names: input axis
                // perm[0] at a, perm[1] at b, perm[2] at e.
                let Shape::Image { c, h, w } = shape else {
                    panic!("transposing a vector")
                };
                let dims = [c, h, w];
                let od = perm.map(|p| dims[p]);
                let mut out = Vec::new();
                for a in 0..od[0] {
                    for b in 0..od[1] {
                        for e in 0..od[2] {
                            let mut at = [0; 3];
                            at[perm[0]] = a;
                            at[perm[1]] = b;
                            at[perm[2]] = e;
                            out.push(v[(at[0] * h + at[1]) * w + at[2]].clone());
                        }
                    }
                }
                let [c, h, w] = od;
                (out, Shape::Image { c, h, w })
            }
            Layer::Relu => (v.iter().map(Dyadic::relu).collect(), shape),
            Layer::Flatten => (v, Shape::Flat(shape.numel())),
            Layer::Add => {
                let (w, _) = get(&node.inputs[1]);
                (v.iter().zip(&w).map(|(a, b)| a.add(b)).collect(), shape)
            }
        };
        vals.push(out);
    }
    vals.pop().unwrap().0
}

fn random_input(model: &Model, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..model.input_len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect()
}

fn assert_lowering_exact(model: &Model, rng: &mut ChaCha8Rng, what: &str) {
    for _ in 0..5 {
        let x = random_input(model, rng);
        let lowered = preactivations_exact(model, &x).unwrap().pop().unwrap();
        let want = interpret(model, &x);
        // (Dyadic's == compares representations; cmp compares values.)
        assert_eq!(lowered.len(), want.len());
        for (a, b) in lowered.iter().zip(&want) {
            assert_eq!(
                a.cmp(b),
                std::cmp::Ordering::Equal,
                "{what}: lowered model differs from the graph"
            );
        }
        // The f64 forward pass agrees to rounding.
        let f = model.forward(&x).unwrap();
        for (a, b) in f.iter().zip(&want) {
            let e = b.to_f64();
            assert!(
                (a - e).abs() <= 1e-12 * (1.0 + e.abs()),
                "{what}: {a} vs {e}"
            );
        }
    }
}

/// Residual networks, dense and conv, with and without an input normalisation (affine
/// after affine), lower to a normal form with linear units, and compute the graph's
/// function exactly.
#[test]
fn residual_graphs_lower_exactly() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (shape, width, blocks, normalise) in [
        (Shape::Flat(3), 5, 1, false),
        (Shape::Flat(4), 6, 3, true),
        (Shape::Image { c: 2, h: 4, w: 4 }, 2, 1, false),
        (Shape::Image { c: 1, h: 5, w: 3 }, 3, 2, true),
    ] {
        let m = residual_net(shape, width, blocks, 3, normalise, Init::Paper, 7).unwrap();
        let what = format!("{shape} width {width} blocks {blocks} normalise {normalise}");
        assert!(!m.is_chain() && !m.is_plain(), "{what}");
        // Skips are carried by linear units: some hidden layer has some.
        assert!(
            (0..m.hidden_layers()).any(|t| m.relu_units(t) < m.affine()[t].op.n_out()),
            "{what}: no linear unit"
        );
        assert_lowering_exact(&m, &mut rng, &what);
    }
}

/// Graphs that force the lowering's special cases: `x + x` and `h + W h` (two terms would
/// read one slot into one output: one branch becomes a slot of its own), an add of two
/// biased branches whose bias sum is inexact, relu of the input, relu of relu, a model that
/// ends in relu, a skip from the input over two layers.
#[test]
fn corner_case_graphs_lower_exactly() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let dense = |rng: &mut ChaCha8Rng, o: usize, i: usize| Layer::Dense {
        weight: (0..o * i).map(|_| rng.random_range(-1.0..1.0)).collect(),
        bias: (0..o).map(|_| rng.random_range(-1.0..1.0) * 0.1).collect(),
        out_features: o,
        in_features: i,
    };
    let node = |name: &str, layer: Layer, inputs: &[Source]| Node {
        name: name.into(),
        layer,
        inputs: inputs.to_vec(),
    };
    use Source::{Input, Node as N};
    let graphs: Vec<(&str, Vec<Node>)> = vec![
        (
            "x + x",
            vec![
                node("a", dense(&mut rng, 3, 3), &[Input]),
                node("r", Layer::Relu, &[N(0)]),
                node("s", Layer::Add, &[N(1), N(1)]),
                node("o", dense(&mut rng, 2, 3), &[N(2)]),
            ],
        ),
        (
            "h + W h",
            vec![
                node("a", dense(&mut rng, 3, 3), &[Input]),
                node("r", Layer::Relu, &[N(0)]),
                node("b", dense(&mut rng, 3, 3), &[N(1)]),
                node("s", Layer::Add, &[N(1), N(2)]),
                node("t", Layer::Add, &[N(2), N(1)]),
                node("u", Layer::Add, &[N(3), N(4)]),
                node("o", dense(&mut rng, 2, 3), &[N(5)]),
            ],
        ),
        (
            "two biased branches, relu of input, relu of relu, relu last",
            vec![
                node("ri", Layer::Relu, &[Input]),
                node("a", dense(&mut rng, 3, 3), &[N(0)]),
                node("b", dense(&mut rng, 3, 3), &[Input]),
                node("s", Layer::Add, &[N(1), N(2)]),
                node("r", Layer::Relu, &[N(3)]),
                node("rr", Layer::Relu, &[N(4)]),
                node("o", dense(&mut rng, 2, 3), &[N(5)]),
                node("or", Layer::Relu, &[N(6)]),
            ],
        ),
        (
            "skip from the input over two layers",
            vec![
                node("a", dense(&mut rng, 4, 3), &[Input]),
                node("r", Layer::Relu, &[N(0)]),
                node("b", dense(&mut rng, 3, 4), &[N(1)]),
                node("rb", Layer::Relu, &[N(2)]),
                node("s", Layer::Add, &[N(3), Input]),
                node("o", dense(&mut rng, 2, 3), &[N(4)]),
            ],
        ),
    ];
    for (what, nodes) in graphs {
        let m = Model::from_graph(Shape::Flat(3), nodes).unwrap();
        assert_lowering_exact(&m, &mut rng, what);
        check_blocks(&m, what);
    }
    // The biased-branch sum above is inexact for these random biases, so one branch was
    // kept as a slot: more than the two affine maps of a chain.
}

/// Every block: no input unit and output unit are covered by two terms (the invariant
/// Algorithm 1's exact copies and the LP rows rely on); `apply`, `for_each_in_row`,
/// `add_unit_column` and `apply_transpose` give the same matrix.
fn check_blocks(m: &Model, what: &str) {
    for (t, a) in m.affine().iter().enumerate() {
        let (ni, no) = (a.op.n_in(), a.op.n_out());
        if let LinearOp::Block { terms, .. } = &a.op {
            for (i, p) in terms.iter().enumerate() {
                for q in &terms[i + 1..] {
                    let ins = p.in_offset < q.in_offset + q.op.n_in()
                        && q.in_offset < p.in_offset + p.op.n_in();
                    let outs = p.out_offset < q.out_offset + q.op.n_out()
                        && q.out_offset < p.out_offset + p.op.n_out();
                    assert!(!(ins && outs), "{what}: layer {t}: two terms overlap");
                }
                assert!(
                    !matches!(p.op, LinearOp::Block { .. }),
                    "{what}: nested block"
                );
            }
        }
        // Column j by apply(e_j) and add_unit_column; row k by for_each_in_row.
        let mut eye = vec![0.0; ni * ni];
        for j in 0..ni {
            eye[j * ni + j] = 1.0;
        }
        let mut by_apply = vec![0.0; no * ni];
        a.op.apply(&eye, ni, &mut by_apply);
        let mut by_rows = vec![0.0; no * ni];
        for k in 0..no {
            a.op.for_each_in_row(k, |j, w| by_rows[j * no + k] += w);
        }
        let mut by_cols = vec![0.0; no * ni];
        for j in 0..ni {
            a.op.add_unit_column(j, 1.0, &mut by_cols[j * no..(j + 1) * no]);
        }
        let mut eye_out = vec![0.0; no * no];
        for k in 0..no {
            eye_out[k * no + k] = 1.0;
        }
        let mut by_transpose = vec![0.0; ni * no];
        a.op.apply_transpose(&eye_out, no, &mut by_transpose);
        for j in 0..ni {
            for k in 0..no {
                let w = by_rows[j * no + k];
                assert_eq!(by_apply[j * no + k], w, "{what}: layer {t} ({k}, {j})");
                assert_eq!(by_cols[j * no + k], w, "{what}: layer {t} ({k}, {j})");
                assert_eq!(by_transpose[k * ni + j], w, "{what}: layer {t} ({k}, {j})");
            }
        }
        // |W|: the same matrix in absolute value; the column sums the dual's error
        // bounds use are at least the exact ones.
        for j in 0..ni {
            let s: f64 = (0..no).map(|k| by_rows[j * no + k].abs()).sum();
            assert!(
                a.col_abs_sum[j] >= s * (1.0 - 1e-15),
                "{what}: column sum {j}"
            );
        }
        // The error analyses' operation counts: a copy is one operation, anything else
        // at least its input size.
        let copy = matches!(
            a.op,
            LinearOp::Identity { .. } | LinearOp::Permutation { .. }
        );
        assert!(a.op.dot_len() >= if copy { 1 } else { ni });
        assert!(a.op.dot_len_t() >= 1);
        assert_eq!(a.in_shape.numel(), ni, "{what}: layer {t} input shape");
        assert_eq!(a.out_shape.numel(), no, "{what}: layer {t} output shape");
    }
}

#[test]
fn residual_blocks_keep_their_invariant() {
    for (shape, normalise) in [
        (Shape::Flat(4), true),
        (Shape::Image { c: 2, h: 3, w: 3 }, true),
    ] {
        let m = residual_net(shape, 3, 2, 2, normalise, Init::Standard, 1).unwrap();
        check_blocks(&m, &shape.to_string());
    }
}

/// The committed examples of what version 1 used to refuse: two affine maps with no
/// ReLU between (a layer of linear units) and a model that ends in a ReLU.
#[test]
fn affine_after_affine_and_relu_last_load() {
    let m = load_model(testdata("graph/affine_after_affine.json")).unwrap();
    assert_eq!(m.hidden_layers(), 1);
    assert_eq!(m.relu_units(0), 0, "the inner value is linear");
    assert!(m.is_chain() && !m.is_plain());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    assert_lowering_exact(&m, &mut rng, "affine after affine");
    let r = load_model(testdata("graph/relu_last.json")).unwrap();
    assert_lowering_exact(&r, &mut rng, "relu last");
    for _ in 0..10 {
        let x = random_input(&r, &mut rng);
        assert!(r.forward(&x).unwrap().iter().all(|&v| v >= 0.0));
    }
}

/// Version 2 files: a graph saves as version 2 with names and inputs and loads back equal
/// (bit-identical weights); a chain still saves as version 1.
#[test]
fn version_2_round_trips() {
    let m = residual_net(Shape::Flat(3), 4, 2, 2, true, Init::Paper, 9).unwrap();
    let text = model_to_json(&m, None);
    assert!(text.contains("\"version\":2") && text.contains("\"nodes\""));
    let (back, _) = model_from_json(&text, "mem").unwrap();
    assert_eq!(back, m);
    let x = [0.1, -0.2, 0.3];
    let c = [1.0, -1.0];
    assert_eq!(
        objective_exact(&back, x, c)
            .unwrap()
            .cmp(&objective_exact(&m, x, c).unwrap()),
        std::cmp::Ordering::Equal
    );
    let chain = network::Architecture::mlp(&[3, 4, 2])
        .init(Init::Paper, 0)
        .unwrap();
    assert!(model_to_json(&chain, None).contains("\"version\":1"));
    assert!(m.describe().contains("block0_add <- stem_relu + block0_b"));
}

/// Malformed graphs are errors naming the node (its index as `layer i`) and the problem.
#[test]
fn malformed_graphs_are_clear_errors() {
    let dense = |name: &str, inputs: &str, o: usize, i: usize| {
        format!(
            r#"{{"name": "{name}", "type": "dense", "inputs": {inputs}, "weight": {w}, "bias": {b}}}"#,
            w = serde_json::to_string(&vec![vec![0.5; i]; o]).unwrap(),
            b = serde_json::to_string(&vec![0.0; o]).unwrap()
        )
    };
    let file = |nodes: Vec<String>| {
        format!(
            r#"{{"format": "convex-outer-model", "version": 2, "input_shape": [3], "nodes": [{}]}}"#,
            nodes.join(", ")
        )
    };
    let cases: Vec<(String, &[&str])> = vec![
        (
            r#"{"format": "convex-outer-model", "version": 3, "input_shape": [3], "nodes": []}"#.into(),
            &["version 3 is not supported", "versions 1 and 2"],
        ),
        (
            r#"{"format": "convex-outer-model", "version": "2", "input_shape": [3], "nodes": []}"#.into(),
            &["missing or non-integer \"version\""],
        ),
        (
            file(vec![
                dense("a", r#"["input"]"#, 4, 3),
                r#"{"name": "s", "type": "add", "inputs": ["a", "input"]}"#.into(),
            ]),
            &["layer 1 (add)", "two inputs of one shape", "[4]", "[3]"],
        ),
        (
            file(vec![
                dense("a", r#"["b"]"#, 3, 3),
                dense("b", r#"["input"]"#, 3, 3),
            ]),
            &["layer 0 (dense)", "reads \"b\"", "not the name of an earlier node"],
        ),
        (
            file(vec![
                dense("a", r#"["input"]"#, 3, 3),
                dense("a", r#"["a"]"#, 3, 3),
            ]),
            &["layer 1 (dense)", "name \"a\" is already taken"],
        ),
        (
            file(vec![dense("input", r#"["input"]"#, 3, 3)]),
            &["layer 0 (dense)", "name \"input\" is already taken"],
        ),
        (
            file(vec![
                r#"{"name": "s", "type": "add", "inputs": ["input"]}"#.into(),
            ]),
            &["layer 0", "add node \"s\" reads 1 values but takes 2"],
        ),
        (
            file(vec![r#"{"type": "relu", "inputs": ["input"]}"#.into()]),
            &["layer 0 (relu)", "missing \"name\""],
        ),
        (
            file(vec![
                r#"{"name": "", "type": "relu", "inputs": ["input"]}"#.into(),
            ]),
            &["layer 0 (relu)", "\"name\" must be a non-empty string"],
        ),
        (
            file(vec![r#"{"name": "r", "type": "relu"}"#.into()]),
            &["layer 0 (relu)", "missing \"inputs\""],
        ),
        (
            r#"{"format": "convex-outer-model", "version": 1, "input_shape": [3], "layers": [{"type": "add"}]}"#.into(),
            &["layer 0 (add)", "version 2"],
        ),
        (
            r#"{"format": "convex-outer-model", "version": 1, "input_shape": [3], "layers": [{"type": "relu", "inputs": ["input"]}]}"#.into(),
            &["layer 0 (relu)", "unknown key \"inputs\""],
        ),
    ];
    for (text, fragments) in cases {
        let err = model_from_json(&text, "g.json").unwrap_err().to_string();
        assert!(err.starts_with("g.json: "), "{err}");
        for f in fragments {
            assert!(err.contains(f), "{err:?} lacks {f:?}");
        }
    }
}

/// The worked example of ARCHITECTURE.md's "How to add a node kind": average pooling is
/// a convolution with the fixed weight `1/k^2` per channel; it lowers to a conv operator
/// (no bound code knows it), equals the window means in exact arithmetic after a conv and
/// after an affine map with no ReLU between, round-trips through JSON, and refuses a
/// window whose area is not a power of two (`1/9` is not a double).
#[test]
fn average_pooling_is_a_node_kind() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let conv = |rng: &mut ChaCha8Rng| Layer::Conv2d {
        weight: (0..3 * 2 * 9)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect(),
        bias: (0..3).map(|_| rng.random_range(-0.5..0.5)).collect(),
        out_channels: 3,
        in_channels: 2,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        padding: 1,
    };
    for layers in [
        // conv -> relu -> pool -> flatten -> dense (pool after a ReLU: one affine map).
        vec![
            conv(&mut rng),
            Layer::Relu,
            Layer::AvgPool2d {
                kernel: 2,
                stride: 2,
            },
            Layer::Flatten,
            Layer::Dense {
                weight: (0..2 * 3 * 2 * 2)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect(),
                bias: vec![0.1, -0.2],
                out_features: 2,
                in_features: 12,
            },
        ],
        // conv -> pool (affine after affine) -> relu -> flatten -> dense.
        vec![
            conv(&mut rng),
            Layer::AvgPool2d {
                kernel: 2,
                stride: 1,
            },
            Layer::Relu,
            Layer::Flatten,
            Layer::Dense {
                weight: (0..2 * 3 * 3 * 3)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect(),
                bias: vec![0.0, 0.3],
                out_features: 2,
                in_features: 27,
            },
        ],
    ] {
        let m = Model::new(Shape::Image { c: 2, h: 4, w: 4 }, layers).unwrap();
        assert!(!m.is_plain(), "pooling is not in the paper's form");
        // A layer of one value keeps its image shape.
        assert_eq!(m.affine()[0].out_shape, Shape::Image { c: 3, h: 4, w: 4 });
        assert_lowering_exact(&m, &mut rng, &m.describe());
        check_blocks(&m, "avgpool");
        let (back, _) = model_from_json(&model_to_json(&m, None), "mem").unwrap();
        assert_eq!(back, m);
    }
    let bad = Model::new(
        Shape::Image { c: 1, h: 4, w: 4 },
        vec![
            Layer::AvgPool2d {
                kernel: 3,
                stride: 1,
            },
            Layer::Flatten,
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("layer 0 (avgpool2d)") && bad.contains("power of two"),
        "{bad}"
    );
    // Windows of 1 and 4x4 (areas 1 and 16): the means, exactly.
    for (k, s) in [(1usize, 1usize), (4, 1)] {
        let m = Model::new(
            Shape::Image { c: 2, h: 5, w: 5 },
            vec![
                Layer::AvgPool2d {
                    kernel: k,
                    stride: s,
                },
                Layer::Relu,
                Layer::Flatten,
            ],
        )
        .unwrap();
        assert_lowering_exact(&m, &mut rng, &format!("pool {k}"));
    }
    for (k, s) in [(0usize, 1usize), (2, 0)] {
        let e = Model::new(
            Shape::Image { c: 1, h: 4, w: 4 },
            vec![
                Layer::AvgPool2d {
                    kernel: k,
                    stride: s,
                },
                Layer::Flatten,
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("both must be positive"), "{e}");
    }
    let flat = Model::new(
        Shape::Flat(4),
        vec![Layer::AvgPool2d {
            kernel: 2,
            stride: 2,
        }],
    )
    .unwrap_err()
    .to_string();
    assert!(flat.contains("expects input shape an image"), "{flat}");
}

/// A transpose of an image's axes (ONNX `Transpose` that moves data): NHWC input into
/// channel-major for a conv, a conv's output back into NHWC before a flatten (as
/// TensorFlow exports do), and one after a ReLU; every lowering computes the graph
/// exactly, its kernels agree, files round-trip, and bad permutations and a transpose of
/// a vector are errors naming the node.
#[test]
fn transpose_is_a_node_kind() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut r = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    // NHWC input [h 4, w 3, c 2] read as the image [4, 3, 2].
    let nhwc = Shape::Image { c: 4, h: 3, w: 2 };
    let conv = |w: Vec<f64>, b: Vec<f64>| Layer::Conv2d {
        weight: w,
        bias: b,
        out_channels: 3,
        in_channels: 2,
        kernel_h: 2,
        kernel_w: 2,
        stride: 1,
        padding: 0,
    };
    let dense = |w: Vec<f64>, n: usize| Layer::Dense {
        weight: w,
        bias: vec![0.25, -0.5],
        out_features: 2,
        in_features: n,
    };
    let cases = [
        // NHWC -> NCHW -> conv -> relu -> back to NHWC -> flatten -> dense.
        vec![
            Layer::Transpose { perm: [2, 0, 1] },
            conv(r(3 * 2 * 4), r(3)),
            Layer::Relu,
            Layer::Transpose { perm: [1, 2, 0] },
            Layer::Flatten,
            dense(r(2 * 3 * 2 * 3), 18),
        ],
        // A transpose between a conv and its ReLU (affine after affine), and every other
        // permutation of three axes.
        vec![
            Layer::Transpose { perm: [2, 0, 1] },
            conv(r(3 * 2 * 4), r(3)),
            Layer::Transpose { perm: [0, 2, 1] },
            Layer::Relu,
            Layer::Transpose { perm: [1, 0, 2] },
            Layer::Transpose { perm: [2, 1, 0] },
            Layer::Transpose { perm: [0, 1, 2] },
            Layer::Flatten,
            dense(r(2 * 18), 18),
        ],
    ];
    for layers in cases {
        let m = Model::new(nhwc, layers).unwrap();
        assert!(!m.is_plain(), "a transpose is not in the paper's form");
        assert!(m.describe().contains("transpose 2,0,1"), "{}", m.describe());
        assert_lowering_exact(&m, &mut rng, &m.describe());
        check_blocks(&m, "transpose");
        let (back, _) = model_from_json(&model_to_json(&m, None), "mem").unwrap();
        assert_eq!(back, m);
    }
    // The operator on its own: the NHWC pixel (y, x, ch) lands at channel-major
    // (ch, y, x).
    let op = LinearOp::transpose([4, 3, 2], [2, 0, 1]).unwrap();
    let x: Vec<f64> = (0..24).map(f64::from).collect();
    let mut y = vec![0.0; 24];
    op.apply(&x, 1, &mut y);
    for (ch, yy, xx) in [(0, 0, 0), (1, 0, 0), (0, 3, 2), (1, 2, 1)] {
        assert_eq!(y[(ch * 4 + yy) * 3 + xx], x[(yy * 3 + xx) * 2 + ch]);
    }
    assert!(LinearOp::transpose([4, 3, 2], [0, 0, 1]).is_none());
    for perm in [[0, 0, 1], [0, 1, 3]] {
        let e = Model::new(nhwc, vec![Layer::Transpose { perm }, Layer::Flatten])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer 0 (transpose)") && e.contains("not a permutation"),
            "{e}"
        );
    }
    let e = Model::new(Shape::Flat(6), vec![Layer::Transpose { perm: [1, 0, 2] }])
        .unwrap_err()
        .to_string();
    assert!(e.contains("transpose") && e.contains("an image"), "{e}");
    // Files: perm must be three axis indices.
    for perm in ["[2, 0]", "[2, 0, -1]", "\"201\""] {
        let json = format!(
            r#"{{"format": "convex-outer-model", "version": 1, "input_shape": [4, 3, 2], "layers": [{{"type": "transpose", "perm": {perm}}}, {{"type": "flatten"}}]}}"#
        );
        let e = model_from_json(&json, "t.json").unwrap_err().to_string();
        assert!(
            e.contains("\"perm\" must be three axis indices"),
            "{perm}: {e}"
        );
    }
}

/// The normal form's shape is pinned: a residual block costs two layers (its skip rides
/// along as linear units, no extra layer), and an add of two biased branches folds the
/// biases when their sum is exact (one layer holds the ReLU units and the carried input)
/// but keeps one branch as a value of its own when the sum would round.
#[test]
fn the_normal_form_is_as_small_as_exactness_allows() {
    for blocks in 0..4 {
        let m = residual_net(Shape::Flat(3), 4, blocks, 2, false, Init::Paper, 1).unwrap();
        assert_eq!(m.affine().len(), 2 * blocks + 2, "{blocks} blocks");
        let n = residual_net(Shape::Flat(3), 4, blocks, 2, true, Init::Paper, 1).unwrap();
        assert_eq!(
            n.affine().len(),
            2 * blocks + 3,
            "{blocks} blocks, normalised"
        );
        assert_eq!(n.relu_units(0), 0, "the normalised input is a linear layer");
    }
    let dense = |o: usize, i: usize, b: f64| Layer::Dense {
        weight: (0..o * i).map(|k| 0.125 * (k % 5) as f64 - 0.25).collect(),
        bias: vec![b; o],
        out_features: o,
        in_features: i,
    };
    let graph = |bp: f64, bq: f64| {
        use Source::{Input, Node as N};
        let node = |name: &str, layer: Layer, inputs: &[Source]| Node {
            name: name.into(),
            layer,
            inputs: inputs.to_vec(),
        };
        Model::from_graph(
            Shape::Flat(3),
            vec![
                node("a", dense(5, 3, 0.0), &[Input]),
                node("r", Layer::Relu, &[N(0)]),
                node("p", dense(2, 5, bp), &[N(1)]),
                node("q", dense(2, 3, bq), &[Input]),
                node("s", Layer::Add, &[N(2), N(3)]),
                node("o", dense(1, 2, 0.0), &[N(4)]),
            ],
        )
        .unwrap()
    };
    // 0.5 + 0.25 is exact: layer 1 is the 5 ReLUs and the 3 carried inputs.
    let folded = graph(0.5, 0.25);
    assert_eq!(folded.layer_sizes()[1], 5 + 3);
    // 0.1 + 0.2 rounds: q stays a value of its own (2 linear units) next to the ReLUs.
    let kept = graph(0.1, 0.2);
    assert_eq!(kept.layer_sizes()[1], 5 + 2);
    // 1 + 1e-17 rounds to 1 (so fl(s - y) == x, but fl(s - x) != y): kept too.
    assert_eq!(graph(1.0, 1e-17).layer_sizes()[1], 5 + 2);
    assert_eq!(graph(1e-17, 1.0).layer_sizes()[1], 5 + 2);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    assert_lowering_exact(&folded, &mut rng, "folded biases");
    assert_lowering_exact(&kept, &mut rng, "kept branch");
}

/// Nodes read earlier nodes only (a node reading itself or a later one is an error naming
/// it), and a ReLU of a ReLU is the same value (no extra layer).
#[test]
fn graph_structure_rules() {
    let dense = || Layer::Dense {
        weight: vec![0.5, -0.25, 0.75, 1.0],
        bias: vec![0.0, 0.1],
        out_features: 2,
        in_features: 2,
    };
    let node = |name: &str, layer: Layer, inputs: Vec<Source>| Node {
        name: name.into(),
        layer,
        inputs,
    };
    for bad in [0usize, 1] {
        let err = Model::from_graph(
            Shape::Flat(2),
            vec![
                node("a", dense(), vec![Source::Input]),
                node("b", Layer::Relu, vec![Source::Node(1 + bad)]),
                node("c", dense(), vec![Source::Node(1)]),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("layer 1") && err.contains("not an earlier node"),
            "{err}"
        );
    }
    let twice = Model::new(
        Shape::Flat(2),
        vec![dense(), Layer::Relu, Layer::Relu, dense()],
    )
    .unwrap();
    assert_eq!(twice.affine().len(), 2);
    assert!(twice.is_plain());
}

/// Conv parameters that cannot be built are errors naming the layer, whichever is zero.
#[test]
fn zero_conv_sizes_are_errors() {
    for (out_channels, kh, kw, stride) in [
        (2usize, 3usize, 3usize, 0usize),
        (2, 0, 3, 1),
        (2, 3, 0, 1),
        (0, 3, 3, 1),
    ] {
        let e = Model::new(
            Shape::Image { c: 1, h: 4, w: 4 },
            vec![Layer::Conv2d {
                weight: vec![0.5; out_channels * kh * kw],
                bias: vec![0.0; out_channels],
                out_channels,
                in_channels: 1,
                kernel_h: kh,
                kernel_w: kw,
                stride,
                padding: 0,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("layer 0 (conv2d)") && e.contains("must be positive"),
            "{e}"
        );
    }
}

/// `truncated(t)` keeps the first `t + 1` maps and `t` hidden layers (clamped to the
/// model), `relu_all` lists every hidden layer's ReLU units, and the residual builder's
/// normalisation is diagonal.
#[test]
fn truncation_and_relu_units() {
    let m = residual_net(Shape::Flat(3), 4, 2, 2, true, Init::Paper, 5).unwrap();
    let k = m.affine().len();
    for t in 0..k + 2 {
        let p = m.truncated(t);
        let want = (t + 1).min(k);
        assert_eq!(p.affine().len(), want, "truncated({t})");
        assert_eq!(p.hidden_layers(), want - 1);
        assert_eq!(p.relu_all(), &m.relu_all()[..want - 1]);
        assert_eq!(p.affine()[want - 1], m.affine()[want - 1]);
    }
    let r: Vec<usize> = (0..m.hidden_layers()).map(|t| m.relu_units(t)).collect();
    assert_eq!(m.relu_all(), r.as_slice());
    assert_eq!(r[0], 0);
    assert!(r[1..].iter().all(|&v| v > 0));
    let nodes = m.nodes();
    let Layer::Dense { weight, .. } = &nodes[0].layer else {
        panic!("the normalisation is dense");
    };
    for i in 0..3 {
        for j in 0..3 {
            let w = weight[i * 3 + j];
            assert!(
                if i == j {
                    (0.5..2.0).contains(&w)
                } else {
                    w == 0.0
                },
                "({i}, {j}) {w}"
            );
        }
    }
}

/// Random model specs: the residual grammar, and its errors.
#[test]
fn init_specs() {
    let m = network::init_spec("residual:1x4x4-2-1-3", Init::Paper, 0).unwrap();
    assert_eq!(m.input_shape(), Shape::Image { c: 1, h: 4, w: 4 });
    assert_eq!(m.output_len(), 3);
    let n = network::init_spec("residual-normalised:5-6-2-2", Init::Standard, 1).unwrap();
    assert_eq!((n.input_len(), n.output_len(), n.affine().len()), (5, 2, 7));
    assert_eq!(
        network::init_spec("mlp:3-4-2", Init::Paper, 0)
            .unwrap()
            .output_len(),
        2
    );
    for bad in [
        "residual:0-4-1-2",
        "residual:3-0-1-2",
        "residual:3-4-1-0",
        "residual:3-4-x-2",
        "residual:3-4-1",
        "residual:3x0-4-1-2",
    ] {
        let e = network::init_spec(bad, Init::Paper, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(bad) && e.contains("residual:IN-WIDTH-BLOCKS-OUT"),
            "{e}"
        );
    }
    for (shape, width, out) in [
        (Shape::Flat(3), 0usize, 2usize),
        (Shape::Flat(3), 2, 0),
        (Shape::Flat(0), 2, 2),
    ] {
        let e = residual_net(shape, width, 1, out, false, Init::Paper, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sizes must be positive"), "{e}");
    }
    // (Only sizes whose first allocation fails at once if a bug let them through: a
    // mutant that skipped the check must not grow a net block by block for a minute.)
    let e = residual_net(Shape::Flat(4), 1 << 20, 1, 3, false, Init::Paper, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than 2^28 parameters"), "{e}");
    // The count the limit uses is the model's parameter count, for every kind of net.
    for (shape, width, blocks, outputs, normalise) in [
        (Shape::Flat(4), 16, 3, 3, false),
        (Shape::Flat(5), 7, 0, 2, true),
        (Shape::Flat(2), 3, 2, 4, true),
        (Shape::Image { c: 2, h: 5, w: 3 }, 4, 2, 3, false),
        (Shape::Image { c: 3, h: 4, w: 4 }, 2, 1, 5, true),
    ] {
        let m = residual_net(shape, width, blocks, outputs, normalise, Init::Paper, 0).unwrap();
        assert_eq!(
            network::residual_parameters(shape, width, blocks, outputs, normalise),
            Some(m.num_parameters()),
            "{shape} {width} {blocks} {outputs} {normalise}"
        );
    }
    assert_eq!(
        network::residual_parameters(Shape::Flat(4), usize::MAX, 1, 1, false),
        None
    );
    assert_eq!(
        network::residual_parameters(Shape::Flat(4), 8, usize::MAX, 1, false),
        None
    );
    // Just under and just over the limit: 2 (w^2 + w) per block with w = 64.
    let per_block = 2 * (64 * 64 + 64);
    let fixed = network::residual_parameters(Shape::Flat(1), 64, 0, 1, false).unwrap();
    let most = (network::MAX_RESIDUAL_PARAMETERS - fixed) / per_block;
    assert!(network::residual_parameters(Shape::Flat(1), 64, most, 1, false).unwrap() <= 1 << 28);
    assert!(
        network::residual_parameters(Shape::Flat(1), 64, most + 1, 1, false).unwrap()
            > network::MAX_RESIDUAL_PARAMETERS
    );
    // A typo such as 99,999,999,999 blocks: its count is far above the limit, so it is
    // refused before anything is built (the CLI says so at once).
    assert!(
        network::residual_parameters(Shape::Flat(4), 8, 99_999_999_999, 3, false).unwrap()
            > network::MAX_RESIDUAL_PARAMETERS
    );
}

/// The operation counts the `dual` crate's error bounds use (`gamma_n`), pinned: dense
/// and conv as before blocks existed (forward: the input size; transpose: the rows, or
/// `out_channels * kh * kw`), a copy one operation, a block its own size plus each term's
/// count plus one addition per term.
#[test]
fn operation_counts_are_pinned() {
    use network::{BlockTerm, ConvGeometry};
    let dense = LinearOp::Dense {
        weight: vec![0.5; 6],
        rows: 2,
        cols: 3,
    };
    assert_eq!((dense.dot_len(), dense.dot_len_t()), (3, 2));
    let geom = ConvGeometry {
        in_channels: 2,
        out_channels: 3,
        kernel_h: 2,
        kernel_w: 3,
        stride: 1,
        padding: 0,
        in_h: 4,
        in_w: 5,
        out_h: 3,
        out_w: 3,
    };
    let conv = LinearOp::Conv {
        weight: vec![0.5; 3 * 2 * 2 * 3],
        geom,
    };
    assert_eq!((conv.dot_len(), conv.dot_len_t()), (40, 18));
    let id = LinearOp::Identity { n: 7 };
    assert_eq!((id.dot_len(), id.dot_len_t()), (1, 1));
    let block = LinearOp::Block {
        n_in: 5,
        n_out: 4,
        terms: vec![
            BlockTerm {
                op: dense,
                in_offset: 0,
                out_offset: 0,
            },
            BlockTerm {
                op: LinearOp::Identity { n: 2 },
                in_offset: 3,
                out_offset: 2,
            },
        ],
    };
    assert_eq!(block.dot_len(), 5 + (3 + 1) + (1 + 1));
    assert_eq!(block.dot_len_t(), 4 + (2 + 1) + (1 + 1));
    assert_eq!(block.macs_per_column(), 6 + 2);
    assert_eq!((block.n_in(), block.n_out()), (5, 4));
    assert!(block.weight().is_empty() && id.weight().is_empty());
}
