//! `index_sets` on a tiny setting (three training digits per model): its CSV has every
//! column needed to re-derive a row, the three counts of each layer sum to its units and
//! agree with the fractions, the robust model has fewer unstable units than the standard
//! one on every layer (the paper's point), and both figures are written.

mod common;

use common::Csv;

#[test]
fn index_sets_writes_results_and_figures() {
    let (dir, stdout) = common::run_into_temp(
        env!("CARGO_BIN_EXE_index_sets"),
        "index-sets",
        &["--digits", "3"],
    );
    assert!(
        stdout.contains("| model | layer | units | I- (off) |") && stdout.contains("Fig. 10"),
        "{stdout}"
    );
    let csv = Csv::read(&dir, "index_sets");
    let col = |c: &str| csv.col(c);
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
    let rows = &csv.rows;
    assert_eq!(
        rows.len(),
        2 * 3 * 3,
        "2 models x 3 digits x 3 hidden layers"
    );
    let get = |x: &csv::StringRecord, c: &str| -> f64 { x[col(c)].parse().unwrap() };
    // Unstable units per (model, layer), summed over digits.
    let mut unstable = std::collections::HashMap::new();
    for x in rows {
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
    common::check_figures_and_clean(&dir, "index_sets");
}
