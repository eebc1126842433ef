//! Input specifications (`mnist:test:17`, a JSON file) and dataset selection for the CLI.

use anyhow::{bail, Context, Result};
use serde_json::Value;

use network::{data, Dataset, Model};

/// A parsed input: the vector and, when known, its label.
pub struct InputSpec {
    pub x: Vec<f64>,
    pub label: Option<usize>,
    pub label_source: &'static str,
}

/// Parses `mnist:test:N`, `mnist:train:N` or a JSON file holding a list of numbers or
/// `{"x": [...], "label": y}`; the vector must fit the model.
pub fn parse_input(spec: &str, model: &Model) -> Result<InputSpec> {
    let parsed = if let Some(rest) = spec.strip_prefix("mnist:") {
        let (split, idx) = rest
            .split_once(':')
            .with_context(|| format!("input {spec:?}: expected mnist:test:N or mnist:train:N"))?;
        let i: usize = idx
            .parse()
            .with_context(|| format!("input {spec:?}: {idx:?} is not an index"))?;
        let (train, test) = data::mnist_split(data::DEFAULT_SPLIT_SEED)?;
        let set = match split {
            "test" => test,
            "train" => train,
            o => bail!("input {spec:?}: split {o:?} is neither test nor train"),
        };
        let (x, y) = set.get(i)?;
        InputSpec {
            x: x.as_slice().to_vec(),
            label: Some(y),
            label_source: "dataset",
        }
    } else {
        let text = std::fs::read_to_string(spec)
            .with_context(|| format!("cannot read the input file {spec}"))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("{spec}: not valid JSON"))?;
        let (arr, label) = match &v {
            Value::Array(a) => (a.clone(), None),
            Value::Object(o) => {
                let a = o.get("x").and_then(Value::as_array).with_context(|| {
                    format!("{spec}: expected a list of numbers or an object with a list \"x\"")
                })?;
                let label = match o.get("label") {
                    None | Some(Value::Null) => None,
                    Some(l) => Some(l.as_u64().with_context(|| {
                        format!("{spec}: \"label\" must be a class index, got {l}")
                    })? as usize),
                };
                (a.clone(), label)
            }
            _ => bail!("{spec}: expected a list of numbers or an object with a list \"x\""),
        };
        let x: Vec<f64> = arr
            .iter()
            .enumerate()
            .map(|(i, e)| match e.as_f64() {
                Some(f) if f.is_finite() => Ok(f),
                _ => bail!("{spec}: entry {i} is {e}, not a finite number"),
            })
            .collect::<Result<_>>()?;
        InputSpec {
            x,
            label,
            label_source: "file",
        }
    };
    model
        .check_input(&parsed.x)
        .with_context(|| format!("input {spec}"))?;
    Ok(parsed)
}

/// `mnist-test`, `mnist-train`, `csv:PATH` or `idx:IMAGES,LABELS`.
pub fn load_dataset(spec: &str, split_seed: u64) -> Result<Dataset> {
    Ok(match spec {
        "mnist-test" => data::mnist_split(split_seed)?.1,
        "mnist-train" => data::mnist_split(split_seed)?.0,
        s if s.starts_with("csv:") => data::load_mnist_csv(&s[4..])?,
        s if s.starts_with("idx:") => {
            let (i, l) = s[4..]
                .split_once(',')
                .with_context(|| format!("--data {s:?}: expected idx:IMAGES,LABELS"))?;
            data::load_idx(i, l)?
        }
        o => bail!("--data {o:?}: expected mnist-test, mnist-train, csv:PATH or idx:IMAGES,LABELS"),
    })
}

/// Indices `start, start + every, ..` (`count` of them), checked against the dataset's
/// size.
pub fn range(data: &Dataset, start: usize, count: usize, every: usize) -> Result<Vec<usize>> {
    if count == 0 {
        bail!("--count must be at least 1");
    }
    if every == 0 {
        bail!("--every must be at least 1");
    }
    // The last example taken: start + (count - 1) * every.
    let last = (count - 1)
        .checked_mul(every)
        .and_then(|d| start.checked_add(d))
        .filter(|&l| l < data.len());
    match last {
        Some(_) => Ok((0..count).map(|i| start + i * every).collect()),
        None => bail!(
            "examples {start}, {}, .. ({count} of them, every {every}) are out of range: {} has {} examples",
            start.saturating_add(every),
            data.name,
            data.len()
        ),
    }
}
