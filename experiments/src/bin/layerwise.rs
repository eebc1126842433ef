//! `layerwise` (paper eq. 41-42): output ranges of random 2-100-100-100-100-2 networks
//! over an l-inf ball, four ways: the true range (a dense grid of the ball through the
//! network), LP (19), the dual bound (Algorithm 1 at the output) and interval
//! ("layerwise") bounds. Writes `results/layerwise.csv`, `figures/layerwise.png|svg`, and
//! prints a markdown table beside the paper's numbers.
//!
//! Checked as it runs (an error names the row otherwise): dual <= LP <= true range on
//! both sides (tolerance 1e-7 x max(1, |value|), the LP solvers' accuracy), and every grid
//! point inside the interval and dual ranges.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use dual::{algorithm1, interval_bounds, InputDomain};
use lp::Lp19;
use network::{Architecture, Init};
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser, Debug)]
#[command(
    about = "Output ranges of random 2-100-100-100-100-2 nets: true, LP, dual, interval (eq. 41-42)"
)]
struct Args {
    /// Seed of the first net and of the input points.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of random nets (seeds seed, seed+1, ...).
    #[arg(long, default_value_t = 3)]
    nets: u64,
    #[arg(long, default_value_t = 0.05)]
    eps: f64,
    /// Grid points per input dimension for the true range.
    #[arg(long, default_value_t = 401)]
    grid: usize,
    /// microlp, clarabel or highs (default: highs when compiled in, else clarabel).
    #[arg(long, value_enum)]
    solver: Option<experiments::SolverArg>,
    /// Folder that receives results/ and figures/.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

const METHODS: [&str; 4] = ["true (grid)", "LP (19)", "dual (Algorithm 1)", "interval"];

struct Row {
    net: u64,
    x: [f64; 2],
    output: usize,
    ranges: [(f64, f64); 4],
    status: String,
    solver: String,
    ms: [f64; 4],
}

/// One row of `results/layerwise.csv`: one method's range of one output of one net.
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    net_seed: u64,
    #[serde(serialize_with = "experiments::display")]
    x0: f64,
    #[serde(serialize_with = "experiments::display")]
    x1: f64,
    #[serde(serialize_with = "experiments::display")]
    eps: f64,
    output: usize,
    method: &'a str,
    alpha_rule: &'a str,
    bound_source: &'a str,
    solver: &'a str,
    status: &'a str,
    /// Grid points sampled (the sampled method only).
    #[serde(serialize_with = "experiments::display_or_dash")]
    grid: Option<usize>,
    #[serde(serialize_with = "experiments::display")]
    lower: f64,
    #[serde(serialize_with = "experiments::display")]
    upper: f64,
    #[serde(serialize_with = "experiments::display")]
    width: f64,
    #[serde(serialize_with = "experiments::display")]
    time_ms: f64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    if !(a.eps.is_finite() && a.eps > 0.0) {
        bail!("--eps must be a positive number, got {}", a.eps);
    }
    if a.grid < 2 || a.nets == 0 {
        bail!("--grid must be at least 2 and --nets at least 1");
    }
    let solver = experiments::SolverArg::resolve(a.solver)?;
    let out = experiments::Outputs::new(&a.out_dir, "layerwise")?;
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let pb = experiments::progress(a.nets, "layerwise");
    let mut rows = Vec::new();
    for i in 0..a.nets {
        let seed = a.seed + i;
        let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2]).init(Init::Paper, seed)?;
        let x = [rng.random::<f64>(), rng.random::<f64>()];
        let dom = InputDomain::new(x, a.eps, None)?;
        // True range: a dense grid of the ball.
        let t = Instant::now();
        let g = a.grid;
        let pts = experiments::ball_grid(x, a.eps, g);
        let f = model.forward_batch(network::DMatrixView::from_slice(
            &pts,
            model.input_len(),
            g * g,
        ))?;
        let t_true = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let ib = interval_bounds(&model, &dom)?;
        let t_int = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let ab = algorithm1(&model, &dom)?;
        let t_dual = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let lp19 = Lp19::new(&model, &dom, &ab)?;
        let cs =
            network::DMatrix::from_row_slice(4, 2, &[1.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, -1.0]);
        let sols = experiments::solve_verified(&lp19, &cs, solver)?;
        let t_lp = t.elapsed().as_secs_f64() * 1e3;
        for k in 0..2 {
            let tmin = f
                .as_slice()
                .chunks(2)
                .map(|o| o[k])
                .fold(f64::INFINITY, f64::min);
            let tmax = f
                .as_slice()
                .chunks(2)
                .map(|o| o[k])
                .fold(f64::NEG_INFINITY, f64::max);
            let lp = (
                sols[2 * k].value().expect("an optimum"),
                -sols[2 * k + 1].value().expect("an optimum"),
            );
            // Proven LP range: the sampled values must lie inside it (no LP tolerance).
            let lp_proven = (sols[2 * k].proven_lower, -sols[2 * k + 1].proven_lower);
            let du = (ab.lower.last().unwrap()[k], ab.upper.last().unwrap()[k]);
            let iv = (ib.lower.last().unwrap()[k], ib.upper.last().unwrap()[k]);
            let lp_tol = lp::VerifyOptions::default().tolerance;
            let tol = |v: f64| experiments::tol(lp_tol, v);
            let stol = |v: f64| experiments::tol(experiments::SAMPLE_TOL, v);
            let name = format!(
                "net seed {seed}, x ({:.4}, {:.4}), eps {}, output {k}",
                x[0], x[1], a.eps
            );
            if du.0 > lp.0 + tol(lp.0) || du.1 < lp.1 - tol(lp.1) {
                bail!(
                    "{name}: dual range [{}, {}] is inside the LP range [{}, {}]",
                    du.0,
                    du.1,
                    lp.0,
                    lp.1
                );
            }
            if lp_proven.0 > tmin + stol(tmin) || lp_proven.1 < tmax - stol(tmax) {
                bail!(
                    "{name}: proven LP range [{}, {}] misses sampled values [{tmin}, {tmax}]",
                    lp_proven.0,
                    lp_proven.1
                );
            }
            if iv.0 > tmin + stol(tmin) || iv.1 < tmax - stol(tmax) {
                bail!(
                    "{name}: interval range [{}, {}] misses sampled values [{tmin}, {tmax}]",
                    iv.0,
                    iv.1
                );
            }
            rows.push(Row {
                net: seed,
                x,
                output: k,
                ranges: [(tmin, tmax), lp, du, iv],
                status: format!("{}/{}", sols[2 * k].status(), sols[2 * k + 1].status()),
                solver: format!(
                    "{}/{}",
                    sols[2 * k].solver_name(),
                    sols[2 * k + 1].solver_name()
                ),
                ms: [t_true, t_lp, t_dual, t_int],
            });
        }
        pb.inc(1);
    }
    pb.finish_and_clear();

    let mut w = csv::Writer::from_path(&out.csv)?;
    for r in &rows {
        for (m, name) in METHODS.iter().enumerate() {
            let (alpha, source, solver, status) = match m {
                0 => ("-", "-", "-", "-".to_string()),
                1 => ("-", "algorithm1", r.solver.as_str(), r.status.clone()),
                2 => ("paper", "algorithm1", "-", "-".to_string()),
                _ => ("-", "interval", "-", "-".to_string()),
            };
            let (lo, hi) = r.ranges[m];
            w.serialize(CsvRow {
                net_seed: r.net,
                x0: r.x[0],
                x1: r.x[1],
                eps: a.eps,
                output: r.output,
                method: name,
                alpha_rule: alpha,
                bound_source: source,
                solver,
                status: &status,
                grid: (m == 0).then_some(a.grid * a.grid),
                lower: lo,
                upper: hi,
                width: hi - lo,
                time_ms: r.ms[m],
            })?;
        }
    }
    w.flush()?;

    println!(
        "| net seed | output | true (grid {}x{}) | LP (19) | dual (Algorithm 1) | interval |",
        a.grid, a.grid
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let c = |m: usize| format!("[{:.2}, {:.2}]", r.ranges[m].0, r.ranges[m].1);
        println!(
            "| {} | zhat_k,{} | {} | {} | {} | {} |",
            r.net,
            r.output + 1,
            c(0),
            c(1),
            c(2),
            c(3)
        );
    }
    println!(
        "\nPaper (Fig. 6 top left net, its own random weights): true ranges [1.81, 1.85] and [-1.33, -1.29] (41), \
         interval ranges [-11.68, 13.47] and [-16.36, 11.48] (42). A new random net gives new numbers but the same \
         ordering: true inside LP inside dual, all far inside the interval bounds."
    );

    experiments::register_font()?;
    experiments::draw_png_svg!(out, (1100, 260 * a.nets as u32 + 120), draw, &rows, &a);
    out.report();
    Ok(())
}

const COLORS: [RGBColor; 4] = [
    RGBColor(90, 90, 90),
    RGBColor(0, 150, 60),
    RGBColor(30, 90, 200),
    RGBColor(220, 120, 0),
];

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, rows: &[Row], a: &Args) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let root = experiments::titled(
        root,
        &format!(
            "Output ranges of random 2-100-100-100-100-2 nets, eps = {} (eq. 41-42)",
            a.eps
        ),
        22,
    )?;
    let (left, right) = root.split_horizontally(550);
    for (panel, area, zoom) in [(0, left, false), (1, right, true)] {
        let shown: Vec<usize> = if zoom {
            vec![0, 1, 2]
        } else {
            vec![0, 1, 2, 3]
        };
        // The zoom shows each range relative to the midpoint of its row's true range.
        let shift = |r: &Row| {
            if zoom {
                0.5 * (r.ranges[0].0 + r.ranges[0].1)
            } else {
                0.0
            }
        };
        let lo = rows
            .iter()
            .flat_map(|r| shown.iter().map(move |&m| r.ranges[m].0 - shift(r)))
            .fold(f64::INFINITY, f64::min);
        let hi = rows
            .iter()
            .flat_map(|r| shown.iter().map(move |&m| r.ranges[m].1 - shift(r)))
            .fold(f64::NEG_INFINITY, f64::max);
        let pad = 0.05 * (hi - lo).max(1e-9);
        let n = rows.len() as f64;
        let mut chart = ChartBuilder::on(&area)
            .caption(
                if zoom {
                    "zoom: true, LP, dual, centred on the true range"
                } else {
                    "all four (interval = layerwise, eq. 42)"
                },
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(if panel == 0 { 110 } else { 20 })
            .build_cartesian_2d((lo - pad)..(hi + pad), -0.5..(n + 0.9))
            .map_err(experiments::plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(rows.len() + 2)
            .y_label_formatter(&|y| {
                let i = y.round() as usize;
                if panel == 0 && (y - y.round()).abs() < 1e-9 && i < rows.len() {
                    format!("net {} out {}", rows[i].net, rows[i].output + 1)
                } else {
                    String::new()
                }
            })
            .x_desc(if zoom {
                "output value minus the true range's midpoint"
            } else {
                "output value"
            })
            .draw()
            .map_err(experiments::plot_err)?;
        for &m in &shown {
            let color = COLORS[m];
            let h = 0.09;
            let off = (m as f64 - 1.5) * 0.2;
            chart
                .draw_series(rows.iter().enumerate().map(|(i, r)| {
                    let y = i as f64 + off;
                    let c = shift(r);
                    Rectangle::new(
                        [(r.ranges[m].0 - c, y - h), (r.ranges[m].1 - c, y + h)],
                        color.filled(),
                    )
                }))
                .map_err(experiments::plot_err)?
                .label(METHODS[m])
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        experiments::legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
    }
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
