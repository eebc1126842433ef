//! `tightness` (paper Fig. 11, appendix B.2), the main job: the dual bound `J` against
//! the exact LP (19) for a random, a standard-trained and a robust-trained MNIST model
//! of the paper's conv architecture, for test images of the shipped subset, every target
//! class and a list of eps. Writes `results/tightness.csv` (one row per model, image, eps
//! and target), `figures/tightness.png|svg` (LP against J, one panel per model, with the
//! line y = x) and `figures/tightness_gap.png|svg` (the gap LP - J per model and eps), and
//! prints a summary: median and max gap, the share of (image, target) pairs each method
//! certifies, and times.
//!
//! Every LP is a verified enclosure (`lp::verified`): a proven lower bound, the solver's
//! value (confirmed to 1e-6 relative against the proven bound, else the other solvers
//! are tried) and a proven upper bound at the LP's input point. Checked as it runs (an
//! error names the row otherwise), with the tolerance policy of `experiments::tol`: the
//! proven `J` <= the LP value (LP tolerance); the proven LP lower bound <= the proven
//! value at the LP's own input point (no tolerance); every sampled point of the ball
//! inside the Algorithm 1 bounds of every layer and at or above both the proven `J` and
//! the proven LP bound for every target (`SAMPLE_TOL`, the forward pass's rounding).
//!
//! The time goes into the LP. An LP with more variables than `--max-lp-vars` is not
//! solved (its rows keep `J` and say why in `lp_status`), and the summary prints what
//! the paper-scale run (`--paper-scale`) would cost from the solves it measured.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use dual::{algorithm1, dual_objective, margin_objectives, AlphaRule, InputDomain, LayerBounds};
use lp::{Lp19, LpEnclosure, LpSolution, Solver};
use network::{data, load_model, Architecture, Init, Model};
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

#[derive(Parser, Debug)]
#[command(
    about = "Dual bound vs exact LP (19) on random, standard and robust MNIST models (Fig. 11)",
    after_help = "The default run (one test image, eps 0.02 and 0.1, every target) takes a few \
minutes on 2 cores with the pure-Rust solvers; --paper-scale runs 100 images at eps 0.1 with \
no LP size limit (hours; build with --features highs for warm-started HiGHS)."
)]
struct Args {
    /// Seed of the random model and of the sampled points.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which models, comma separated: random, standard, robust.
    #[arg(long, default_value = "random,standard,robust")]
    models: String,
    #[command(flatten)]
    mnist: experiments::MnistModels,
    /// Test images of the shipped MNIST subset (its 1,000-image test split), from --first.
    #[arg(long, default_value_t = 1)]
    images: usize,
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Radii of the l-inf ball, comma separated.
    #[arg(long, default_value = "0.02,0.1")]
    eps: String,
    /// LPs with more variables than this are not solved (0: no limit).
    #[arg(long, default_value_t = 10_000)]
    max_lp_vars: usize,
    /// Points sampled in each ball (corners and uniform) for the soundness check.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// microlp, clarabel or highs (default: highs when compiled in, else clarabel).
    #[arg(long, value_enum)]
    solver: Option<experiments::SolverArg>,
    /// The paper's scale: 100 images, eps 0.1, no LP size limit.
    #[arg(long)]
    paper_scale: bool,
    /// Folder that receives results/ and figures/.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

/// A model and where it came from.
struct Subject {
    name: String,
    source: String,
    model: Model,
}

/// One (model, image, eps) ball: Algorithm 1, J for every target, the LP if solved.
struct Group {
    model: usize,
    image: usize,
    label: usize,
    predicted: usize,
    eps: f64,
    bounds: LayerBounds,
    unstable: Vec<usize>,
    j: network::DVector<f64>,
    dual_ms: f64,
    lp_size: lp::LpSize,
    skipped: Option<String>,
}

/// One row of the results: a target of a group.
struct Row {
    group: usize,
    target: usize,
    j: f64,
    lp: Option<LpSolution>,
    /// The proven lower end of the LP's enclosure.
    lp_proven: Option<f64>,
    lp_ms: f64,
    value_at_lp_point: Option<f64>,
    min_sampled: f64,
}

fn load_subject(name: &str, path: &Path) -> Result<Subject> {
    if !path.exists() {
        bail!(
            "the {name} model {} does not exist (models/README.md has the command that trains it)",
            path.display()
        );
    }
    Ok(Subject {
        name: name.to_string(),
        source: path.display().to_string(),
        model: load_model(path).with_context(|| format!("loading the {name} model"))?,
    })
}

fn main() -> Result<()> {
    let mut a = Args::parse();
    if a.paper_scale {
        a.images = 100;
        a.eps = "0.1".to_string();
        a.max_lp_vars = 0;
    }
    let eps: Vec<f64> = a
        .eps
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| anyhow!("--eps: {s:?} is not a number"))
        })
        .collect::<Result<_>>()?;
    if let Some(e) = eps.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
        bail!("--eps values must be positive, got {e}");
    }
    let solver = experiments::SolverArg::resolve(a.solver)?;
    let (_, test) = data::mnist_split(data::DEFAULT_SPLIT_SEED)?;
    if a.images == 0 || a.first + a.images > test.len() {
        bail!(
            "--first {} --images {} is outside the {} test images",
            a.first,
            a.images,
            test.len()
        );
    }
    let files = a.mnist.resolve();
    let mut subjects = Vec::new();
    for name in a.models.split(',').map(str::trim) {
        subjects.push(match name {
            "random" => Subject {
                name: "random".into(),
                source: format!("mnist-conv, standard init, seed {}", a.seed),
                model: Architecture::mnist_conv().init(Init::Standard, a.seed)?,
            },
            "standard" => load_subject("standard", &files[0].1)?,
            "robust" => load_subject("robust", &files[1].1)?,
            o => bail!("--models: unknown model {o:?} (random, standard, robust)"),
        });
        if subjects.last().unwrap().model.input_len() != test.dim() {
            bail!(
                "the {} model takes {} inputs, MNIST images have {}",
                name,
                subjects.last().unwrap().model.input_len(),
                test.dim()
            );
        }
    }
    let out = experiments::Outputs::new(&a.out_dir, "tightness")?;
    let out_gap = experiments::Outputs::new(&a.out_dir, "tightness_gap")?;
    let started = Instant::now();

    // Dual bounds for every ball (fast), then the LPs (slow), both in parallel.
    let mut specs = Vec::new();
    for m in 0..subjects.len() {
        for i in a.first..a.first + a.images {
            for &e in &eps {
                specs.push((m, i, e));
            }
        }
    }
    let groups: Vec<Group> = specs
        .par_iter()
        .map(|&(m, image, e)| -> Result<Group> {
            let model = &subjects[m].model;
            let (x, label) = test.example(image);
            let t = Instant::now();
            let dom = InputDomain::new(x, e, None)?;
            let bounds = algorithm1(model, &dom)?;
            let c = margin_objectives(model.output_len(), label)?;
            let j = dual_objective(model, &dom, &bounds, &c, &AlphaRule::Paper)?.values;
            let dual_ms = t.elapsed().as_secs_f64() * 1e3;
            let unstable = bounds.counts(model).iter().map(|c| c.unstable).collect();
            let lp_size = Lp19::new(model, &dom, &bounds)?.size();
            let skipped = (a.max_lp_vars > 0 && lp_size.variables > a.max_lp_vars).then(|| {
                format!(
                    "not solved: {} variables > --max-lp-vars {}",
                    lp_size.variables, a.max_lp_vars
                )
            });
            Ok(Group {
                model: m,
                image,
                label,
                predicted: model.predict(x)?,
                eps: e,
                bounds,
                unstable,
                j,
                dual_ms,
                lp_size,
                skipped,
            })
        })
        .collect::<Result<_>>()?;
    let n_out = subjects[0].model.output_len();
    let n_lps: usize = groups.iter().filter(|g| g.skipped.is_none()).count() * (n_out - 1);
    let skipped_groups = groups.iter().filter(|g| g.skipped.is_some()).count();
    eprintln!(
        "tightness: {} models x {} images x {} eps: {} LPs with {} ({} balls over --max-lp-vars {}), {} samples per ball",
        subjects.len(),
        a.images,
        eps.len(),
        n_lps,
        solver.name(),
        skipped_groups,
        a.max_lp_vars,
        a.samples
    );
    let pb = experiments::progress(n_lps as u64, "LP (19)");
    let failed = AtomicBool::new(false);
    // One LP per ball, solved for each target: HiGHS re-solves the targets in turn from
    // the last basis (warm); the other solvers take the targets in parallel.
    type Solved = (usize, LpEnclosure, f64);
    let mut by_group: Vec<Vec<Solved>> = groups
        .par_iter()
        .map(|gr| -> Result<Vec<Solved>> {
            if gr.skipped.is_some() {
                return Ok(Vec::new());
            }
            let model = &subjects[gr.model].model;
            let (x, _) = test.example(gr.image);
            let lp19 = Lp19::new(model, &InputDomain::new(x, gr.eps, None)?, &gr.bounds)?;
            let targets: Vec<usize> = (0..n_out).filter(|&t| t != gr.label).collect();
            let solve = |ts: &[usize]| -> Result<Vec<Solved>> {
                if failed.load(Ordering::Relaxed) {
                    bail!("stopped after another solve failed");
                }
                let cs = network::DMatrix::from_row_iterator(
                    ts.len(),
                    n_out,
                    ts.iter().flat_map(|&t| objective(n_out, gr.label, t)),
                );
                let t = Instant::now();
                let sols = experiments::solve_verified(&lp19, &cs, solver).map_err(|e| {
                    failed.store(true, Ordering::Relaxed);
                    e.context(format!(
                        "{} model, image {}, eps {}: LP (19)",
                        subjects[gr.model].name, gr.image, gr.eps
                    ))
                })?;
                let ms = t.elapsed().as_secs_f64() * 1e3 / ts.len() as f64;
                pb.inc(ts.len() as u64);
                Ok(ts.iter().zip(sols).map(|(&t, e)| (t, e, ms)).collect())
            };
            if solver == Solver::Highs {
                solve(&targets)
            } else {
                let per: Vec<Vec<Solved>> = targets
                    .par_iter()
                    .map(|&t| solve(&[t]))
                    .collect::<Result<_>>()?;
                Ok(per.into_iter().flatten().collect())
            }
        })
        .collect::<Result<_>>()?;
    pb.finish_and_clear();
    let lp_seconds = started.elapsed().as_secs_f64();

    // Rows, and the chain checked on each.
    let mut rows = Vec::new();
    for (g, gr) in groups.iter().enumerate() {
        let subject = &subjects[gr.model];
        let mins = sampled_minima(&subject.model, &test, gr, a.samples, a.seed)?;
        let mut sols = std::mem::take(&mut by_group[g]);
        for t in (0..n_out).filter(|&t| t != gr.label) {
            let name = format!(
                "row: {} model, image {}, eps {}, target {t}",
                subject.name, gr.image, gr.eps
            );
            let j = gr.j[t];
            let min_sampled = mins[t];
            let tol_j = experiments::tol(experiments::SAMPLE_TOL, min_sampled);
            if !experiments::le(j, min_sampled + tol_j) {
                bail!("{name}: J = {j} is above a sampled point's margin {min_sampled}");
            }
            let pos = sols.iter().position(|s| s.0 == t);
            let (lp, lp_ms, v) = match pos {
                Some(p) => {
                    let (_, e, ms) = sols.swap_remove(p);
                    let s = e.solution.clone().expect("solve_verified returns optima");
                    let v = e.upper_at_input.expect("an optimum has an input point");
                    if !experiments::below_lp(j, &e) {
                        bail!(
                            "{name}: proven J = {j} exceeds the LP optimum {} (tolerance {:.1e})",
                            s.value,
                            experiments::tol(e.tolerance, s.value)
                        );
                    }
                    if !experiments::le(e.proven_lower, v) {
                        bail!("{name}: proven LP bound {} exceeds the proven value {v} at the LP's own input point", e.proven_lower);
                    }
                    if e.proven_lower > min_sampled + tol_j {
                        bail!(
                            "{name}: proven LP bound {} is above a sampled point's margin {min_sampled}",
                            e.proven_lower
                        );
                    }
                    (Some((s, e.proven_lower)), ms, Some(v))
                }
                None => (None, 0.0, None),
            };
            let (lp, lp_proven) = match lp {
                Some((s, p)) => (Some(s), Some(p)),
                None => (None, None),
            };
            rows.push(Row {
                group: g,
                target: t,
                j,
                lp,
                lp_proven,
                lp_ms,
                value_at_lp_point: v,
                min_sampled,
            });
        }
    }
    write_csv(&out.csv, &a, &subjects, &groups, &rows, solver)?;
    summary(
        &a,
        &subjects,
        &groups,
        &rows,
        &eps,
        lp_seconds,
        started.elapsed().as_secs_f64(),
    );
    experiments::register_font()?;
    let size = (1500, 520);
    experiments::draw_png_svg!(out, size, draw_scatter, &subjects, &groups, &rows, &eps);
    experiments::draw_png_svg!(out_gap, size, draw_gaps, &subjects, &groups, &rows, &eps);
    eprintln!(
        "wrote {}, {} (.svg) and {} (.svg)",
        out.csv.display(),
        out.png.display(),
        out_gap.png.display()
    );
    Ok(())
}

/// `c_t = e_y - e_t`.
fn objective(n: usize, y: usize, t: usize) -> Vec<f64> {
    let mut c = vec![0.0; n];
    c[y] = 1.0;
    c[t] = -1.0;
    c
}

/// Samples the ball (random corners for half the points, uniform for the rest, seeded by
/// the run's seed and the ball), checks every point against the Algorithm 1 bounds of
/// every layer, and returns the smallest margin `c_t^T f(x')` per target.
fn sampled_minima(
    model: &Model,
    test: &network::Dataset,
    gr: &Group,
    samples: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let (x, y) = test.example(gr.image);
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ (gr.image as u64).wrapping_mul(0x9E37_79B9)
            ^ gr.eps.to_bits()
            ^ ((gr.model as u64) << 48),
    );
    let pts = experiments::ball_samples(x, gr.eps, samples, &mut rng);
    let pre = model.preactivations_batch(network::DMatrixView::from_slice(
        &pts,
        model.input_len(),
        samples,
    ))?;
    let n_out = model.output_len();
    for (layer, (z, (lo, hi))) in pre
        .iter()
        .zip(gr.bounds.lower.iter().zip(&gr.bounds.upper))
        .enumerate()
    {
        let n = lo.len();
        for (s, col) in z.as_slice().chunks(n).enumerate() {
            for (k, v) in col.iter().enumerate() {
                let tol = 1e-9 * v.abs().max(1.0);
                if *v < lo[k] - tol || *v > hi[k] + tol {
                    bail!(
                        "image {}, eps {}: sampled point {s} has zhat_{}[{k}] = {v} outside the Algorithm 1 bound [{}, {}]",
                        gr.image, gr.eps, layer + 2, lo[k], hi[k]
                    );
                }
            }
        }
    }
    let logits = pre.last().expect("a model has an output layer");
    let mut margins = vec![f64::INFINITY; n_out];
    for f in logits.as_slice().chunks(n_out) {
        for (t, m) in margins.iter_mut().enumerate() {
            if t != y {
                *m = m.min(f[y] - f[t]);
            }
        }
    }
    Ok(margins)
}

/// One row of `results/tightness.csv`: one (model, image, eps, target), its dual bound
/// and its LP (19).
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    model: &'a str,
    model_source: &'a str,
    seed: u64,
    image: usize,
    label: usize,
    predicted: usize,
    #[serde(serialize_with = "experiments::display")]
    eps: f64,
    r#box: &'a str,
    target: usize,
    alpha_rule: &'a str,
    bound_source: &'a str,
    /// Unstable units of each hidden layer, `/`-separated.
    unstable_per_layer: &'a str,
    #[serde(rename = "dual_J", serialize_with = "experiments::display")]
    dual_j: f64,
    #[serde(serialize_with = "experiments::display")]
    dual_ms: f64,
    #[serde(serialize_with = "experiments::display_or_empty")]
    lp_value: Option<f64>,
    #[serde(serialize_with = "experiments::display_or_empty")]
    lp_proven_lower: Option<f64>,
    lp_solver: &'a str,
    lp_status: &'a str,
    #[serde(serialize_with = "experiments::display_or_empty")]
    lp_ipm_gap: Option<f64>,
    #[serde(serialize_with = "experiments::display_or_empty")]
    lp_warm: Option<bool>,
    #[serde(serialize_with = "experiments::display_or_empty")]
    lp_ms: Option<f64>,
    lp_variables: usize,
    lp_rows: usize,
    lp_nonzeros: usize,
    #[serde(
        rename = "gap_lp_minus_J",
        serialize_with = "experiments::display_or_empty"
    )]
    gap_lp_minus_j: Option<f64>,
    #[serde(serialize_with = "experiments::display_or_empty")]
    value_at_lp_point_upper: Option<f64>,
    samples: usize,
    #[serde(serialize_with = "experiments::display")]
    min_sampled_margin: f64,
    dual_certified: bool,
    #[serde(serialize_with = "experiments::display_or_empty")]
    lp_certified: Option<bool>,
}

fn write_csv(
    path: &Path,
    a: &Args,
    subjects: &[Subject],
    groups: &[Group],
    rows: &[Row],
    solver: Solver,
) -> Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    for r in rows {
        let g = &groups[r.group];
        let s = &subjects[g.model];
        let unstable = g
            .unstable
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join("/");
        let status = match (&r.lp, &g.skipped) {
            (Some(l), _) => l.status.clone(),
            (None, Some(why)) => why.clone(),
            (None, None) => "not solved".into(),
        };
        w.serialize(CsvRow {
            model: &s.name,
            model_source: &s.source,
            seed: a.seed,
            image: g.image,
            label: g.label,
            predicted: g.predicted,
            eps: g.eps,
            r#box: "none",
            target: r.target,
            alpha_rule: "paper",
            bound_source: "algorithm1",
            unstable_per_layer: &unstable,
            dual_j: r.j,
            dual_ms: g.dual_ms,
            lp_value: r.lp.as_ref().map(|l| l.value),
            lp_proven_lower: r.lp_proven,
            lp_solver: r.lp.as_ref().map_or(solver.name(), |l| l.solver.name()),
            lp_status: &status,
            lp_ipm_gap: r.lp.as_ref().and_then(|l| l.ipm_gap),
            lp_warm: r.lp.as_ref().map(|l| l.warm),
            lp_ms: r.lp.as_ref().map(|_| r.lp_ms),
            lp_variables: g.lp_size.variables,
            lp_rows: g.lp_size.rows,
            lp_nonzeros: g.lp_size.nonzeros,
            gap_lp_minus_j: r.lp.as_ref().map(|l| l.value - r.j),
            value_at_lp_point_upper: r.value_at_lp_point,
            samples: a.samples,
            min_sampled_margin: r.min_sampled,
            dual_certified: r.j > 0.0,
            lp_certified: r.lp_proven.map(|p| p > 0.0),
        })?;
    }
    w.flush()?;
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn summary(
    a: &Args,
    subjects: &[Subject],
    groups: &[Group],
    rows: &[Row],
    eps: &[f64],
    lp_seconds: f64,
    total_seconds: f64,
) {
    println!(
        "| model | eps | pairs | LPs solved | unstable units (mean per layer) | median gap LP - J | max gap | median gap / |LP| | certified by J | certified by LP | dual ms/image | LP s/target | solver |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut paper_cost = 0.0;
    let mut paper_unknown = Vec::new();
    for (m, s) in subjects.iter().enumerate() {
        for &e in eps {
            let gs: Vec<usize> = (0..groups.len())
                .filter(|&g| groups[g].model == m && groups[g].eps == e)
                .collect();
            let rs: Vec<&Row> = rows.iter().filter(|r| gs.contains(&r.group)).collect();
            let solved: Vec<&&Row> = rs.iter().filter(|r| r.lp.is_some()).collect();
            let mut gaps: Vec<f64> = solved
                .iter()
                .map(|r| r.lp.as_ref().unwrap().value - r.j)
                .collect();
            let mut rel: Vec<f64> = solved
                .iter()
                .map(|r| {
                    let lp = r.lp.as_ref().unwrap().value;
                    (lp - r.j) / lp.abs().max(1e-12)
                })
                .collect();
            let max_gap = gaps.iter().copied().fold(f64::NAN, f64::max);
            let cert_j = rs.iter().filter(|r| r.j > 0.0).count();
            let cert_lp = solved
                .iter()
                .filter(|r| r.lp.as_ref().unwrap().value > 0.0)
                .count();
            let nl = gs.first().map(|&g| groups[g].unstable.len()).unwrap_or(0);
            let unstable: Vec<String> = (0..nl)
                .map(|l| {
                    let sum: usize = gs.iter().map(|&g| groups[g].unstable[l]).sum();
                    format!("{:.0}", sum as f64 / gs.len().max(1) as f64)
                })
                .collect();
            let dual_ms =
                gs.iter().map(|&g| groups[g].dual_ms).sum::<f64>() / gs.len().max(1) as f64;
            let lp_s =
                solved.iter().map(|r| r.lp_ms).sum::<f64>() / 1e3 / solved.len().max(1) as f64;
            let solver = solved
                .first()
                .map(|r| r.lp.as_ref().unwrap().solver.name())
                .unwrap_or("-");
            if (e - 0.1).abs() < 1e-12 {
                if solved.is_empty() {
                    paper_unknown.push(s.name.clone());
                } else {
                    paper_cost += lp_s * 100.0 * 9.0;
                }
            }
            let pct = |n: usize, d: usize| {
                if d == 0 {
                    "-".to_string()
                } else {
                    format!("{:.0}% ({n}/{d})", 100.0 * n as f64 / d as f64)
                }
            };
            println!(
                "| {} | {e} | {} | {} | {} | {} | {} | {} | {} | {} | {dual_ms:.0} | {} | {solver} |",
                s.name,
                rs.len(),
                solved.len(),
                unstable.join(" / "),
                fmt(median(&mut gaps)),
                fmt(max_gap),
                fmt(median(&mut rel)),
                pct(cert_j, rs.len()),
                pct(cert_lp, solved.len()),
                if solved.is_empty() { "-".into() } else { format!("{lp_s:.2}") },
            );
        }
    }
    let skipped: Vec<String> = groups
        .iter()
        .filter_map(|g| {
            g.skipped.as_ref().map(|why| {
                format!(
                    "{} model, image {}, eps {}: {why} ({} rows, {} nonzeros)",
                    subjects[g.model].name, g.image, g.eps, g.lp_size.rows, g.lp_size.nonzeros
                )
            })
        })
        .collect();
    if !skipped.is_empty() {
        println!("\nLPs not solved (raise --max-lp-vars or use --paper-scale):");
        for s in &skipped {
            println!("- {s}");
        }
    }
    println!(
        "\n{} rows; LPs and dual took {lp_seconds:.1} s, everything {total_seconds:.1} s (eps {:?}, {} images from {}, seed {}).",
        rows.len(),
        eps,
        a.images,
        a.first,
        a.seed
    );
    if !a.paper_scale {
        let unknown = if paper_unknown.is_empty() {
            String::new()
        } else {
            format!(
                ", plus the {} model(s) whose eps-0.1 LPs were not solved here (on the random net one such LP took 164 s with HiGHS where it was measured)",
                paper_unknown.join(", ")
            )
        };
        if paper_cost > 0.0 || !paper_unknown.is_empty() {
            println!(
                "Paper scale (--paper-scale: 100 images x 9 targets at eps 0.1, no size limit) would take about {:.1} h of LP time (one solve at a time; divide by the cores) at the rates measured here{unknown}.",
                paper_cost / 3600.0
            );
        }
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e4) {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
    }
}

const EPS_COLORS: [RGBColor; 4] = [
    RGBColor(30, 90, 200),
    RGBColor(220, 90, 0),
    RGBColor(0, 150, 60),
    RGBColor(150, 40, 160),
];

fn draw_scatter<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    subjects: &[Subject],
    groups: &[Group],
    rows: &[Row],
    eps: &[f64],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let root = experiments::titled(
        root,
        "Exact LP (19) optimum against the dual bound J, every target (cf. Fig. 11)",
        22,
    )?;
    let panels = root.split_evenly((1, subjects.len()));
    for (m, (s, area)) in subjects.iter().zip(panels).enumerate() {
        let pts: Vec<(f64, f64, usize)> = rows
            .iter()
            .filter(|r| groups[r.group].model == m)
            .filter_map(|r| {
                let e = eps.iter().position(|&e| e == groups[r.group].eps)?;
                r.lp.as_ref().map(|l| (r.j, l.value, e))
            })
            .collect();
        let (mut lo, mut hi) = pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.0).min(p.1), hi.max(p.0).max(p.1))
            });
        if !lo.is_finite() {
            (lo, hi) = (-1.0, 1.0);
        }
        let pad = 0.05 * (hi - lo).max(1e-6);
        let range = (lo - pad)..(hi + pad);
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("{} model ({} LP solves)", s.name, pts.len()),
                ("sans-serif", 17),
            )
            .margin(14)
            .x_label_area_size(42)
            .y_label_area_size(56)
            .build_cartesian_2d(range.clone(), range.clone())
            .map_err(experiments::plot_err)?;
        chart
            .configure_mesh()
            .x_desc("dual bound J (Algorithm 1, paper alpha)")
            .y_desc("LP (19) optimum")
            .draw()
            .map_err(experiments::plot_err)?;
        chart
            .draw_series(LineSeries::new(
                [(range.start, range.start), (range.end, range.end)],
                BLACK.mix(0.5),
            ))
            .map_err(experiments::plot_err)?
            .label("y = x (bound exact)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.5)));
        for (ei, &e) in eps.iter().enumerate() {
            let col = EPS_COLORS[ei % EPS_COLORS.len()];
            chart
                .draw_series(
                    pts.iter()
                        .filter(|p| p.2 == ei)
                        .map(|p| Circle::new((p.0, p.1), 3, col.filled())),
                )
                .map_err(experiments::plot_err)?
                .label(format!("eps = {e}"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, col.filled()));
        }
        experiments::legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
    }
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}

/// The gap LP - J of every solved row, one strip per (model, eps), on a log scale
/// (gaps below 1e-9 are drawn at 1e-9), with the median marked.
fn draw_gaps<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    subjects: &[Subject],
    groups: &[Group],
    rows: &[Row],
    eps: &[f64],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    const FLOOR: f64 = 1e-9;
    let root = experiments::titled(
        root,
        "Gap between the exact LP (19) and the dual bound, per model and eps",
        22,
    )?;
    let mut strips: Vec<(String, usize, Vec<f64>)> = Vec::new();
    for (m, s) in subjects.iter().enumerate() {
        for (ei, &e) in eps.iter().enumerate() {
            let gaps: Vec<f64> = rows
                .iter()
                .filter(|r| groups[r.group].model == m && groups[r.group].eps == e)
                .filter_map(|r| r.lp.as_ref().map(|l| (l.value - r.j).max(FLOOR)))
                .collect();
            strips.push((format!("{}, eps {e}", s.name), ei, gaps));
        }
    }
    let hi = strips
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(1.0f64, f64::max)
        * 3.0;
    let lo = strips
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(1.0f64, f64::min)
        / 3.0;
    let n = strips.len();
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .x_label_area_size(46)
        .y_label_area_size(80)
        .build_cartesian_2d(
            -0.5..(n as f64 - 0.5),
            (lo.max(FLOOR * 0.5)..hi).log_scale(),
        )
        .map_err(experiments::plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(2) * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.round() as usize;
            if (x - x.round()).abs() < 1e-9 && i < strips.len() {
                let st = &strips[i];
                if st.2.is_empty() {
                    format!("{} (not solved)", st.0)
                } else {
                    st.0.clone()
                }
            } else {
                String::new()
            }
        })
        .x_desc("model and eps")
        .y_desc("LP (19) - J  (log scale)")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(experiments::plot_err)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (i, (_, ei, gaps)) in strips.iter().enumerate() {
        let col = EPS_COLORS[ei % EPS_COLORS.len()];
        let pts: Vec<(f64, f64)> = gaps
            .iter()
            .map(|&g| (i as f64 + rng.random_range(-0.25..0.25), g))
            .collect();
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 3, col.mix(0.7).filled())),
            )
            .map_err(experiments::plot_err)?;
        let mut v = gaps.clone();
        let med = median(&mut v);
        if med.is_finite() {
            chart
                .draw_series(LineSeries::new(
                    [(i as f64 - 0.35, med), (i as f64 + 0.35, med)],
                    BLACK.stroke_width(2),
                ))
                .map_err(experiments::plot_err)?;
        }
    }
    chart
        .draw_series(LineSeries::new([(-10.0, hi * 10.0)], BLACK.stroke_width(2)))
        .map_err(experiments::plot_err)?
        .label("median")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    experiments::legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
