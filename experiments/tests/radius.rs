//! `radius` on a tiny setting (two digits per model): its CSV has every column needed to
//! re-derive a row, each radius is positive or the digit is not certified at 0, the
//! bracket is within the tolerance, and both figures are written.

mod common;

use common::Csv;

#[test]
fn radius_writes_results_and_figures() {
    let (dir, stdout) =
        common::run_into_temp(env!("CARGO_BIN_EXE_radius"), "radius", &["--digits", "2"]);
    assert!(
        stdout.contains("| model | digits |") && stdout.contains("0.007"),
        "{stdout}"
    );
    let csv = Csv::read(&dir, "radius");
    let col = |c: &str| csv.col(c);
    for c in [
        "model",
        "split_seed",
        "test_index",
        "label",
        "predicted",
        "correct",
        "method",
        "stop",
        "evaluations",
        "time_ms",
    ] {
        col(c);
    }
    let rows = &csv.rows;
    assert_eq!(rows.len(), 4, "2 models x 2 digits");
    for x in rows {
        let radius: f64 = x[col("radius")].parse().unwrap();
        let stop = &x[col("stop")];
        if stop == "Converged" {
            let up: f64 = x[col("first_failing_eps")].parse().unwrap();
            assert!(
                radius > 0.0 && up > radius && up - radius <= 1e-3 * radius,
                "{x:?}"
            );
        } else {
            assert!(stop == "NotCertifiedAtZero" && radius == 0.0, "{x:?}");
        }
    }
    common::check_figures_and_clean(&dir, "radius");
}
