//! `index_sets` on a tiny setting (three training digits per model): its CSV has every
//! column needed to re-derive a row, the three counts of each layer sum to its units and
//! agree with the fractions, the robust model has fewer unstable units than the standard
//! one on every layer (the paper's point), and both figures are written.

use std::process::Command;

#[test]
fn index_sets_writes_results_and_figures() {
    let dir = std::env::temp_dir().join(format!("convex-outer-index-sets-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_index_sets"))
        .args(["--digits", "3", "--out-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("| model | layer | units | I- (off) |") && stdout.contains("Fig. 10"),
        "{stdout}"
    );
    let mut r = csv::Reader::from_path(dir.join("results/index_sets.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |c: &str| {
        header
            .iter()
            .position(|h| h == c)
            .unwrap_or_else(|| panic!("missing column {c}"))
    };
    for c in [
        "split_seed",
        "train_index",
        "label",
        "eps",
        "bounds",
        "algorithm1_ms",
    ] {
        col(c);
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(
        rows.len(),
        2 * 3 * 3,
        "2 models x 3 digits x 3 hidden layers"
    );
    let get = |x: &csv::StringRecord, c: &str| -> f64 { x[col(c)].parse().unwrap() };
    // Unstable units per (model, layer), summed over digits.
    let mut unstable = std::collections::HashMap::new();
    for x in &rows {
        let units = get(x, "units");
        let (m, p, i) = (get(x, "i_minus"), get(x, "i_plus"), get(x, "i_unstable"));
        assert_eq!(m + p + i, units, "{x:?}");
        assert_eq!(get(x, "frac_unstable"), i / units, "{x:?}");
        assert_eq!(get(x, "frac_minus"), m / units, "{x:?}");
        *unstable
            .entry((x[col("model")].to_string(), x[col("layer")].to_string()))
            .or_insert(0.0) += i;
    }
    for layer in ["1", "2", "3"] {
        let s = unstable[&("standard".to_string(), layer.to_string())];
        let r = unstable[&("robust".to_string(), layer.to_string())];
        assert!(r < s, "layer {layer}: robust {r} unstable, standard {s}");
    }
    for f in ["figures/index_sets.png", "figures/index_sets.svg"] {
        assert!(
            std::fs::metadata(dir.join(f)).unwrap().len() > 1000,
            "{f} is empty"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
