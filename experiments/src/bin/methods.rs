//! `methods` (Salman et al. 2019, *A Convex Relaxation Barrier to Tight Robustness
//! Verification of Neural Networks*): every bound method of `dual` (IBP, the Wong-Kolter
//! dual = Fast-Lin, CROWN / DeepPoly, alpha-CROWN, and alpha-CROWN with its intermediate
//! bounds optimised too) on the same examples: the certified fraction, the mean margin
//! bound, the mean gap to LP-all (where LP-all is affordable) and the time per example.
//! Subjects: the committed standard and robust MNIST models, a randomly initialised MNIST
//! model, a randomly initialised residual MNIST model (a graph model: skips and an input
//! normalisation), random 2-100-100-100-100-2 nets and random residual nets with 2
//! inputs.
//!
//! Writes `results/methods.csv` (one row per subject, example, method and target),
//! `figures/methods.png|svg`, and prints a markdown table. Checked as it runs (an error
//! names the row otherwise): every method's proven margin bound is below the smallest
//! margin over 200 sampled points of the ball, and below LP-all's optimum where LP-all
//! is computed (LP-all's bounds are tighter than every method's, so its LP is an upper
//! bound on every method's J; checked against the solver's confirmed value with the LP
//! tolerance, `experiments::below_lp`: alpha-CROWN with optimised intermediate bounds
//! comes within 1e-11 of the LP, above LP-all's proven lower end).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use dual::{
    bound_given, method_bounds, method_bounds_with, min_over_targets, AlphaOptions, InputDomain,
    Method,
};
use lp::{lp_all_bounds, Lp19, LpOptions};
use network::{data, load_model, Architecture, Init, Model};
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser, Debug)]
#[command(
    about = "Certified fraction, tightness and time of IBP, WK (Fast-Lin), CROWN and alpha-CROWN"
)]
struct Args {
    /// Seed of the random models and of the random nets' inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// MNIST test digits per MNIST model (digits 0, 20, 40, ... of the shipped test split).
    #[arg(long, default_value_t = 50)]
    digits: usize,
    /// eps of the standard model (trained without robustness: certifiable only at small
    /// eps; 0.02 is near the median certified radius of its digits, see `radius`).
    #[arg(long, default_value_t = 0.02)]
    eps_standard: f64,
    /// eps of the robust model (the paper's 0.1).
    #[arg(long, default_value_t = 0.1)]
    eps_robust: f64,
    /// eps of the randomly initialised MNIST model.
    #[arg(long, default_value_t = 0.002)]
    eps_random: f64,
    /// Random 2-100-100-100-100-2 nets (seeds seed, seed+1, ...), one input each, with LP-all.
    #[arg(long, default_value_t = 10)]
    nets: usize,
    /// eps of the random nets.
    #[arg(long, default_value_t = 0.05)]
    eps_nets: f64,
    /// alpha-CROWN's gradient steps.
    #[arg(long, default_value_t = AlphaOptions::default().iterations)]
    alpha_steps: usize,
    /// alpha-CROWN with optimised intermediate bounds (about 15x CROWN's time on the MNIST
    /// models) runs on this many of each MNIST model's digits (the first ones), and on
    /// every random net.
    #[arg(long, default_value_t = 10)]
    intermediate_digits: usize,
    /// microlp, clarabel or highs for LP-all (default: highs when compiled in, else clarabel).
    #[arg(long, value_enum)]
    solver: Option<experiments::SolverArg>,
    /// Folder that receives results/ and figures/.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

/// (example name, input, class to certify, whether the class is the true label).
type Example = (String, Vec<f64>, usize, bool);

/// One subject: a model, its eps, the examples and the class certified for each.
struct Subject {
    name: String,
    model: Model,
    eps: f64,
    examples: Vec<Example>,
    lp_all: bool,
}

/// A method with its options, as a column of the comparison.
struct Variant {
    /// Name in the table, the CSV and the figure.
    label: &'static str,
    method: Method,
    opts: AlphaOptions,
    /// Run on every example, or on the first `--intermediate-digits` of MNIST models.
    every_example: bool,
}

fn variants(a: &Args) -> Vec<Variant> {
    let opts = AlphaOptions {
        iterations: a.alpha_steps,
        ..Default::default()
    };
    let mut v: Vec<Variant> = Method::ALL
        .into_iter()
        .map(|m| Variant {
            label: m.name(),
            method: m,
            opts,
            every_example: true,
        })
        .collect();
    v.push(Variant {
        label: "alpha-int",
        method: Method::Alpha,
        opts: AlphaOptions {
            intermediate: true,
            ..opts
        },
        every_example: false,
    });
    v
}

/// One row of `results/methods.csv`: a (subject, example, method, target).
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    subject: &'a str,
    #[serde(serialize_with = "experiments::display")]
    eps: f64,
    example: &'a str,
    /// The class certified.
    class: usize,
    /// Whether `class` is the example's label (else the predicted class).
    class_is_label: bool,
    method: &'a str,
    method_source: &'a str,
    /// The source of the intermediate bounds.
    intermediate: &'a str,
    #[serde(serialize_with = "experiments::display_or_dash")]
    alpha_steps: Option<usize>,
    target: usize,
    #[serde(rename = "proven_J", serialize_with = "experiments::display")]
    proven_j: f64,
    #[serde(serialize_with = "experiments::display_or_dash")]
    lp_all_proven: Option<f64>,
    certified: bool,
    #[serde(serialize_with = "experiments::display")]
    time_ms: f64,
    seed: u64,
}

/// One (subject, example, method variant): proven J per target, and its time.
struct Row {
    subject: usize,
    example: String,
    class: usize,
    true_label: bool,
    variant: usize,
    values: Vec<f64>,
    certified: bool,
    min_margin: f64,
    lp_all: Option<Vec<f64>>,
    ms: f64,
    alpha_steps: Option<usize>,
}

fn subjects(a: &Args) -> Result<Vec<Subject>> {
    let (_, test) = data::mnist_split(data::DEFAULT_SPLIT_SEED)?;
    let stride = (test.len() / a.digits.max(1)).max(1);
    let digits: Vec<usize> = (0..a.digits.min(test.len())).map(|k| k * stride).collect();
    let mnist = |m: &Model, by_label: bool| -> Result<Vec<Example>> {
        digits
            .iter()
            .map(|&i| {
                let (x, y) = test.get(i)?;
                let class = if by_label { y } else { m.predict(x)? };
                Ok((
                    format!("mnist-test[{i}]"),
                    x.as_slice().to_vec(),
                    class,
                    by_label,
                ))
            })
            .collect()
    };
    let mut out = Vec::new();
    for (name, file, eps) in [
        (
            "standard MNIST conv",
            "mnist_conv_standard.json",
            a.eps_standard,
        ),
        ("robust MNIST conv", "mnist_conv_robust.json", a.eps_robust),
    ] {
        let path = experiments::committed_model(file);
        let model = load_model(&path).with_context(|| format!("the {name} model"))?;
        let examples = mnist(&model, true)?;
        out.push(Subject {
            name: name.into(),
            model,
            eps,
            examples,
            lp_all: false,
        });
    }
    let random = Architecture::mnist_conv().init(Init::Standard, a.seed)?;
    let examples = mnist(&random, false)?;
    out.push(Subject {
        name: format!("random MNIST conv (seed {})", a.seed),
        model: random,
        eps: a.eps_random,
        examples,
        lp_all: false,
    });
    let spec = "residual-normalised:1x28x28-2-1-10";
    let residual = network::init_spec(spec, Init::Standard, a.seed)?;
    let examples = mnist(&residual, false)?;
    out.push(Subject {
        name: format!("random residual MNIST {spec} (seed {})", a.seed),
        model: residual,
        eps: a.eps_random,
        examples,
        lp_all: false,
    });
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    for k in 0..a.nets {
        let seed = a.seed + k as u64;
        let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2]).init(Init::Paper, seed)?;
        let x = vec![rng.random::<f64>(), rng.random::<f64>()];
        let y = model.predict(&x)?;
        out.push(Subject {
            name: format!("random 2-100x4-2 (seed {seed})"),
            model,
            eps: a.eps_nets,
            examples: vec![(format!("x = ({:.4}, {:.4})", x[0], x[1]), x, y, false)],
            lp_all: true,
        });
    }
    for k in 0..a.nets {
        let seed = a.seed + k as u64;
        let spec = "residual-normalised:2-50-2-2";
        let model = network::init_spec(spec, Init::Paper, seed)?;
        let x = vec![rng.random::<f64>(), rng.random::<f64>()];
        let y = model.predict(&x)?;
        out.push(Subject {
            name: format!("random {spec} (seed {seed})"),
            model,
            eps: a.eps_nets,
            examples: vec![(format!("x = ({:.4}, {:.4})", x[0], x[1]), x, y, false)],
            lp_all: true,
        });
    }
    Ok(out)
}

/// The smallest margin `f_y - f_t` over sampled points of the ball (corners and uniform).
fn sampled_min_margin(
    model: &Model,
    x: &[f64],
    eps: f64,
    y: usize,
    rng: &mut ChaCha8Rng,
) -> Result<f64> {
    let n = 200;
    let pts = experiments::ball_samples(x, eps, n, rng);
    let f = model.forward_batch(network::DMatrixView::from_slice(&pts, model.input_len(), n))?;
    let k = model.output_len();
    Ok(f.as_slice()
        .chunks(k)
        .map(|o| {
            (0..k)
                .filter(|&t| t != y)
                .map(|t| o[y] - o[t])
                .fold(f64::INFINITY, f64::min)
        })
        .fold(f64::INFINITY, f64::min))
}

fn main() -> Result<()> {
    let a = Args::parse();
    for (flag, v) in [
        ("--eps-standard", a.eps_standard),
        ("--eps-robust", a.eps_robust),
        ("--eps-random", a.eps_random),
        ("--eps-nets", a.eps_nets),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            bail!("{flag} must be a non-negative number, got {v}");
        }
    }
    let solver = experiments::SolverArg::resolve(a.solver)?;
    let out = experiments::Outputs::new(&a.out_dir, "methods")?;
    let subjects = subjects(&a)?;
    let variants = variants(&a);
    let total: usize = subjects.iter().map(|s| s.examples.len()).sum();
    let pb = experiments::progress(total as u64, "methods");
    let mut rows: Vec<Row> = Vec::new();
    for (si, s) in subjects.iter().enumerate() {
        // One example at a time (each method parallel inside), so that the times are
        // per example on the whole machine.
        let per_example: Vec<Result<Vec<Row>>> = s
            .examples
            .iter()
            .enumerate()
            .map(|(ei, (name, x, class, true_label))| {
                let dom = InputDomain::new(x, s.eps, None)?;
                let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ ((si as u64) << 32) ^ ei as u64);
                let sampled = sampled_min_margin(&s.model, x, s.eps, *class, &mut rng)?;
                let lp_all = if s.lp_all {
                    let b = lp_all_bounds(&s.model, &dom, solver, &LpOptions::default())?;
                    let lp19 = Lp19::new(&s.model, &dom, &b)?;
                    let n = s.model.output_len();
                    let m = dual::Margins::new(n, *class, dual::Targets::All)?;
                    let encs = experiments::solve_verified(&lp19, &m.c, solver)?;
                    let mut v = vec![None; n];
                    for (e, &t) in encs.into_iter().zip(&m.targets) {
                        v[t] = Some(e);
                    }
                    Some(v)
                } else {
                    None
                };
                let mut out = Vec::new();
                // CROWN's intermediate bounds serve crown and alpha: computed once, their
                // time counted in both.
                let t = Instant::now();
                let crown_b = method_bounds(&s.model, &dom, Method::Crown)?;
                let crown_ms = t.elapsed().as_secs_f64() * 1e3;
                let c = dual::margin_objectives(s.model.output_len(), *class)?;
                for (vi, v) in variants.iter().enumerate() {
                    if !(v.every_example || s.lp_all || ei < a.intermediate_digits) {
                        continue;
                    }
                    let m = v.method;
                    let t = Instant::now();
                    let (bounds, shared_ms) = match m.intermediate_with(&v.opts) {
                        dual::BoundSource::Crown => (crown_b.clone(), crown_ms),
                        _ => (method_bounds_with(&s.model, &dom, m, &v.opts)?, 0.0),
                    };
                    let b = bound_given(&s.model, &dom, bounds, &c, m, &v.opts)?;
                    let ms = t.elapsed().as_secs_f64() * 1e3 + shared_ms;
                    let min_margin = min_over_targets(&b.values, *class);
                    let what = format!("{} {name} eps {} {}", s.name, s.eps, v.label);
                    if !experiments::le(
                        min_margin,
                        sampled + experiments::tol(experiments::SAMPLE_TOL, sampled),
                    ) {
                        bail!("{what}: proven margin bound {min_margin} above the sampled minimum {sampled}");
                    }
                    if let Some(lv) = &lp_all {
                        for (t, (&j, e)) in b.values.iter().zip(lv).enumerate() {
                            if let Some(e) = e.as_ref().filter(|e| !experiments::below_lp(j, e)) {
                                bail!(
                                    "{what}: target {t}: J {j} above LP-all's optimum {:?} (proven {})",
                                    e.solution.as_ref().map(|s| s.value),
                                    e.proven_lower
                                );
                            }
                        }
                    }
                    out.push(Row {
                        subject: si,
                        example: name.clone(),
                        class: *class,
                        true_label: *true_label,
                        variant: vi,
                        certified: dual::certifies(&b.values, *class),
                        min_margin,
                        values: b.values.as_slice().to_vec(),
                        lp_all: lp_all.as_ref().map(|v| {
                            v.iter()
                                .map(|e| e.as_ref().map_or(0.0, |e| e.proven_lower))
                                .collect()
                        }),
                        ms,
                        alpha_steps: b.alpha.map(|r| r.steps),
                    });
                }
                Ok(out)
            })
            .collect();
        for r in per_example {
            rows.extend(r?);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();

    // CSV: one row per (subject, example, method, target).
    let mut w = csv::Writer::from_path(&out.csv)?;
    for r in &rows {
        let s = &subjects[r.subject];
        let v = &variants[r.variant];
        for (t, &value) in r.values.iter().enumerate() {
            if t == r.class {
                continue;
            }
            w.serialize(CsvRow {
                subject: &s.name,
                eps: s.eps,
                example: &r.example,
                class: r.class,
                class_is_label: r.true_label,
                method: v.label,
                method_source: v.method.source(),
                intermediate: v.method.intermediate_with(&v.opts).name(),
                alpha_steps: r.alpha_steps,
                target: t,
                proven_j: value,
                lp_all_proven: r.lp_all.as_ref().map(|l| l[t]),
                certified: r.certified,
                time_ms: r.ms,
                seed: a.seed,
            })?;
        }
    }
    w.flush()?;

    // Summary per subject group and method.
    let groups: Vec<(String, Vec<usize>)> = {
        let mut g: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, s) in subjects.iter().enumerate() {
            let key = if s.lp_all {
                let kind = s.name.split(" (seed").next().unwrap_or("");
                format!("{kind} nets ({} nets, eps {})", a.nets, s.eps)
            } else {
                format!("{} (eps {}, {} digits)", s.name, s.eps, s.examples.len())
            };
            match g.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(i),
                None => g.push((key, vec![i])),
            }
        }
        g
    };
    let n_examples =
        |members: &[usize]| -> usize { members.iter().map(|&i| subjects[i].examples.len()).sum() };
    let mut summary = Vec::new();
    println!(
        "| subjects | method | examples | certified | mean margin bound | mean gap to LP-all | ms / example |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (key, members) in &groups {
        for (vi, v) in variants.iter().enumerate() {
            let rs: Vec<&Row> = rows
                .iter()
                .filter(|r| r.variant == vi && members.contains(&r.subject))
                .collect();
            let n = rs.len().max(1) as f64;
            let cert = rs.iter().filter(|r| r.certified).count() as f64 / n;
            let margin = rs.iter().map(|r| r.min_margin).sum::<f64>() / n;
            let ms = rs.iter().map(|r| r.ms).sum::<f64>() / n;
            let gaps: Vec<f64> = rs
                .iter()
                .filter_map(|r| {
                    r.lp_all.as_ref().map(|l| {
                        let lm = min_over_targets(l, r.class);
                        (lm - r.min_margin) / lm.abs().max(1.0)
                    })
                })
                .collect();
            let gap = (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64);
            // A variant run on fewer examples is compared with alpha on the same ones.
            let same = if v.every_example || rs.len() == n_examples(members) {
                String::new()
            } else {
                let alpha: Vec<&Row> = rows
                    .iter()
                    .filter(|r| {
                        variants[r.variant].every_example
                            && variants[r.variant].method == Method::Alpha
                            && rs
                                .iter()
                                .any(|q| q.subject == r.subject && q.example == r.example)
                    })
                    .collect();
                let k = alpha.len().max(1) as f64;
                format!(
                    " (alpha on the same: {:.0}%, {:.4})",
                    100.0 * alpha.iter().filter(|r| r.certified).count() as f64 / k,
                    alpha.iter().map(|r| r.min_margin).sum::<f64>() / k
                )
            };
            println!(
                "| {key} | {} | {} | {:.0}% | {margin:.4}{same} | {} | {ms:.1} |",
                v.label,
                rs.len(),
                100.0 * cert,
                gap.map_or("-".into(), |g| format!("{g:.4}")),
            );
            summary.push((key.clone(), vi, cert, gap, ms));
        }
    }
    println!(
        "\nThe field (Salman et al. 2019; Zhang et al. 2018): CROWN / DeepPoly certify more than \
         WK / Fast-Lin on networks not trained with WK, optimised slopes (alpha-CROWN) more still, \
         and all of them stay below the LP relaxation's optimum, which LP-all reaches only with \
         its own (tighter) intermediate bounds. IBP is far looser except on networks trained for it."
    );

    experiments::register_font()?;
    let labels: Vec<&str> = variants.iter().map(|v| v.label).collect();
    experiments::draw_png_svg!(out, (1400, 560), draw, &summary, &groups, &labels);
    out.report();
    Ok(())
}

/// (group, variant, certified fraction, mean gap to LP-all, ms per example).
type Summary = (String, usize, f64, Option<f64>, f64);

const COLORS: [RGBColor; 5] = [
    RGBColor(220, 120, 0),
    RGBColor(30, 90, 200),
    RGBColor(0, 150, 60),
    RGBColor(160, 40, 160),
    RGBColor(200, 30, 60),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    summary: &[Summary],
    groups: &[(String, Vec<usize>)],
    labels: &[&str],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let root = experiments::titled(
        root,
        "Bound methods: certified fraction and time per example (IBP, WK = Fast-Lin, CROWN, alpha-CROWN, alpha-CROWN with optimised intermediate bounds)",
        20,
    )?;
    let (left, right) = root.split_horizontally(740);
    let ng = groups.len() as f64;
    let label = |x: &f64| -> String {
        let x = *x;
        let i = x.round() as usize;
        if (x - x.round()).abs() < 1e-9 && i < groups.len() {
            groups[i].0.split(" (").next().unwrap_or("").to_string()
        } else {
            String::new()
        }
    };
    for (panel, area) in [(0, left), (1, right)] {
        let vals: Vec<f64> = summary
            .iter()
            .map(|s| if panel == 0 { s.2 } else { s.4.max(1e-3) })
            .collect();
        let (ylo, yhi) = if panel == 0 {
            (0.0, 1.35)
        } else {
            let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().cloned().fold(0.0, f64::max);
            (lo.log10().floor(), hi.log10().ceil() + 1.2)
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(
                if panel == 0 {
                    "certified fraction"
                } else {
                    "time per example (ms, log10)"
                },
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.6..(ng - 0.4), ylo..yhi)
            .map_err(experiments::plot_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len() * 2 + 1)
            .y_labels(if panel == 0 {
                15
            } else {
                (yhi - ylo).ceil() as usize + 1
            })
            .x_label_formatter(&label)
            .y_label_formatter(&|y| {
                if panel == 0 {
                    if *y <= 1.0 + 1e-9 {
                        format!("{y:.1}")
                    } else {
                        String::new()
                    }
                } else if (y - y.round()).abs() < 1e-9 {
                    format!("{}", 10f64.powi(y.round() as i32))
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(experiments::plot_err)?;
        for (mi, name) in labels.iter().enumerate() {
            let color = COLORS[mi % COLORS.len()];
            let w = 0.8 / labels.len() as f64;
            let off = (mi as f64 - (labels.len() as f64 - 1.0) / 2.0) * w;
            chart
                .draw_series(
                    summary
                        .iter()
                        .zip(&vals)
                        .filter(|(s, _)| s.1 == mi)
                        .map(|(s, &v)| {
                            let g = groups.iter().position(|(k, _)| *k == s.0).unwrap_or(0) as f64;
                            let top = if panel == 0 { v } else { v.log10() };
                            Rectangle::new(
                                [(g + off - w / 2.0, ylo), (g + off + w / 2.0, top)],
                                color.filled(),
                            )
                        }),
                )
                .map_err(experiments::plot_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        experiments::legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
    }
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
