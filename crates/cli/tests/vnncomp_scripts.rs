//! The VNN-COMP protocol scripts (`vnncomp/*.sh`) end to end on the competition's test
//! instances, with the binary under test (`CONVEX_OUTER`), as the harness would call them.

use std::process::Command;

fn root() -> String {
    format!("{}/../..", env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(format!("{}/vnncomp/{name}", root()))
        .args(args)
        .env("CONVEX_OUTER", env!("CARGO_BIN_EXE_convex-outer"))
        .output()
        .unwrap()
}

#[test]
fn prepare_and_run_instance_write_the_result_file() {
    let t = format!("{}/testdata/vnncomp2021/test", root());
    let dir = std::env::temp_dir().join(format!("convex-outer-scripts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (onnx, expected) in [("test_sat.onnx", "sat"), ("test_unsat.onnx", "unsat")] {
        let (o, p) = (format!("{t}/{onnx}"), format!("{t}/test_prop.vnnlib"));
        let out = script("prepare_instance.sh", &["v1", "test", &o, &p]);
        assert!(
            out.status.success(),
            "prepare: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result = dir.join(format!("{onnx}.txt"));
        let out = script(
            "run_instance.sh",
            &["v1", "test", &o, &p, result.to_str().unwrap(), "60"],
        );
        assert!(
            out.status.success(),
            "run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&result).unwrap();
        assert_eq!(text.lines().next(), Some(expected), "{text}");
        if expected == "sat" {
            assert!(text.contains("((X_0 ") && text.contains("(Y_4 "), "{text}");
        }
    }
    // A model that does not load: prepare fails, run writes "error".
    let bad = dir.join("bad.onnx");
    std::fs::write(&bad, b"not onnx").unwrap();
    let p = format!("{t}/test_prop.vnnlib");
    let out = script(
        "prepare_instance.sh",
        &["v1", "test", bad.to_str().unwrap(), &p],
    );
    assert!(!out.status.success());
    let result = dir.join("bad.txt");
    let out = script(
        "run_instance.sh",
        &[
            "v1",
            "test",
            bad.to_str().unwrap(),
            &p,
            result.to_str().unwrap(),
            "10",
        ],
    );
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&result).unwrap().trim(), "error");
    // A result file that cannot be written: exit 1.
    let (o, p) = (
        format!("{t}/test_nano.onnx"),
        format!("{t}/test_nano.vnnlib"),
    );
    let out = script(
        "run_instance.sh",
        &["v1", "test", &o, &p, "/nonexistent-dir/r.txt", "10"],
    );
    assert_eq!(out.status.code(), Some(1));
    // Wrong protocol version.
    let out = script("run_instance.sh", &["v2", "test", "a", "b", "c", "1"]);
    assert!(!out.status.success());
}
