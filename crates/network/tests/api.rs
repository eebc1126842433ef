//! The model's public helpers pinned to their documented values: parameter counts,
//! descriptions, input checks, batched forward passes, `argmax` ties, the dense operator's
//! unit columns and row taps, work counts, shapes, architectures and dataset accessors.
//! Each assertion here was written against a mutant (`cargo mutants`, README "Mutation
//! testing") that every earlier test let through.

use network::data::{load_idx, parse_mnist_csv, stratified_split, toy2d};
use network::{argmax, Architecture, ConvGeometry, Init, Layer, LayerSpec, LinearOp, Model, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small_mlp() -> Model {
    Architecture::mlp(&[3, 4, 2]).init(Init::Paper, 7).unwrap()
}

#[test]
fn parameters_and_description_are_counted_from_the_layers() {
    let m = small_mlp();
    assert_eq!(m.num_parameters(), 3 * 4 + 4 + 4 * 2 + 2);
    assert_eq!(m.describe(), "[3] -> dense 4 -> relu -> dense 2");
    let c = Architecture::mnist_conv().init(Init::Standard, 0).unwrap();
    assert_eq!(
        c.describe(),
        "[1, 28, 28] -> conv2d 16 4x4/s2/p1 -> relu -> conv2d 32 4x4/s2/p1 -> relu -> \
         flatten -> dense 100 -> relu -> dense 10"
    );
    assert_eq!(
        c.num_parameters(),
        16 * 16 + 16 + 32 * 16 * 16 + 32 + 1568 * 100 + 100 + 100 * 10 + 10
    );
}

#[test]
fn check_input_refuses_wrong_lengths_and_non_finite_values() {
    let m = small_mlp();
    assert!(m.check_input([0.0, 1.0, 2.0]).is_ok());
    let e = m.check_input([0.0, 1.0]).unwrap_err().to_string();
    assert!(e.contains('3') && e.contains('2'), "{e}");
    let e = m.check_input([0.0, f64::NAN, 2.0]).unwrap_err().to_string();
    assert!(e.contains("NaN") && e.contains('1'), "{e}");
    assert!(m.check_input([0.0, 1.0, f64::INFINITY]).is_err());
}

#[test]
fn a_batch_is_its_columns() {
    let m = small_mlp();
    let cols = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [0.0, 0.0, 0.0]];
    let x: Vec<f64> = cols.iter().flatten().copied().collect();
    let batch = m
        .preactivations_batch(network::DMatrixView::from_slice(&x, m.input_len(), 3))
        .unwrap();
    for (c, col) in cols.iter().enumerate() {
        let one = m.preactivations_batch(network::as_column(col)).unwrap();
        for (layer, (b, o)) in batch.iter().zip(&one).enumerate() {
            assert_eq!(b.column(c), o.column(0), "layer {layer}, column {c}");
        }
    }
    // A batch of the wrong height (2 rows for 3 inputs).
    let e = m
        .preactivations_batch(network::DMatrixView::from_slice(&x[..8], 2, 4))
        .unwrap_err()
        .to_string();
    assert!(e.contains('3') && e.contains('2'), "{e}");
    // A strided view (every other column of a 3 x 6 matrix) reads its own columns.
    let wide = network::DMatrix::from_fn(3, 6, |r, c| {
        if c % 2 == 0 {
            x[(c / 2) * 3 + r]
        } else {
            f64::NAN
        }
    });
    let strided = wide.columns_with_step(0, 3, 1);
    assert_eq!(m.preactivations_batch(strided).unwrap(), batch);
    assert!(m
        .preactivations_batch(network::as_column(&[f64::NAN; 3]))
        .is_err());
}

#[test]
fn predict_and_argmax_take_the_first_largest() {
    assert_eq!(argmax([1.0, 3.0, 3.0, 2.0]), 1);
    assert_eq!(argmax([5.0, 3.0]), 0);
    assert_eq!(argmax([-1.0, -2.0, 0.5]), 2);
    assert_eq!(argmax([]), 0);
    let m = small_mlp();
    for x in [[0.5, -1.0, 2.0], [3.0, 1.0, -2.0], [-1.0, 4.0, 0.0]] {
        assert_eq!(m.predict(x).unwrap(), argmax(m.forward(x).unwrap()));
    }
    // A model whose output is a fixed permutation of its input: class = argmax of x.
    let id = Model::new(
        Shape::Flat(3),
        vec![Layer::Dense {
            weight: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            bias: vec![0.0; 3],
            out_features: 3,
            in_features: 3,
        }],
    )
    .unwrap();
    assert_eq!(id.predict([0.0, 0.0, 1.0]).unwrap(), 2);
    assert_eq!(id.predict([0.0, 1.0, 0.0]).unwrap(), 1);
}

#[test]
fn map_parameters_numbers_the_affine_layers() {
    let m = small_mlp();
    let mut seen = Vec::new();
    let scaled = m
        .map_parameters(|k, w, b| {
            seen.push(k);
            w.iter_mut().for_each(|v| *v *= 2.0);
            b.iter_mut().for_each(|v| *v *= 2.0);
        })
        .unwrap();
    assert_eq!(seen, vec![0, 1]);
    assert_eq!(
        scaled.affine()[1].op.weight()[0],
        2.0 * m.affine()[1].op.weight()[0]
    );
}

fn random_dense(rows: usize, cols: usize, seed: u64) -> LinearOp {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    LinearOp::Dense {
        weight: (0..rows * cols)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect(),
        rows,
        cols,
    }
}

#[test]
fn dense_columns_rows_and_batches_match_the_matrix() {
    let (rows, cols) = (5, 7);
    let op = random_dense(rows, cols, 3);
    let w = op.weight().to_vec();
    for j in 0..cols {
        let mut col = vec![1.0; rows];
        op.add_unit_column(j, 3.0, &mut col);
        for r in 0..rows {
            assert_eq!(col[r], 1.0 + 3.0 * w[r * cols + j], "column {j}, row {r}");
        }
    }
    for r in 0..rows {
        let mut taps = Vec::new();
        op.for_each_in_row(r, |j, v| taps.push((j, v)));
        let want: Vec<(usize, f64)> = (0..cols).map(|j| (j, w[r * cols + j])).collect();
        assert_eq!(taps, want, "row {r}");
    }
    // Enough columns for the parallel split: every column equals its own product.
    let ncols = 101;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x: Vec<f64> = (0..cols * ncols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut out = vec![0.0; rows * ncols];
    op.apply(&x, ncols, &mut out);
    let y: Vec<f64> = (0..rows * ncols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut back = vec![0.0; cols * ncols];
    op.apply_transpose(&y, ncols, &mut back);
    for c in 0..ncols {
        for r in 0..rows {
            let want: f64 = (0..cols).map(|j| w[r * cols + j] * x[c * cols + j]).sum();
            assert!(
                (out[c * rows + r] - want).abs() < 1e-12,
                "apply col {c} row {r}"
            );
        }
        for j in 0..cols {
            let want: f64 = (0..rows).map(|r| w[r * cols + j] * y[c * rows + r]).sum();
            assert!(
                (back[c * cols + j] - want).abs() < 1e-12,
                "transpose col {c} {j}"
            );
        }
    }
}

#[test]
fn work_counts_and_output_sizes() {
    assert_eq!(random_dense(5, 7, 0).macs_per_column(), 35);
    let g = ConvGeometry {
        in_channels: 2,
        out_channels: 3,
        kernel_h: 4,
        kernel_w: 4,
        stride: 2,
        padding: 1,
        in_h: 8,
        in_w: 6,
        out_h: 4,
        out_w: 3,
    };
    let conv = LinearOp::Conv {
        weight: vec![0.0; 3 * 2 * 16],
        geom: g,
    };
    assert_eq!(conv.macs_per_column(), 12 * 32 * 3);
    assert_eq!(ConvGeometry::out_dim(8, 4, 2, 1), Some(4));
    assert_eq!(ConvGeometry::out_dim(3, 3, 1, 0), Some(1));
    assert_eq!(ConvGeometry::out_dim(2, 3, 1, 0), None);
    assert_eq!(ConvGeometry::out_dim(2, 3, 1, 1), Some(2));
    assert_eq!(ConvGeometry::out_dim(5, 0, 1, 0), None);
    assert_eq!(ConvGeometry::out_dim(5, 3, 0, 0), None);
}

#[test]
fn shapes_need_positive_sizes() {
    assert_eq!(Shape::from_dims(&[4]), Some(Shape::Flat(4)));
    assert_eq!(Shape::from_dims(&[0]), None);
    assert_eq!(
        Shape::from_dims(&[1, 2, 3]),
        Some(Shape::Image { c: 1, h: 2, w: 3 })
    );
    for dims in [[0, 2, 3], [1, 0, 3], [1, 2, 0], [0, 0, 0]] {
        assert_eq!(Shape::from_dims(&dims), None, "{dims:?}");
    }
    assert_eq!(Shape::from_dims(&[1, 2]), None);
}

#[test]
fn architectures_put_relus_between_layers_only() {
    let a = Architecture::conv_net(Shape::Image { c: 1, h: 8, w: 8 }, &[(2, 3, 1, 1)], &[5, 3]);
    assert_eq!(
        a.layers,
        vec![
            LayerSpec::Conv2d {
                out_channels: 2,
                kernel: 3,
                stride: 1,
                padding: 1
            },
            LayerSpec::Relu,
            LayerSpec::Flatten,
            LayerSpec::Dense { out: 5 },
            LayerSpec::Relu,
            LayerSpec::Dense { out: 3 },
        ]
    );
    assert!(Architecture::parse("mlp:10-2").is_ok());
    assert!(Architecture::parse("mlp:10").is_err());
    assert!(Architecture::parse("mlp:10-0-2").is_err());
    // Standard init is symmetric around 0: both signs appear.
    let m = Architecture::mlp(&[20, 20])
        .init(Init::Standard, 1)
        .unwrap();
    let w = m.affine()[0].op.weight();
    assert!(w.iter().any(|&v| v < 0.0) && w.iter().any(|&v| v > 0.0));
}

fn csv_row(label: &str) -> String {
    let mut s = vec!["0"; 784].join(",");
    s.push(',');
    s.push_str(label);
    s
}

#[test]
fn csv_errors_name_the_line_and_labels_stop_at_nine() {
    let good = format!("{}\n\n{}\n", csv_row("9"), csv_row("0"));
    let d = parse_mnist_csv(&good, "t.csv").unwrap();
    assert_eq!(d.len(), 2);
    assert!(!d.is_empty());
    assert_eq!(d.get(1).unwrap().1, 0);
    assert_eq!(d.get(0).unwrap().0.len(), 784);
    let e = d.get(2).unwrap_err().to_string();
    assert!(e.contains("index 2") && e.contains("2 examples"), "{e}");
    let e = parse_mnist_csv(&format!("{}\n{}", csv_row("1"), csv_row("10")), "t.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("\"10\""), "{e}");
    let e = parse_mnist_csv(&format!("{}\n1,2,3", csv_row("1")), "t.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("3 fields"), "{e}");
    let mut bad = csv_row("1");
    bad.replace_range(0..1, "x");
    let e = parse_mnist_csv(&format!("{}\n{bad}", csv_row("1")), "t.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("pixel 0"), "{e}");
    bad = csv_row("1");
    bad.replace_range(0..1, "256");
    let e = parse_mnist_csv(&format!("{}\n{bad}", csv_row("1")), "t.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("256"), "{e}");
    let e = parse_mnist_csv("", "e.csv").unwrap_err().to_string();
    assert!(e.contains("e.csv"), "{e}");
}

#[test]
fn a_split_may_take_a_whole_class_but_not_more() {
    let text: Vec<String> = (0..10)
        .flat_map(|c| (0..2).map(move |_| csv_row(&c.to_string())))
        .collect();
    let d = parse_mnist_csv(&text.join("\n"), "t.csv").unwrap();
    let (tr, te) = stratified_split(&d, 2, 0).unwrap();
    assert_eq!((tr.len(), te.len()), (0, 20));
    assert!(tr.is_empty() && !te.is_empty());
    let e = stratified_split(&d, 3, 0).unwrap_err().to_string();
    assert!(e.contains("fewer than 3"), "{e}");
}

#[test]
fn idx_headers_are_read_in_full() {
    let dir = std::env::temp_dir().join(format!("convex-outer-idx-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One image 1 x 65,536: the width's second byte is non-zero.
    let (n, h, w) = (1u32, 1u32, 65_536u32);
    let mut img = vec![0, 0, 8, 3];
    for v in [n, h, w] {
        img.extend_from_slice(&v.to_be_bytes());
    }
    img.extend((0..w).map(|i| (i % 251) as u8));
    let lab = [0, 0, 8, 1, 0, 0, 0, 1, 4];
    let (ip, lp) = (dir.join("a.idx3"), dir.join("a.idx1"));
    std::fs::write(&ip, &img).unwrap();
    std::fs::write(&lp, lab).unwrap();
    let d = load_idx(&ip, &lp).unwrap();
    assert_eq!((d.len(), d.dim()), (1, 65_536));
    // Headers cut short are errors, not panics.
    std::fs::write(&ip, &img[..15]).unwrap();
    assert!(load_idx(&ip, &lp).is_err());
    std::fs::write(&ip, &img).unwrap();
    std::fs::write(&lp, &lab[..7]).unwrap();
    assert!(load_idx(&ip, &lp).is_err());
    // No images at all (headers only): an empty dataset, not an error.
    let mut none = img[..16].to_vec();
    none[4..8].copy_from_slice(&0u32.to_be_bytes());
    std::fs::write(&ip, &none).unwrap();
    std::fs::write(&lp, [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    assert!(load_idx(&ip, &lp).unwrap().is_empty());
    std::fs::write(&lp, lab).unwrap();
    // An empty image size is an error.
    let mut empty = img[..16].to_vec();
    empty[12..16].copy_from_slice(&0u32.to_be_bytes());
    std::fs::write(&ip, &empty).unwrap();
    std::fs::write(&lp, lab).unwrap();
    assert!(load_idx(&ip, &lp).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn toy2d_has_n_points_two_labels_and_gives_up_when_impossible() {
    for seed in 0..40 {
        let d = toy2d(2, 0.1, seed).unwrap();
        assert_eq!(d.images.len(), 4);
        let mut l = d.labels.clone();
        l.sort_unstable();
        assert_eq!(l, vec![0, 1], "seed {seed}");
    }
    assert_eq!(toy2d(1, 0.1, 0).unwrap().labels.len(), 1);
    let e = toy2d(10, 0.6, 0).unwrap_err().to_string();
    assert!(e.contains("could not place 10 points"), "{e}");
}
