//! `curves` (Fig. 4, section 4.1): the learning curves of the committed MNIST models, read
//! from the history each model file carries (`metadata.history`, written by the `train`
//! binary): per epoch the training loss (the robust loss of Theorem 2 for the robust
//! model, cross-entropy for the standard one), the training error and, for the robust
//! model, the training robust error of the bound it trained with, beside the eps of the
//! schedule; each model's Table 1 test errors (`metadata.table1`) are drawn at its last
//! epoch, and the test curves (clean error and exact robust-error bound on test digits)
//! of the epochs trained with `train --monitor`.
//!
//! Writes `results/curves.csv` (one row per model and epoch, with the training settings
//! that made it) and `figures/curves.png|svg`. Checked (an error names the file and
//! epoch): epochs numbered 0, 1, ..; every loss and error finite, errors in [0, 1]. (The
//! robust model's training robust error comes from the bound it trained with, a random
//! projection estimate, so it is not checked against anything.)

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use network::model_from_json;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "Learning curves of the committed MNIST models (Fig. 4)")]
struct Args {
    #[command(flatten)]
    mnist: experiments::MnistModels,
    /// Folder that receives results/ and figures/.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

/// One epoch of one model's training history.
#[derive(Debug, Clone)]
struct Epoch {
    epoch: usize,
    eps: f64,
    loss: f64,
    error: f64,
    robust_error: Option<f64>,
    /// Monitored test digits (`train --monitor`): clean error, exact robust-error bound.
    test_error: Option<f64>,
    test_robust_error: Option<f64>,
    seconds: f64,
}

/// One model: its name, history and Table 1 test errors (clean, robust bound).
struct Curve {
    name: &'static str,
    epochs: Vec<Epoch>,
    test: Option<(f64, f64)>,
}

/// One row of `results/curves.csv`.
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    model: &'a str,
    file: &'a str,
    epoch: usize,
    #[serde(serialize_with = "experiments::display")]
    eps: f64,
    #[serde(serialize_with = "experiments::display")]
    loss: f64,
    #[serde(serialize_with = "experiments::display")]
    error: f64,
    #[serde(serialize_with = "experiments::display_or_empty")]
    robust_error: Option<f64>,
    #[serde(serialize_with = "experiments::display_or_empty")]
    test_error: Option<f64>,
    #[serde(serialize_with = "experiments::display_or_empty")]
    test_robust_error: Option<f64>,
    #[serde(serialize_with = "experiments::display")]
    seconds: f64,
    mode: &'a str,
    train_bound: &'a str,
    data: &'a str,
    batch: String,
    lr: String,
    seed: String,
}

/// The history of a model file's metadata, checked.
fn history(meta: &Value, file: &str) -> Result<Vec<Epoch>> {
    let Some(h) = meta.get("history").and_then(Value::as_array) else {
        bail!("{file}: no metadata.history (only models written by the train binary carry one)");
    };
    let mut out = Vec::new();
    for (k, e) in h.iter().enumerate() {
        let num = |key: &str| -> Result<f64> {
            e.get(key)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite())
                .with_context(|| format!("{file}: history entry {k} has no finite {key}"))
        };
        let optional = |key: &str| match e.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => num(key).map(Some),
        };
        let robust_error = optional("robust_error")?;
        let (test_error, test_robust_error) =
            (optional("test_error")?, optional("test_robust_error")?);
        let ep = Epoch {
            epoch: num("epoch")? as usize,
            eps: num("eps")?,
            loss: num("loss")?,
            error: num("error")?,
            robust_error,
            test_error,
            test_robust_error,
            seconds: num("seconds")?,
        };
        if ep.epoch != k {
            bail!("{file}: history entry {k} is epoch {}", ep.epoch);
        }
        let in01 = |v: f64| (0.0..=1.0).contains(&v);
        if !in01(ep.error)
            || ![robust_error, test_error, test_robust_error]
                .iter()
                .all(|v| v.is_none_or(in01))
        {
            bail!("{file}: epoch {k}: an error outside [0, 1]");
        }
        out.push(ep);
    }
    if out.is_empty() {
        bail!("{file}: metadata.history is empty");
    }
    Ok(out)
}

fn main() -> Result<()> {
    let a = Args::parse();
    let out = experiments::Outputs::new(&a.out_dir, "curves")?;
    // Written to the file only at the end: a failed run leaves the last results as they were.
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut curves = Vec::new();
    for (name, path) in a.mnist.resolve() {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the {name} model {file}"))?;
        let (_, meta) = model_from_json(&text, &file)?;
        let epochs = history(&meta, &file)?;
        let s = |k: &str| match meta.get(k) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        for e in &epochs {
            w.serialize(CsvRow {
                model: name,
                file: &file,
                epoch: e.epoch,
                eps: e.eps,
                loss: e.loss,
                error: e.error,
                robust_error: e.robust_error,
                test_error: e.test_error,
                test_robust_error: e.test_robust_error,
                seconds: e.seconds,
                mode: &s("mode"),
                train_bound: &s("train_bound"),
                data: &s("data"),
                batch: s("batch"),
                lr: s("lr"),
                seed: s("seed"),
            })?;
        }
        let t1 = meta.get("table1");
        let g = |k: &str| t1.and_then(|t| t.get(k)).and_then(Value::as_f64);
        let test = g("clean_error").zip(g("robust_error_bound"));
        let last = epochs.last().expect("checked non-empty");
        println!(
            "{name}: {} epochs, {:.0} s; last epoch: loss {:.4}, training error {:.1}%{}{}",
            epochs.len(),
            epochs.iter().map(|e| e.seconds).sum::<f64>(),
            last.loss,
            100.0 * last.error,
            last.robust_error
                .map(|r| format!(", training robust error {:.1}%", 100.0 * r))
                .unwrap_or_default(),
            test.map(|(c, r)| format!(
                "; test (Table 1): error {:.1}%, robust bound {:.1}%",
                100.0 * c,
                100.0 * r
            ))
            .unwrap_or_default()
        );
        curves.push(Curve { name, epochs, test });
    }
    experiments::write_csv(&out.csv, w)?;
    println!(
        "Paper (Fig. 4, robust model, 100 epochs on 60,000 digits): test error 1.80%, robust test error 5.82%."
    );
    experiments::register_font()?;
    experiments::draw_png_svg!(out, (1100, 460), draw, &curves);
    out.report();
    Ok(())
}

const COLOURS: [RGBColor; 2] = [RGBColor(200, 60, 40), RGBColor(30, 90, 200)];

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, curves: &[Curve]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let root = experiments::titled(
        root,
        "Learning curves (Fig. 4): training loss and error per epoch; test errors where monitored and at the last epoch",
        18,
    )?;
    let panels = root.split_evenly((1, 2));
    let max_epoch = curves
        .iter()
        .map(|c| c.epochs.len())
        .max()
        .unwrap_or(1)
        .max(2) as f64
        - 1.0;
    // Loss.
    let max_loss = curves
        .iter()
        .flat_map(|c| c.epochs.iter().map(|e| e.loss))
        .fold(0.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&panels[0])
        .margin(15)
        .caption("training loss", ("sans-serif", 16))
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max_epoch, 0f64..max_loss.max(1e-3))
        .map_err(experiments::plot_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .draw()
        .map_err(experiments::plot_err)?;
    for (c, colour) in curves.iter().zip(COLOURS) {
        let label = if c.epochs.iter().any(|e| e.robust_error.is_some()) {
            format!("{} (robust loss, Theorem 2)", c.name)
        } else {
            format!("{} (cross-entropy)", c.name)
        };
        chart
            .draw_series(LineSeries::new(
                c.epochs.iter().map(|e| (e.epoch as f64, e.loss)),
                colour.stroke_width(2),
            ))
            .map_err(experiments::plot_err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    experiments::legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
    // Error.
    let mut chart = ChartBuilder::on(&panels[1])
        .margin(15)
        .caption("error (%)", ("sans-serif", 16))
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max_epoch, 0f64..108f64)
        .map_err(experiments::plot_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("error (%)")
        .draw()
        .map_err(experiments::plot_err)?;
    for (c, colour) in curves.iter().zip(COLOURS) {
        chart
            .draw_series(LineSeries::new(
                c.epochs.iter().map(|e| (e.epoch as f64, 100.0 * e.error)),
                colour.stroke_width(2),
            ))
            .map_err(experiments::plot_err)?
            .label(format!("{}: training error", c.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        let robust: Vec<(f64, f64)> = c
            .epochs
            .iter()
            .filter_map(|e| e.robust_error.map(|r| (e.epoch as f64, 100.0 * r)))
            .collect();
        if !robust.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(robust, 6, 4, colour.stroke_width(2)))
                .map_err(experiments::plot_err)?
                .label(format!("{}: training robust error", c.name))
                .legend(move |(x, y)| {
                    plotters::element::DashedPathElement::new(
                        vec![(x, y), (x + 18, y)],
                        4,
                        3,
                        colour.stroke_width(2),
                    )
                });
        }
        let monitored = |f: fn(&Epoch) -> Option<f64>| -> Vec<(f64, f64)> {
            c.epochs
                .iter()
                .filter_map(|e| f(e).map(|v| (e.epoch as f64, 100.0 * v)))
                .collect()
        };
        let test_bound = monitored(|e| e.test_robust_error);
        if !test_bound.is_empty() {
            chart
                .draw_series(LineSeries::new(test_bound.clone(), colour.stroke_width(1)))
                .map_err(experiments::plot_err)?;
            chart
                .draw_series(
                    test_bound
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 4, colour.filled())),
                )
                .map_err(experiments::plot_err)?
                .label(format!("{}: test robust bound (monitored epochs)", c.name))
                .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 4, colour.filled()));
            let test_err = monitored(|e| e.test_error);
            chart
                .draw_series(LineSeries::new(test_err.clone(), colour.stroke_width(1)))
                .map_err(experiments::plot_err)?;
            chart
                .draw_series(
                    test_err
                        .iter()
                        .map(|&p| Cross::new(p, 4, colour.stroke_width(2))),
                )
                .map_err(experiments::plot_err)?
                .label(format!("{}: test error (monitored epochs)", c.name))
                .legend(move |(x, y)| Cross::new((x + 9, y), 4, colour.stroke_width(2)));
        }
        if let Some((clean, bound)) = c.test {
            let x = (c.epochs.len() - 1) as f64;
            chart
                .draw_series([
                    Circle::new((x, 100.0 * clean), 5, colour.filled()),
                    Circle::new((x, 100.0 * bound), 5, colour.stroke_width(2)),
                ])
                .map_err(experiments::plot_err)?
                .label(format!("{}: test error (dot), robust bound (ring)", c.name))
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, colour.filled()));
        }
    }
    // Middle right: the top holds the standard model's 100% robust-bound ring.
    experiments::legend(&mut chart, SeriesLabelPosition::MiddleRight, 12)?;
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
