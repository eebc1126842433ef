//! `exact` on a tiny setting (two digits per model, short budgets): its CSV has every
//! column needed to re-derive a row, each outcome agrees with the row's numbers (an
//! attacked digit has a point with margin <= 0 and no positive bound; a certified one a
//! positive bound of its kind), and both figures are written.

mod common;

use common::Csv;

#[test]
fn exact_writes_results_and_figures() {
    let (dir, stdout) = common::run_into_temp(
        env!("CARGO_BIN_EXE_exact"),
        "exact",
        &["--digits", "2", "--timeout", "2", "--max-nodes", "20"],
    );
    assert!(
        stdout.contains("| model | digits |") && stdout.contains("4.38%"),
        "{stdout}"
    );
    let csv = Csv::read(&dir, "exact");
    let col = |c: &str| csv.col(c);
    for c in [
        "model",
        "digit",
        "label",
        "predicted",
        "outcome",
        "eps",
        "timeout_s",
        "max_nodes",
        "seed",
        "nodes",
        "ms",
    ] {
        col(c);
    }
    let rows = &csv.rows;
    assert_eq!(rows.len(), 4, "2 models x 2 digits");
    let num = |x: &csv::StringRecord, c: &str| -> f64 { x[col(c)].parse().unwrap() };
    for x in rows {
        let outcome = &x[col("outcome")];
        let (wk, crown, ex, at) = (
            num(x, "wk_min_margin"),
            num(x, "crown_min_margin"),
            num(x, "exact_lower_min_margin"),
            num(x, "attack_min_margin"),
        );
        match outcome {
            "misclassified" => assert_ne!(x[col("label")], x[col("predicted")]),
            "attacked by PGD" | "attacked by branch and bound" => {
                // CROWN is not computed (NaN) once PGD attacks the digit.
                assert!(
                    at <= 0.0 && wk <= 0.0 && (crown.is_nan() || crown <= 0.0) && ex <= 0.0,
                    "{x:?}"
                )
            }
            "certified by WK" => assert!(wk > 0.0 && wk <= at, "{x:?}"),
            "certified by CROWN" => assert!(crown > 0.0 && wk <= 0.0, "{x:?}"),
            "proven by branch and bound" => assert!(ex > 0.0 && crown <= 0.0, "{x:?}"),
            "undecided" => assert!(ex <= 0.0 && at > 0.0, "{x:?}"),
            o => panic!("unknown outcome {o}"),
        }
    }
    common::check_figures_and_clean(&dir, "exact");
}

#[test]
fn exact_reads_the_full_test_set_from_idx_files() {
    // The shipped test digits written as IDX files: the same digits, the same rows.
    let idx = std::env::temp_dir().join(format!("convex-outer-exact-idx-{}", std::process::id()));
    common::write_idx(&idx, 1000);
    let args = [
        "--digits",
        "2",
        "--robust-only",
        "--timeout",
        "1",
        "--max-nodes",
        "10",
    ];
    let (shipped, _) = common::run_into_temp(env!("CARGO_BIN_EXE_exact"), "exact-shipped", &args);
    let mut with_idx = args.to_vec();
    with_idx.extend(["--full-mnist", idx.to_str().unwrap()]);
    let (full, _) = common::run_into_temp(env!("CARGO_BIN_EXE_exact"), "exact-idx", &with_idx);
    let (a, b) = (Csv::read(&shipped, "exact"), Csv::read(&full, "exact"));
    assert_eq!(a.rows.len(), 2);
    for c in ["digit", "label", "predicted", "outcome", "wk_min_margin"] {
        for (ra, rb) in a.rows.iter().zip(&b.rows) {
            assert_eq!(ra[a.col(c)], rb[b.col(c)], "{c}: {ra:?} vs {rb:?}");
        }
    }
    for d in [idx, shipped, full] {
        std::fs::remove_dir_all(d).ok();
    }
}
