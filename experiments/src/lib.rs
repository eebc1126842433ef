//! Helpers shared by the experiment binaries: progress bars, output paths, CSV writing
//! and plotting with a bundled font (so figures render on a machine without system
//! fonts). The binaries themselves are thin: they parse flags, call the library crates
//! and write files.

pub mod exact_digit;
pub mod soundness;

/// Every experiment binary links this crate, so they all allocate with mimalloc, which
/// keeps freed memory for reuse (with the system allocator every large temporary buffer
/// of a bound was mapped and unmapped again; README: Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use plotters::chart::{ChartContext, SeriesLabelPosition};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::{DrawingArea, DrawingAreaErrorKind, DrawingBackend, BLACK, WHITE};
use plotters::style::Color;

/// `n` points of the l-infinity ball of radius `eps` around `x` (row-major, `n x len(x)`),
/// the sampler of every experiment's chain check: even-numbered points are corners (a
/// random sign per coordinate), odd-numbered ones uniform in the ball. Deterministic in
/// `rng`.
pub fn ball_samples(
    x: impl network::AsVector,
    eps: f64,
    n: usize,
    rng: &mut impl rand::Rng,
) -> Vec<f64> {
    let x = x.as_values();
    let mut pts = Vec::with_capacity(n * x.len());
    for s in 0..n {
        let corner = s % 2 == 0;
        for &v in x {
            let d = if corner {
                if rng.random::<bool>() {
                    eps
                } else {
                    -eps
                }
            } else {
                rng.random_range(-eps..=eps)
            };
            pts.push(v + d);
        }
    }
    pts
}

/// A number in a results CSV as Rust's `Display` writes it (the shortest decimal that reads
/// back to the same value; every results file uses it), for
/// `#[serde(serialize_with = "experiments::display")]` on the fields of a row struct.
pub fn display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// As [`display`] for an optional value: `-` when absent (not computed for that row).
pub fn display_or_dash<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_str("-"),
    }
}

/// As [`display`] for an optional value: empty when absent.
pub fn display_or_empty<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_str(""),
    }
}

/// An LP solver on the command line (`--solver`), as a clap value enum shared by every
/// experiment that solves LP (19).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SolverArg {
    /// Dual simplex in pure Rust.
    Microlp,
    /// Interior point in pure Rust.
    Clarabel,
    /// HiGHS (feature `lp/highs`).
    Highs,
}

impl SolverArg {
    /// The solver named, or the preferred one (HiGHS when compiled in, else Clarabel);
    /// an error when HiGHS is named but not compiled in.
    pub fn resolve(arg: Option<SolverArg>) -> Result<lp::Solver> {
        let s = match arg {
            None => return Ok(lp::Solver::preferred()),
            Some(SolverArg::Microlp) => lp::Solver::Microlp,
            Some(SolverArg::Clarabel) => lp::Solver::Clarabel,
            Some(SolverArg::Highs) => lp::Solver::Highs,
        };
        if !s.available() {
            anyhow::bail!(
                "--solver {}: not compiled with the `highs` feature (build with --features lp/highs)",
                s.name()
            );
        }
        Ok(s)
    }
}

/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans.LICENSE`).
pub const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font as plotters' "sans-serif" (idempotent).
pub fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the bundled font could not be loaded"))
}

/// A progress bar for `n` steps with a message slot, on stderr.
pub fn progress(n: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(n);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// `out_dir/results/<name>.csv`, `out_dir/figures/<name>.png` and `.svg`, with the
/// folders created.
pub struct Outputs {
    pub csv: PathBuf,
    pub png: PathBuf,
    pub svg: PathBuf,
}

impl Outputs {
    /// Says on stderr where the results and figures were written.
    pub fn report(&self) {
        eprintln!(
            "wrote {}, {} and {}",
            self.csv.display(),
            self.png.display(),
            self.svg.display()
        );
    }

    pub fn new(out_dir: &Path, name: &str) -> Result<Outputs> {
        let r = out_dir.join("results");
        let f = out_dir.join("figures");
        for d in [&r, &f] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(Outputs {
            csv: r.join(format!("{name}.csv")),
            png: f.join(format!("{name}.png")),
            svg: f.join(format!("{name}.svg")),
        })
    }
}

/// Solves every objective row with `preferred` (warm re-solves where the solver has
/// them) as verified enclosures ([`lp::solve_verified`]): a row that `preferred` does not
/// settle is retried with the other compiled solvers. Every returned enclosure is an
/// optimum (its solver value within [`lp::VerifyOptions`]'s tolerance of a proven lower
/// bound); a row that no solver settles is an error listing every attempt.
pub fn solve_verified<'c>(
    lp19: &lp::Lp19<'_>,
    cs: impl Into<network::DMatrixView<'c, f64>>,
    preferred: lp::Solver,
) -> Result<Vec<lp::LpEnclosure>> {
    let opts = lp::LpOptions::default();
    let encs = lp::solve_verified(lp19, cs, preferred, &opts, true, &Default::default())?;
    for (k, e) in encs.iter().enumerate() {
        if !e.is_optimum {
            anyhow::bail!(
                "objective row {k}: no solver settled LP (19) (proven lower bound {}, attempts: {})",
                e.proven_lower,
                e.attempts
                    .iter()
                    .map(|a| format!("{} {} {:?}", a.solver.name(), a.status, a.value))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    Ok(encs)
}

/// `models/<file>` relative to the working directory, else relative to the workspace
/// the binary was built from (so `cargo run` works from any folder of the clone).
pub fn committed_model(file: &str) -> PathBuf {
    let here = Path::new("models").join(file);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("models")
        .join(file)
}

/// Writes a CSV built in memory to `path` in one go (so a run that fails before its end
/// leaves the previous file untouched).
pub fn write_csv(path: &Path, w: csv::Writer<Vec<u8>>) -> Result<()> {
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow!("CSV for {}: {}", path.display(), e.error()))?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// `n` indices spread evenly over `0..len` (`k * len / n`; all of them when `n >= len`).
/// The shipped MNIST file and its splits are sorted by class, so "the first n digits"
/// would be one or two classes; a spread subset has every class in proportion.
pub fn spread(len: usize, n: usize) -> Vec<usize> {
    if n >= len {
        return (0..len).collect();
    }
    (0..n).map(|k| k * len / n).collect()
}

/// The MNIST test digits: the shipped test split, or with `full` the 10,000 digits of
/// MNIST's IDX test files in that folder (`t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte`, each optionally `.gz`). Errors name the folder and file.
pub fn mnist_test_set(full: Option<&Path>) -> Result<network::Dataset> {
    match full {
        Some(dir) => {
            let pick = |stem: &str| -> Result<PathBuf> {
                let plain = dir.join(stem);
                let gz = dir.join(format!("{stem}.gz"));
                if plain.exists() {
                    Ok(plain)
                } else if gz.exists() {
                    Ok(gz)
                } else {
                    Err(anyhow!(
                        "--full-mnist {}: neither {stem} nor {stem}.gz is there",
                        dir.display()
                    ))
                }
            };
            network::data::load_idx(
                pick("t10k-images-idx3-ubyte")?,
                pick("t10k-labels-idx1-ubyte")?,
            )
            .with_context(|| format!("--full-mnist {}", dir.display()))
        }
        None => Ok(network::data::mnist_split(network::data::DEFAULT_SPLIT_SEED)?.1),
    }
}

/// The flags `--standard` and `--robust` of every experiment on the paper's two MNIST
/// models (flattened into each binary's clap arguments).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MnistModels {
    /// The standard-trained model (default: the committed models/mnist_conv_standard.json).
    #[arg(long)]
    pub standard: Option<PathBuf>,
    /// The robust-trained model (default: the committed models/mnist_conv_robust.json).
    #[arg(long)]
    pub robust: Option<PathBuf>,
}

impl MnistModels {
    /// `("standard", file)` and `("robust", file)`: the given files, else the committed
    /// ones ([`committed_model`]).
    pub fn resolve(&self) -> [(&'static str, PathBuf); 2] {
        [
            (
                "standard",
                self.standard
                    .clone()
                    .unwrap_or_else(|| committed_model("mnist_conv_standard.json")),
            ),
            (
                "robust",
                self.robust
                    .clone()
                    .unwrap_or_else(|| committed_model("mnist_conv_robust.json")),
            ),
        ]
    }
}

/// A `g x g` grid of the 2-D box `x +- eps` (row-major, one point per pair of values).
pub fn ball_grid(x: [f64; 2], eps: f64, g: usize) -> Vec<f64> {
    (0..g * g)
        .flat_map(|p| {
            let (u, v) = (
                (p / g) as f64 / (g - 1) as f64,
                (p % g) as f64 / (g - 1) as f64,
            );
            [x[0] - eps + 2.0 * eps * u, x[1] - eps + 2.0 * eps * v]
        })
        .collect()
}

/// Vertices of the intersection of half-planes `c_i . z >= h_i` with directions sorted
/// by angle: consecutive support lines meet at the polygon's corners.
pub fn polygon(dirs: &[(f64, f64)], h: &[f64]) -> Vec<(f64, f64)> {
    let n = dirs.len();
    (0..n)
        .map(|i| {
            let j = (i + 1) % n;
            let (a, b) = (dirs[i], dirs[j]);
            let det = a.0 * b.1 - a.1 * b.0;
            (
                (h[i] * b.1 - a.1 * h[j]) / det,
                (a.0 * h[j] - h[i] * b.0) / det,
            )
        })
        .collect()
}

/// `n` unit directions evenly spaced by angle, from angle 0.
pub fn directions(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let t = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            (t.cos(), t.sin())
        })
        .collect()
}

/// A plotting error as an `anyhow` error (for `.map_err(plot_err)`).
pub fn plot_err<E: std::error::Error + Send + Sync + 'static>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow!("plotting: {e}")
}

/// Draws a chart's legend in the figures' common style: a light box with a black border.
pub fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", font_size))
        .position(position)
        .draw()
        .map_err(plot_err)
}

/// `(x_min, x_max, y_min, y_max)` of 2-D points (infinities when there are none).
pub fn extent<'p>(points: impl IntoIterator<Item = &'p (f64, f64)>) -> (f64, f64, f64, f64) {
    points.into_iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(x0, x1, y0, y1), &(x, y)| (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
    )
}

/// Draws one figure twice, as `out.png` and `out.svg`, with a `draw(area, args..)`
/// function generic over the plotters backend:
/// `draw_png_svg!(&out, (800, 600), draw, &rows, eps)`.
#[macro_export]
macro_rules! draw_png_svg {
    ($out:expr, $size:expr, $draw:path $(, $arg:expr)* $(,)?) => {{
        use plotters::prelude::IntoDrawingArea;
        $draw(plotters::prelude::BitMapBackend::new(&$out.png, $size).into_drawing_area() $(, $arg)*)?;
        $draw(plotters::prelude::SVGBackend::new(&$out.svg, $size).into_drawing_area() $(, $arg)*)?;
    }};
}

/// A white figure with a title; returns the area below the title.
pub fn titled<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    font_size: u32,
) -> Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(plot_err)?;
    root.titled(title, ("sans-serif", font_size))
        .map_err(plot_err)
}

/// The tolerance policy of every chain check, relative to `max(1, |value|)`:
/// a proven number against a floating-point forward pass (sampled points) allows
/// [`SAMPLE_TOL`] for the forward pass's own rounding; the proven `J` against an LP
/// solver's value allows [`lp::VerifyOptions`]'s tolerance (the value is confirmed to
/// that tolerance, not proven). Proven numbers against each other allow nothing.
pub const SAMPLE_TOL: f64 = 1e-9;

/// `a <= b` with both numbers (false when either is NaN: a NaN never passes a check).
pub fn le(a: f64, b: f64) -> bool {
    a <= b
}

/// Scaled tolerance: `rel * max(1, |v|)`.
pub fn tol(rel: f64, v: f64) -> f64 {
    rel * v.abs().max(1.0)
}

/// The policy's check of a proven bound `j` on the LP optimum against an LP's enclosure:
/// `j <= value + tolerance * max(1, |value|)` with the solver's confirmed value (its
/// proven lower end may sit up to that tolerance below the optimum, so a proven `j`
/// between the two is no contradiction). False when no solver value was accepted or
/// either number is NaN.
pub fn below_lp(j: f64, enc: &lp::LpEnclosure) -> bool {
    enc.solution
        .as_ref()
        .is_some_and(|s| below_lp_value(j, s.value, enc.tolerance))
}

/// As [`below_lp`], with the solver's value and the relative tolerance given:
/// `j <= value + tolerance * max(1, |value|)` (false when either number is NaN).
pub fn below_lp_value(j: f64, value: f64, tolerance: f64) -> bool {
    le(j, value + tol(tolerance, value))
}

/// Checks the chain for 2-D outputs in every direction `c_k` of `dirs`:
/// `J(c_k) <= LP(c_k)` (the proven dual against the solver's confirmed value, to the LP
/// tolerance) and `LP_proven(c_k) <= c_k^T f(x')` for every sampled output `f(x')`
/// (`outputs`, pairs; [`SAMPLE_TOL`]). An error names `what` and the direction.
pub fn check_support_chain(
    what: &str,
    dirs: &[(f64, f64)],
    dual: &network::DVector<f64>,
    lp: &[f64],
    lp_proven: &[f64],
    outputs: &network::DMatrix<f64>,
) -> Result<()> {
    let lp_tol = lp::VerifyOptions::default().tolerance;
    for (k, d) in dirs.iter().enumerate() {
        let name = format!("{what}, direction {k} ({:.4}, {:.4})", d.0, d.1);
        if !below_lp_value(dual[k], lp[k], lp_tol) {
            anyhow::bail!("{name}: dual {} > LP {}", dual[k], lp[k]);
        }
        let min = outputs
            .column_iter()
            .map(|o| d.0 * o[0] + d.1 * o[1])
            .fold(f64::INFINITY, f64::min);
        if !le(lp_proven[k], min + tol(SAMPLE_TOL, min)) {
            anyhow::bail!(
                "{name}: proven LP bound {} > the smallest sampled c^T f(x') {min}",
                lp_proven[k]
            );
        }
        if !le(dual[k], min + tol(SAMPLE_TOL, min)) {
            anyhow::bail!(
                "{name}: dual {} > the smallest sampled c^T f(x') {min}",
                dual[k]
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_support_chain_check_passes_a_valid_chain_and_names_a_broken_one() {
        let dirs = directions(4);
        // Outputs: the unit square's corners; support values min over them.
        let outputs =
            network::DMatrix::from_column_slice(2, 4, &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let exact: Vec<f64> = dirs
            .iter()
            .map(|d| {
                outputs
                    .as_slice()
                    .chunks(2)
                    .map(|o| d.0 * o[0] + d.1 * o[1])
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let dual = network::DVector::from_iterator(4, exact.iter().map(|v| v - 0.1));
        check_support_chain("square", &dirs, &dual, &exact, &exact, &outputs).unwrap();
        // A dual above the LP, and an LP above a sampled point, are errors naming the row.
        let mut high = dual.clone();
        high[2] = exact[2] + 1e-3;
        let e = check_support_chain("square", &dirs, &high, &exact, &exact, &outputs).unwrap_err();
        assert!(e.to_string().starts_with("square, direction 2"), "{e}");
        let mut lp = exact.clone();
        lp[1] += 1e-3;
        let e = check_support_chain("square", &dirs, &dual, &lp, &lp, &outputs).unwrap_err();
        assert!(
            e.to_string().contains("direction 1") && e.to_string().contains("LP"),
            "{e}"
        );
        // A NaN never passes: a dual of NaN, or an LP value of NaN.
        let mut nan = dual.clone();
        nan[3] = f64::NAN;
        let e = check_support_chain("square", &dirs, &nan, &exact, &exact, &outputs).unwrap_err();
        assert!(e.to_string().contains("direction 3"), "{e}");
        let mut lp = exact.clone();
        lp[0] = f64::NAN;
        let e = check_support_chain("square", &dirs, &dual, &lp, &exact, &outputs).unwrap_err();
        assert!(e.to_string().contains("direction 0"), "{e}");
    }

    /// The LP policy: a proven bound up to the tolerance above the solver's value passes,
    /// beyond it or NaN fails.
    #[test]
    fn the_lp_policy_allows_the_solvers_tolerance_and_no_nan() {
        assert!(below_lp_value(1.0 + 0.9e-6, 1.0, 1e-6));
        assert!(!below_lp_value(1.0 + 1.1e-6, 1.0, 1e-6));
        assert!(below_lp_value(-1000.0 + 0.9e-3, -1000.0, 1e-6));
        assert!(!below_lp_value(-1000.0 + 1.1e-3, -1000.0, 1e-6));
        assert!(!below_lp_value(f64::NAN, 1.0, 1e-6));
        assert!(!below_lp_value(0.0, f64::NAN, 1e-6));
    }

    #[test]
    fn extent_and_polygon_agree_on_a_square() {
        let dirs = directions(4);
        // Half-planes c . z >= h for the square [-1, 1]^2.
        let poly = polygon(&dirs, &[-1.0, -1.0, -1.0, -1.0]);
        let (x0, x1, y0, y1) = extent(&poly);
        for (v, want) in [(x0, -1.0), (x1, 1.0), (y0, -1.0), (y1, 1.0)] {
            assert!((v - want).abs() < 1e-12, "{poly:?}");
        }
    }
}
