//! `table1` (Table 1) on a tiny setting (the first 20 test digits, 2 of them exact): its
//! CSV has every column needed to re-derive a row, the errors are fractions in the order
//! the definitions force (every attacked or misclassified digit is uncertified, so the
//! attack and clean errors sit below the robust error bound; the exact range is ordered),
//! and the printed table carries the paper's rows. `--full-mnist` reads IDX files (here
//! 12 shipped digits written as IDX) and gives the same row as the shipped data.
#![cfg(feature = "training")]

mod common;

use common::Csv;

#[test]
fn table1_writes_one_row_per_model() {
    let (dir, stdout) = common::run_into_temp(
        env!("CARGO_BIN_EXE_table1"),
        "table1",
        &[
            "--digits",
            "20",
            "--exact-digits",
            "2",
            "--exact-timeout",
            "1",
            "--exact-max-nodes",
            "20",
        ],
    );
    assert!(
        stdout.contains("| model | test digits |")
            && stdout.contains("81.68%")
            && stdout.contains("5.82%"),
        "{stdout}"
    );
    let csv = Csv::read(&dir, "table1");
    let col = |c: &str| csv.col(c);
    for c in [
        "model",
        "file",
        "data",
        "examples",
        "eps",
        "exact_timeout_s",
        "exact_max_nodes",
        "pgd_steps",
        "pgd_step_size",
        "batch",
        "seed",
        "seconds",
    ] {
        col(c);
    }
    assert_eq!(csv.rows.len(), 2, "standard and robust");
    for r in &csv.rows {
        let n = |c: &str| r[col(c)].parse::<f64>().unwrap();
        assert_eq!(n("examples"), 20.0, "{r:?}");
        assert_eq!(n("exact_digits"), 2.0, "{r:?}");
        for c in [
            "clean_error",
            "fgsm_error",
            "pgd_error",
            "robust_error_bound",
            "exact_error_lo",
            "exact_error_hi",
        ] {
            assert!((0.0..=1.0).contains(&n(c)), "{c}: {r:?}");
        }
        // Every attacked digit is uncertified (checked digit by digit by the binary), so
        // the attack errors sit below the bound; the exact range is ordered.
        assert!(n("pgd_error") <= n("robust_error_bound"), "{r:?}");
        assert!(n("fgsm_error") <= n("robust_error_bound"), "{r:?}");
        assert!(n("clean_error") <= n("robust_error_bound"), "{r:?}");
        assert!(n("exact_error_lo") <= n("exact_error_hi"), "{r:?}");
        // Every (20 / 2)-th digit.
        assert_eq!(&r[col("exact_digit_indices")], "0;10", "{r:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn full_mnist_reads_idx_files() {
    let idx = std::env::temp_dir().join(format!("convex-outer-table1-idx-{}", std::process::id()));
    common::write_idx(&idx, 12);
    let args = ["--exact-digits", "0", "--digits", "12"];
    let (shipped, _) = common::run_into_temp(env!("CARGO_BIN_EXE_table1"), "table1-shipped", &args);
    let idx_s = idx.to_str().unwrap();
    let mut with_idx = args.to_vec();
    with_idx.extend(["--full-mnist", idx_s]);
    let (full, _) = common::run_into_temp(env!("CARGO_BIN_EXE_table1"), "table1-idx", &with_idx);
    let (a, b) = (Csv::read(&shipped, "table1"), Csv::read(&full, "table1"));
    for c in [
        "clean_error",
        "fgsm_error",
        "pgd_error",
        "robust_error_bound",
        "examples",
    ] {
        for (ra, rb) in a.rows.iter().zip(&b.rows) {
            assert_eq!(ra[a.col(c)], rb[b.col(c)], "{c}: {ra:?} vs {rb:?}");
        }
    }
    assert!(
        b.rows[0][b.col("data")].contains("t10k-images-idx3-ubyte"),
        "{:?}",
        b.rows[0]
    );
    // A folder without the files is an error naming it.
    let err = common::run_failing(
        env!("CARGO_BIN_EXE_table1"),
        "table1-missing",
        &["--full-mnist", "/nonexistent/mnist"],
    );
    assert!(err.contains("/nonexistent/mnist"), "{err}");
    // Flags that cannot be honoured are errors, not silently changed.
    for (args, what) in [
        (&["--digits", "5000"][..], "--digits 5000"),
        (
            &["--digits", "3", "--exact-digits", "5"][..],
            "--exact-digits 5",
        ),
        (&["--batch", "0"][..], "--batch"),
        (&["--exact-max-nodes", "0"][..], "--exact-max-nodes"),
    ] {
        let err = common::run_failing(env!("CARGO_BIN_EXE_table1"), "table1-flags", args);
        assert!(err.contains(what), "{args:?}: {err}");
    }
    for d in [idx, shipped, full] {
        std::fs::remove_dir_all(d).ok();
    }
}
