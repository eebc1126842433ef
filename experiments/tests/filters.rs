//! `filters` (Fig. 8-9): on the committed models, one CSV row per model and conv layer
//! with counts that fit their totals and both figures; on a hand-made conv model, the
//! sparsity counts equal the ones worked out by hand; a model without a conv layer is an
//! error naming the file.

mod common;

use common::Csv;

#[test]
fn filters_writes_results_and_figures() {
    let (dir, stdout) = common::run_into_temp(env!("CARGO_BIN_EXE_filters"), "filters", &[]);
    assert!(
        stdout.contains("| model | conv layer |") && stdout.contains("quite sparse"),
        "{stdout}"
    );
    let csv = Csv::read(&dir, "filters");
    let col = |c: &str| csv.col(c);
    assert_eq!(csv.rows.len(), 4, "2 models x 2 conv layers");
    for r in &csv.rows {
        let n = |c: &str| r[col(c)].parse::<f64>().unwrap();
        assert!(
            n("near_zero_weights") >= 0.0 && n("near_zero_weights") <= 1.0,
            "{r:?}"
        );
        assert!(
            n("near_zero_slices") <= n("slices") && n("near_zero_filters") <= n("filters"),
            "{r:?}"
        );
        assert!(
            n("mean_abs") > 0.0 && n("mean_abs") <= n("max_abs"),
            "{r:?}"
        );
        assert_eq!(
            n("weights"),
            n("filters") * n("in_channels") * 16.0,
            "4x4 kernels: {r:?}"
        );
    }
    common::check_figures_and_clean(&dir, "filters");
}

#[test]
fn sparsity_counts_match_a_hand_made_model() {
    // Two 2x2 filters on one channel: [1, 0, 0, 0.005] and all zeros; 0.005 <= 1% of 1,
    // so 7 of the 8 weights are near zero, and one slice (= one filter) is.
    let dir =
        std::env::temp_dir().join(format!("convex-outer-filters-hand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("hand.json");
    std::fs::write(
        &model,
        r#"{"format": "convex-outer-model", "version": 1, "input_shape": [1, 2, 2], "layers": [
            {"type": "conv2d", "weight": [[[[1.0, 0.0], [0.0, 0.005]]], [[[0.0, 0.0], [0.0, 0.0]]]], "bias": [0.0, 0.0]},
            {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "weight": [[1, 1], [1, -1]], "bias": [0, 0]}]}"#,
    )
    .unwrap();
    let m = model.to_str().unwrap();
    let (out, _) = common::run_into_temp(
        env!("CARGO_BIN_EXE_filters"),
        "filters-hand",
        &["--standard", m, "--robust", m],
    );
    let csv = Csv::read(&out, "filters");
    let col = |c: &str| csv.col(c);
    assert_eq!(csv.rows.len(), 2);
    for r in &csv.rows {
        assert_eq!(&r[col("near_zero_weights")], "0.875", "{r:?}");
        assert_eq!(&r[col("near_zero_slices")], "1", "{r:?}");
        assert_eq!(&r[col("near_zero_filters")], "1", "{r:?}");
        assert_eq!(&r[col("max_abs")], "1", "{r:?}");
    }
    common::check_figures_and_clean(&out, "filters");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_without_conv_layers_is_an_error_naming_it() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/valid_small.json");
    let err = common::run_failing(
        env!("CARGO_BIN_EXE_filters"),
        "filters-bad",
        &["--robust", model],
    );
    assert!(
        err.contains("valid_small.json") && err.contains("no conv layer"),
        "{err}"
    );
}
