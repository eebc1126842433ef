//! `polytope` (paper Fig. 6, appendix B.1): the true adversarial polytope of random
//! 2-100-100-100-100-2 networks (a dense grid of the input ball through the network,
//! gray) against its convex outer bound (green: the LP (19) support function over many
//! directions c, intersected as half-planes), the paper-alpha dual half-planes (dashed
//! blue) and the size of the interval box (orange text: the box itself is far larger than
//! the panel), for a grid of nets x eps. Writes
//! `results/polytope.csv` and `figures/polytope.png|svg`.
//!
//! Checked as it runs (an error names the row otherwise): for every direction c,
//! `J(c) <= LP(c) <= c^T f(x')` for every grid point x' (tolerance 1e-7 x max(1, |v|)).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use dual::{algorithm1, dual_objective, interval_bounds, AlphaRule, InputDomain};
use lp::Lp19;
use network::{Architecture, Init};
use plotters::coord::Shift;
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Parser, Debug)]
#[command(about = "True adversarial polytope vs its convex outer bound (Fig. 6)")]
struct Args {
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of random nets (rows of the figure).
    #[arg(long, default_value_t = 3)]
    nets: u64,
    /// Comma-separated eps values (columns of the figure).
    #[arg(long, default_value = "0.05,0.1,0.25")]
    eps: String,
    /// Directions of the support function.
    #[arg(long, default_value_t = 64)]
    directions: usize,
    /// Grid points per input dimension for the true polytope.
    #[arg(long, default_value_t = 201)]
    grid: usize,
    #[arg(long, value_enum)]
    solver: Option<experiments::SolverArg>,
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

struct Panel {
    net: u64,
    eps: f64,
    x: [f64; 2],
    points: Vec<(f64, f64)>,
    lp: Vec<f64>,
    dual: Vec<f64>,
    dirs: Vec<(f64, f64)>,
    interval: [(f64, f64); 2],
    status: Vec<String>,
    solvers: Vec<&'static str>,
    unstable: Vec<usize>,
    ms: (f64, f64),
}

/// One row of `results/polytope.csv`: one method's support value in one direction.
#[derive(serde::Serialize)]
struct CsvRow<'a> {
    net_seed: u64,
    #[serde(serialize_with = "experiments::display")]
    x0: f64,
    #[serde(serialize_with = "experiments::display")]
    x1: f64,
    #[serde(serialize_with = "experiments::display")]
    eps: f64,
    direction: usize,
    #[serde(serialize_with = "experiments::display")]
    c0: f64,
    #[serde(serialize_with = "experiments::display")]
    c1: f64,
    method: &'a str,
    alpha_rule: &'a str,
    bound_source: &'a str,
    solver: &'a str,
    status: &'a str,
    #[serde(serialize_with = "experiments::display")]
    value: f64,
    /// Unstable units of each hidden layer, space-separated.
    unstable_per_layer: &'a str,
    #[serde(serialize_with = "experiments::display")]
    time_ms_all_directions: f64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let eps: Vec<f64> = a
        .eps
        .split(',')
        .map(|e| e.trim().parse::<f64>())
        .collect::<Result<_, _>>()?;
    if eps.iter().any(|e| !(e.is_finite() && *e > 0.0))
        || a.directions < 8
        || a.grid < 2
        || a.nets == 0
    {
        bail!("need positive eps values, --directions >= 8, --grid >= 2, --nets >= 1");
    }
    let solver = experiments::SolverArg::resolve(a.solver)?;
    let out = experiments::Outputs::new(&a.out_dir, "polytope")?;
    let dirs = experiments::directions(a.directions);
    let cs =
        network::DMatrix::from_row_iterator(dirs.len(), 2, dirs.iter().flat_map(|d| [d.0, d.1]));
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let pb = experiments::progress(a.nets * eps.len() as u64, "polytope");
    let mut panels = Vec::new();
    for i in 0..a.nets {
        let seed = a.seed + i;
        let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2]).init(Init::Paper, seed)?;
        let x = [rng.random::<f64>(), rng.random::<f64>()];
        for &e in &eps {
            let dom = InputDomain::new(x, e, None)?;
            let g = a.grid;
            let pts = experiments::ball_grid(x, e, g);
            let f = model.forward_batch(network::DMatrixView::from_slice(
                &pts,
                model.input_len(),
                g * g,
            ))?;
            let ab = algorithm1(&model, &dom)?;
            let t = Instant::now();
            let j = dual_objective(&model, &dom, &ab, &cs, &AlphaRule::Paper)?.values;
            let t_dual = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let sols = experiments::solve_verified(&Lp19::new(&model, &dom, &ab)?, &cs, solver)?;
            let t_lp = t.elapsed().as_secs_f64() * 1e3;
            let lpv: Vec<f64> = sols
                .iter()
                .map(|s| s.value().expect("an optimum"))
                .collect();
            let lp_proven: Vec<f64> = sols.iter().map(|s| s.proven_lower).collect();
            experiments::check_support_chain(
                &format!("net seed {seed}, eps {e}"),
                &dirs,
                &j,
                &lpv,
                &lp_proven,
                &f,
            )?;
            let ib = interval_bounds(&model, &dom)?;
            let (il, iu) = (ib.lower.last().unwrap(), ib.upper.last().unwrap());
            let step = (g / 101).max(1);
            let points = (0..g * g)
                .filter(|p| (p / g) % step == 0 && (p % g) % step == 0)
                .map(|p| (f[2 * p], f[2 * p + 1]))
                .collect();
            panels.push(Panel {
                net: seed,
                eps: e,
                x,
                points,
                lp: lpv,
                dual: j.as_slice().to_vec(),
                dirs: dirs.clone(),
                interval: [(il[0], iu[0]), (il[1], iu[1])],
                status: sols.iter().map(|s| s.status()).collect(),
                solvers: sols.iter().map(|s| s.solver_name()).collect(),
                unstable: ab.counts(&model).iter().map(|c| c.unstable).collect(),
                ms: (t_lp, t_dual),
            });
            pb.inc(1);
        }
    }
    pb.finish_and_clear();

    let mut w = csv::Writer::from_path(&out.csv)?;
    for p in &panels {
        let unstable = p
            .unstable
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        for (k, d) in p.dirs.iter().enumerate() {
            for (method, alpha, solver, status, v, ms) in [
                (
                    "lp19",
                    "-",
                    p.solvers[k],
                    p.status[k].as_str(),
                    p.lp[k],
                    p.ms.0,
                ),
                ("dual", "paper", "-", "-", p.dual[k], p.ms.1),
            ] {
                w.serialize(CsvRow {
                    net_seed: p.net,
                    x0: p.x[0],
                    x1: p.x[1],
                    eps: p.eps,
                    direction: k,
                    c0: d.0,
                    c1: d.1,
                    method,
                    alpha_rule: alpha,
                    bound_source: "algorithm1",
                    solver,
                    status,
                    value: v,
                    unstable_per_layer: &unstable,
                    time_ms_all_directions: ms,
                })?;
            }
        }
    }
    w.flush()?;
    println!(
        "| net seed | eps | unstable units per layer | outer-bound area / true-polytope box area |"
    );
    println!("|---|---|---|---|");
    for p in &panels {
        let poly = experiments::polygon(&p.dirs, &p.lp);
        let area = 0.5
            * (0..poly.len())
                .map(|i| {
                    let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
                    a.0 * b.1 - b.0 * a.1
                })
                .sum::<f64>()
                .abs();
        let (x0, x1, y0, y1) = experiments::extent(&p.points);
        println!(
            "| {} | {} | {:?} | {:.2} |",
            p.net,
            p.eps,
            p.unstable,
            area / ((x1 - x0) * (y1 - y0)).max(1e-300)
        );
    }
    experiments::register_font()?;
    let (cols, rows) = (eps.len() as u32, a.nets as u32);
    experiments::draw_png_svg!(
        out,
        (360 * cols, 340 * rows + 60),
        draw,
        &panels,
        cols as usize
    );
    out.report();
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    panels: &[Panel],
    cols: usize,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let root = experiments::titled(root, "True adversarial polytope (gray), convex outer bound by LP (green), paper-alpha dual half-planes (dashed blue)", 15)?;
    let areas = root.split_evenly((panels.len() / cols, cols));
    for (p, area) in panels.iter().zip(areas) {
        let dual_poly = experiments::polygon(&p.dirs, &p.dual);
        let lp_poly = experiments::polygon(&p.dirs, &p.lp);
        let (x0, x1, y0, y1) = experiments::extent(dual_poly.iter().chain(&p.points));
        let pad = 0.08 * (x1 - x0).max(y1 - y0).max(1e-9);
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!("net {}, eps = {}", p.net, p.eps),
                ("sans-serif", 15),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), (y0 - pad)..(y1 + pad))
            .map_err(experiments::plot_err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(4)
            .y_labels(4)
            .x_desc("zhat_k,1")
            .y_desc("zhat_k,2")
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(experiments::plot_err)?;
        let green = RGBColor(0, 150, 60);
        chart
            .draw_series(std::iter::once(Polygon::new(
                lp_poly.clone(),
                green.mix(0.25).filled(),
            )))
            .map_err(experiments::plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                lp_poly
                    .iter()
                    .copied()
                    .chain(std::iter::once(lp_poly[0]))
                    .collect::<Vec<_>>(),
                green.stroke_width(2),
            )))
            .map_err(experiments::plot_err)?;
        chart
            .draw_series(
                p.points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 1, RGBColor(110, 110, 110).filled())),
            )
            .map_err(experiments::plot_err)?;
        chart
            .draw_series(DashedLineSeries::new(
                dual_poly
                    .iter()
                    .copied()
                    .chain(std::iter::once(dual_poly[0])),
                6,
                4,
                RGBColor(30, 90, 200).stroke_width(2),
            ))
            .map_err(experiments::plot_err)?;
        // The interval box is far larger than the panel (vacuous); state its size instead.
        let [(a, b), (c, d)] = p.interval;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("interval box {:.1} x {:.1}", b - a, d - c),
                (x0 - 0.7 * pad, y1 + 0.6 * pad),
                ("sans-serif", 12).into_font().color(&RGBColor(220, 120, 0)),
            )))
            .map_err(experiments::plot_err)?;
    }
    root.present().map_err(experiments::plot_err)?;
    Ok(())
}
