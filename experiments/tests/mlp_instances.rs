//! `mlp_instances` on a tiny setting (two digits, one eps): the committed MLPs copied as
//! ONNX, one VNNLIB file per network and digit that the `vnnlib` crate reads back as the
//! clipped ball around the digit with one unsafe conjunction per other class, the
//! instances CSV with the timeouts; bad flags are errors.

mod common;

#[test]
fn mlp_instances_writes_a_vnncomp_benchmark() {
    let (dir, stdout) = common::run_into_temp(
        env!("CARGO_BIN_EXE_mlp_instances"),
        "mlp-instances",
        &["--digits", "2", "--eps", "0.02"],
    );
    assert!(stdout.contains("6 instances"), "{stdout}");
    let csv = std::fs::read_to_string(dir.join("instances.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6, "{csv}");
    let (_, test) = network::data::mnist_split(0).unwrap();
    for r in &rows {
        let (onnx, vnnlib, timeout) = (r[0], r[1], r[2]);
        let deep = !onnx.contains("256x2");
        assert_eq!(timeout, if deep { "300" } else { "120" }, "{r:?}");
        assert!(dir.join(onnx).exists(), "{onnx}");
        // mnist_mlp_256x2_test500_eps0.02.vnnlib: the digit's index in the test split.
        let idx: usize = vnnlib
            .split("_test")
            .nth(1)
            .and_then(|s| s.split('_').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(idx == 0 || idx == 500, "{vnnlib}");
        let (x, label) = test.example(idx);
        let p = vnnlib::read_property(dir.join(vnnlib)).unwrap();
        assert_eq!((p.n_inputs, p.n_outputs), (784, 10));
        assert_eq!(p.cases.len(), 1);
        let case = &p.cases[0];
        for (i, &xi) in x.iter().enumerate() {
            let (lo, hi) = (case.input.lower[i], case.input.upper[i]);
            assert!(lo >= 0.0 && hi <= 1.0 && lo <= xi && xi <= hi, "pixel {i}");
            assert!((hi - lo) <= 0.04 + 1e-12, "pixel {i}: width {}", hi - lo);
        }
        // One conjunction per other class: Y_t - Y_label >= 0, written c . Y <= rhs.
        assert_eq!(case.unsafe_region.len(), 9);
        for conj in &case.unsafe_region {
            assert_eq!(conj.len(), 1);
            let c = &conj[0].coef;
            assert_eq!(c[label], 1.0, "{c:?}");
            assert_eq!(c.iter().filter(|&&v| v == -1.0).count(), 1, "{c:?}");
            assert_eq!(conj[0].rhs_hi, 0.0);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    let m = "../models/mnist_mlp_256x2.onnx";
    for (bad, says) in [
        (&["--digits", "0"][..], "--digits"),
        (&["--eps=-0.1"][..], "--eps"),
        (&["--eps", "0"][..], "--eps"),
        (&["--digits", "5000"][..], "--digits"),
        (&["--eps", "0.02", "0.02"][..], "given twice"),
        (&["--timeouts", "0", "5"][..], "--timeouts"),
        (&["--models", m, m][..], "overwrite each other"),
    ] {
        let err = common::run_failing(env!("CARGO_BIN_EXE_mlp_instances"), "mlp-bad", bad);
        assert!(err.contains(says), "{bad:?}: {err}");
    }
}
