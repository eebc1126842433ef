//! Bench binary (`cargo bench -p lp --bench lp [-- --quick] [--features highs]`): LP (19)
//! on the three networks. For each: the LP's size, the build time of LP (19)
//! against the solve time, every compiled solver solving every margin target cold, and
//! (HiGHS) the same targets re-solved warm from the previous basis. Ratios are against
//! numbers measured in the same run. A per-solve time limit (`--time-limit S`, default
//! 300) turns a runaway solve into a reported status instead of a hang. On the conv net
//! the pure-Rust solvers solve only the first target by default
//! (`--conv-pure-rust-targets K`), HiGHS all nine; `--conv-eps` sets its eps (0.02).

use std::time::{Duration, Instant};

use dual::{algorithm1, margin_objectives, InputDomain};
use lp::{solve, solve_many, Lp19, LpOptions, LpSolution, Solver};
use network::{Architecture, Init, Model};

struct Case {
    name: String,
    model: Model,
    x: Vec<f64>,
    eps: f64,
    /// Targets solved cold by the pure-Rust solvers (HiGHS always solves all of them).
    pure_rust_targets: usize,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let time_limit: f64 = arg("--time-limit", 300.0);
    let conv_eps: f64 = arg("--conv-eps", 0.02);
    let (_, test) = network::data::mnist_split(0).unwrap();
    let img = test.example(0).0.as_slice().to_vec();
    let mut cases = vec![
        Case {
            name: "2-100-100-100-100-2 (paper init)".into(),
            model: Architecture::mlp(&[2, 100, 100, 100, 100, 2])
                .init(Init::Paper, 0)
                .unwrap(),
            x: vec![0.4, 0.7],
            eps: 0.05,
            pure_rust_targets: 9,
        },
        Case {
            name: "MLP 784-100-100-10 (standard init)".into(),
            model: Architecture::mlp(&[784, 100, 100, 10])
                .init(Init::Standard, 0)
                .unwrap(),
            x: img.clone(),
            eps: 0.1,
            pure_rust_targets: 9,
        },
    ];
    if !quick {
        cases.push(Case {
            name: "paper MNIST conv net (standard init)".into(),
            model: Architecture::mnist_conv().init(Init::Standard, 0).unwrap(),
            x: img,
            eps: conv_eps,
            pure_rust_targets: arg("--conv-pure-rust-targets", 1),
        });
    }
    let solvers: Vec<Solver> = Solver::ALL
        .iter()
        .copied()
        .filter(|s| s.available())
        .collect();
    println!(
        "solvers compiled in: {:?}; per-solve time limit {time_limit} s\n",
        solvers.iter().map(|s| s.name()).collect::<Vec<_>>()
    );
    for case in &cases {
        let dom = InputDomain::new(&case.x, case.eps, None).unwrap();
        let t = Instant::now();
        let b = algorithm1(&case.model, &dom).unwrap();
        let t_alg1 = t.elapsed();
        let t = Instant::now();
        let lp = Lp19::new(&case.model, &dom, &b).unwrap();
        let t_build = t.elapsed();
        let size = lp.size();
        let unstable: Vec<usize> = b.counts(&case.model).iter().map(|c| c.unstable).collect();
        let n = case.model.output_len();
        let y = case.model.predict(&case.x).unwrap();
        let all = margin_objectives(n, y).unwrap();
        let others: Vec<usize> = (0..n).filter(|&t| t != y).collect();
        let cs = all.select_rows(&others);
        let targets = cs.len() / n;
        println!("## {} eps {}", case.name, case.eps);
        println!(
            "LP size: {} variables, {} rows, {} nonzeros; unstable units per layer {:?}; Algorithm 1 {:.1} ms; LP (19) build {:.1} ms",
            size.variables,
            size.rows,
            size.nonzeros,
            unstable,
            1e3 * secs(t_alg1),
            1e3 * secs(t_build)
        );
        println!("| solver | targets | setup s | solve s | build / (setup + solve) | iterations | first value | status |");
        println!("|---|---|---|---|---|---|---|---|");
        let opts = LpOptions {
            time_limit: Some(time_limit),
            ..LpOptions::default()
        };
        let mut cold_highs = None;
        for &s in &solvers {
            let k = if s == Solver::Highs {
                targets
            } else {
                targets.min(case.pure_rust_targets)
            };
            let res: Result<Vec<LpSolution>, _> = cs
                .row_iter()
                .take(k)
                .map(|c| solve(&lp, c.transpose(), s, &opts))
                .collect();
            match res {
                Ok(sols) => {
                    let setup: f64 = sols.iter().map(|s| secs(s.setup_time)).sum();
                    let solve_t: f64 = sols.iter().map(|s| secs(s.solve_time)).sum();
                    let it: u64 = sols.iter().map(|s| s.iterations).sum();
                    if s == Solver::Highs {
                        cold_highs = Some(setup + solve_t);
                    }
                    println!(
                        "| {} cold | {k} | {setup:.3} | {solve_t:.3} | {:.3} | {it} | {:.9} | {} |",
                        s.name(),
                        secs(t_build) * k as f64 / (setup + solve_t),
                        sols[0].value,
                        sols[0].status
                    );
                }
                Err(e) => println!("| {} cold | {k} | - | - | - | - | - | {e} |", s.name()),
            }
        }
        if solvers.contains(&Solver::Highs) {
            match solve_many(&lp, &cs, Solver::Highs, &opts, true) {
                Ok(sols) => {
                    let setup: f64 = sols.iter().map(|s| secs(s.setup_time)).sum();
                    let solve_t: f64 = sols.iter().map(|s| secs(s.solve_time)).sum();
                    let it: u64 = sols.iter().map(|s| s.iterations).sum();
                    println!(
                        "| highs warm | {targets} | {setup:.3} | {solve_t:.3} | {:.3} | {it} | {:.9} | {} |",
                        secs(t_build) / (setup + solve_t),
                        sols[0].value,
                        sols[0].status
                    );
                    if let Some(cold) = cold_highs {
                        println!(
                            "\nHiGHS warm / cold over {targets} targets: {:.2}x",
                            (setup + solve_t) / cold
                        );
                    }
                }
                Err(e) => println!("| highs warm | {targets} | - | - | - | - | - | {e} |"),
            }
        }
        println!();
    }
}
