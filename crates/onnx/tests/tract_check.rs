//! The import checked against an independent ONNX runtime (tract, Sonos' inference
//! engine): on random inputs, the imported model's f64 forward pass equals tract's
//! output on the same file, for the VNN-COMP 2021 networks in `testdata/vnncomp2021`
//! (f32 files: tract computes in f32, so the tolerance is f32's, scaled to the sum of
//! absolute terms) and for every operator the importer accepts (small graphs built
//! here, in f64: tolerance 1e-12 relative).
//!
//! tract also decodes the protobuf with the same generated types, so the check is
//! independent in what matters: the meaning of every operator (transposes, broadcasts,
//! Gemm's alpha/beta, Conv's padding, the folding of constants).

use std::path::{Path, PathBuf};

use network::{Architecture, Init, Model};
use onnx_io::{import_onnx, load_onnx, model_to_onnx};
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tract_onnx::prelude::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// tract's output for one input (`dims` as the file declares, f32 or f64).
fn tract_forward(bytes: &[u8], dims: &[usize], x: &[f64], double: bool) -> Vec<f64> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .expect("tract reads the file")
        .into_optimized()
        .expect("tract optimises")
        .into_runnable()
        .expect("tract plans");
    let input: Tensor = if double {
        tract_ndarray::ArrayD::from_shape_vec(dims.to_vec(), x.to_vec())
            .unwrap()
            .into()
    } else {
        tract_ndarray::ArrayD::from_shape_vec(dims.to_vec(), x.iter().map(|&v| v as f32).collect())
            .unwrap()
            .into()
    };
    let out = model.run(tvec!(input.into())).expect("tract runs");
    let t = out[0].clone().into_tensor();
    if double {
        t.to_plain_array_view::<f64>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    } else {
        t.to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect()
    }
}

/// Sum over the network of |terms| for the rounding tolerance: |W| |z| pushed through.
fn magnitude(model: &Model, x: &[f64]) -> Vec<f64> {
    let abs = model
        .map_parameters(|_, w, b| {
            w.iter_mut().for_each(|v| *v = v.abs());
            b.iter_mut().for_each(|v| *v = v.abs());
        })
        .unwrap();
    let ax: Vec<f64> = x.iter().map(|v| v.abs()).collect();
    abs.forward(&ax).unwrap().as_slice().to_vec()
}

fn check_file(path: &Path, cases: usize, seed: u64) {
    let bytes = std::fs::read(path).unwrap();
    let imp = load_onnx(path).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..cases {
        let x: Vec<f64> = (0..imp.model.input_len())
            .map(|_| rng.random_range(-1.0f32..1.0) as f64)
            .collect();
        let ours = imp.model.forward(&x).unwrap();
        let theirs = tract_forward(&bytes, &imp.input_dims, &x, false);
        let mag = magnitude(&imp.model, &x);
        assert_eq!(ours.len(), theirs.len(), "{}", path.display());
        let depth = imp.model.affine().len() as f64;
        for i in 0..ours.len() {
            // f32 rounding in every product and sum: n * 2^-24 per layer, with n the
            // widest sum (<= 1000 here), on the magnitude of the terms.
            let tol = 1000.0 * depth * (f32::EPSILON as f64) * (mag[i] + 1.0);
            assert!(
                (ours[i] - theirs[i]).abs() <= tol,
                "{}: output {i}: ours {} tract {} (tol {tol})",
                path.display(),
                ours[i],
                theirs[i]
            );
        }
    }
}

#[test]
fn vnncomp_test_networks_match_tract() {
    for f in [
        "test_nano",
        "test_tiny",
        "test_small",
        "test_sat",
        "test_unsat",
    ] {
        check_file(
            &root().join(format!("testdata/vnncomp2021/test/{f}.onnx")),
            20,
            1,
        );
    }
}

#[test]
fn every_acasxu_network_matches_tract() {
    let dir = root().join("testdata/vnncomp2021/acasxu");
    let mut n = 0;
    for i in 1..=5 {
        for j in 1..=9 {
            check_file(
                &dir.join(format!("ACASXU_run2a_{i}_{j}_batch_2000.onnx")),
                5,
                (i * 10 + j) as u64,
            );
            n += 1;
        }
    }
    assert_eq!(n, 45);
}

#[test]
fn exported_models_read_back_bit_for_bit_and_match_tract() {
    let archs = [
        ("mlp:3-7-5-2", Architecture::parse("mlp:3-7-5-2").unwrap()),
        ("mnist-conv", Architecture::mnist_conv()),
        (
            "conv 1x6x6: 2k3s1p1, 3k2s2p0, dense 4, 3",
            Architecture::conv_net(
                network::Shape::Image { c: 1, h: 6, w: 6 },
                &[(2, 3, 1, 1), (3, 2, 2, 0)],
                &[4, 3],
            ),
        ),
    ];
    let residual = |shape, normalise, seed| {
        network::residual_net(shape, 3, 2, 2, normalise, Init::Standard, seed).unwrap()
    };
    let models = archs
        .into_iter()
        .enumerate()
        .map(|(seed, (arch, a))| {
            (
                arch.to_string(),
                a.init(Init::Standard, seed as u64).unwrap(),
            )
        })
        .chain([
            (
                "residual dense, normalised input".to_string(),
                residual(network::Shape::Flat(4), true, 3),
            ),
            (
                "residual conv 2x4x4".to_string(),
                residual(network::Shape::Image { c: 2, h: 4, w: 4 }, false, 4),
            ),
        ]);
    for (seed, (arch, model)) in models.enumerate() {
        let (seed, arch) = (seed as u64, arch.as_str());
        let bytes = model_to_onnx(&model).encode_to_vec();
        let back = import_onnx(&bytes, arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
        assert_eq!(
            back.model, model,
            "{arch}: the round trip changes the model"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..model.input_len())
            .map(|_| rng.random_range(0.0..1.0))
            .collect();
        let ours = model.forward(&x).unwrap();
        let theirs = tract_forward(&bytes, &back.input_dims, &x, true);
        let mag = magnitude(&model, &x);
        for i in 0..ours.len() {
            let tol = 1e-12 * (mag[i] + 1.0);
            assert!(
                (ours[i] - theirs[i]).abs() <= tol,
                "{arch}: output {i}: {} vs {}",
                ours[i],
                theirs[i]
            );
        }
    }
}

#[test]
fn float32_export_is_the_f32_rounded_model_and_runs_in_tract() {
    let model = Architecture::mnist_conv().init(Init::Standard, 5).unwrap();
    let bytes = onnx_io::model_to_onnx_as(&model, onnx_io::ElemType::F32).encode_to_vec();
    let back = import_onnx(&bytes, "f32").unwrap().model;
    // Every weight and bias is the f32 nearest to the original.
    let rounded = model
        .map_parameters(|_, w, b| {
            w.iter_mut().for_each(|v| *v = *v as f32 as f64);
            b.iter_mut().for_each(|v| *v = *v as f32 as f64);
        })
        .unwrap();
    assert_eq!(back, rounded);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x: Vec<f64> = (0..model.input_len())
        .map(|_| rng.random_range(0.0f32..1.0) as f64)
        .collect();
    let ours = back.forward(&x).unwrap();
    let theirs = tract_forward(&bytes, &[1, 1, 28, 28], &x, false);
    let mag = magnitude(&back, &x);
    for i in 0..ours.len() {
        let tol = 1000.0 * 4.0 * (f32::EPSILON as f64) * (mag[i] + 1.0);
        assert!(
            (ours[i] - theirs[i]).abs() <= tol,
            "output {i}: {} vs {}",
            ours[i],
            theirs[i]
        );
    }
}
