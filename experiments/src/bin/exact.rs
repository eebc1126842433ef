//! `exact` (Table 1 with the column the paper could not compute): on MNIST test digits of
//! the committed standard and robust models at eps 0.1 (pixels kept in [0, 1]), the
//! clean error, the PGD error, the **exact** robust error (branch and bound, crate
//! `exact`, decision mode per target), and the dual-bound errors of the paper (WK) and of
//! CROWN; the time per digit and how many digits were decided.
//!
//! Per digit: a wrong prediction is an error in every column. Otherwise, per target `t`:
//! PGD on the margin `f_y - f_t` (a point with proven margin `<= 0` is an attack); WK and
//! CROWN bounds (a proven margin `> 0` certifies); what neither settles goes to branch
//! and bound with threshold 0. The digit is robust when every target's margin is proven
//! positive, attacked when some point of the ball has margin `<= 0`, else undecided
//! (an error in the upper end of the exact column, not in its lower end).
//!
//! Checked as it runs (an error names the digit): no certificate (WK, CROWN, exact) on a
//! digit that PGD or branch and bound attacks, and every proven lower bound below the
//! proven value at every attack point. Writes `results/exact.csv` (one row per model and
//! digit) and `figures/exact.png|svg`, and prints the table beside the paper's.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use dual::{algorithm1, bound_given, crown_bounds, dual_objective, margin_objectives};
use dual::{AlphaOptions, AlphaRule, InputDomain, Method};
use exact::{BabOptions, BabStatus, PgdOptions};
use network::{data, load_model, Model};
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

#[derive(Parser, Debug)]
#[command(
    about = "Table 1 with the exact robust error: clean, PGD, exact (branch and bound), WK and CROWN errors"
)]
struct Args {
    /// Seed of PGD's random starts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Test digits per model: every (shipped test digits / N)-th of the shipped split.
    #[arg(long, default_value_t = 30)]
    digits: usize,
    /// Radius of the l-infinity ball (the paper's Table 1: 0.1).
    #[arg(long, default_value_t = 0.1)]
    eps: f64,
    /// Branch and bound's time limit per target, in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Branch and bound's node budget per target.
    #[arg(long, default_value_t = 2000)]
    max_nodes: usize,
    /// Only the robust model (the standard one is attacked at eps 0.1 almost everywhere).
    #[arg(long)]
    robust_only: bool,
    /// Folder that receives results/ and figures/.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

/// How a digit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Misclassified,
    /// Every target certified by WK's bound.
    Wk,
    /// Certified by CROWN where WK was not.
    Crown,
    /// Proven robust by branch and bound where both bounds failed on some target.
    Bab,
    /// PGD found a point with margin <= 0.
    Pgd,
    /// Branch and bound found such a point where PGD did not.
    BabAttack,
    /// Some target still open.
    Undecided,
}

impl Outcome {
    fn name(&self) -> &'static str {
        match self {
            Outcome::Misclassified => "misclassified",
            Outcome::Wk => "certified by WK",
            Outcome::Crown => "certified by CROWN",
            Outcome::Bab => "proven by branch and bound",
            Outcome::Pgd => "attacked by PGD",
            Outcome::BabAttack => "attacked by branch and bound",
            Outcome::Undecided => "undecided",
        }
    }
}

struct Row {
    model: usize,
    digit: usize,
    label: usize,
    predicted: usize,
    outcome: Outcome,
    /// Smallest proven margin bound over targets: WK, CROWN, and branch and bound's
    /// lower end (the best of the three per target).
    wk_min: f64,
    crown_min: f64,
    exact_lower_min: f64,
    /// Smallest proven margin at a point found (PGD or branch and bound).
    attack_min: f64,
    bab_targets: usize,
    nodes: usize,
    lps: usize,
    ms: f64,
}

fn digit_row(
    a: &Args,
    mi: usize,
    model: &Model,
    digit: usize,
    x: &[f64],
    label: usize,
) -> Result<Row> {
    let t0 = Instant::now();
    let predicted = model.predict(x)?;
    let what = format!("model {mi}, test digit {digit}");
    let mut row = Row {
        model: mi,
        digit,
        label,
        predicted,
        outcome: Outcome::Misclassified,
        wk_min: f64::NAN,
        crown_min: f64::NAN,
        exact_lower_min: f64::NAN,
        attack_min: f64::NAN,
        bab_targets: 0,
        nodes: 0,
        lps: 0,
        ms: 0.0,
    };
    if predicted != label {
        row.ms = t0.elapsed().as_secs_f64() * 1e3;
        return Ok(row);
    }
    let n = model.output_len();
    let dom = InputDomain::new(x, a.eps, Some((0.0, 1.0)))?;
    let all = margin_objectives(n, label)?;
    let targets: Vec<usize> = (0..n).filter(|&t| t != label).collect();
    let c: Vec<f64> = targets
        .iter()
        .flat_map(|&t| all[t * n..(t + 1) * n].to_vec())
        .collect();
    let wk = dual_objective(
        model,
        &dom,
        &algorithm1(model, &dom)?,
        &c,
        &AlphaRule::Paper,
    )?
    .values;
    // PGD first, every target until one is attacked (an attacked digit needs no more).
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ digit as u64);
    let mut attack = f64::INFINITY;
    for k in 0..targets.len() {
        let ck = &c[k * n..(k + 1) * n];
        let (xp, _) = exact::pgd(
            model,
            &dom,
            ck,
            std::slice::from_ref(&dom.center),
            &PgdOptions::default(),
            &mut rng,
        )?;
        attack = attack.min(dual::value_upper_bound(model, &xp, ck)?);
        if attack <= 0.0 {
            break;
        }
    }
    let mut bab_attack = false;
    let mut exact_lower = wk.clone();
    let mut open = false;
    // An attacked digit: CROWN and branch and bound cannot certify it (WK is checked).
    let crown: Vec<f64> = if attack <= 0.0 {
        vec![f64::NAN; targets.len()]
    } else {
        bound_given(
            model,
            &dom,
            crown_bounds(model, &dom)?,
            &c,
            Method::Crown,
            &AlphaOptions::default(),
        )?
        .values
    };
    for k in 0..targets.len() {
        if attack <= 0.0 {
            break;
        }
        let ck = &c[k * n..(k + 1) * n];
        let mut lower = wk[k].max(crown[k]);
        if lower <= 0.0 {
            row.bab_targets += 1;
            let e = exact::minimise(
                model,
                &dom,
                ck,
                &BabOptions {
                    timeout: Some(a.timeout),
                    max_nodes: a.max_nodes,
                    threshold: Some(0.0),
                    seed: a.seed ^ (digit as u64) << 8 ^ k as u64,
                    ..BabOptions::default()
                },
            )?;
            row.nodes += e.nodes;
            row.lps += e.lps;
            lower = lower.max(e.lower);
            attack = attack.min(e.upper);
            match e.status {
                BabStatus::Counterexample => bab_attack |= e.upper <= 0.0,
                BabStatus::Proved => {}
                _ => open = true,
            }
        }
        exact_lower[k] = lower;
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    row.wk_min = min(&wk);
    // NaN for an attacked digit (not computed).
    row.crown_min = crown.iter().copied().fold(f64::INFINITY, f64::min);
    if crown.iter().any(|v| v.is_nan()) {
        row.crown_min = f64::NAN;
    }
    row.exact_lower_min = min(&exact_lower);
    row.attack_min = attack;
    // Soundness: a proven lower bound never exceeds the proven value at a point.
    if row.wk_min > attack || row.crown_min > attack || row.exact_lower_min > attack {
        // (NaN compares false: an uncomputed bound is not checked.)
        bail!(
            "{what}: a proven margin bound (WK {}, CROWN {}, exact {}) exceeds the margin {} at an attack point",
            row.wk_min, row.crown_min, row.exact_lower_min, attack
        );
    }
    row.outcome = if attack <= 0.0 {
        if bab_attack {
            Outcome::BabAttack
        } else {
            Outcome::Pgd
        }
    } else if row.wk_min > 0.0 {
        Outcome::Wk
    } else if row.crown_min > 0.0 {
        Outcome::Crown
    } else if row.exact_lower_min > 0.0 {
        Outcome::Bab
    } else {
        debug_assert!(open || row.exact_lower_min <= 0.0);
        Outcome::Undecided
    };
    row.ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(row)
}

/// One row of `results/exact.csv`: one digit of one model.
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    model: &'a str,
    digit: usize,
    label: usize,
    predicted: usize,
    outcome: &'a str,
    #[serde(serialize_with = "experiments::display")]
    wk_min_margin: f64,
    #[serde(serialize_with = "experiments::display")]
    crown_min_margin: f64,
    #[serde(serialize_with = "experiments::display")]
    exact_lower_min_margin: f64,
    #[serde(serialize_with = "experiments::display")]
    attack_min_margin: f64,
    bab_targets: usize,
    nodes: usize,
    lps: usize,
    /// Milliseconds, one decimal.
    ms: String,
    #[serde(serialize_with = "experiments::display")]
    eps: f64,
    #[serde(serialize_with = "experiments::display")]
    timeout_s: f64,
    max_nodes: usize,
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    if !(a.eps >= 0.0 && a.eps.is_finite()) {
        bail!("--eps must be a finite number >= 0, got {}", a.eps);
    }
    if !(a.timeout > 0.0 && a.timeout <= 1e9) {
        bail!("--timeout must be in (0, 1e9] seconds, got {}", a.timeout);
    }
    let out = experiments::Outputs::new(&a.out_dir, "exact")?;
    let (_, test) = data::mnist_split(data::DEFAULT_SPLIT_SEED)?;
    let stride = (test.len() / a.digits.max(1)).max(1);
    let digits: Vec<usize> = (0..a.digits.min(test.len())).map(|k| k * stride).collect();
    let mut files = vec![("robust", "mnist_conv_robust.json")];
    if !a.robust_only {
        files.insert(0, ("standard", "mnist_conv_standard.json"));
    }
    let models: Vec<(String, Model)> = files
        .iter()
        .map(|(name, file)| {
            let p = experiments::committed_model(file);
            let m = load_model(&p).with_context(|| format!("the {name} model"))?;
            Ok((name.to_string(), m))
        })
        .collect::<Result<_>>()?;
    let pb = experiments::progress((models.len() * digits.len()) as u64, "exact");
    let mut rows = Vec::new();
    for (mi, (_, model)) in models.iter().enumerate() {
        let part: Vec<Result<Row>> = digits
            .par_iter()
            .map(|&i| {
                let (x, label) = test.get(i)?;
                let r = digit_row(&a, mi, model, i, x, label);
                pb.inc(1);
                r
            })
            .collect();
        for r in part {
            rows.push(r?);
        }
    }
    pb.finish_and_clear();
    let mut w = csv::Writer::from_path(&out.csv)?;
    for r in &rows {
        w.serialize(CsvRow {
            model: &models[r.model].0,
            digit: r.digit,
            label: r.label,
            predicted: r.predicted,
            outcome: r.outcome.name(),
            wk_min_margin: r.wk_min,
            crown_min_margin: r.crown_min,
            exact_lower_min_margin: r.exact_lower_min,
            attack_min_margin: r.attack_min,
            bab_targets: r.bab_targets,
            nodes: r.nodes,
            lps: r.lps,
            ms: format!("{:.1}", r.ms),
            eps: a.eps,
            timeout_s: a.timeout,
            max_nodes: a.max_nodes,
            seed: a.seed,
        })?;
    }
    w.flush()?;
    println!(
        "| model | digits | clean error | PGD error | exact robust error | WK bound error | CROWN bound error | undecided | branch and bound targets | mean time per digit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (mi, (name, _)) in models.iter().enumerate() {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.model == mi).collect();
        let n = rs.len().max(1) as f64;
        let count = |f: &dyn Fn(&Row) -> bool| rs.iter().filter(|r| f(r)).count();
        let pct = |k: usize| format!("{:.1}%", 100.0 * k as f64 / n);
        let wrong = count(&|r| r.outcome == Outcome::Misclassified);
        let attacked_pgd = count(&|r| r.outcome == Outcome::Pgd);
        let attacked = attacked_pgd + count(&|r| r.outcome == Outcome::BabAttack);
        let undecided = count(&|r| r.outcome == Outcome::Undecided);
        let not_wk = rs.len() - count(&|r| r.wk_min > 0.0);
        let not_crown = rs.len() - count(&|r| r.crown_min > 0.0);
        let exact = if undecided == 0 {
            pct(wrong + attacked)
        } else {
            format!(
                "{} to {}",
                pct(wrong + attacked),
                pct(wrong + attacked + undecided)
            )
        };
        println!(
            "| {name} | {} | {} | {} | {exact} | {} | {} | {undecided} | {} | {:.0} ms |",
            rs.len(),
            pct(wrong),
            pct(wrong + attacked_pgd),
            pct(not_wk),
            pct(not_crown),
            rs.iter().map(|r| r.bab_targets).sum::<usize>(),
            rs.iter().map(|r| r.ms).sum::<f64>() / n,
        );
    }
    println!(
        "\nPaper (Table 1, MNIST, eps 0.1, its own robust model, 10,000 test digits): error 1.80%, PGD 4.11%, \
         robust bound 5.82%; MIPVerify's exact robust error for that network: 4.38% (Tjeng et al. 2019). \
         Here the committed models (README: Committed models) on the shipped test digits."
    );
    experiments::register_font()?;
    experiments::draw_png_svg!(out, (1000, 420), draw, &rows, &models, a.eps);
    out.report();
    Ok(())
}

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
            "MNIST test digits at eps {eps}: how each was decided (Table 1 with the exact column)"
        ),
        18,
    )?;
    let kinds = [
        (Outcome::Misclassified, RGBColor(90, 90, 90)),
        (Outcome::Pgd, RGBColor(220, 40, 40)),
        (Outcome::BabAttack, RGBColor(240, 140, 40)),
        (Outcome::Undecided, RGBColor(200, 200, 200)),
        (Outcome::Bab, RGBColor(60, 120, 220)),
        (Outcome::Crown, RGBColor(120, 190, 120)),
        (Outcome::Wk, RGBColor(0, 130, 60)),
    ];
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..100f64, 0f64..models.len() as f64)
        .map_err(experiments::plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("% of digits")
        .y_labels(models.len() * 2 + 1)
        .y_label_formatter(&|v| {
            let k = v.floor() as usize;
            if (v - k as f64 - 0.5).abs() < 0.26 && k < models.len() {
                format!("{} model", models[k].0)
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(experiments::plot_err)?;
    for (mi, _) in models.iter().enumerate() {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.model == mi).collect();
        let n = rs.len().max(1) as f64;
        let mut start = 0.0;
        for (kind, color) in kinds {
            let share = 100.0 * rs.iter().filter(|r| r.outcome == kind).count() as f64 / n;
            if share > 0.0 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(start, mi as f64 + 0.2), (start + share, mi as f64 + 0.8)],
                        color.filled(),
                    )))
                    .map_err(experiments::plot_err)?;
            }
            start += share;
        }
    }
    for (kind, color) in kinds {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(experiments::plot_err)?
            .label(kind.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    experiments::legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
