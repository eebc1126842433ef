//! Bench binary (`cargo bench -p exact --bench unstable [-- --quick] [--timeout S]`):
//! time to decide against the number of unstable units (issue 13). Random ReLU networks
//! (the paper's init) around random points, eps growing by half from a small value
//! (CROWN leaves a few units unstable at the root) until branch and bound no longer
//! closes within the timeout; for each case, branch and bound on ReLU
//! splits (`exact::minimise`, default options: CROWN at every node, LP (19) where it
//! does not settle, one solver) computes
//!
//! - the exact minimum of `c . f(x)` over the ball, closed to 1e-6 relative (`closed`),
//! - a decision near it: is the minimum above `m - 5% (m - root)`, with `m` that minimum
//!   and `root` the best proven bound at the root (`proved` expected: a threshold close
//!   to the minimum, so branch and bound must do most of the work of the closure),
//!
//! and, for at most 12 unstable units, the reference measured in the same run: pattern
//! enumeration (`exact::enumerate_patterns`, one LP per sign pattern, 2^unstable LPs),
//! with the ratio of the two times. Then a least-squares fit of `log2(time)` against the
//! unstable count over the closed cases: how many more unstable units double the time.
//! Numbers are printed, never asserted (CI runs `--quick`).

use std::time::Instant;

use dual::InputDomain;
use exact::{enumerate_patterns, minimise, BabOptions, BabStatus};
use lp::Solver;
use network::{Architecture, Init};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Row {
    net: &'static str,
    unstable: usize,
    closed: bool,
    seconds: f64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let timeout: f64 = arg("--timeout", if quick { 2.0 } else { 30.0 });
    let solver = Solver::preferred();
    // (name, widths, first eps): eps grows by half each step until a closure does not
    // finish within the timeout (or `--steps` steps).
    let steps: usize = arg("--steps", if quick { 2 } else { 12 });
    let nets: Vec<(&str, Vec<usize>, f64)> = if quick {
        vec![("4-16-16-1", vec![4, 16, 16, 1], 0.1)]
    } else {
        vec![
            ("4-16-16-1", vec![4, 16, 16, 1], 0.1),
            ("8-24-24-24-1", vec![8, 24, 24, 24, 1], 0.05),
            ("16-32-32-32-32-1", vec![16, 32, 32, 32, 32, 1], 0.02),
            ("10-64-64-64-1", vec![10, 64, 64, 64, 1], 0.02),
        ]
    };
    let seeds: u64 = if quick { 1 } else { 2 };
    println!(
        "branch and bound (ReLU splits, CROWN + LP (19), solver {}) against pattern enumeration; timeout {timeout} s per run, rayon threads {}\n",
        solver.name(),
        rayon::current_num_threads()
    );
    println!(
        "| network | seed | eps | unstable | exact minimum | closure: status, nodes, LPs, s | decision near it: status, nodes, s | enumeration: 2^u LPs, s | enumeration / closure |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (name, widths, eps0) in &nets {
        for seed in 0..seeds {
            let model = Architecture::mlp(widths).init(Init::Paper, seed).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
            let x: Vec<f64> = (0..widths[0])
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            for step in 0..steps {
                let eps = (eps0 * 1.5f64.powi(step as i32) * 1e4).round() / 1e4;
                let dom = InputDomain::new(&x, eps, None).unwrap();
                let opts = BabOptions {
                    timeout: Some(timeout),
                    solver,
                    seed,
                    ..BabOptions::default()
                };
                let t = Instant::now();
                let e = minimise(&model, &dom, [1.0], &opts).unwrap();
                let closure_s = t.elapsed().as_secs_f64();
                let closed = e.status == BabStatus::Closed;
                rows.push(Row {
                    net: name,
                    unstable: e.root_unstable,
                    closed,
                    seconds: closure_s,
                });
                let decision = if closed && e.root_lower < e.lower {
                    let threshold = e.lower - 0.05 * (e.lower - e.root_lower);
                    let t = Instant::now();
                    let d = minimise(
                        &model,
                        &dom,
                        [1.0],
                        &BabOptions {
                            threshold: Some(threshold),
                            ..opts.clone()
                        },
                    )
                    .unwrap();
                    format!(
                        "{}, {}, {:.3}",
                        d.status.word(),
                        d.nodes,
                        t.elapsed().as_secs_f64()
                    )
                } else if closed {
                    "(closed at the root)".into()
                } else {
                    "-".into()
                };
                let (enumeration, ratio) = if e.root_unstable <= 12 {
                    let t = Instant::now();
                    let p = enumerate_patterns(&model, &dom, [1.0], solver, 12).unwrap();
                    let s = t.elapsed().as_secs_f64();
                    // The two exact methods agree on the minimum (to their tolerances).
                    let agree =
                        !closed || (p.upper - e.upper).abs() <= 1e-5 * (1.0 + e.upper.abs());
                    (
                        format!(
                            "{}, {s:.3}{}",
                            1usize << p.unstable,
                            if agree { "" } else { " (DISAGREES)" }
                        ),
                        format!("{:.1}x", s / closure_s.max(1e-9)),
                    )
                } else {
                    ("-".into(), "-".into())
                };
                println!(
                    "| {name} | {seed} | {eps} | {} | {} | {}, {}, {}, {closure_s:.3} | {decision} | {enumeration} | {ratio} |",
                    e.root_unstable,
                    if closed {
                        format!("{:.6}", e.upper)
                    } else {
                        format!("[{:.4}, {:.4}]", e.lower, e.upper)
                    },
                    e.status.word(),
                    e.nodes,
                    e.lps,
                );
                if !closed {
                    break;
                }
            }
        }
    }
    // log2(time) = a + b * unstable over the closed cases with at least one unstable
    // unit: per network and over all of them.
    println!();
    let mut groups: Vec<(&str, Vec<&Row>)> = nets
        .iter()
        .map(|(name, _, _)| (*name, rows.iter().filter(|r| r.net == *name).collect()))
        .collect();
    groups.push(("all networks", rows.iter().collect()));
    for (name, group) in groups {
        let pts: Vec<(f64, f64)> = group
            .iter()
            .filter(|r| r.closed && r.unstable > 0)
            .map(|r| (r.unstable as f64, r.seconds.max(1e-6).log2()))
            .collect();
        let undecided = group.iter().filter(|r| !r.closed).count();
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if pts.len() >= 2 && sxx > 0.0 {
            let b = sxy / sxx;
            let doubling = if b > 0.0 {
                format!("the time doubles every {:.1} unstable units", 1.0 / b)
            } else {
                "no growth with the unstable count measured".to_string()
            };
            println!(
                "{name}: fit over {} closed cases: log2(seconds) = {:.2} + {b:.4} * unstable, {doubling} (enumeration: doubles every unit); {undecided} case(s) not closed within {timeout} s",
                pts.len(),
                my - b * mx,
            );
        } else {
            println!(
                "{name}: too few closed cases for a fit; {undecided} not closed within {timeout} s"
            );
        }
    }
}
