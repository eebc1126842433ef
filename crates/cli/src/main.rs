//! `convex-outer`: bounds, certificates and certified radii for a model file.
//!
//! A thin binary: flags are parsed into plain values, the work is done by the `network`
//! and `dual` crates, and every answer is printed as JSON on stdout.

mod exact_cmd;
mod input;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// mimalloc keeps freed memory for reuse: with the system allocator every large
/// temporary buffer of a bound was mapped and unmapped again (README: Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use dual::{
    algorithm1, dual_objective, interval_bounds, AlphaOptions, AlphaRule, InputDomain, Margins,
    Method, RadiusOptions, Targets,
};
use network::{argmax, load_model, Model};

use input::{load_dataset, parse_input, InputSpec};

const EXAMPLES: &str = "\
Examples:
  # a random paper-architecture MNIST model, then its bound on test image 17
  convex-outer init --arch mnist-conv --init standard --seed 0 --out model.json
  convex-outer bound --model model.json --input mnist:test:17 --eps 0.1
  # one target only, inputs clipped to pixels [0, 1]
  convex-outer bound --model model.json --input mnist:test:17 --eps 0.1 --targets 3 --box 0,1
  # an input vector of your own: a JSON list, or {\"x\": [...], \"label\": 3}
  convex-outer bound --model model.json --input my_input.json --eps 0.05
  # the exact LP (19) beside the dual bound (HiGHS when compiled in, else clarabel)
  convex-outer lp --model model.json --input mnist:test:17 --eps 0.02 --targets 3
  convex-outer lp --model small.json --input x.json --eps 0.1 --bounds lp-all --solver microlp
  convex-outer bound --model small.json --input x.json --eps 0.1 --lp
  # certificates and robust error over 100 test images, every 10th (all classes)
  convex-outer certify --model model.json --eps 0.1 --count 100 --every 10
  # certified radius (eq. 17) of test images 0..9, by CROWN
  convex-outer radius --model model.json --count 10 --method crown
  # the exact minimum of each margin (branch and bound), beside J, LP-last, LP-all and PGD
  convex-outer exact --model small.json --input x.json --eps 0.1
  # a VNN-COMP property as this tool reads it, then checked on an ONNX network
  convex-outer property --property prop_6.vnnlib
  convex-outer verify --model ACASXU_run2a_1_1_batch_2000.onnx --property prop_1.vnnlib --timeout 300
  # any command reads .onnx models; export writes one
  convex-outer export --model model.json --out model.onnx
  # every ACAS Xu instance of VNN-COMP 2021 against the competition's verdicts
  convex-outer vnncomp --dir testdata/vnncomp2021/acasxu --cap 10 --out results/vnncomp_acasxu.csv";

#[derive(Parser, Debug)]
#[command(name = "convex-outer", version, about = "Provable robustness bounds for ReLU networks (Wong & Kolter 2018)", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// ONNX models: fold a BatchNormalization whose folded weights are not doubles with
    /// rounding instead of refusing the file. Every result then holds for the folded
    /// (rounded) network, not exactly the file's; the nodes are named on stderr and in
    /// `verify`'s JSON (`model.rounded_folds`).
    #[arg(long, global = true)]
    round_batchnorm: bool,
}

/// `--round-batchnorm`, set once from the command line.
static ROUND_BATCHNORM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn import_options() -> onnx_io::ImportOptions {
    onnx_io::ImportOptions {
        round_batchnorm: ROUND_BATCHNORM.load(std::sync::atomic::Ordering::Relaxed),
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Interval bounds, Algorithm 1 bounds per layer and the dual bound J for each target.
    #[command(after_help = EXAMPLES)]
    Bound(BoundArgs),
    /// The exact LP (19) beside the dual bound for each target: dual <= LP <= c^T f(x'_LP).
    #[command(after_help = EXAMPLES)]
    Lp(LpArgs),
    /// Certificates (Corollary 1) and clean / robust error over dataset examples.
    #[command(after_help = EXAMPLES)]
    Certify(CertifyArgs),
    /// Certified radius (eq. 17) of one input or of dataset examples.
    #[command(after_help = EXAMPLES)]
    Radius(RadiusArgs),
    /// Writes a randomly initialised model file.
    #[command(after_help = EXAMPLES)]
    Init(InitArgs),
    /// Reads a VNNLIB property (VNN-COMP dialect) and prints its input boxes and unsafe
    /// output regions, as the verifier will read them.
    #[command(after_help = EXAMPLES)]
    Property(PropertyArgs),
    /// Checks a VNNLIB property on a model: falsify (centre, corners, PGD), then prove
    /// (interval, CROWN, alpha-CROWN, LP (19), input splitting). Exit code: 0 unsat (the property
    /// holds), 10 sat (counterexample), 20 unknown, 21 timeout, 1 error, 2 bad flags.
    #[command(after_help = EXAMPLES)]
    Verify(VerifyArgs),
    /// Writes a model (JSON or ONNX) as ONNX, for other tools to run.
    #[command(after_help = EXAMPLES)]
    Export(ExportArgs),
    /// The exact minimum of each target's margin (branch and bound on ReLU splits with
    /// LP (19) at the nodes), enclosed, beside J, CROWN, LP-last, LP-all and PGD.
    #[command(after_help = EXAMPLES)]
    Exact(exact_cmd::ExactArgs),
    /// Runs `verify` on every instance of a VNN-COMP benchmark and compares each verdict
    /// with the competition's (exit code 1 on any wrong verdict).
    #[command(after_help = EXAMPLES)]
    Vnncomp(VnncompArgs),
}

#[derive(Args, Debug)]
struct VnncompArgs {
    /// The benchmark's folder: its `*instances.csv` (onnx,vnnlib,timeout), networks and
    /// properties.
    #[arg(long)]
    dir: PathBuf,
    /// The benchmark's name in the verdicts file (default: the folder's name).
    #[arg(long)]
    benchmark: Option<String>,
    /// Reference verdicts (benchmark,onnx,vnnlib,verdict,...); default: verdicts.csv in
    /// the folder above `--dir`, when it exists.
    #[arg(long)]
    verdicts: Option<PathBuf>,
    /// Cap every instance's timeout at this many seconds (default: the competition's).
    #[arg(long, allow_hyphen_values = true)]
    cap: Option<f64>,
    /// Seed of the falsifier.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only instances whose onnx or vnnlib name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Where to write the rows.
    #[arg(long, default_value = "results/vnncomp.csv")]
    out: PathBuf,
    /// Run only shard I of N (every N-th instance from the I-th, 0-based), e.g. 0/4.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Keep every row already in --out; run the selected instances that no row answers
    /// with the same timeout, seed and settings (the summary counts this run's rows).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    prove: ProveFlags,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected I/N (e.g. 0/4), got {s:?}"))?;
    let (i, n): (usize, usize) = (
        i.trim()
            .parse()
            .map_err(|_| format!("shard index {i:?} is not a number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

fn vnncomp_cmd(a: VnncompArgs) -> Result<(Value, i32)> {
    if let Some(c) = a.cap {
        if !(c.is_finite() && c > 0.0 && c <= 1e9) {
            bail!("--cap must be a number of seconds in (0, 1e9], got {c}");
        }
    }
    let benchmark = match &a.benchmark {
        Some(b) => b.clone(),
        None => a
            .dir
            .canonicalize()
            .with_context(|| format!("--dir {}", a.dir.display()))?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let csv = std::fs::read_dir(&a.dir)
        .with_context(|| format!("--dir {}", a.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("instances.csv"))
        .with_context(|| format!("no *instances.csv in {}", a.dir.display()))?;
    let mut instances = verify::suite::read_instances(&csv)?;
    if let Some(o) = &a.only {
        instances.retain(|i| i.onnx.contains(o.as_str()) || i.vnnlib.contains(o.as_str()));
    }
    if let Some((i, n)) = a.shard {
        instances = verify::suite::shard(instances, i, n);
    }
    if instances.is_empty() {
        eprintln!(
            "no instance of {} is selected (--only, --shard)",
            csv.display()
        );
    }
    // With --resume every row of --out stays in the file; a selected instance is run
    // unless a row answers it with the same timeout, seed and settings.
    let earlier: Vec<verify::suite::InstanceRow> = if a.resume && a.out.exists() {
        verify::suite::read_rows(&a.out)?
    } else {
        vec![]
    };
    let key = |o: &str, v: &str, t: f64| (o.to_string(), v.to_string(), t.to_bits());
    // The timeout is set per instance; the template's settings are the run's.
    let opts = a.prove.options(a.seed, 1.0)?;
    let settings = verify::suite::settings(&opts);
    let selected: std::collections::HashSet<_> = instances
        .iter()
        .map(|i| {
            let t = a.cap.map_or(i.timeout_s, |c| c.min(i.timeout_s));
            key(&i.onnx, &i.vnnlib, t)
        })
        .collect();
    // The earlier rows of this run (the last one per instance), for the summary.
    let mut this_run: std::collections::BTreeMap<_, verify::suite::InstanceRow> =
        std::collections::BTreeMap::new();
    for r in &earlier {
        let k = key(&r.onnx, &r.vnnlib, r.timeout_s);
        if r.seed == a.seed
            && r.benchmark == benchmark
            && r.settings == settings
            && selected.contains(&k)
        {
            this_run.insert(k, r.clone());
        }
    }
    instances.retain(|i| {
        let t = a.cap.map_or(i.timeout_s, |c| c.min(i.timeout_s));
        !this_run.contains_key(&key(&i.onnx, &i.vnnlib, t))
    });
    let resumed = this_run.len();
    let vpath = a.verdicts.clone().or_else(|| {
        let p = a.dir.join("../verdicts.csv");
        p.exists().then_some(p)
    });
    let verdicts = match &vpath {
        Some(p) => verify::suite::read_verdicts(p)?,
        None => Default::default(),
    };
    // Resumed rows are judged by this run's reference verdicts.
    for r in this_run.values_mut() {
        r.judge(&verdicts);
    }
    let n = instances.len();
    let mut k = 0;
    // Rows are written as they finish (the file's earlier rows first, all of them), so a
    // stopped run keeps them.
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // A selection of no instance leaves --out as it is.
    let mut writer = if selected.is_empty() {
        None
    } else {
        let mut w = verify::suite::RowWriter::create(&a.out)?;
        for r in &earlier {
            w.write(r)?;
        }
        Some(w)
    };
    let rows = verify::suite::run_suite(
        verify::suite::Suite {
            benchmark: &benchmark,
            dir: &a.dir,
            instances: &instances,
            verdicts: &verdicts,
            cap_s: a.cap,
        },
        &opts,
        // The instances' models are read as every command reads `--model` (ONNX or
        // this project's JSON, by extension, else by content).
        |p| {
            load_noting(&p.to_path_buf())
                .map(|(m, _)| m)
                .map_err(|e| format!("{e:#}"))
        },
        |r| {
            k += 1;
            eprintln!(
                "[{k}/{n}] {} {}: {} (reference {}) in {:.2} s, {} boxes",
                r.onnx,
                r.vnnlib,
                r.verdict,
                if r.expected.is_empty() {
                    "none"
                } else {
                    &r.expected
                },
                r.time_s,
                r.boxes
            );
            if !r.error.is_empty() {
                eprintln!("  error: {}", r.error);
            }
            writer.as_mut().map_or(Ok(()), |w| w.write(r))
        },
    )?;
    // The summary is this run's: the earlier rows that answered a selected instance with
    // the same timeout, seed and settings, and the new ones.
    let rows: Vec<verify::suite::InstanceRow> = this_run.into_values().chain(rows).collect();
    let count = |v: &str| rows.iter().filter(|r| r.verdict == v).count();
    let decided: Vec<&verify::suite::InstanceRow> = rows
        .iter()
        .filter(|r| r.verdict == "sat" || r.verdict == "unsat")
        .collect();
    let wrong: Vec<String> = rows
        .iter()
        .filter(|r| r.wrong)
        .map(|r| {
            format!(
                "{} {}: {} (reference {})",
                r.onnx, r.vnnlib, r.verdict, r.expected
            )
        })
        .collect();
    let mean = if decided.is_empty() {
        0.0
    } else {
        decided.iter().map(|r| r.time_s).sum::<f64>() / decided.len() as f64
    };
    let v = json!({
        "benchmark": benchmark,
        "instances": rows.len(),
        "run_now": n,
        "resumed": resumed,
        "shard": a.shard.map(|(i, n)| format!("{i}/{n}")),
        "cap_s": a.cap,
        "seed": a.seed,
        "settings": settings,
        "verdicts_file": vpath.map(|p| p.display().to_string()),
        "unsat": count("unsat"),
        "sat": count("sat"),
        "unknown": count("unknown"),
        "timeout": count("timeout"),
        "decided": decided.len(),
        "error": count("error"),
        "wrong": wrong,
        "mean_time_decided_s": mean,
        "total_time_s": rows.iter().fold(0.0, |s, r| s + r.time_s),
        "wrote": a.out.display().to_string(),
    });
    Ok((v, if wrong.is_empty() { 0 } else { 1 }))
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Model file (.onnx or the JSON format).
    #[arg(long)]
    model: PathBuf,
    /// A .vnnlib file (or .vnnlib.gz).
    #[arg(long)]
    property: PathBuf,
    /// Seconds for the whole property.
    #[arg(long, default_value_t = 60.0, allow_hyphen_values = true)]
    timeout: f64,
    /// Seed of the falsifier's random restarts.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    prove: ProveFlags,
    /// Also write the VNN-COMP result file (first line the verdict; for sat the witness).
    #[arg(long)]
    result_file: Option<PathBuf>,
}

/// How `verify` and `vnncomp` search (besides timeout and seed).
#[derive(Args, Debug, Clone)]
struct ProveFlags {
    /// PGD restarts on the whole box.
    #[arg(long, default_value_t = 10)]
    restarts: usize,
    /// No exact line searches in the falsifier (the edge search of boxes with at most 6
    /// inputs of positive width, the coordinate polish after each PGD run with at most 8):
    /// PGD alone, as before session 16 (an ablation).
    #[arg(long)]
    no_line_search: bool,
    /// No input splitting: answer unknown when the whole box is not decided.
    #[arg(long)]
    no_split: bool,
    /// Branch and bound on ReLU splits (beta-CROWN, then LP (19) at its nodes) for every
    /// box CROWN does not exclude at this depth of the input splitting and every 6 levels
    /// below: a depth (0: from the whole box), `off`, or `auto` (depth 20 on boxes with at
    /// most 12 inputs of positive width, off on wider ones). It acts inside the input
    /// splitting, so not with --no-split.
    #[arg(long, default_value = "auto", value_parser = parse_relu_split, conflicts_with = "no_split")]
    relu_split_depth: verify::ReluSplit,
    /// In that branch and bound, no beta-CROWN (Wang et al. 2021) at split nodes: CROWN
    /// then LP (19) only (an ablation; beta-CROWN bounds a split's constraint without an
    /// LP).
    #[arg(long, conflicts_with = "no_split")]
    no_beta: bool,
    /// LP (19) on the whole box after alpha: off, last (over CROWN's intermediate bounds),
    /// all (then also over LP-all bounds: two LPs per unstable unit first), or auto
    /// (last with --no-split or more than 12 inputs of positive width, else off: on
    /// low-dimensional inputs splitting decides faster). Every LP value used is the
    /// proven lower end of its enclosure.
    #[arg(long, value_enum, default_value = "auto")]
    lp: LpRungArg,
}

/// `--relu-split-depth`: `auto`, `off` or a depth.
fn parse_relu_split(s: &str) -> Result<verify::ReluSplit, String> {
    match s {
        "auto" => Ok(verify::ReluSplit::Auto),
        "off" => Ok(verify::ReluSplit::Off),
        d => d
            .parse()
            .map(verify::ReluSplit::Depth)
            .map_err(|_| format!("`{d}` is not a depth: give a whole number, `auto` or `off`")),
    }
}

impl ProveFlags {
    /// The verifier's options for `seed` and `timeout` seconds.
    fn options(&self, seed: u64, timeout: f64) -> Result<verify::VerifyOptions> {
        if self.no_beta && self.relu_split_depth == verify::ReluSplit::Off {
            // A usage error (exit 2, like clap's own conflicts).
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--no-beta is an option of the ReLU branch and bound, which --relu-split-depth off turns off",
                )
                .exit();
        }
        Ok(verify::VerifyOptions {
            timeout: std::time::Duration::from_secs_f64(timeout),
            seed,
            falsify: {
                let d = verify::FalsifyOptions::default();
                verify::FalsifyOptions {
                    restarts: self.restarts,
                    polish_dims: if self.no_line_search {
                        0
                    } else {
                        d.polish_dims
                    },
                    edge_dims: if self.no_line_search { 0 } else { d.edge_dims },
                    ..d
                }
            },
            split: !self.no_split,
            relu_split: if self.no_split {
                verify::ReluSplit::Off
            } else {
                self.relu_split_depth
            },
            relu_split_beta: !self.no_beta,
            lp: match self.lp {
                LpRungArg::Off => verify::LpRung::Off,
                LpRungArg::Auto => verify::LpRung::Auto,
                LpRungArg::Last => verify::LpRung::Last,
                LpRungArg::All => verify::LpRung::All,
            },
            ..Default::default()
        })
    }
}

/// LP (19) in `verify`'s ladder (`verify::LpRung`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LpRungArg {
    /// No LP.
    Off,
    /// LP-last with --no-split or more than 12 inputs of positive width, else off.
    Auto,
    /// LP-last: over CROWN's intermediate bounds.
    Last,
    /// LP-last, then LP-all.
    All,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Model file (.onnx or the JSON format).
    #[arg(long)]
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    out: PathBuf,
    /// Float tensors (weights rounded to f32) instead of double: for runtimes without
    /// double kernels, such as onnxruntime's CPU Conv. The file is then a rounded network.
    #[arg(long)]
    float32: bool,
}

fn export_cmd(a: ExportArgs) -> Result<Value> {
    if a.out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        bail!(
            "--out {} ends in .json, but export writes ONNX (protobuf); name it .onnx",
            a.out.display()
        );
    }
    let model = load(&a.model)?;
    let ty = if a.float32 {
        onnx_io::ElemType::F32
    } else {
        onnx_io::ElemType::F64
    };
    onnx_io::save_onnx(&model, &a.out, ty)?;
    let tensor_type = if a.float32 {
        "float (weights rounded to f32: a slightly different network)"
    } else {
        "double (the weights exactly)"
    };
    Ok(
        json!({"wrote": a.out.display().to_string(), "architecture": model.describe(), "parameters": model.num_parameters(), "tensor_type": tensor_type}),
    )
}

/// The VNN-COMP result file: the verdict, then for `sat` the witness as
/// `((X_0 v) ... (Y_0 v) ...)`.
fn result_file_text(r: &verify::Report) -> String {
    let mut s = format!("{}\n", r.verdict.word());
    if let Some(w) = &r.witness {
        s.push('(');
        let xs =
            w.x.iter()
                .enumerate()
                .map(|(i, v)| format!("(X_{i} {v:e})"));
        let ys =
            w.y.iter()
                .enumerate()
                .map(|(j, v)| format!("(Y_{j} {v:e})"));
        s.push_str(&xs.chain(ys).collect::<Vec<_>>().join("\n "));
        s.push_str(")\n");
    }
    s
}

fn verify_cmd(a: VerifyArgs) -> Result<(Value, i32)> {
    if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 1e9) {
        bail!(
            "--timeout must be a number of seconds in (0, 1e9], got {}",
            a.timeout
        );
    }
    let (model, rounded_folds) = load_noting(&a.model)?;
    let prop = vnnlib::read_property(&a.property).context("cannot load the VNNLIB property")?;
    // The result file is opened before the search, so that a bad path fails at once.
    let result_file = match &a.result_file {
        Some(path) => Some((
            path,
            std::fs::File::create(path)
                .with_context(|| format!("cannot write the result file {}", path.display()))?,
        )),
        None => None,
    };
    let opts = a.prove.options(a.seed, a.timeout)?;
    let report = match verify::verify(&model, &prop, &opts) {
        Ok(r) => r,
        Err(e) => {
            // The result file says so too (it was created before the search).
            if let Some((_, mut f)) = result_file {
                use std::io::Write;
                let _ = f.write_all(b"error\n");
            }
            return Err(anyhow::Error::new(e).context(format!(
                "{} on {}",
                a.property.display(),
                a.model.display()
            )));
        }
    };
    if let Some((path, mut f)) = result_file {
        use std::io::Write;
        f.write_all(result_file_text(&report).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let code = match report.verdict {
        verify::Verdict::Unsat => 0,
        verify::Verdict::Sat => 10,
        verify::Verdict::Unknown => 20,
        verify::Verdict::Timeout => 21,
    };
    let v = json!({
        "model": {"path": a.model.display().to_string(), "architecture": model.describe(), "rounded_folds": rounded_folds},
        "property": a.property.display().to_string(),
        "verdict": report.verdict.word(),
        "meaning": "unsat: proven that no input of the property's boxes reaches its unsafe region (every bound is proven); sat: the witness reaches it, confirmed in exact arithmetic inside the file's exact box; unknown/timeout: neither",
        "options": {"timeout_s": a.timeout, "seed": a.seed, "restarts": a.prove.restarts, "split": !a.prove.no_split, "relu_split_depth": opts.relu_split.word(), "lp": opts.lp, "settings": verify::suite::settings(&opts)},
        "report": serde_json::to_value(&report)?,
    });
    Ok((v, code))
}

#[derive(Args, Debug)]
struct PropertyArgs {
    /// A .vnnlib file (or .vnnlib.gz).
    #[arg(long)]
    property: PathBuf,
}

fn property_cmd(a: PropertyArgs) -> Result<Value> {
    let p = vnnlib::read_property(&a.property).context("cannot load the VNNLIB property")?;
    let cases: Vec<Value> = p
        .cases
        .iter()
        .map(|c| {
            json!({
                "input_box": {"lower": c.input.lower.as_slice(), "upper": c.input.upper.as_slice(), "empty": c.input.is_empty()},
                "unsafe_region": c.unsafe_region.iter().map(|conj| {
                    conj.iter().map(|k| json!({"coef": k.coef.as_slice(), "rhs_lo": k.rhs_lo, "rhs_hi": k.rhs_hi, "line": k.line, "col": k.col})).collect::<Vec<_>>()
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "property": p.name,
        "inputs": p.n_inputs,
        "outputs": p.n_outputs,
        "meaning": "the property holds (unsat) when no input of a case's box reaches any conjunction of its unsafe region; each constraint reads coef . Y <= rhs, the file's exact rhs lying in [rhs_lo, rhs_hi]; boxes are rounded outwards so that they contain the file's exact box",
        "cases": cases,
    }))
}

#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Model file: .onnx, or the JSON format (version 1, see the README).
    #[arg(long)]
    model: PathBuf,
    /// mnist:test:N, mnist:train:N, or a JSON file holding a list or {"x": [...], "label": y}.
    #[arg(long)]
    input: String,
    /// Radius of the l-infinity ball.
    #[arg(long, allow_hyphen_values = true)]
    eps: f64,
    /// "all" (every class but the label) or one class index.
    #[arg(long, default_value = "all")]
    targets: String,
    /// Intersect the ball with the box lo,hi (e.g. 0,1 for pixels). Off by default (paper mode).
    #[arg(long, value_parser = parse_box, allow_hyphen_values = true)]
    r#box: Option<(f64, f64)>,
    /// Class to certify; defaults to the dataset label, else the predicted class.
    #[arg(long)]
    label: Option<usize>,
}

#[derive(Args, Debug, Clone)]
struct LpFlags {
    /// LP solver, or all (every compiled solver, compared) (default: highs when compiled
    /// in, else clarabel). A solver that does not settle an LP is followed by the others;
    /// every attempt is reported.
    #[arg(long, value_enum)]
    solver: Option<SolverArg>,
    /// Per-solve wall-clock limit in seconds; a solve that hits it is an error, not a value.
    #[arg(long, allow_hyphen_values = true)]
    time_limit: Option<f64>,
}

#[derive(Args, Debug)]
struct LpArgs {
    #[command(flatten)]
    t: TargetArgs,
    #[command(flatten)]
    lp: LpFlags,
    /// Intermediate bounds of the LP: algorithm1 ("LP-last") or lp-all.
    #[arg(long, value_enum, default_value = "algorithm1")]
    bounds: LpBoundsArg,
    /// Solve every target from scratch (HiGHS otherwise re-solves warm from the last basis).
    #[arg(long)]
    cold: bool,
}

/// An LP solver (`lp::Solver`), or all of the compiled ones.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SolverArg {
    /// Dual simplex in pure Rust.
    Microlp,
    /// Interior point in pure Rust.
    Clarabel,
    /// HiGHS (feature `highs`).
    Highs,
    /// Every compiled solver, compared.
    All,
}

/// The intermediate bounds of LP (19).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LpBoundsArg {
    /// Algorithm 1's ("LP-last").
    Algorithm1,
    /// Each bound an LP over the relaxation of the earlier ones ("LP-all").
    LpAll,
}

/// How `init` draws weights (`network::Init`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum InitArg {
    /// Appendix B.1: weights N(0, 1/fan_in), biases N(0, 1).
    Paper,
    /// PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Standard,
}

/// A bound method (`dual::Method`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MethodArg {
    /// Interval bound propagation (IBP, eq. 42).
    Interval,
    /// The paper: Wong & Kolter dual with Algorithm 1 bounds (= Fast-Lin).
    Wk,
    /// CROWN / DeepPoly: adaptive lower slopes, CROWN intermediate bounds.
    Crown,
    /// alpha-CROWN: lower slopes optimised per target (projected Adam) from CROWN's.
    Alpha,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::Interval => Method::Interval,
            MethodArg::Wk => Method::Wk,
            MethodArg::Crown => Method::Crown,
            MethodArg::Alpha => Method::Alpha,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct MethodFlags {
    /// Bound method; every method's J is proven.
    #[arg(long, value_enum, default_value = "wk")]
    method: MethodArg,
    /// alpha: gradient steps of the optimiser at most.
    #[arg(long, default_value_t = AlphaOptions::default().iterations)]
    alpha_steps: usize,
    /// alpha: also optimise the intermediate bounds (alpha-CROWN's bounds on every
    /// unstable ReLU unit instead of CROWN's; one optimisation per unit, much slower).
    #[arg(long)]
    alpha_intermediate: bool,
    /// wk: the precision of Algorithm 1's columns: f64, or f32 (the sound f32 path: the
    /// columns rounded and multiplied in f32, the rounding accounted with f32's unit
    /// roundoff; proven bounds slightly wider, computed faster).
    #[arg(long, default_value = "f64")]
    precision: dual::Precision,
}

impl MethodFlags {
    fn method(&self) -> Method {
        self.method.into()
    }
    /// Refuses alpha's options with another method (they would be ignored silently).
    fn check(&self) -> Result<()> {
        if self.alpha_intermediate && self.method != MethodArg::Alpha {
            bail!(
                "--alpha-intermediate applies to --method alpha only (got --method {})",
                self.method().name()
            );
        }
        if self.precision != dual::Precision::F64 && self.method != MethodArg::Wk {
            bail!(
                "--precision applies to --method wk only (Algorithm 1's columns; got --method {})",
                self.method().name()
            );
        }
        Ok(())
    }
    fn alpha(&self) -> AlphaOptions {
        AlphaOptions {
            iterations: self.alpha_steps,
            intermediate: self.alpha_intermediate,
            precision: self.precision,
            ..Default::default()
        }
    }
}

/// How a method's bound was obtained, for the JSON output.
fn method_json(method: Method, alpha: &AlphaOptions, report: Option<&dual::AlphaReport>) -> Value {
    let rule = match method {
        Method::Interval => "none (last layer over the interval box)",
        Method::Wk => "paper",
        Method::Crown => "crown (1 if u > -l else 0)",
        Method::Alpha => "optimised",
    };
    let mut v = json!({
        "name": method.name(),
        "bound": if method == Method::Wk { "wong-kolter-dual" } else { method.name() },
        "alpha": rule,
        "intermediate": method.intermediate_with(alpha).name(),
        "source": method.source(),
    });
    if method == Method::Wk {
        v["precision"] = alpha.precision.name().into();
    }
    if method == Method::Alpha {
        v["optimiser"] = json!({"algorithm": "projected Adam on floating-point J; the proven J at the best alpha is reported", "max_steps": alpha.iterations, "lr": alpha.lr, "lr_decay": alpha.lr_decay, "patience": alpha.patience, "rel_tol": alpha.rel_tol, "intermediate": alpha.intermediate});
        if let Some(r) = report {
            v["optimiser"]["steps"] = r.steps.into();
            v["optimiser"]["stop"] = r.stop.name().into();
            v["optimiser"]["start_nominal"] = r.start.as_slice().into();
            v["optimiser"]["best_nominal"] = r.best.as_slice().into();
        }
    }
    v
}

#[derive(Args, Debug)]
struct BoundArgs {
    #[command(flatten)]
    t: TargetArgs,
    #[command(flatten)]
    m: MethodFlags,
    /// Add the exact LP (19) value of each target, over the same intermediate bounds as
    /// the method's J (so J <= LP holds for every method).
    #[arg(long)]
    lp: bool,
    #[command(flatten)]
    lpf: LpFlags,
}

#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// mnist-test, mnist-train (the shipped subset), csv:PATH, or idx:IMAGES,LABELS.
    #[arg(long, default_value = "mnist-test")]
    data: String,
    /// Seed of the shipped subset's stratified train/test split.
    #[arg(long, default_value_t = network::data::DEFAULT_SPLIT_SEED)]
    split_seed: u64,
    /// First example.
    #[arg(long, default_value_t = 0)]
    start: usize,
    /// Number of examples.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Take every K-th example from --start (the shipped MNIST test split is sorted by
    /// class: `--count 50 --every 20` takes 5 of each class).
    #[arg(long, default_value_t = 1)]
    every: usize,
}

#[derive(Args, Debug)]
struct CertifyArgs {
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    m: MethodFlags,
    #[arg(long, allow_hyphen_values = true)]
    eps: f64,
    #[arg(long, value_parser = parse_box, allow_hyphen_values = true)]
    r#box: Option<(f64, f64)>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct RadiusArgs {
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    m: MethodFlags,
    /// One input (as for `bound`); without it, dataset examples are used.
    #[arg(long)]
    input: Option<String>,
    #[arg(long, value_parser = parse_box, allow_hyphen_values = true)]
    r#box: Option<(f64, f64)>,
    /// Relative width of the final bracket [radius, first failing eps].
    #[arg(long, default_value_t = 1e-3)]
    rel_tol: f64,
    /// First eps tried.
    #[arg(long, default_value_t = 0.01)]
    initial: f64,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args, Debug)]
struct InitArgs {
    /// mnist-conv, mlp:W0-W1-...-WL, or a residual network (a graph model, saved as a
    /// version-2 file): residual:IN-WIDTH-BLOCKS-OUT (IN a size such as 784 or an image
    /// such as 1x28x28), residual-normalised:... with an input normalisation.
    #[arg(long)]
    arch: String,
    /// How the weights are drawn.
    #[arg(long, value_enum, default_value = "paper")]
    init: InitArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
}

fn parse_box(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [lo, hi] = parts.as_slice() else {
        return Err(format!("expected lo,hi (e.g. 0,1), got {s:?}"));
    };
    let lo: f64 = lo
        .trim()
        .parse()
        .map_err(|_| format!("{lo:?} is not a number"))?;
    let hi: f64 = hi
        .trim()
        .parse()
        .map_err(|_| format!("{hi:?} is not a number"))?;
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return Err(format!("the box needs finite lo <= hi, got [{lo}, {hi}]"));
    }
    Ok((lo, hi))
}

fn check_eps(eps: f64) -> Result<()> {
    if !eps.is_finite() || eps < 0.0 {
        bail!("--eps must be a finite number >= 0, got {eps}");
    }
    Ok(())
}

/// A model file: ONNX when the name ends in `.onnx`, else the JSON format.
fn load(path: &PathBuf) -> Result<Model> {
    load_noting(path).map(|(m, _)| m)
}

/// The model and the nodes its import folded with rounding (`--round-batchnorm`), which
/// are also named on stderr.
fn load_noting(path: &PathBuf) -> Result<(Model, Vec<String>)> {
    // By extension; a file named otherwise is ONNX unless it starts like JSON.
    let ext = |x: &str| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    let looks_onnx = || {
        std::fs::read(path).is_ok_and(|b| {
            b.iter()
                .find(|c| !c.is_ascii_whitespace())
                .is_some_and(|&c| c != b'{')
        })
    };
    if ext("onnx") || (!ext("json") && looks_onnx()) {
        let imp = onnx_io::load_onnx_with(path, &import_options())
            .context("cannot load the ONNX model")?;
        if !imp.rounded.is_empty() {
            eprintln!(
                "warning: {}: folded with rounding (--round-batchnorm): {}; every result holds for the folded network, not exactly the file's",
                path.display(),
                imp.rounded.join(", ")
            );
        }
        Ok((imp.model, imp.rounded))
    } else {
        Ok((
            load_model(path).context("cannot load the model")?,
            Vec::new(),
        ))
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Everything `bound` and `lp` share: the model, the input, the class and the targets.
struct Prepared {
    model: Model,
    spec: TargetArgs,
    logits: network::DVector<f64>,
    predicted: usize,
    label: usize,
    label_source: &'static str,
    /// The target class of each objective row (None for a one-output model's `+f`/`-f`).
    targets: Vec<Option<usize>>,
    /// Each objective row in words.
    names: Vec<String>,
    /// The objective matrix (`rows x n_out`): rows `e_label - e_t`, one per target; for a
    /// one-output model the rows `+1` and `-1` (lower and upper bounds of the output).
    c: network::DMatrix<f64>,
    domain: InputDomain,
}

fn prepare(a: &TargetArgs) -> Result<Prepared> {
    check_eps(a.eps)?;
    let model = load(&a.model)?;
    let spec: InputSpec = parse_input(&a.input, &model)?;
    let logits = model
        .forward(&spec.x)
        .with_context(|| format!("input {}", a.input))?;
    let predicted = argmax(&logits);
    let (label, label_source) =
        dual::resolve_label(a.label, spec.label.map(|l| (l, spec.label_source)), &logits);
    let label_source = label_source.name();
    let n_out = model.output_len();
    let (targets, names, c) = if n_out == 1 {
        // No margin exists; bound the output itself from both sides.
        if a.targets != "all" || a.label.is_some() {
            bail!("the model has one output, so there are no margin targets or classes: --targets and --label do not apply (bound and lp report proven lower and upper bounds of the output instead)");
        }
        (
            vec![None, None],
            vec![
                "+f (J is a lower bound of the output)".to_string(),
                "-f (-J is an upper bound of the output)".to_string(),
            ],
            network::DMatrix::from_row_slice(2, 1, &[1.0, -1.0]),
        )
    } else {
        let targets: Targets = a
            .targets
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--{e}"))?;
        let m = Margins::new(n_out, label, targets)
            .with_context(|| format!("--label {label}, --targets {}", a.targets))?;
        (
            m.targets.iter().map(|&t| Some(t)).collect(),
            m.targets
                .iter()
                .map(|t| format!("e_{label} - e_{t}"))
                .collect(),
            m.c,
        )
    };
    let domain = InputDomain::new(&spec.x, a.eps, a.r#box)?;
    Ok(Prepared {
        model,
        spec: a.clone(),
        logits,
        predicted,
        label,
        label_source,
        targets,
        names,
        c,
        domain,
    })
}

fn header(p: &Prepared) -> Value {
    json!({
        "model": {"path": p.spec.model.display().to_string(), "architecture": p.model.describe(), "parameters": p.model.num_parameters()},
        "input": {"spec": p.spec.input, "label": p.label, "label_source": p.label_source},
        "eps": p.spec.eps,
        "box": p.spec.r#box.map(|(l, h)| vec![l, h]),
        "logits": p.logits.as_slice(),
        "predicted": p.predicted,
    })
}

/// The solvers named by `--solver`: one, or every compiled one for `all`.
fn solvers_of(f: &LpFlags) -> Result<Vec<lp::Solver>> {
    let list = match f.solver {
        Some(SolverArg::All) => lp::Solver::ALL
            .into_iter()
            .filter(|s| s.available())
            .collect(),
        Some(SolverArg::Microlp) => vec![lp::Solver::Microlp],
        Some(SolverArg::Clarabel) => vec![lp::Solver::Clarabel],
        Some(SolverArg::Highs) => vec![lp::Solver::Highs],
        None => vec![lp::Solver::preferred()],
    };
    if list.iter().any(|s| !s.available()) {
        bail!("built without HiGHS; rebuild with --features highs (e.g. cargo build --release -p convex-outer --features highs)");
    }
    if let Some(t) = f.time_limit {
        if !(t > 0.0 && t.is_finite()) {
            bail!("--time-limit must be a positive number of seconds, got {t}");
        }
    }
    Ok(list)
}

fn attempt_json(a: &lp::Attempt) -> Value {
    json!({
        "solver": a.solver.name(), "status": a.status, "value": a.value,
        "proven_lower_from_its_multipliers": a.proven_lower,
        "max_row_violation": a.max_violation, "time_ms": a.time.as_secs_f64() * 1e3,
    })
}

/// One objective's LP enclosure as JSON.
fn enclosure_json(e: &lp::LpEnclosure) -> Value {
    let s = e.solution.as_ref();
    json!({
        "lp_proven_lower": e.proven_lower,
        "lp_proven_lower_source": e.proven_lower_source,
        "lp_solver_value": e.value(),
        "lp_verdict": e.verdict(),
        "lp_is_optimum": e.is_optimum,
        "lp_tolerance": e.tolerance,
        "value_at_lp_point_upper": e.upper_at_input,
        "solver": s.map(|s| s.solver.name()),
        "status": s.map(|s| s.status.clone()),
        "ipm_duality_gap": s.and_then(|s| s.ipm_gap),
        "warm_start": s.map(|s| s.warm),
        "iterations": s.map(|s| s.iterations),
        "lp_point_max_row_violation": e.max_violation,
        "attempts": e.attempts.iter().map(attempt_json).collect::<Vec<_>>(),
    })
}

/// LP (19) for every objective row as verified enclosures: for each solver asked for
/// (several with `--solver all`, each without fallback, then compared), or the one
/// solver with fallback to the others.
fn lp_rows(
    p: &Prepared,
    bounds: &dual::LayerBounds,
    solvers: &[lp::Solver],
    f: &LpFlags,
    warm: bool,
    j: &dual::DualBound,
    floor: Option<(&[f64], &str)>,
) -> Result<(Value, Vec<Value>, Vec<lp::LpEnclosure>)> {
    let t = Instant::now();
    let lp19 = lp::Lp19::new(&p.model, &p.domain, bounds)?;
    let build_ms = ms(t);
    let opts = lp::LpOptions {
        time_limit: f.time_limit,
        ..Default::default()
    };
    let verify = lp::VerifyOptions {
        fallback: solvers.len() == 1,
        ..Default::default()
    };
    let per_solver: Vec<Vec<lp::LpEnclosure>> = solvers
        .iter()
        .map(|&s| lp::solve_verified(&lp19, &p.c, s, &opts, warm, &verify))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    let mut best = Vec::new();
    for k in 0..p.names.len() {
        // Every solver solved the same LP: the best proven lower bound of any of them
        // verifies each solver's value.
        // A method's own J over the same bounds is a dual point of this LP too.
        let start = floor.map_or((f64::NEG_INFINITY, String::new()), |(v, name)| {
            (v[k], name.to_string())
        });
        let top = per_solver
            .iter()
            .map(|v| (v[k].proven_lower, v[k].proven_lower_source.clone()))
            .fold(start, |a, b| if b.0 > a.0 { b } else { a });
        let encs: Vec<lp::LpEnclosure> = per_solver
            .iter()
            .map(|v| {
                let mut e = v[k].clone();
                e.tighten(top.0, &top.1);
                e
            })
            .collect();
        // The reported enclosure: an optimum if any solver gave one, with the largest
        // proven lower bound of all.
        let e = encs
            .iter()
            .find(|e| e.is_optimum)
            .unwrap_or(&encs[0])
            .clone();
        let mut row = json!({
            "objective": p.names[k],
            "target": p.targets[k],
            "J": j.values[k],
            "J_nominal": j.nominal[k],
        });
        let ej = enclosure_json(&e);
        for (key, v) in ej.as_object().expect("object") {
            row[key] = v.clone();
        }
        if let Some(v) = e.value() {
            row["gap_lp_minus_J"] = (v - j.values[k]).into();
        }
        if solvers.len() > 1 {
            let vals: Vec<f64> = encs.iter().filter_map(|e| e.value()).collect();
            let spread = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                - vals.iter().cloned().fold(f64::INFINITY, f64::min);
            row["solvers"] = encs
                .iter()
                .zip(solvers)
                .map(|(e, s)| {
                    let mut v = enclosure_json(e);
                    v["solver_asked"] = s.name().into();
                    v
                })
                .collect::<Vec<_>>()
                .into();
            row["solver_agreement"] = json!({
                "values": vals.len(),
                "max_minus_min": if vals.is_empty() { None } else { Some(spread) },
                "all_optimum": encs.iter().all(|e| e.is_optimum),
            });
        }
        rows.push(row);
        best.push(e);
    }
    let size = lp19.size();
    Ok((
        json!({"variables": size.variables, "rows": size.rows, "nonzeros": size.nonzeros, "build_ms": build_ms, "bounds": bounds.source.name()}),
        rows,
        best,
    ))
}

fn bound(a: BoundArgs) -> Result<Value> {
    a.m.check()?;
    let p = prepare(&a.t)?;
    let solvers = if a.lp {
        solvers_of(&a.lpf)?
    } else {
        Vec::new()
    };
    let t0 = Instant::now();
    let model = &p.model;
    let t = Instant::now();
    let ib = interval_bounds(model, &p.domain)?;
    let t_interval = ms(t);
    let t = Instant::now();
    // In the precision of the flags (f64 unless `--precision f32 --method wk`): `wk`
    // uses these bounds, and the output's `algorithm1` section shows them.
    let ab = dual::algorithm1_with(model, &p.domain, dual::ColumnForm::Local, a.m.precision)?.0;
    let t_alg1 = ms(t);
    let method = a.m.method();
    let alpha_opts = a.m.alpha();
    let t = Instant::now();
    let mbounds = match method.intermediate_with(&alpha_opts) {
        dual::BoundSource::Interval => ib.clone(),
        dual::BoundSource::Algorithm1 => ab.clone(),
        _ => dual::method_bounds_with(model, &p.domain, method, &alpha_opts)?,
    };
    let t_mbounds = ms(t);
    let t = Instant::now();
    let mb = dual::bound_given(model, &p.domain, mbounds, &p.c, method, &alpha_opts)?;
    let t_obj = ms(t);
    let counts = ab.counts(model);
    let layer_json = |b: &dual::LayerBounds, with_counts: bool| -> Vec<Value> {
        model
            .affine()
            .iter()
            .enumerate()
            .map(|(i, aff)| {
                let mut v = json!({
                    "layer": aff.layer_index,
                    "preactivation": format!("zhat_{}", i + 2),
                    "shape": aff.out_shape.dims(),
                    "is_output": i + 1 == model.affine().len(),
                    "lower": b.lower[i].as_slice(),
                    "upper": b.upper[i].as_slice(),
                });
                if with_counts && i < counts.len() {
                    v["I_minus"] = counts[i].off.into();
                    v["I_plus"] = counts[i].on.into();
                    v["I"] = counts[i].unstable.into();
                    // Graph models: linear units (skips, affine after affine).
                    v["linear"] = counts[i].linear.into();
                }
                v
            })
            .collect()
    };
    let n = model.output_len();
    let mut objectives: Vec<Value> = (0..p.names.len())
        .map(|k| {
            let c = &p.c.row(k).transpose();
            let at_x: f64 = c.iter().zip(&p.logits).map(|(a, b)| a * b).sum();
            json!({"objective": p.names[k], "target": p.targets[k], "J": mb.values[k], "J_nominal": mb.nominal[k], "value_at_x": at_x})
        })
        .collect();
    let mut lp_info = Value::Null;
    let mut t_lp = 0.0;
    if !solvers.is_empty() {
        let t = Instant::now();
        // LP (19) over the method's own intermediate bounds: J <= LP-last then holds for
        // every method (any alpha in [0, 1] is a dual point of that LP; IBP's last layer
        // relaxes the same boxes further). The paper's J over those bounds is the LP's
        // proven fallback.
        let j = dual_objective(model, &p.domain, &mb.bounds, &p.c, &AlphaRule::Paper)?;
        let source = format!("J of {} over the same bounds", method.name());
        let (info, rows, _) = lp_rows(
            &p,
            &mb.bounds,
            &solvers,
            &a.lpf,
            true,
            &j,
            Some((mb.values.as_slice(), &source)),
        )?;
        t_lp = ms(t);
        for (o, r) in objectives.iter_mut().zip(rows) {
            for (key, v) in r.as_object().expect("object") {
                if key.starts_with("lp_")
                    || key.starts_with("value_at_lp")
                    || [
                        "solver",
                        "status",
                        "ipm_duality_gap",
                        "attempts",
                        "solver_agreement",
                    ]
                    .contains(&key.as_str())
                {
                    o[key] = v.clone();
                }
            }
        }
        lp_info = info;
    }
    let mut out = header(&p);
    out["method"] = method_json(method, &alpha_opts, mb.alpha.as_ref());
    out["interval"] = layer_json(&ib, false).into();
    out["algorithm1"] = layer_json(&ab, true).into();
    if matches!(
        mb.bounds.source,
        dual::BoundSource::Crown | dual::BoundSource::AlphaCrown
    ) {
        out[mb.bounds.source.name()] = layer_json(&mb.bounds, false).into();
    }
    out["objectives"] = objectives.into();
    if !lp_info.is_null() {
        out["lp"] = lp_info;
    }
    if n == 1 {
        out["output_bounds"] = json!({"lower": mb.values[0], "upper": -mb.values[1]});
        out["certified"] = Value::Null;
        out["certified_note"] = "a one-output model has no margin to certify (Corollary 1 needs two classes); output_bounds are proven bounds of the output over the input set".into();
    } else {
        out["certified"] = dual::certifies(&mb.values, usize::MAX).into();
        out["certified_note"] =
            "certified when the proven J > 0 for every listed target (Corollary 1)".into();
    }
    out["numbers_note"] = PROVEN_NOTE.into();
    out["time_ms"] = json!({"interval": t_interval, "algorithm1": t_alg1, "method_intermediate": t_mbounds, "objective": t_obj, "lp": t_lp, "total": ms(t0)});
    Ok(out)
}

/// What "proven", "nominal" and the LP enclosure mean, printed with every bound.
const PROVEN_NOTE: &str = "J and every layer bound printed (interval, Algorithm 1, crown, alpha-crown) are proven: they hold in exact arithmetic for the stored weights, whatever the rounding; J_nominal is the floating-point value of eq. 6 (not a bound). LP (19) is an enclosure: lp_proven_lower is proven (from the solver's multipliers, Neumaier-Shcherbina, or J); lp_solver_value is the solver's number, called the optimum only when within lp_tolerance of the proven lower bound; value_at_lp_point_upper is a proven upper bound on the exact minimum.";

fn lp_cmd(a: LpArgs) -> Result<Value> {
    let p = prepare(&a.t)?;
    let solvers = solvers_of(&a.lp)?;
    let t0 = Instant::now();
    let alg1 = algorithm1(&p.model, &p.domain)?;
    let j = dual_objective(&p.model, &p.domain, &alg1, &p.c, &AlphaRule::Paper)?;
    let t = Instant::now();
    let bounds = match a.bounds {
        LpBoundsArg::Algorithm1 => alg1,
        LpBoundsArg::LpAll => {
            let opts = lp::LpOptions {
                time_limit: a.lp.time_limit,
                ..Default::default()
            };
            lp::lp_all_bounds(&p.model, &p.domain, solvers[0], &opts)?
        }
    };
    let t_bounds = ms(t);
    let (info, rows, _) = lp_rows(&p, &bounds, &solvers, &a.lp, !a.cold, &j, None)?;
    let mut out = header(&p);
    out["method"] = json!({
        "dual": {"bound": j.method, "alpha": j.alpha, "intermediate": j.intermediate.name()},
        "lp": {"program": "LP (19), appendix A.1", "intermediate": bounds.source.name(), "solvers": solvers.iter().map(|s| s.name()).collect::<Vec<_>>()},
    });
    out["lp"] = info;
    out["targets"] = rows.into();
    out["chain_note"] =
        "J <= lp_proven_lower <= LP optimum <= exact minimum <= value_at_lp_point_upper; lp_solver_value is confirmed to lp_tolerance, not proven, so it may sit that far below lp_proven_lower; method.lp.solvers lists the solvers asked for, attempts those tried".into();
    out["numbers_note"] = PROVEN_NOTE.into();
    out["time_ms"] = json!({"intermediate_bounds": t_bounds, "total": ms(t0)});
    Ok(out)
}

fn certify_cmd(a: CertifyArgs) -> Result<Value> {
    a.m.check()?;
    check_eps(a.eps)?;
    let model = load(&a.model)?;
    if model.output_len() < 2 {
        return Err(dual::DualError::NoTargets {
            n_out: model.output_len(),
        }
        .into());
    }
    let data = load_dataset(&a.data.data, a.data.split_seed)?;
    let idx = input::range(&data, a.data.start, a.data.count, a.data.every)?;
    let t = Instant::now();
    let rep = dual::robust_error_with(
        &model,
        &data,
        &idx,
        a.eps,
        a.r#box,
        a.m.method(),
        &a.m.alpha(),
    )?;
    let rows: Vec<Value> = rep
        .indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            json!({"index": i, "label": data.labels[i], "predicted": rep.predicted[k], "certified": rep.certified[k], "min_margin_bound": rep.min_margin[k]})
        })
        .collect();
    Ok(json!({
        "model": a.model.display().to_string(),
        "data": data.name,
        "eps": a.eps,
        "box": a.r#box.map(|(l, h)| vec![l, h]),
        "method": method_json(a.m.method(), &a.m.alpha(), None),
        "examples": idx.len(),
        "clean_error": rep.clean_error,
        "robust_error_bound": rep.robust_error,
        "time_ms": ms(t),
        "rows": rows,
    }))
}

fn radius_cmd(a: RadiusArgs) -> Result<Value> {
    a.m.check()?;
    let model = load(&a.model)?;
    if model.output_len() < 2 {
        return Err(dual::DualError::NoTargets {
            n_out: model.output_len(),
        }
        .into());
    }
    if !(a.rel_tol > 0.0 && a.rel_tol < 1.0) {
        bail!("--rel-tol must be in (0, 1), got {}", a.rel_tol);
    }
    if !(a.initial > 0.0 && a.initial.is_finite()) {
        bail!("--initial must be a positive number, got {}", a.initial);
    }
    let opts = RadiusOptions {
        initial: a.initial,
        rel_tol: a.rel_tol,
        ..Default::default()
    };
    let mut items: Vec<(String, Vec<f64>, usize)> = Vec::new();
    if let Some(spec) = &a.input {
        let s = parse_input(spec, &model)?;
        let logits = model.forward(&s.x)?;
        let (y, _) = dual::resolve_label(None, s.label.map(|l| (l, s.label_source)), &logits);
        items.push((spec.clone(), s.x, y));
    } else {
        let data = load_dataset(&a.data.data, a.data.split_seed)?;
        for i in input::range(&data, a.data.start, a.data.count, a.data.every)? {
            let (x, y) = data.example(i);
            items.push((format!("{}[{i}]", data.name), x.as_slice().to_vec(), y));
        }
    }
    use rayon::prelude::*;
    let rows: Vec<Value> = items
        .par_iter()
        .map(|(name, x, y)| -> Result<Value> {
            let t = Instant::now();
            let r = dual::certified_radius_with(
                &model,
                x,
                *y,
                a.r#box,
                a.m.method(),
                &a.m.alpha(),
                opts,
            )?;
            Ok(json!({
                "input": name, "label": y, "radius": r.radius, "first_failing_eps": r.upper,
                "stop": format!("{:?}", r.stop), "steps": r.steps.len(),
                "trace": r.steps.iter().map(|s| json!({"eps": s.eps, "margin_bound": s.margin, "step": s.kind})).collect::<Vec<_>>(),
                "time_ms": ms(t),
            }))
        })
        .collect::<Result<_>>()?;
    Ok(json!({
        "model": a.model.display().to_string(),
        "box": a.r#box.map(|(l, h)| vec![l, h]),
        "method": method_json(a.m.method(), &a.m.alpha(), None),
        "search": "Newton (secant slope, growth capped at 8x) until bracketed, then false position with Illinois weights; bisection when a margin is NaN",
        "rel_tol": a.rel_tol,
        "rows": rows,
    }))
}

fn init_name(i: InitArg) -> &'static str {
    match i {
        InitArg::Paper => "paper",
        InitArg::Standard => "standard",
    }
}

fn init_cmd(a: InitArgs) -> Result<Value> {
    let init = match a.init {
        InitArg::Paper => network::Init::Paper,
        InitArg::Standard => network::Init::Standard,
    };
    let model = network::init_spec(&a.arch, init, a.seed)?;
    let meta = json!({"created_by": "convex-outer init", "arch": a.arch, "init": init_name(a.init), "seed": a.seed, "trained": false});
    network::save_model(&model, Some(&meta), &a.out)?;
    Ok(
        json!({"wrote": a.out.display().to_string(), "architecture": model.describe(), "parameters": model.num_parameters()}),
    )
}

fn main() {
    let cli = Cli::parse();
    ROUND_BATCHNORM.store(cli.round_batchnorm, std::sync::atomic::Ordering::Relaxed);
    let mut exit_code = 0;
    let out = match cli.cmd {
        Cmd::Bound(a) => bound(a),
        Cmd::Exact(a) => exact_cmd::exact_cmd(a),
        Cmd::Lp(a) => lp_cmd(a),
        Cmd::Certify(a) => certify_cmd(a),
        Cmd::Radius(a) => radius_cmd(a),
        Cmd::Init(a) => init_cmd(a),
        Cmd::Property(a) => property_cmd(a),
        Cmd::Export(a) => export_cmd(a),
        Cmd::Verify(a) => verify_cmd(a).map(|(v, code)| {
            exit_code = code;
            v
        }),
        Cmd::Vnncomp(a) => vnncomp_cmd(a).map(|(v, code)| {
            exit_code = code;
            v
        }),
    };
    match out {
        Ok(v) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("JSON values serialise")
            );
            std::process::exit(exit_code);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
