//! `filters` (Fig. 8 and 9, appendix B.2): the learned convolution filters of both conv
//! layers of the committed standard and robust MNIST models, side by side, and how sparse
//! they are. The paper: the robust model's filters "are quite sparse due to the l1 term in
//! (6)", and "some filters have all zero weights".
//!
//! Each kernel is drawn as a `kh x kw` patch, white at 0, red for positive and blue for
//! negative weights, scaled by the layer's largest `|w|`; a layer with one input channel
//! is a row of its filters, one with several is a grid (a row per input channel, a column
//! per filter). Sparsity counts a weight as near zero when `|w| <= 1%` of the layer's
//! largest; a kernel slice (one filter, one input channel) or a whole filter is near zero
//! when all its weights are.
//!
//! Writes `results/filters.csv` (one row per model and conv layer) and
//! `figures/filters.png|svg`, and prints the sparsity beside the paper's claim. Errors
//! name the file: a model without a conv layer, a non-finite weight.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use network::{load_model, Layer};
use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Parser, Debug)]
#[command(
    about = "Learned conv filters of the committed MNIST models and their sparsity (Fig. 8-9)"
)]
struct Args {
    #[command(flatten)]
    mnist: experiments::MnistModels,
    /// A weight is near zero when `|w| <=` this fraction of its layer's largest `|w|`.
    #[arg(long, default_value_t = 0.01)]
    zero_frac: f64,
    /// Folder that receives results/ and figures/.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

/// One conv layer's weights `[out][in][kh][kw]`.
struct Conv {
    /// 1-based among the model's conv layers.
    index: usize,
    node: String,
    weight: Vec<f64>,
    out_channels: usize,
    in_channels: usize,
    kh: usize,
    kw: usize,
}

impl Conv {
    fn slice(&self, o: usize, i: usize) -> &[f64] {
        let k = self.kh * self.kw;
        let start = (o * self.in_channels + i) * k;
        &self.weight[start..start + k]
    }

    fn max_abs(&self) -> f64 {
        self.weight.iter().fold(0.0f64, |m, w| m.max(w.abs()))
    }
}

/// One row of `results/filters.csv`: one conv layer of one model.
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    model: &'a str,
    file: &'a str,
    /// 1-based among the model's conv layers (the paper's Fig. 8 is layer 1, Fig. 9 layer 2).
    conv_layer: usize,
    node: &'a str,
    filters: usize,
    in_channels: usize,
    kernel: String,
    weights: usize,
    #[serde(serialize_with = "experiments::display")]
    max_abs: f64,
    #[serde(serialize_with = "experiments::display")]
    mean_abs: f64,
    #[serde(serialize_with = "experiments::display")]
    zero_frac_threshold: f64,
    /// Fraction of weights with `|w| <= zero_frac_threshold * max_abs`.
    #[serde(serialize_with = "experiments::display")]
    near_zero_weights: f64,
    /// Kernel slices (filter, input channel) whose weights are all near zero.
    near_zero_slices: usize,
    slices: usize,
    /// Filters whose weights are all near zero.
    near_zero_filters: usize,
}

fn convs(name: &str, path: &PathBuf) -> Result<Vec<Conv>> {
    let model = load_model(path).with_context(|| format!("the {name} model"))?;
    let mut out = Vec::new();
    for node in model.nodes() {
        if let Layer::Conv2d {
            weight,
            out_channels,
            in_channels,
            kernel_h,
            kernel_w,
            ..
        } = &node.layer
        {
            if weight.iter().any(|w| !w.is_finite()) {
                bail!(
                    "{}: node {:?}: a non-finite weight",
                    path.display(),
                    node.name
                );
            }
            out.push(Conv {
                index: out.len() + 1,
                node: node.name.clone(),
                weight: weight.clone(),
                out_channels: *out_channels,
                in_channels: *in_channels,
                kh: *kernel_h,
                kw: *kernel_w,
            });
        }
    }
    if out.is_empty() {
        bail!("{}: the {name} model has no conv layer", path.display());
    }
    Ok(out)
}

fn main() -> Result<()> {
    let a = Args::parse();
    if !(a.zero_frac >= 0.0 && a.zero_frac < 1.0) {
        bail!("--zero-frac must be in [0, 1), got {}", a.zero_frac);
    }
    let out = experiments::Outputs::new(&a.out_dir, "filters")?;
    // Written to the file only at the end: a failed run leaves the last results as they were.
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut models = Vec::new();
    println!("| model | conv layer | filters x inputs x kernel | near-zero weights | near-zero kernel slices | near-zero filters | mean abs / max abs |");
    println!("|---|---|---|---|---|---|---|");
    for (name, path) in a.mnist.resolve() {
        let layers = convs(name, &path)?;
        for c in &layers {
            let max = c.max_abs();
            let thr = a.zero_frac * max;
            let near = |v: &[f64]| v.iter().all(|w| w.abs() <= thr);
            let zero_w = c.weight.iter().filter(|w| w.abs() <= thr).count();
            let slices = c.out_channels * c.in_channels;
            let zero_slices = (0..c.out_channels)
                .flat_map(|o| (0..c.in_channels).map(move |i| (o, i)))
                .filter(|&(o, i)| near(c.slice(o, i)))
                .count();
            let zero_filters = (0..c.out_channels)
                .filter(|&o| (0..c.in_channels).all(|i| near(c.slice(o, i))))
                .count();
            let mean_abs =
                c.weight.iter().map(|w| w.abs()).sum::<f64>() / c.weight.len().max(1) as f64;
            let frac = zero_w as f64 / c.weight.len().max(1) as f64;
            println!(
                "| {name} | {} | {} x {} x {}x{} | {:.1}% | {zero_slices} of {slices} | {zero_filters} of {} | {:.3} |",
                c.index,
                c.out_channels,
                c.in_channels,
                c.kh,
                c.kw,
                100.0 * frac,
                c.out_channels,
                mean_abs / max.max(f64::MIN_POSITIVE),
            );
            w.serialize(CsvRow {
                model: name,
                file: &path.display().to_string(),
                conv_layer: c.index,
                node: &c.node,
                filters: c.out_channels,
                in_channels: c.in_channels,
                kernel: format!("{}x{}", c.kh, c.kw),
                weights: c.weight.len(),
                max_abs: max,
                mean_abs,
                zero_frac_threshold: a.zero_frac,
                near_zero_weights: frac,
                near_zero_slices: zero_slices,
                slices,
                near_zero_filters: zero_filters,
            })?;
        }
        models.push((name, layers));
    }
    experiments::write_csv(&out.csv, w)?;
    println!(
        "Paper (Fig. 8-9, its robust model after 100 epochs on 60,000 digits): the filters \"are quite sparse due to the l1 term in (6)\"; \"some filters have all zero weights\"."
    );
    experiments::register_font()?;
    experiments::draw_png_svg!(out, (1300, 900), draw, &models);
    out.report();
    Ok(())
}

/// White at 0, red for positive, blue for negative; `v` in [-1, 1].
fn diverging(v: f64) -> RGBColor {
    let t = (1.0 - v.abs().min(1.0)) * 255.0;
    let t = t.round() as u8;
    if v >= 0.0 {
        RGBColor(255, t, t)
    } else {
        RGBColor(t, t, 255)
    }
}

/// Draws one conv layer's kernels in `area` (pixel coordinates), under `caption`.
fn draw_layer<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &Conv,
    caption: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    let top = 30i32;
    area.draw(&Text::new(
        caption.to_string(),
        (10, 8),
        ("sans-serif", 15).into_font(),
    ))
    .map_err(experiments::plot_err)?;
    // Grid of kernels: one row for a single input channel (wrapped at 8), else a row
    // per input channel and a column per filter.
    let (rows, cols) = if c.in_channels == 1 {
        (c.out_channels.div_ceil(8), c.out_channels.min(8))
    } else {
        (c.in_channels, c.out_channels)
    };
    let gap = 2i32;
    let cell_w = ((w as i32 - 20) / cols as i32 - gap) / c.kw as i32;
    let cell_h = ((h as i32 - top - 10) / rows as i32 - gap) / c.kh as i32;
    let px = cell_w.min(cell_h).max(1);
    let max = c.max_abs().max(f64::MIN_POSITIVE);
    for o in 0..c.out_channels {
        for i in 0..c.in_channels {
            let (r, col) = if c.in_channels == 1 {
                (o / 8, o % 8)
            } else {
                (i, o)
            };
            let x0 = 10 + col as i32 * (c.kw as i32 * px + gap);
            let y0 = top + r as i32 * (c.kh as i32 * px + gap);
            let s = c.slice(o, i);
            for a in 0..c.kh {
                for b in 0..c.kw {
                    let v = s[a * c.kw + b] / max;
                    let (x, y) = (x0 + b as i32 * px, y0 + a as i32 * px);
                    area.draw(&Rectangle::new(
                        [(x, y), (x + px, y + px)],
                        diverging(v).filled(),
                    ))
                    .map_err(experiments::plot_err)?;
                }
            }
            area.draw(&Rectangle::new(
                [(x0, y0), (x0 + c.kw as i32 * px, y0 + c.kh as i32 * px)],
                RGBColor(170, 170, 170).stroke_width(1),
            ))
            .map_err(experiments::plot_err)?;
        }
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    models: &[(&str, Vec<Conv>)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let root = experiments::titled(
        root,
        "Learned conv filters (Fig. 8: layer 1, Fig. 9: layer 2); red > 0, blue < 0, white = 0, scaled per layer",
        18,
    )?;
    let rows = root.split_evenly((models.len().max(1), 1));
    for ((name, layers), area) in models.iter().zip(rows.iter()) {
        let (wpx, _) = area.dim_in_pixel();
        let parts: Vec<DrawingArea<DB, Shift>> = if layers.len() >= 2 {
            let (l, r) = area.split_horizontally((wpx as f64 * 0.3) as i32);
            vec![l, r]
        } else {
            vec![area.clone()]
        };
        for (c, part) in layers.iter().zip(parts.iter()) {
            let shape = if c.in_channels == 1 {
                format!("{} filters", c.out_channels)
            } else {
                format!(
                    "{} filters (columns) x {} input channels (rows)",
                    c.out_channels, c.in_channels
                )
            };
            draw_layer(
                part,
                c,
                &format!(
                    "{name} model, conv layer {}: {shape}, max |w| {:.3}",
                    c.index,
                    c.max_abs()
                ),
            )?;
        }
    }
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
