//! The model file format: round trips, the fixtures' layout, bit-identical forward passes.

use network::{
    load_model, model_from_json, model_to_json, save_model, Architecture, Init, Model, Shape,
};

fn valid_small() -> String {
    format!(
        "{}/../../testdata/valid_small.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn save_then_load_is_bit_identical() {
    let dir = std::env::temp_dir().join(format!("convex-outer-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, arch) in [
        Architecture::mnist_conv(),
        Architecture::mlp(&[2, 100, 100, 100, 100, 2]),
    ]
    .iter()
    .enumerate()
    {
        for init in [Init::Paper, Init::Standard] {
            let m = arch.init(init, 42).unwrap();
            let path = dir.join(format!("m{i}.json"));
            let meta = serde_json::json!({"trained": false, "seed": 42});
            save_model(&m, Some(&meta), &path).unwrap();
            let back = load_model(&path).unwrap();
            assert_eq!(m, back);
            let text = std::fs::read_to_string(&path).unwrap();
            let (_, meta_back) = model_from_json(&text, "x").unwrap();
            assert_eq!(meta_back, meta);
            let x: Vec<f64> = (0..m.input_len()).map(|j| (j % 7) as f64 / 7.0).collect();
            let (a, b) = (m.forward(&x).unwrap(), back.forward(&x).unwrap());
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_readme_example_loads() {
    let m = load_model(valid_small()).unwrap();
    assert_eq!(m.input_shape(), Shape::Flat(4));
    assert_eq!(m.output_len(), 2);
    // Hand computation: h = relu(W1 x + b1), out = W2 h + b2 at x = (1, 0, 0, 0).
    // W1 x + b1 = (0.2, 0.7, 1.2); out = (0.2 - 0.7 + 0.6, -0.1 + 0.175 + 1.2 + 0.1).
    let out = m.forward([1.0, 0.0, 0.0, 0.0]).unwrap();
    assert!(
        (out[0] - 0.1).abs() < 1e-12 && (out[1] - 1.375).abs() < 1e-12,
        "{out:?}"
    );
    let text = model_to_json(&m, None);
    assert_eq!(model_from_json(&text, "again").unwrap().0, m);
}

#[test]
fn conv_bias_is_broadcast_and_flatten_is_channel_major() {
    // A 1x1 conv with two output channels that copies the input with different biases,
    // then a dense layer that reads the flattened image: channel-major order means the
    // first 4 values are channel 0.
    let text = r#"{"format": "convex-outer-model", "version": 1, "input_shape": [1, 2, 2],
      "layers": [{"type": "conv2d", "weight": [[[[1.0]]], [[[2.0]]]], "bias": [10.0, 20.0]},
                 {"type": "relu"}, {"type": "flatten"},
                 {"type": "dense", "weight": [[1,0,0,0,0,0,0,0],[0,0,0,0,1,0,0,0]], "bias": [0, 0]}]}"#;
    let (m, _) = model_from_json(text, "inline").unwrap();
    let out = m.forward([1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(out.as_slice(), [11.0, 22.0]);
    assert_eq!(
        m.affine()[0].bias,
        vec![10.0, 10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 20.0]
    );
}

#[test]
fn forward_checks_its_input() {
    let m: Model = load_model(valid_small()).unwrap();
    assert!(m
        .forward([1.0, 2.0])
        .unwrap_err()
        .to_string()
        .contains("expects 4 values"));
    assert!(m
        .forward([1.0, f64::NAN, 0.0, 0.0])
        .unwrap_err()
        .to_string()
        .contains("non-finite"));
}

#[test]
fn architectures_parse() {
    assert_eq!(
        Architecture::parse("mlp:784-100-100-10").unwrap(),
        Architecture::mlp(&[784, 100, 100, 10])
    );
    let m = Architecture::parse("mnist-conv")
        .unwrap()
        .init(Init::Paper, 0)
        .unwrap();
    assert_eq!(m.layer_sizes(), vec![784, 3136, 1568, 100, 10]);
    for bad in ["mlp:", "mlp:3", "mlp:3-x", "resnet"] {
        assert!(Architecture::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn seeded_init_is_reproducible_and_has_the_stated_statistics() {
    let arch = Architecture::mlp(&[400, 400, 2]);
    let a = arch.init(Init::Paper, 9).unwrap();
    assert_eq!(a, arch.init(Init::Paper, 9).unwrap());
    assert_ne!(a, arch.init(Init::Paper, 10).unwrap());
    // Paper init: weights N(0, 1/sqrt(400)) so variance 1/400; biases N(0, 1).
    let w = a.affine()[0].op.weight();
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    assert!((var * 400.0 - 1.0).abs() < 0.02, "weight variance {var}");
    let b = &a.affine()[0].bias;
    let bvar = b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64;
    assert!((bvar - 1.0).abs() < 0.2, "bias variance {bvar}");
    // Standard init: U(-1/20, 1/20).
    let s = arch.init(Init::Standard, 9).unwrap();
    assert!(s.affine()[0].op.weight().iter().all(|v| v.abs() <= 0.05));
}
