//! `index_sets` (Fig. 10, appendix): how the hidden units of the committed MNIST models
//! split into the paper's index sets `I-` (always off, `u <= 0`), `I+` (always on,
//! `l >= 0`) and `I` (unstable) under Algorithm 1's bounds at eps 0.1, as histograms over
//! training digits of the fraction of each layer's units in each set.
//!
//! Writes `results/index_sets.csv` (one row per model, digit and hidden layer: the three
//! counts and fractions) and `figures/index_sets.png|svg`, and prints the mean fractions
//! beside the paper's description of its Fig. 10. Checked as it runs (an error names the
//! row otherwise): the three counts sum to the layer's units, and 20 sampled points of
//! every ball (corners and uniform) have every pre-activation inside the bounds the counts
//! come from (the tolerance of `experiments::SAMPLE_TOL`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use dual::{algorithm1, InputDomain};
use network::{data, load_model, Model};
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

#[derive(Parser, Debug)]
#[command(
    about = "Index sets I-, I+, I of the committed MNIST models over training digits (Fig. 10)"
)]
struct Args {
    /// Seed of the shipped subset's stratified train/test split, and of the sampled points.
    #[arg(long, default_value_t = data::DEFAULT_SPLIT_SEED)]
    seed: u64,
    /// Training digits (spread evenly over the shipped train split).
    #[arg(long, default_value_t = 500)]
    digits: usize,
    /// Radius of the l-infinity ball (the paper's robust training eps).
    #[arg(long, default_value_t = 0.1)]
    eps: f64,
    #[command(flatten)]
    mnist: experiments::MnistModels,
    /// Folder that receives results/ and figures/.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

/// One (model, digit): the counts of every hidden layer.
struct Row {
    model: usize,
    digit: usize,
    label: usize,
    /// Per hidden layer: (units, I-, I+, I).
    layers: Vec<(usize, usize, usize, usize)>,
    ms: f64,
}

/// One row of `results/index_sets.csv`: one hidden layer of one model at one digit.
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    model: &'a str,
    split_seed: u64,
    train_index: usize,
    label: usize,
    #[serde(serialize_with = "experiments::display")]
    eps: f64,
    /// Hidden layer, 1-based as the paper numbers them (`I_1` is the first).
    layer: usize,
    units: usize,
    i_minus: usize,
    i_plus: usize,
    i_unstable: usize,
    #[serde(serialize_with = "experiments::display")]
    frac_minus: f64,
    #[serde(serialize_with = "experiments::display")]
    frac_plus: f64,
    #[serde(serialize_with = "experiments::display")]
    frac_unstable: f64,
    bounds: &'a str,
    #[serde(serialize_with = "experiments::display")]
    algorithm1_ms: f64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    if !(a.eps.is_finite() && a.eps >= 0.0) {
        bail!("--eps must be a non-negative number, got {}", a.eps);
    }
    let out = experiments::Outputs::new(&a.out_dir, "index_sets")?;
    let mut models: Vec<(String, Model)> = Vec::new();
    for (name, path) in a.mnist.resolve() {
        let model =
            load_model(&path).with_context(|| format!("the {name} model {}", path.display()))?;
        if model.is_chain() && model.hidden_layers() == 0 {
            bail!("the {name} model has no hidden layer: no index sets to count");
        }
        models.push((name.to_string(), model));
    }
    let (train, _) = data::mnist_split(a.seed)?;
    let stride = (train.len() / a.digits.max(1)).max(1);
    let digits: Vec<usize> = (0..a.digits.min(train.len())).map(|k| k * stride).collect();

    let pb = experiments::progress((models.len() * digits.len()) as u64, "index_sets");
    let mut rows: Vec<Row> = Vec::new();
    for (mi, (name, model)) in models.iter().enumerate() {
        let part: Vec<Result<Row>> = digits
            .par_iter()
            .map(|&i| {
                let (x, y) = train.get(i)?;
                let dom = InputDomain::new(x, a.eps, None)?;
                let t = Instant::now();
                let b = algorithm1(model, &dom)?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ ((mi as u64) << 40) ^ i as u64);
                let pts = experiments::ball_samples(x.as_slice(), a.eps, 20, &mut rng);
                let pre = model.preactivations_batch(network::DMatrixView::from_slice(&pts, model.input_len(), 20))?;
                for (layer, (z, (lo, hi))) in pre.iter().zip(b.lower.iter().zip(&b.upper)).enumerate() {
                    let n = lo.len();
                    for col in z.as_slice().chunks(n) {
                        for (k, v) in col.iter().enumerate() {
                            let tol = experiments::tol(experiments::SAMPLE_TOL, *v);
                            if !(experiments::le(lo[k] - tol, *v) && experiments::le(*v, hi[k] + tol)) {
                                bail!("{name} model, train digit {i}: a sampled point has zhat[{layer}][{k}] = {v} outside Algorithm 1's [{}, {}]", lo[k], hi[k]);
                            }
                        }
                    }
                }
                let layers = b
                    .counts(model)
                    .iter()
                    .enumerate()
                    .map(|(t, c)| {
                        let units = model.relu_units(t);
                        if c.off + c.on + c.unstable != units {
                            bail!(
                                "{name} model, train digit {i}, layer {}: {} + {} + {} units counted, the layer has {units}",
                                t + 1, c.off, c.on, c.unstable
                            );
                        }
                        Ok((units, c.off, c.on, c.unstable))
                    })
                    .collect::<Result<Vec<_>>>()?;
                pb.inc(1);
                Ok(Row { model: mi, digit: i, label: y, layers, ms })
            })
            .collect();
        for r in part {
            rows.push(r?);
        }
    }
    pb.finish_and_clear();

    let mut w = csv::Writer::from_path(&out.csv)?;
    for r in &rows {
        for (t, &(units, off, on, unstable)) in r.layers.iter().enumerate() {
            let f = |k: usize| k as f64 / units.max(1) as f64;
            w.serialize(CsvRow {
                model: &models[r.model].0,
                split_seed: a.seed,
                train_index: r.digit,
                label: r.label,
                eps: a.eps,
                layer: t + 1,
                units,
                i_minus: off,
                i_plus: on,
                i_unstable: unstable,
                frac_minus: f(off),
                frac_plus: f(on),
                frac_unstable: f(unstable),
                bounds: "algorithm1",
                algorithm1_ms: r.ms,
            })?;
        }
    }
    w.flush()?;

    println!(
        "Mean fraction of each hidden layer's units per index set, {} training digits, eps {} (Algorithm 1's bounds):\n",
        digits.len(),
        a.eps
    );
    println!("| model | layer | units | I- (off) | I+ (on) | I (unstable) | max I over digits |");
    println!("|---|---|---|---|---|---|---|");
    for (mi, (name, _)) in models.iter().enumerate() {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.model == mi).collect();
        let n_layers = rs.first().map_or(0, |r| r.layers.len());
        for t in 0..n_layers {
            let units = rs[0].layers[t].0;
            let mean = |k: fn(&(usize, usize, usize, usize)) -> usize| -> f64 {
                rs.iter()
                    .map(|r| k(&r.layers[t]) as f64 / units.max(1) as f64)
                    .sum::<f64>()
                    / rs.len().max(1) as f64
            };
            let max_i = rs
                .iter()
                .map(|r| r.layers[t].3 as f64 / units.max(1) as f64)
                .fold(0.0, f64::max);
            println!(
                "| {name} | {} | {units} | {:.1}% | {:.1}% | {:.1}% | {:.1}% |",
                t + 1,
                100.0 * mean(|c| c.1),
                100.0 * mean(|c| c.2),
                100.0 * mean(|c| c.3),
                100.0 * max_i
            );
        }
    }
    println!(
        "\nPaper (Fig. 10, its robust MNIST model): in the first layer more than half of the \
         activations are in I-, few in I; the second has many more in I+ than in I-, few in I; \
         the third has extremely few in I and about 90% in I-. In every layer I is small, which \
         makes the bound both tighter and cheaper."
    );
    experiments::register_font()?;
    experiments::draw_png_svg!(out, (1200, 700), draw, &rows, &models, a.eps);
    out.report();
    Ok(())
}

const SETS: [(&str, RGBColor); 3] = [
    ("I- (off)", RGBColor(30, 90, 200)),
    ("I+ (on)", RGBColor(0, 150, 60)),
    ("I (unstable)", RGBColor(220, 40, 40)),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[Row],
    models: &[(String, Model)],
    eps: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let root = experiments::titled(
        root,
        &format!(
            "Index sets over training digits, eps {eps}: fraction of each layer's units (Fig. 10)"
        ),
        20,
    )?;
    let n_layers = rows.first().map_or(0, |r| r.layers.len()).max(1);
    let areas = root.split_evenly((models.len(), n_layers));
    let bins = 20;
    for (mi, (name, _)) in models.iter().enumerate() {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.model == mi).collect();
        for t in 0..n_layers {
            let area = &areas[mi * n_layers + t];
            // Histogram of the fraction per set: `bins` bins on [0, 1], as a share of digits;
            // headroom above the bars for the legend.
            let hist: Vec<Vec<f64>> = (0..3)
                .map(|s| {
                    let mut h = vec![0.0; bins];
                    for r in &rs {
                        let Some(&(units, off, on, unst)) = r.layers.get(t) else {
                            continue;
                        };
                        let k = [off, on, unst][s];
                        let f = k as f64 / units.max(1) as f64;
                        let b = ((f * bins as f64) as usize).min(bins - 1);
                        h[b] += 1.0 / rs.len().max(1) as f64;
                    }
                    h
                })
                .collect();
            let top = hist.iter().flatten().cloned().fold(0.0, f64::max).max(0.05) * 1.45;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name} model, layer {}", t + 1), ("sans-serif", 15))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(0f64..1f64, 0f64..top)
                .map_err(experiments::plot_err)?;
            chart
                .configure_mesh()
                .x_desc("fraction of the layer's units")
                .y_desc("share of digits")
                .draw()
                .map_err(experiments::plot_err)?;
            for (s, (label, color)) in SETS.iter().enumerate() {
                let color = *color;
                let w = 1.0 / bins as f64;
                chart
                    .draw_series(hist[s].iter().enumerate().filter(|(_, v)| **v > 0.0).map(
                        |(b, v)| {
                            Rectangle::new(
                                [(b as f64 * w, 0.0), ((b as f64 + 1.0) * w, *v)],
                                color.mix(0.55).filled(),
                            )
                        },
                    ))
                    .map_err(experiments::plot_err)?
                    .label(*label)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.mix(0.55).filled())
                    });
            }
            experiments::legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
        }
    }
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
