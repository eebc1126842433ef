//! The dependency invariants of ARCHITECTURE.md, checked with `cargo tree` (normal edges,
//! the default features): each crate's job keeps it free of what belongs to another.

use std::process::Command;

/// The packages `krate` depends on (transitively, or directly with `direct`).
fn deps(krate: &str, direct: bool) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "tree", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ]);
    if direct {
        cmd.args(["--depth", "1"]);
    }
    let o = cmd.output().expect("cargo runs");
    assert!(
        o.status.success(),
        "cargo tree -p {krate}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

#[test]
fn crates_depend_only_on_what_their_job_needs() {
    for (krate, direct, forbidden) in [
        ("network", false, &["candle-core", "good_lp", "clap"][..]),
        ("dual", false, &["candle-core", "good_lp", "clap"]),
        ("dual", true, &["serde_json", "flate2"]),
        ("lp", false, &["candle-core", "clap"]),
        (
            "vnnlib",
            false,
            &["network", "dual", "lp", "candle-core", "good_lp", "clap"],
        ),
        (
            "onnx-io",
            false,
            &["dual", "lp", "vnnlib", "candle-core", "good_lp", "clap"],
        ),
        (
            "exact",
            false,
            &[
                "vnnlib",
                "onnx-io",
                "verify",
                "candle-core",
                "clap",
                "tract-onnx",
            ],
        ),
        ("exact", true, &["serde_json"]),
        (
            "verify",
            false,
            &["candle-core", "clap", "tract-onnx", "onnx-io"],
        ),
        ("train", false, &["good_lp", "clap"]),
        ("convex-outer", false, &["candle-core"]),
        // The main job (`tightness`, default features) compiles neither candle nor tract.
        (
            "experiments",
            false,
            &["candle-core", "tract-onnx", "onnx-io"],
        ),
    ] {
        let d = deps(krate, direct);
        assert!(
            d.iter().any(|p| p == krate),
            "{krate}: cargo tree lists {d:?}"
        );
        for f in forbidden {
            assert!(
                !d.iter().any(|p| p == f),
                "ARCHITECTURE.md violated: {krate} depends on {f}{}",
                if direct { " directly" } else { "" }
            );
        }
    }
}

/// Vectors and matrices at the public boundary are nalgebra's (ARCHITECTURE.md): every
/// library crate that exposes them sees nalgebra, and one version of it in the workspace
/// (so a `DVector` from one crate is the `DVector` of another).
#[test]
fn the_boundary_types_are_one_nalgebra() {
    for krate in [
        "network", "dual", "lp", "vnnlib", "exact", "verify", "train",
    ] {
        let d = deps(krate, false);
        assert!(
            d.iter().any(|p| p == "nalgebra"),
            "{krate} does not see nalgebra: {d:?}"
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "tree",
            "--workspace",
            "-e",
            "normal",
            "-i",
            "nalgebra",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        o.status.success(),
        "one nalgebra expected: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
