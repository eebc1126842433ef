//! Every file of the malformed-model corpus (`testdata/malformed/`) gives a clear error
//! naming the file and, where it applies, the layer and the shapes; never a panic.

use network::load_model;

fn corpus(name: &str) -> String {
    format!(
        "{}/../../testdata/malformed/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// (file, fragments the message must contain)
const CASES: &[(&str, &[&str])] = &[
    (
        "missing_bias.json",
        &["missing_bias.json", "layer 0 (dense)", "missing \"bias\""],
    ),
    ("truncated.json", &["truncated.json", "not valid JSON"]),
    (
        "invalid.json",
        &["invalid.json", "not valid JSON", "line 1"],
    ),
    ("nan_weight.json", &["nan_weight.json", "not valid JSON"]),
    (
        "inf_weight.json",
        &["inf_weight.json", "not valid JSON", "out of range"],
    ),
    (
        "wrong_input_shape.json",
        &[
            "wrong_input_shape.json",
            "layer 0 (dense)",
            "expects input shape [4]",
            "receives [5]",
        ],
    ),
    (
        "shape_mismatch.json",
        &[
            "shape_mismatch.json",
            "layer 2 (dense)",
            "expects input shape [2]",
            "receives [3]",
        ],
    ),
    (
        "ragged_weight.json",
        &[
            "ragged_weight.json",
            "layer 0 (dense)",
            "ragged",
            "[1]",
            "3 elements",
        ],
    ),
    (
        "bias_mismatch.json",
        &[
            "bias_mismatch.json",
            "layer 0 (dense)",
            "bias has shape [2]",
            "[3, 4]",
        ],
    ),
    (
        "unknown_layer.json",
        &[
            "unknown_layer.json",
            "layer 1",
            "unknown layer type \"maxpool\"",
        ],
    ),
    ("no_layers.json", &["no_layers.json", "no layer"]),
    (
        "missing_format.json",
        &["missing_format.json", "missing \"format\""],
    ),
    (
        "future_version.json",
        &["future_version.json", "version 7 is not supported"],
    ),
    (
        "unknown_key.json",
        &[
            "unknown_key.json",
            "layer 0 (conv2d)",
            "unknown key \"strides\"",
        ],
    ),
    (
        "kernel_too_big.json",
        &[
            "kernel_too_big.json",
            "layer 0 (conv2d)",
            "at least 3x3",
            "receives [1, 2, 2]",
        ],
    ),
    (
        "dense_on_image.json",
        &[
            "dense_on_image.json",
            "layer 0 (dense)",
            "add a flatten layer",
            "receives [1, 4, 4]",
        ],
    ),
    (
        "conv_on_flat.json",
        &[
            "conv_on_flat.json",
            "layer 0 (conv2d)",
            "an image",
            "receives [16]",
        ],
    ),
    (
        "string_weight.json",
        &[
            "string_weight.json",
            "layer 0 (dense)",
            "entry [0, 0] is a string",
        ],
    ),
    (
        "conv_weight_rank3.json",
        &[
            "conv_weight_rank3.json",
            "layer 0 (conv2d)",
            "rank 4",
            "level 3 is a number",
        ],
    ),
];

#[test]
fn every_malformed_model_gives_a_clear_error() {
    let listed: std::collections::BTreeSet<&str> = CASES.iter().map(|c| c.0).collect();
    // Every model file in the corpus is listed here (inputs are the CLI test's).
    for entry in std::fs::read_dir(corpus("")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("input_") {
            assert!(
                listed.contains(name.as_str()),
                "{name} is in the corpus but not in CASES"
            );
        }
    }
    for (file, fragments) in CASES {
        let err = load_model(corpus(file)).expect_err(file).to_string();
        for f in *fragments {
            assert!(err.contains(f), "{file}: message {err:?} lacks {f:?}");
        }
    }
}

#[test]
fn a_missing_file_names_the_file() {
    let err = load_model(corpus("does_not_exist.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does_not_exist.json"), "{err}");
}

#[test]
fn non_finite_weights_built_in_code_are_refused() {
    use network::{Layer, Model, Shape};
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let layers = vec![Layer::Dense {
            weight: vec![1.0, bad],
            bias: vec![0.0],
            out_features: 1,
            in_features: 2,
        }];
        let err = Model::new(Shape::Flat(2), layers).unwrap_err().to_string();
        assert!(
            err.contains("layer 0 (dense): weight holds the non-finite value"),
            "{err}"
        );
        assert!(err.contains("index 1"), "{err}");
    }
}
