//! `soundness`: the soundness campaign (verified-numbers issue). Draws `--cases` random
//! networks, inputs and balls from `--seed` and checks each against the chain of
//! inequalities in exact arithmetic (`experiments::soundness`). Prints the counts and
//! writes them to `results/soundness.json`; exits with an error if any case violates.
//!
//! ```text
//! cargo run --release -p experiments --bin soundness -- --cases 100000 --seed 0
//! ```

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use serde_json::json;

use experiments::soundness::{run_campaign, Tally};

#[derive(Parser, Debug)]
#[command(
    about = "Soundness campaign: random networks checked against the chain in exact arithmetic"
)]
struct Args {
    /// Number of cases.
    #[arg(long, default_value_t = 10_000)]
    cases: u64,
    /// Campaign seed (case i is drawn from (seed, i)).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// First case index (to resume or split a campaign).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Skip the LP checks (bounds and J only).
    #[arg(long)]
    no_lp: bool,
    /// Where to write the counts (JSON).
    #[arg(long, default_value = "results/soundness.json")]
    out: std::path::PathBuf,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let t = Instant::now();
    let chunk = 1000;
    let pb = experiments::progress(a.cases, "cases");
    let mut tally = Tally::default();
    let mut i = a.start;
    while i < a.start + a.cases {
        let n = chunk.min(a.start + a.cases - i);
        tally = tally.merge(run_campaign(a.seed, i, n, !a.no_lp));
        pb.inc(n);
        i += n;
    }
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let report = json!({
        "command": format!("soundness --cases {} --seed {} --start {}{}", a.cases, a.seed, a.start, if a.no_lp { " --no-lp" } else { "" }),
        "cases": tally.cases,
        "passed": tally.passed,
        "violations": tally.violations.len(),
        "overflow_errors": tally.overflow,
        "refused_empty_input_set": tally.refused,
        "certified": tally.certified,
        "lp_not_settled": tally.lp_not_optimum,
        "sampled_points_checked": tally.samples,
        "seconds": secs,
        "threads": rayon::current_num_threads(),
        "violation_cases": tally.violations,
    });
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("wrote {}", a.out.display());
    if !tally.violations.is_empty() {
        bail!(
            "{} violation(s); the first: {}",
            tally.violations.len(),
            tally.violations[0]
        );
    }
    Ok(())
}
