//! Datasets: the shipped MNIST subset, full MNIST from IDX files, and the 2-D toy problem
//! of the paper's appendix B.1.
//!
//! Pixels are scaled to [0, 1] (`value / 255`). The shipped subset (`data/mnist_5k.csv.gz`,
//! 500 digits of each class; provenance in `data/README.md`) is compiled into the binary,
//! so nothing is downloaded. Its train/test split is stratified and seeded: for each
//! class the 500 row indices (in file order) are shuffled with ChaCha8 seeded by
//! `split_seed`, the first 400 go to train and the last 100 to test; each split keeps
//! file order. [`DEFAULT_SPLIT_SEED`] is 0.

use nalgebra::{DMatrixView, DVectorView};
use std::io::Read;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{NetworkError, Result};
use crate::shape::Shape;

/// The shipped MNIST subset, gzipped CSV (784 pixels 0-255 then the label, per row).
pub const MNIST_5K_GZ: &[u8] = include_bytes!("../../../data/mnist_5k.csv.gz");
/// Name used for the shipped subset in errors and results.
pub const MNIST_5K_NAME: &str = "data/mnist_5k.csv.gz";
/// Split seed used when none is given.
pub const DEFAULT_SPLIT_SEED: u64 = 0;
/// Test examples per class in the shipped split.
pub const MNIST_TEST_PER_CLASS: usize = 100;

/// A labelled dataset; example `i` is `images[i * dim .. (i + 1) * dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub shape: Shape,
    pub images: Vec<f64>,
    pub labels: Vec<usize>,
    pub n_classes: usize,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Values per example.
    pub fn dim(&self) -> usize {
        self.shape.numel()
    }
    /// Example `i`: (input, `dim` entries; label). Panics if `i >= len()`.
    pub fn example(&self, i: usize) -> (DVectorView<'_, f64>, usize) {
        let d = self.dim();
        (
            DVectorView::from_slice(&self.images[i * d..(i + 1) * d], d),
            self.labels[i],
        )
    }
    /// Every example as a column: `dim x len`, a view of [`Dataset::images`].
    pub fn matrix(&self) -> DMatrixView<'_, f64> {
        DMatrixView::from_slice(&self.images, self.dim(), self.len())
    }
    /// Example `i`, or an error naming the dataset and its size.
    pub fn get(&self, i: usize) -> Result<(DVectorView<'_, f64>, usize)> {
        if i >= self.len() {
            return Err(NetworkError::Data {
                file: self.name.clone(),
                msg: format!(
                    "example index {i} is out of range (the set has {} examples)",
                    self.len()
                ),
            });
        }
        Ok(self.example(i))
    }
    /// A new dataset with the examples at `idx`, in that order.
    pub fn subset(&self, idx: &[usize], name: &str) -> Dataset {
        let d = self.dim();
        let mut images = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            images.extend_from_slice(&self.images[i * d..(i + 1) * d]);
        }
        Dataset {
            name: name.to_string(),
            shape: self.shape,
            images,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            n_classes: self.n_classes,
        }
    }
}

/// Parses MNIST rows of CSV text (784 integers 0-255 then a label 0-9, no header).
pub fn parse_mnist_csv(text: &str, name: &str) -> Result<Dataset> {
    let err = |line: usize, msg: String| NetworkError::Data {
        file: name.to_string(),
        msg: format!("line {line}: {msg}"),
    };
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 785 {
            return Err(err(
                ln + 1,
                format!(
                    "{} fields, expected 785 (784 pixels and a label)",
                    fields.len()
                ),
            ));
        }
        for (j, f) in fields[..784].iter().enumerate() {
            let v: u32 = f
                .trim()
                .parse()
                .map_err(|_| err(ln + 1, format!("pixel {j} is {f:?}, not an integer")))?;
            if v > 255 {
                return Err(err(ln + 1, format!("pixel {j} is {v}, outside 0-255")));
            }
            images.push(v as f64 / 255.0);
        }
        let label: usize = fields[784]
            .trim()
            .parse()
            .ok()
            .filter(|&l: &usize| l < 10)
            .ok_or_else(|| {
                err(
                    ln + 1,
                    format!("label {:?} is not a digit 0-9", fields[784]),
                )
            })?;
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(NetworkError::Data {
            file: name.to_string(),
            msg: "no rows".into(),
        });
    }
    Ok(Dataset {
        name: name.to_string(),
        shape: Shape::Image { c: 1, h: 28, w: 28 },
        images,
        labels,
        n_classes: 10,
    })
}

fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| NetworkError::Data {
            file: name.to_string(),
            msg: format!("gzip: {e}"),
        })?;
    Ok(out)
}

/// Reads a file, un-gzipping it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|error| NetworkError::Io {
        file: path.to_path_buf(),
        error,
    })?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        gunzip(&bytes, &path.display().to_string())
    } else {
        Ok(bytes)
    }
}

/// All 5,000 digits of the shipped subset, in file order.
pub fn mnist_5k() -> Result<Dataset> {
    let text = gunzip(MNIST_5K_GZ, MNIST_5K_NAME)?;
    let text = String::from_utf8(text).map_err(|_| NetworkError::Data {
        file: MNIST_5K_NAME.into(),
        msg: "not UTF-8 text".into(),
    })?;
    parse_mnist_csv(&text, MNIST_5K_NAME)
}

/// Loads an MNIST CSV file (plain or gzipped) in the shipped subset's format.
pub fn load_mnist_csv(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = read_maybe_gz(path)?;
    let text = String::from_utf8(bytes).map_err(|_| NetworkError::Data {
        file: name.clone(),
        msg: "not UTF-8 text".into(),
    })?;
    parse_mnist_csv(&text, &name)
}

/// The seeded, stratified train/test split of a dataset: per class, shuffle that class's
/// indices (file order) with ChaCha8(`seed`), the last `test_per_class` go to test.
pub fn stratified_split(
    data: &Dataset,
    test_per_class: usize,
    seed: u64,
) -> Result<(Dataset, Dataset)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in 0..data.n_classes {
        let mut idx: Vec<usize> = (0..data.len())
            .filter(|&i| data.labels[i] == class)
            .collect();
        if idx.len() < test_per_class {
            return Err(NetworkError::Data {
                file: data.name.clone(),
                msg: format!(
                    "class {class} has {} examples, fewer than {test_per_class} for the test split",
                    idx.len()
                ),
            });
        }
        idx.shuffle(&mut rng);
        let cut = idx.len() - test_per_class;
        train.extend_from_slice(&idx[..cut]);
        test.extend_from_slice(&idx[cut..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((
        data.subset(&train, &format!("{}:train(seed {seed})", data.name)),
        data.subset(&test, &format!("{}:test(seed {seed})", data.name)),
    ))
}

/// The shipped subset split into 4,000 train and 1,000 test digits (see the module docs).
pub fn mnist_split(seed: u64) -> Result<(Dataset, Dataset)> {
    stratified_split(&mnist_5k()?, MNIST_TEST_PER_CLASS, seed)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Loads full MNIST (or any IDX pair) from an `idx3-ubyte` image file and an `idx1-ubyte`
/// label file, plain or gzipped. Pixels are scaled to [0, 1].
pub fn load_idx(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset> {
    let (ip, lp) = (images.as_ref(), labels.as_ref());
    let iname = ip.display().to_string();
    let lname = lp.display().to_string();
    let ib = read_maybe_gz(ip)?;
    let lb = read_maybe_gz(lp)?;
    let derr = |file: &str, msg: String| NetworkError::Data {
        file: file.to_string(),
        msg,
    };
    if ib.len() < 16 || be_u32(&ib, 0) != 0x0000_0803 {
        return Err(derr(
            &iname,
            "not an IDX image file (magic 0x00000803 and a 16-byte header expected)".into(),
        ));
    }
    if lb.len() < 8 || be_u32(&lb, 0) != 0x0000_0801 {
        return Err(derr(
            &lname,
            "not an IDX label file (magic 0x00000801 and an 8-byte header expected)".into(),
        ));
    }
    let (n, h, w) = (
        be_u32(&ib, 4) as usize,
        be_u32(&ib, 8) as usize,
        be_u32(&ib, 12) as usize,
    );
    let nl = be_u32(&lb, 4) as usize;
    if h == 0 || w == 0 {
        return Err(derr(&iname, format!("image size {h}x{w} is empty")));
    }
    let pixels = n
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or_else(|| {
            derr(
                &iname,
                format!("header dimensions {n} x {h} x {w} overflow"),
            )
        })?;
    if ib.len() != 16 + pixels {
        return Err(derr(
            &iname,
            format!(
                "header says {n} images of {h}x{w} ({} bytes) but the file has {} bytes of pixels",
                n * h * w,
                ib.len() - 16
            ),
        ));
    }
    if lb.len() != 8 + nl {
        return Err(derr(
            &lname,
            format!(
                "header says {nl} labels but the file has {} bytes of labels",
                lb.len() - 8
            ),
        ));
    }
    if nl != n {
        return Err(derr(
            &lname,
            format!("{nl} labels for {n} images in {iname}"),
        ));
    }
    let labels: Vec<usize> = lb[8..].iter().map(|&l| l as usize).collect();
    if let Some(i) = labels.iter().position(|&l| l > 9) {
        return Err(derr(
            &lname,
            format!("label {i} is {}, not a digit 0-9", labels[i]),
        ));
    }
    Ok(Dataset {
        name: iname,
        shape: Shape::Image { c: 1, h, w },
        images: ib[16..].iter().map(|&p| p as f64 / 255.0).collect(),
        labels,
        n_classes: 10,
    })
}

/// The 2-D toy problem of appendix B.1: `n` points in [0,1]^2, every pair at least
/// `min_dist` apart in l-infinity (rejection sampling), labels 0/1 drawn at random with
/// both classes present. The paper uses `n = 12`, `min_dist = 0.16`.
pub fn toy2d(n: usize, min_dist: f64, seed: u64) -> Result<Dataset> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pts: Vec<[f64; 2]> = Vec::with_capacity(n);
    let mut tries = 0usize;
    while pts.len() < n {
        tries += 1;
        if tries > 1_000_000 {
            return Err(NetworkError::Data {
                file: "toy2d".into(),
                msg: format!("could not place {n} points at least {min_dist} apart in [0,1]^2"),
            });
        }
        let p = [rng.random::<f64>(), rng.random::<f64>()];
        if pts
            .iter()
            .all(|q| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()) >= min_dist)
        {
            pts.push(p);
        }
    }
    let mut labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..2)).collect();
    if n >= 2 && labels.iter().all(|&l| l == labels[0]) {
        labels[0] = 1 - labels[0];
    }
    Ok(Dataset {
        name: format!("toy2d(n={n}, min_dist={min_dist}, seed={seed})"),
        shape: Shape::Flat(2),
        images: pts.iter().flat_map(|p| p.iter().copied()).collect(),
        labels,
        n_classes: 2,
    })
}
