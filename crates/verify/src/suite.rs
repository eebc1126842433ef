//! A VNN-COMP benchmark run end to end: every instance of its `instances.csv` (`onnx,
//! vnnlib, timeout` per line) verified in turn, each verdict compared with a reference
//! (`verdicts.csv`: `benchmark,onnx,vnnlib,verdict,...`, the majority of the
//! competition's complete verifiers), one row per instance.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use network::Model;
use serde::{Deserialize, Serialize};

use crate::{verify, Report, Verdict, VerifyError, VerifyOptions};

/// One instance of a benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub onnx: String,
    pub vnnlib: String,
    /// The competition's timeout in seconds.
    pub timeout_s: f64,
}

/// Reads `instances.csv` (no header; `onnx,vnnlib,timeout`). Errors name the line.
pub fn read_instances(path: &Path) -> Result<Vec<Instance>, VerifyError> {
    let err = |msg: String| VerifyError::Suite(format!("{}: {msg}", path.display()));
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        if rec.len() != 3 {
            return Err(err(format!(
                "line {}: expected onnx,vnnlib,timeout, found {} fields",
                i + 1,
                rec.len()
            )));
        }
        let timeout_s: f64 = rec[2]
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t > 0.0 && *t <= 1e9)
            .ok_or_else(|| {
                err(format!(
                    "line {}: timeout {:?} is not a positive number",
                    i + 1,
                    &rec[2]
                ))
            })?;
        out.push(Instance {
            onnx: rec[0].to_string(),
            vnnlib: rec[1].to_string(),
            timeout_s,
        });
    }
    if out.is_empty() {
        return Err(err("no instances".into()));
    }
    Ok(out)
}

/// Reads `verdicts.csv` (with a header: `benchmark,onnx,vnnlib,verdict,...`) into
/// `(benchmark, onnx, vnnlib) -> verdict`.
pub fn read_verdicts(
    path: &Path,
) -> Result<HashMap<(String, String, String), Verdict>, VerifyError> {
    let err = |msg: String| VerifyError::Suite(format!("{}: {msg}", path.display()));
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| err(e.to_string()))?;
    let mut out = HashMap::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        if rec.len() < 4 {
            return Err(err(format!("line {}: fewer than 4 fields", i + 2)));
        }
        let v = match &rec[3] {
            "sat" => Verdict::Sat,
            "unsat" => Verdict::Unsat,
            other => {
                return Err(err(format!(
                    "line {}: verdict {other:?} (sat or unsat expected)",
                    i + 2
                )))
            }
        };
        out.insert(
            (rec[0].to_string(), rec[1].to_string(), rec[2].to_string()),
            v,
        );
    }
    Ok(out)
}

/// One row of a benchmark run: every parameter needed to re-run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRow {
    pub benchmark: String,
    pub onnx: String,
    pub vnnlib: String,
    pub competition_timeout_s: f64,
    /// The timeout used: `min(cap, competition's)`.
    pub timeout_s: f64,
    pub seed: u64,
    /// The prover's settings besides timeout and seed ([`settings`]); rows written before
    /// the column existed read as the defaults of then (no ReLU split, no line search:
    /// [`OLD_DEFAULT_SETTINGS`]), so a resumed run with today's defaults reruns them.
    #[serde(default = "default_settings")]
    pub settings: String,
    pub verdict: String,
    /// The reference verdict (empty when none).
    pub expected: String,
    /// `sat` answered for an `unsat` reference or the reverse.
    pub wrong: bool,
    pub time_s: f64,
    pub boxes: usize,
    /// Nodes of the whole-box branch and bound on ReLU splits (0 in rows written before
    /// the column existed).
    #[serde(default)]
    pub nodes: usize,
    pub falsify_points: usize,
    /// How each conjunction was decided (`interval`, `crown`, `alpha`, `lp-last`,
    /// `crown+split`, `relu-bab`, `reached`, `open`), joined by `;`.
    pub methods: String,
    /// Why the instance could not be run (verdict `error`), else empty.
    #[serde(default)]
    pub error: String,
}

/// The settings of `opts` that change a verdict, besides the timeout and the seed (which
/// have their own columns), in one word per setting: input splitting, the depth of ReLU
/// branch and bound, what boxes wider than [`crate::AUTO_LP_DIMS`] get (whole-box ReLU
/// branch and bound or input splitting), the LP rung, the falsifier's restarts; e.g.
/// `split=on relu_split=auto wide=relu-bab lp=auto restarts=10 line_search=on`. A resumed run keeps only rows with the
/// same settings.
pub fn settings(opts: &VerifyOptions) -> String {
    format!(
        "split={} relu_split={} wide={} lp={} restarts={} line_search={}",
        if opts.split { "on" } else { "off" },
        match opts.relu_split {
            crate::ReluSplit::Off => "off".to_string(),
            r => format!(
                "{}{}",
                r.word(),
                if opts.relu_split_beta { "" } else { "/no-beta" }
            ),
        },
        // What a box with more than AUTO_LP_DIMS coordinates of positive width gets.
        if !opts.split {
            "off"
        } else if opts.relu_split.whole_box(crate::AUTO_LP_DIMS + 1) {
            "relu-bab"
        } else {
            "input-split"
        },
        opts.lp.word(),
        opts.falsify.restarts,
        if opts.falsify.polish_dims + opts.falsify.edge_dims > 0 {
            "on"
        } else {
            "off"
        }
    )
}

/// True when `verdict` (a row's word) contradicts the reference: `sat` for an `unsat`
/// reference or the reverse.
pub fn contradicts(verdict: &str, reference: Option<&Verdict>) -> bool {
    matches!(
        (verdict, reference),
        ("sat", Some(Verdict::Unsat)) | ("unsat", Some(Verdict::Sat))
    )
}

impl InstanceRow {
    /// The reference verdict and `wrong` again, against `verdicts` (a resumed row is
    /// judged by the reference file of the run that reads it).
    pub fn judge(&mut self, verdicts: &HashMap<(String, String, String), Verdict>) {
        let reference = verdicts.get(&(
            self.benchmark.clone(),
            self.onnx.clone(),
            self.vnnlib.clone(),
        ));
        self.expected = reference.map_or(String::new(), |v| v.word().to_string());
        self.wrong = contradicts(&self.verdict, reference);
    }
}

/// The settings of rows written before the settings column existed (session 13's
/// defaults).
pub const OLD_DEFAULT_SETTINGS: &str =
    "split=on relu_split=off wide=input-split lp=auto restarts=10 line_search=off";

fn default_settings() -> String {
    OLD_DEFAULT_SETTINGS.to_string()
}

impl InstanceRow {
    /// The row's parameters, with no outcome yet (`time_s` measured from `start`).
    fn new(
        benchmark: &str,
        inst: &Instance,
        timeout_s: f64,
        seed: u64,
        expected: Option<&Verdict>,
        start: Instant,
    ) -> InstanceRow {
        InstanceRow {
            benchmark: benchmark.to_string(),
            onnx: inst.onnx.clone(),
            vnnlib: inst.vnnlib.clone(),
            competition_timeout_s: inst.timeout_s,
            timeout_s,
            seed,
            settings: String::new(),
            verdict: String::new(),
            expected: expected.map_or(String::new(), |v| v.word().to_string()),
            wrong: false,
            time_s: start.elapsed().as_secs_f64(),
            boxes: 0,
            nodes: 0,
            falsify_points: 0,
            methods: String::new(),
            error: String::new(),
        }
    }
}

/// A benchmark to run: its name in the verdicts file, its folder, the instances to run,
/// the reference verdicts and the cap on each instance's timeout.
#[derive(Debug, Clone, Copy)]
pub struct Suite<'a> {
    pub benchmark: &'a str,
    pub dir: &'a Path,
    pub instances: &'a [Instance],
    pub verdicts: &'a HashMap<(String, String, String), Verdict>,
    pub cap_s: Option<f64>,
}

/// Runs every instance of the suite (models read by `load`), with the timeout
/// `min(cap_s, competition's)` and `opts` otherwise. `progress` is called after each
/// instance (to print it and write its row at once); its error stops the run. An instance
/// whose files do not load or do not fit the model is an `error` row, not an error.
pub fn run_suite(
    suite: Suite<'_>,
    opts: &VerifyOptions,
    load: impl Fn(&Path) -> Result<Model, String>,
    mut progress: impl FnMut(&InstanceRow) -> Result<(), VerifyError>,
) -> Result<Vec<InstanceRow>, VerifyError> {
    let Suite {
        benchmark,
        dir,
        instances,
        verdicts,
        cap_s,
    } = suite;
    let mut models: HashMap<String, Model> = HashMap::new();
    let mut rows = Vec::new();
    for inst in instances {
        let timeout_s = cap_s.map_or(inst.timeout_s, |c| c.min(inst.timeout_s));
        let t = Instant::now();
        let expected = verdicts.get(&(
            benchmark.to_string(),
            inst.onnx.clone(),
            inst.vnnlib.clone(),
        ));
        // A file that does not load or a property that does not fit the model is an
        // `error` row (with its message), and the run goes on.
        let mut attempt = || -> Result<Report, String> {
            if !models.contains_key(&inst.onnx) {
                let m = load(&dir.join(&inst.onnx))?;
                models.insert(inst.onnx.clone(), m);
            }
            let model = &models[&inst.onnx];
            let prop = vnnlib::read_property(dir.join(&inst.vnnlib)).map_err(|e| e.to_string())?;
            let o = VerifyOptions {
                timeout: Duration::from_secs_f64(timeout_s),
                ..opts.clone()
            };
            verify(model, &prop, &o).map_err(|e| format!("{} on {}: {e}", inst.vnnlib, inst.onnx))
        };
        // One row: the outcome's fields, or an `error` row with the message.
        let row = match attempt() {
            Ok(r) => InstanceRow {
                verdict: r.verdict.word().to_string(),
                boxes: r.boxes,
                nodes: r.nodes,
                wrong: contradicts(r.verdict.word(), expected),
                falsify_points: r.falsify_points,
                methods: r
                    .conjunctions
                    .iter()
                    .map(|c| c.method.clone().unwrap_or_else(|| c.status.to_string()))
                    .collect::<Vec<_>>()
                    .join(";"),
                error: String::new(),
                ..InstanceRow::new(benchmark, inst, timeout_s, opts.seed, expected, t)
            },
            Err(error) => InstanceRow {
                verdict: "error".into(),
                error,
                ..InstanceRow::new(benchmark, inst, timeout_s, opts.seed, expected, t)
            },
        };
        let row = InstanceRow {
            settings: settings(opts),
            ..row
        };
        progress(&row)?;
        rows.push(row);
    }
    Ok(rows)
}

/// A CSV file of rows written one at a time and flushed after each, so that a run that
/// is stopped keeps every finished row (and `--resume` goes on from there).
pub struct RowWriter {
    path: std::path::PathBuf,
    w: csv::Writer<std::fs::File>,
}

impl RowWriter {
    /// Creates (truncates) `path`; the header comes with the first row.
    pub fn create(path: &Path) -> Result<RowWriter, VerifyError> {
        let w = csv::Writer::from_path(path)
            .map_err(|e| VerifyError::Suite(format!("{}: {e}", path.display())))?;
        Ok(RowWriter {
            path: path.to_path_buf(),
            w,
        })
    }

    /// Appends one row and flushes it to disk.
    pub fn write(&mut self, row: &InstanceRow) -> Result<(), VerifyError> {
        let path = self.path.display().to_string();
        let err = |e: String| VerifyError::Suite(format!("{path}: {e}"));
        self.w.serialize(row).map_err(|e| err(e.to_string()))?;
        self.w.flush().map_err(|e| err(e.to_string()))
    }
}

/// Writes the rows as CSV (with a header).
pub fn write_rows(path: &Path, rows: &[InstanceRow]) -> Result<(), VerifyError> {
    let mut w = RowWriter::create(path)?;
    for r in rows {
        w.write(r)?;
    }
    Ok(())
}

/// Reads rows written by [`write_rows`] (to resume a run).
///
/// Errors: a file that is not such a CSV (its header must name the columns that identify
/// an instance and its answer, even when no row follows), a row that does not parse.
pub fn read_rows(path: &Path) -> Result<Vec<InstanceRow>, VerifyError> {
    let err = |e: String| VerifyError::Suite(format!("{}: {e}", path.display()));
    let mut r = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let header = r.headers().map_err(|e| err(e.to_string()))?.clone();
    if !header.is_empty() {
        for column in [
            "benchmark",
            "onnx",
            "vnnlib",
            "timeout_s",
            "seed",
            "verdict",
        ] {
            if !header.iter().any(|h| h == column) {
                return Err(err(format!(
                    "not a results file of `vnncomp` (no column {column:?} in its header)"
                )));
            }
        }
    }
    r.deserialize()
        .map(|row| row.map_err(|e| err(e.to_string())))
        .collect()
}

/// The instances of shard `i` of `n` (every `n`-th, starting at `i`), so that a job
/// array splits a benchmark across machines.
pub fn shard(instances: Vec<Instance>, i: usize, n: usize) -> Vec<Instance> {
    instances
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % n == i)
        .map(|(_, x)| x)
        .collect()
}
