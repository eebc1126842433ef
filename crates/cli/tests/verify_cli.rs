//! `convex-outer verify` and `export`, and `.onnx` models in the other commands: the
//! verdicts, exit codes and result files of VNN-COMP instances, and clear errors.

mod common;

use common::{json, run, testdata, tmp};

#[test]
fn verdicts_exit_codes_and_result_files() {
    let acas = testdata("vnncomp2021/acasxu/ACASXU_run2a_1_2_batch_2000.onnx");
    // Property 2 on network 1_2: sat (VNN-COMP 2021), exit code 10, witness in the file.
    let rf = tmp("sat.txt");
    let o = run(&[
        "verify",
        "--model",
        &acas,
        "--property",
        &testdata("vnncomp2021/acasxu/prop_2.vnnlib"),
        "--result-file",
        rf.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(v["verdict"], "sat");
    let w = &v["report"]["witness"];
    assert_eq!(w["x"].as_array().unwrap().len(), 5);
    let text = std::fs::read_to_string(&rf).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sat"));
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 10, "{text}");
    assert!(
        rest[0].starts_with("((X_0 ") && rest[9].starts_with(" (Y_4 ") && rest[9].ends_with("))"),
        "{text}"
    );
    // The witness in the file is the one in the JSON, to the last bit.
    let x0: f64 = rest[0]
        .trim_start_matches("((X_0 ")
        .trim_end_matches(')')
        .parse()
        .unwrap();
    assert_eq!(x0, w["x"][0].as_f64().unwrap());
    // Property 1 on network 1_1: unsat, exit code 0.
    let rf = tmp("unsat.txt");
    let o = run(&[
        "verify",
        "--model",
        &testdata("vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx"),
        "--property",
        &testdata("vnncomp2021/acasxu/prop_1.vnnlib"),
        "--result-file",
        rf.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(v["verdict"], "unsat");
    assert_eq!(v["options"]["seed"], 3);
    assert_eq!(std::fs::read_to_string(&rf).unwrap(), "unsat\n");
    let c = &v["report"]["conjunctions"][0];
    assert_eq!(c["status"], "excluded");
    assert_eq!(c["method"], "crown+split");
    // The root bounds by interval, crown and alpha, each below the threshold.
    let lower = c["root_bounds"][0]["lower"].as_array().unwrap();
    assert_eq!(lower.len(), 3);
    // --no-split: unknown, exit code 20.
    let o = run(&[
        "verify",
        "--model",
        &testdata("vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx"),
        "--property",
        &testdata("vnncomp2021/acasxu/prop_1.vnnlib"),
        "--no-split",
    ]);
    assert_eq!(o.status.code(), Some(20));
    assert_eq!(json(&o)["verdict"], "unknown");
}

#[test]
fn onnx_models_work_in_every_command_and_export_round_trips() {
    let acas = testdata("vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx");
    let input = tmp("acas_input.json");
    std::fs::write(&input, "[0.6, 0.0, 0.0, 0.45, -0.45]").unwrap();
    let o = run(&[
        "bound",
        "--model",
        &acas,
        "--input",
        input.to_str().unwrap(),
        "--eps",
        "0.01",
        "--method",
        "crown",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o);
    assert!(v["model"]["architecture"]
        .as_str()
        .unwrap()
        .contains("dense 50"));
    // Export the imported network and read the export back: the same bounds.
    let out = tmp("acas.onnx");
    let o = run(&["export", "--model", &acas, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o2 = run(&[
        "bound",
        "--model",
        out.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--eps",
        "0.01",
        "--method",
        "crown",
    ]);
    assert!(o2.status.success());
    assert_eq!(json(&o2)["rows"], v["rows"]);
}

#[test]
fn bad_onnx_and_mismatched_properties_are_clear_errors() {
    let bad = tmp("bad.onnx");
    std::fs::write(&bad, b"this is not protobuf \xff\xff").unwrap();
    let o = run(&[
        "verify",
        "--model",
        bad.to_str().unwrap(),
        "--property",
        &testdata("vnncomp2021/test/test_nano.vnnlib"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.onnx") && err.contains("not an ONNX model"),
        "{err}"
    );
    // A 1-input property on a 5-input network.
    let o = run(&[
        "verify",
        "--model",
        &testdata("vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx"),
        "--property",
        &testdata("vnncomp2021/test/test_nano.vnnlib"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("declares 1 inputs") && err.contains("takes 5 inputs"),
        "{err}"
    );
    // With a result file, the file says `error` too.
    let rf = tmp("mismatch.txt");
    let o = run(&[
        "verify",
        "--model",
        &testdata("vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx"),
        "--property",
        &testdata("vnncomp2021/test/test_nano.vnnlib"),
        "--result-file",
        rf.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&rf).unwrap(), "error\n");
    let o = run(&[
        "verify",
        "--model",
        &testdata("vnncomp2021/test/test_nano.onnx"),
        "--property",
        &testdata("vnncomp2021/test/test_nano.vnnlib"),
        "--timeout",
        "-1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--timeout must be a number of seconds"));
}

#[test]
fn vnncomp_batch_mode_shards_and_resumes() {
    let out = tmp("test_bench.csv");
    let _ = std::fs::remove_file(&out);
    let dir = testdata("vnncomp2021/test");
    // `vnncomp --dir <the test benchmark>` with more flags.
    let vnncomp = |flags: &[&str]| {
        let mut args = vec!["vnncomp", "--dir", dir.as_str()];
        args.extend_from_slice(flags);
        run(&args)
    };
    let o = vnncomp(&["--shard", "0/2", "--out", out.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    // Instances 0, 2, 4 of five.
    assert_eq!(v["run_now"], 3);
    assert_eq!(v["benchmark"], "test");
    assert!(String::from_utf8_lossy(&o.stderr).contains("[3/3]"));
    let o = vnncomp(&["--resume", "--out", out.to_str().unwrap()]);
    let v = json(&o);
    assert_eq!(
        (
            v["resumed"].as_u64(),
            v["run_now"].as_u64(),
            v["instances"].as_u64()
        ),
        (Some(3), Some(2), Some(5))
    );
    assert_eq!(v["decided"], 5);
    assert_eq!(v["wrong"].as_array().unwrap().len(), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.lines().next().unwrap().starts_with(
        "benchmark,onnx,vnnlib,competition_timeout_s,timeout_s,seed,settings,verdict,expected,wrong"
    ));
    assert!(
        text.lines().skip(1).all(|l| l.contains(
            ",split=on relu_split=auto wide=relu-bab lp=auto restarts=10 line_search=on,"
        )),
        "{text}"
    );
    // Other settings are another run: every instance runs again, the file keeps the
    // earlier rows beside the new ones, and the summary counts this run's.
    let o = vnncomp(&[
        "--resume",
        "--no-split",
        "--lp",
        "last",
        "--restarts",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let v = json(&o);
    assert_eq!(
        (v["resumed"].as_u64(), v["run_now"].as_u64()),
        (Some(0), Some(5)),
        "{v}"
    );
    assert_eq!(
        v["settings"],
        "split=off relu_split=off wide=off lp=last restarts=3 line_search=on"
    );
    assert_eq!(v["instances"], 5, "{v}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 11, "{text}");
    let with = |s: &str| text.lines().filter(|l| l.contains(s)).count();
    assert_eq!(
        (
            with(",split=off relu_split=off wide=off lp=last restarts=3 line_search=on,"),
            with(",split=on relu_split=auto wide=relu-bab lp=auto restarts=10 line_search=on,")
        ),
        (5, 5),
        "{text}"
    );
    // Another timeout likewise: both kept, this run's counted once (it read 10 instances).
    let o = vnncomp(&["--resume", "--cap", "7", "--out", out.to_str().unwrap()]);
    let v = json(&o);
    assert_eq!(
        (
            v["resumed"].as_u64(),
            v["run_now"].as_u64(),
            v["instances"].as_u64()
        ),
        (Some(0), Some(5), Some(5)),
        "{v}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 16);
    // A file that is not a results CSV is refused, also with one line (a header and no
    // rows), and left as it was.
    let bad = tmp("not_rows.csv");
    for text in ["hello\n", "a,b\n", "benchmark,onnx\nx,y\n"] {
        std::fs::write(&bad, text).unwrap();
        let o = vnncomp(&["--resume", "--out", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{text:?}: {err}");
        assert!(
            err.contains("not a results file of `vnncomp`"),
            "{text:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&bad).unwrap(), text);
    }
    // ReLU branch and bound acts inside the input splitting: with --no-split it is refused.
    let o = vnncomp(&["--no-split", "--relu-split-depth", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
    // --no-beta is an option of that branch and bound: refused with --no-split (which
    // rules it out; a usage error) and with --relu-split-depth off, instead of silently
    // ignored.
    let o = vnncomp(&["--no-beta", "--no-split"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
    let o = vnncomp(&["--no-beta", "--relu-split-depth", "off"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--relu-split-depth off"));
    let o = vnncomp(&["--relu-split-depth", "deep"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a depth"));
    // Rows written before the column existed read as the defaults they were run with
    // (no ReLU split, no line search): kept by a run with those settings, rerun by one
    // with today's defaults.
    let old = tmp("old_rows.csv");
    std::fs::write(
        &old,
        "benchmark,onnx,vnnlib,competition_timeout_s,timeout_s,seed,verdict,expected,wrong,time_s,boxes,falsify_points,methods,error\n\
         test,test_nano.onnx,test_nano.vnnlib,60,60,0,unsat,unsat,false,0.01,1,1,interval,\n",
    )
    .unwrap();
    let o = vnncomp(&[
        "--only",
        "test_nano",
        "--relu-split-depth",
        "off",
        "--no-line-search",
        "--resume",
        "--out",
        old.to_str().unwrap(),
    ]);
    let v = json(&o);
    assert_eq!(v["resumed"].as_u64(), Some(1), "{v}");
    let o = vnncomp(&[
        "--only",
        "test_nano",
        "--resume",
        "--out",
        old.to_str().unwrap(),
    ]);
    let v = json(&o);
    assert_eq!(
        (v["resumed"].as_u64(), v["run_now"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    // A verdict that contradicts the reference fails the run: a reference that says the
    // sat instance is unsat.
    let refs = tmp("wrong_verdicts.csv");
    std::fs::write(
        &refs,
        "benchmark,onnx,vnnlib,verdict\ntest,test_sat.onnx,test_prop.vnnlib,unsat\n",
    )
    .unwrap();
    let o = vnncomp(&[
        "--only",
        "test_sat",
        "--verdicts",
        refs.to_str().unwrap(),
        "--out",
        tmp("w.csv").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(json(&o)["wrong"][0]
        .as_str()
        .unwrap()
        .contains("test_sat.onnx"));
    // Resumed with the real reference (verdicts.csv one folder up), the same row is judged
    // again: not wrong.
    let o = vnncomp(&[
        "--only",
        "test_sat",
        "--resume",
        "--out",
        tmp("w.csv").to_str().unwrap(),
    ]);
    let v = json(&o);
    assert_eq!(
        (o.status.code(), v["resumed"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    assert_eq!(v["wrong"].as_array().unwrap().len(), 0, "{v}");
    // A selection of nothing leaves the results file as it was, and says so.
    let before = std::fs::read_to_string(&out).unwrap();
    let o = vnncomp(&["--only", "no-such-instance", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is selected"));
    assert_eq!(json(&o)["total_time_s"].as_f64(), Some(0.0));
    assert!(json(&o)["total_time_s"]
        .as_f64()
        .unwrap()
        .is_sign_positive());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
    let o = vnncomp(&["--shard", "2/2"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_values_fail_fast_and_files_are_recognised_by_content() {
    let nano = testdata("vnncomp2021/test/test_nano.onnx");
    let prop = testdata("vnncomp2021/test/test_nano.vnnlib");
    for t in ["1e19", "1e300", "0", "nan"] {
        let o = run(&[
            "verify",
            "--model",
            &nano,
            "--property",
            &prop,
            "--timeout",
            t,
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "--timeout {t}: {err}");
        assert!(
            err.contains("--timeout must be a number of seconds in (0, 1e9]"),
            "{err}"
        );
    }
    // The result file's folder is checked before the search.
    let o = run(&[
        "verify",
        "--model",
        &nano,
        "--property",
        &prop,
        "--result-file",
        "/nonexistent-dir/r.txt",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("cannot write the result file /nonexistent-dir/r.txt"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    // A property file that is not there: named, with what was being done.
    for cmd in ["verify", "property"] {
        let mut args = vec![cmd];
        if cmd == "verify" {
            args.extend(["--model", &nano]);
        }
        args.extend(["--property", "/nonexistent-dir/p.vnnlib"]);
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains("cannot load the VNNLIB property: /nonexistent-dir/p.vnnlib"),
            "{cmd}: {err}"
        );
    }
    // An ONNX file without the extension is read as ONNX.
    let copy = tmp("nano_model");
    std::fs::copy(&nano, &copy).unwrap();
    let o = run(&[
        "verify",
        "--model",
        copy.to_str().unwrap(),
        "--property",
        &prop,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // export refuses to write protobuf into a .json file.
    let o = run(&[
        "export",
        "--model",
        &nano,
        "--out",
        tmp("x.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("name it .onnx"));
}

#[test]
fn vnncomp_records_broken_instances_as_error_rows_and_writes_rows_as_it_goes() {
    let dir = tmp("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let t = testdata("vnncomp2021/test");
    for f in [
        "test_nano.onnx",
        "test_nano.vnnlib",
        "test_prop.vnnlib",
        "test_sat.onnx",
    ] {
        std::fs::copy(format!("{t}/{f}"), dir.join(f)).unwrap();
    }
    // The second row pairs a 1-input network with a 5-input property; the third names a
    // missing file.
    std::fs::write(
        dir.join("my_instances.csv"),
        "test_nano.onnx,test_nano.vnnlib,10\ntest_nano.onnx,test_prop.vnnlib,10\nmissing.onnx,test_nano.vnnlib,10\ntest_sat.onnx,test_prop.vnnlib,10\n",
    )
    .unwrap();
    let out = tmp("bench_rows.csv");
    let o = run(&[
        "vnncomp",
        "--dir",
        dir.to_str().unwrap(),
        "--benchmark",
        "mine",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(
        (v["decided"].as_u64(), v["error"].as_u64()),
        (Some(2), Some(2))
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[2].contains(",error,") && lines[2].contains("declares 5 inputs"),
        "{text}"
    );
    assert!(
        lines[3].contains(",error,") && lines[3].contains("missing.onnx"),
        "{text}"
    );
    assert!(lines[4].contains(",sat,"), "{text}");
    // An empty instances file is an error, not an empty success.
    std::fs::write(dir.join("my_instances.csv"), "").unwrap();
    let o = run(&[
        "vnncomp",
        "--dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no instances"));
}

/// A 2-2 `Gemm` followed by a `BatchNormalization` whose fold rounds (eps 1e-5, var 3).
fn batchnorm_onnx() -> Vec<u8> {
    use onnx_io::pb;
    use prost::Message;
    let t = |name: &str, dims: &[i64], data: &[f32]| pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data.to_vec(),
        ..Default::default()
    };
    let info = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: [1, 2]
                        .iter()
                        .map(|&d| pb::tensor_shape_proto::Dimension {
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], out: &str| pb::NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        name: format!("{op}_0"),
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: vec![
                node("Gemm", &["x", "W", "b"], "z"),
                node("BatchNormalization", &["z", "g", "beta", "m", "v"], "y"),
            ],
            initializer: vec![
                t("W", &[2, 2], &[1.0, 0.5, -0.25, 1.0]),
                t("b", &[2], &[0.0, 0.125]),
                t("g", &[2], &[1.0, 2.0]),
                t("beta", &[2], &[0.5, 0.0]),
                t("m", &[2], &[0.25, -0.5]),
                t("v", &[2], &[3.0, 0.7]),
            ],
            input: vec![info("x")],
            output: vec![info("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn batchnorm_that_rounds_is_refused_unless_asked_and_then_named() {
    let model = tmp("bn.onnx");
    std::fs::write(&model, batchnorm_onnx()).unwrap();
    let prop = tmp("bn.vnnlib");
    // y0 >= 100 is out of reach on [0, 1]^2.
    std::fs::write(
        &prop,
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n\
         (assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n(assert (<= X_1 1))\n(assert (>= Y_0 100))\n",
    )
    .unwrap();
    let args = [
        "verify",
        "--model",
        model.to_str().unwrap(),
        "--property",
        prop.to_str().unwrap(),
    ];
    let o = run(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("BatchNormalization") && err.contains("--round-batchnorm"),
        "{err}"
    );
    let o = run(&[&args[..], &["--round-batchnorm"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("folded with rounding") && err.contains("node 1"),
        "{err}"
    );
    let v = json(&o);
    assert_eq!(v["verdict"], "unsat");
    let folds = v["model"]["rounded_folds"].as_array().unwrap();
    assert_eq!(folds.len(), 1, "{v}");
    // The flag is global: it also goes before the subcommand.
    let o = run(&[&["--round-batchnorm"], &args[..]].concat());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A network whose input is NHWC (`[1, 4, 4, 2]`): a `Transpose` into NCHW before its
/// conv and one back into NHWC before its flatten, written as an f32 ONNX file.
fn nhwc_onnx(path: &std::path::Path) {
    use network::{Layer, Model, Shape};
    let w = |n: usize, k: f64| -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 * k).sin() * 8.0).round() / 8.0)
            .collect()
    };
    let model = Model::new(
        Shape::Image { c: 4, h: 4, w: 2 },
        vec![
            Layer::Transpose { perm: [2, 0, 1] },
            Layer::Conv2d {
                weight: w(2 * 2 * 9, 1.3),
                bias: vec![0.125, -0.25],
                out_channels: 2,
                in_channels: 2,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                padding: 1,
            },
            Layer::Relu,
            Layer::Transpose { perm: [1, 2, 0] },
            Layer::Flatten,
            Layer::Dense {
                weight: w(2 * 32, 0.7),
                bias: vec![0.0, 0.5],
                out_features: 2,
                in_features: 32,
            },
        ],
    )
    .unwrap();
    onnx_io::save_onnx(&model, path, onnx_io::ElemType::F32).unwrap();
}

#[test]
fn nhwc_networks_with_transposes_verify_end_to_end() {
    let model = tmp("nhwc.onnx");
    nhwc_onnx(&model);
    let header: String = (0..32)
        .map(|i| format!("(declare-const X_{i} Real)\n"))
        .chain((0..2).map(|j| format!("(declare-const Y_{j} Real)\n")))
        .collect();
    let bounds: String = (0..32)
        .map(|i| format!("(assert (>= X_{i} 0.0))\n(assert (<= X_{i} 0.1))\n"))
        .collect();
    let verify = |name: &str, unsafe_region: &str| {
        let prop = tmp(name);
        std::fs::write(&prop, format!("{header}{bounds}{unsafe_region}")).unwrap();
        run(&[
            "verify",
            "--model",
            model.to_str().unwrap(),
            "--property",
            prop.to_str().unwrap(),
        ])
    };
    // Out of reach: unsat, proven (exit code 0).
    let o = verify("nhwc_unsat.vnnlib", "(assert (>= Y_0 1000))\n");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&o);
    assert_eq!(v["verdict"], "unsat", "{v}");
    assert!(
        v["model"]["architecture"]
            .as_str()
            .unwrap()
            .contains("transpose 2,0,1"),
        "{v}"
    );
    // Everywhere: sat, with a witness inside the box (file order, NHWC) that re-checks.
    let o = verify("nhwc_sat.vnnlib", "(assert (<= Y_0 1000))\n");
    assert_eq!(o.status.code(), Some(10));
    let v = json(&o);
    assert_eq!(v["verdict"], "sat", "{v}");
    let x = v["report"]["witness"]["x"].as_array().unwrap();
    assert_eq!(x.len(), 32);
    assert!(x
        .iter()
        .all(|xi| (0.0..=0.1).contains(&xi.as_f64().unwrap())));
}
