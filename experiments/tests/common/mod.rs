//! Helpers shared by the experiments' tiny-setting tests: run a binary into a fresh
//! folder, read the CSV it wrote, check its figures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the binary `bin` with `args` and `--out-dir` a fresh temporary folder named after
/// `name`; returns the folder and the process's output.
pub fn run(bin: &str, name: &str, args: &[&str]) -> (PathBuf, std::process::Output) {
    let dir = std::env::temp_dir().join(format!("convex-outer-{name}-{}", std::process::id()));
    let o = Command::new(bin)
        .args(args)
        .arg("--out-dir")
        .arg(&dir)
        .output()
        .unwrap();
    (dir, o)
}

/// [`run`], asserting that the binary succeeded (printing its stderr otherwise). Returns
/// the folder and the binary's stdout.
pub fn run_into_temp(bin: &str, name: &str, args: &[&str]) -> (PathBuf, String) {
    let (dir, o) = run(bin, name, args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (dir, String::from_utf8_lossy(&o.stdout).into_owned())
}

/// [`run`], asserting that the binary failed; removes the folder. Returns its stderr.
pub fn run_failing(bin: &str, name: &str, args: &[&str]) -> String {
    let (dir, o) = run(bin, name, args);
    std::fs::remove_dir_all(&dir).ok();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{name} succeeded: {err}");
    err
}

/// A results CSV: its header and rows.
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<csv::StringRecord>,
}

impl Csv {
    /// Reads `results/<name>.csv` under `dir`.
    pub fn read(dir: &Path, name: &str) -> Csv {
        let mut r = csv::Reader::from_path(dir.join(format!("results/{name}.csv"))).unwrap();
        let header = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r.records().map(|x| x.unwrap()).collect();
        Csv { header, rows }
    }

    /// The index of column `c` (a panic naming it when it is missing).
    pub fn col(&self, c: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == c)
            .unwrap_or_else(|| panic!("missing column {c}"))
    }
}

/// Asserts that `figures/<name>.png` and `.svg` under `dir` were written (over 1,000
/// bytes each), then removes `dir`.
pub fn check_figures_and_clean(dir: &Path, name: &str) {
    for ext in ["png", "svg"] {
        let f = format!("figures/{name}.{ext}");
        assert!(
            std::fs::metadata(dir.join(&f)).unwrap().len() > 1000,
            "{f} is empty"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Writes the first `n` digits of the shipped test split as MNIST IDX files
/// (`t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`) under `dir`.
pub fn write_idx(dir: &std::path::Path, n: usize) {
    let (_, test) = network::data::mnist_split(network::data::DEFAULT_SPLIT_SEED).unwrap();
    let mut images = vec![0u8, 0, 8, 3];
    let mut labels = vec![0u8, 0, 8, 1];
    for v in [n as u32, 28, 28] {
        images.extend_from_slice(&v.to_be_bytes());
    }
    labels.extend_from_slice(&(n as u32).to_be_bytes());
    for i in 0..n {
        let (x, y) = test.get(i).unwrap();
        // The shipped pixels are k / 255 exactly.
        images.extend(x.iter().map(|p| (p * 255.0).round() as u8));
        labels.push(y as u8);
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
}
