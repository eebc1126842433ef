//! Proven bounds are sound *and tight* where the exact answer is known.
//!
//! When every ReLU is active over the input box, the network is affine there, and
//! interval (first layer), Algorithm 1 (every layer) and J (the objective) must all equal
//! the exact minimum over the box up to their rounding margins. The exact minimum is the
//! network's value at one corner of the box, computed in exact dyadic arithmetic
//! (`network::exact`); the box has dyadic centre and radius so its corners are floats.
//!
//! Tolerance: the margins are a priori rounding-error bounds, `gamma_n` times the
//! magnitudes involved (`n` at most a few dozen here, so about `1e-14` relative). A bound
//! below the exact value by more than `TIGHT = 1e-12` of the magnitude has a margin
//! inflated ~100-fold, which is a bug (it costs certificates); one above it is unsound.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use dual::{algorithm1, dual_objective, interval_bounds, AlphaRule, InputDomain, Stability};
use network::{objective_exact, preactivations_exact, Layer, Model, Shape};

const TIGHT: f64 = 1e-12;

/// The same for Algorithm 1 with f32 columns (`Precision::F32`): its margins are a priori
/// `gamma_{n+6}` for `u = 2^-24` times the magnitudes; the widest layer here (`n = 300`)
/// measures 3.1e-6 of the exact value's magnitude, so `1e-5` flags a margin inflated
/// ~3-fold.
const TIGHT_F32: f64 = 1e-5;

/// A dense net `widths[0] - .. - widths[L]` whose biases keep every unit active on
/// `[-1, 1]^n`.
fn all_active(widths: &[usize], seed: u64) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut layers = Vec::new();
    for (i, w) in widths.windows(2).enumerate() {
        let hidden = i + 2 < widths.len();
        layers.push(Layer::Dense {
            // Hidden layers after the first have positive weights, so active units
            // stay active; the first and last layers mix signs.
            weight: (0..w[0] * w[1])
                .map(|_| {
                    if i == 0 || !hidden {
                        rng.random_range(-1.0..1.0)
                    } else {
                        rng.random_range(0.1..1.0)
                    }
                })
                .collect(),
            bias: (0..w[1])
                .map(|_| {
                    let b: f64 = rng.random_range(-1.0..1.0);
                    if hidden {
                        b + 2.0 * w[0] as f64
                    } else {
                        b
                    }
                })
                .collect(),
            out_features: w[1],
            in_features: w[0],
        });
        if hidden {
            layers.push(Layer::Relu);
        }
    }
    Model::new(Shape::Flat(widths[0]), layers).unwrap()
}

/// The affine map the (all-active) network computes: `A` (rows of logits or of a hidden
/// layer's units, row-major over the inputs), from unit-vector differences of the float
/// forward pass; only its signs are used, and they are asserted to be clear.
fn jacobian_rows(m: &Model, layer: usize, x: &[f64]) -> Vec<Vec<f64>> {
    let base = m.preactivations_batch(network::as_column(x)).unwrap()[layer].clone();
    let n = x.len();
    let mut rows = vec![vec![0.0; n]; base.len()];
    for j in 0..n {
        let mut xj = x.to_vec();
        xj[j] += 0.5;
        let z = m.preactivations_batch(network::as_column(&xj)).unwrap()[layer].clone();
        for k in 0..base.len() {
            rows[k][j] = (z[k] - base[k]) / 0.5;
            assert!(
                rows[k][j].abs() > 1e-6,
                "a tiny slope makes the corner ambiguous"
            );
        }
    }
    rows
}

/// The corner of `x +- eps` that minimises `row . x'`.
fn min_corner(x: &[f64], eps: f64, row: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(row)
        .map(|(&v, &a)| if a > 0.0 { v - eps } else { v + eps })
        .collect()
}

#[test]
fn bounds_equal_the_exact_minimum_of_an_affine_network() {
    for (seed, widths) in [
        (1u64, vec![3, 5, 4]),
        (2, vec![4, 6, 6, 3]),
        (3, vec![2, 3, 3, 3, 2]),
        // A layer wider than the 256-row blocks Algorithm 1 works in.
        (4, vec![3, 300, 4, 2]),
    ] {
        let m = all_active(&widths, seed);
        let x: Vec<f64> = (0..widths[0]).map(|j| (j as f64 - 1.0) / 8.0).collect();
        let eps = 1.0 / 16.0;
        let dom = InputDomain::new(&x, eps, None).unwrap();
        let a1 = algorithm1(&m, &dom).unwrap();
        let (a32, _) =
            dual::algorithm1_with(&m, &dom, dual::ColumnForm::Local, dual::Precision::F32).unwrap();
        let ib = interval_bounds(&m, &dom).unwrap();
        for (i, l) in a1.lower.iter().enumerate().take(m.hidden_layers()) {
            for (j, &lj) in l.iter().enumerate() {
                assert_eq!(
                    dual::stability(lj, a1.upper[i][j]),
                    Stability::On,
                    "seed {seed}: layer {i} unit {j} must be active"
                );
            }
        }
        for layer in 0..widths.len() - 1 {
            let rows = jacobian_rows(&m, layer, &x);
            for (k, row) in rows.iter().enumerate() {
                let lo_x = min_corner(&x, eps, row);
                let neg: Vec<f64> = row.iter().map(|a| -a).collect();
                let hi_x = min_corner(&x, eps, &neg);
                let lo = preactivations_exact(&m, &lo_x).unwrap()[layer][k].to_f64();
                let hi = preactivations_exact(&m, &hi_x).unwrap()[layer][k].to_f64();
                let scale = lo.abs().max(hi.abs()).max(1.0);
                let mut checks = vec![
                    ("algorithm 1", a1.lower[layer][k], a1.upper[layer][k], TIGHT),
                    (
                        "algorithm 1 f32",
                        a32.lower[layer][k],
                        a32.upper[layer][k],
                        TIGHT_F32,
                    ),
                ];
                if layer == 0 {
                    checks.push(("interval", ib.lower[0][k], ib.upper[0][k], TIGHT));
                }
                for (what, l, u, tight) in checks {
                    let tol = tight * scale;
                    // Sound: exact conversions to f64 above may round, so compare the
                    // exact values themselves.
                    let ex_lo = preactivations_exact(&m, &lo_x).unwrap()[layer][k].clone();
                    let ex_hi = preactivations_exact(&m, &hi_x).unwrap()[layer][k].clone();
                    assert_ne!(
                        ex_lo.cmp_f64(l),
                        Some(std::cmp::Ordering::Less),
                        "{what}: lower {l} above exact"
                    );
                    assert_ne!(
                        ex_hi.cmp_f64(u),
                        Some(std::cmp::Ordering::Greater),
                        "{what}: upper {u} below exact"
                    );
                    // Tight.
                    assert!(
                        lo - l <= tol,
                        "seed {seed} {what} layer {layer} unit {k}: lower {l} vs exact {lo}"
                    );
                    assert!(
                        u - hi <= tol,
                        "seed {seed} {what} layer {layer} unit {k}: upper {u} vs exact {hi}"
                    );
                }
            }
        }
        // J for every margin c = e_y - e_t equals the exact minimum of c^T f.
        let last = widths.len() - 2;
        let rows = jacobian_rows(&m, last, &x);
        let n_out = *widths.last().unwrap();
        let mut c = Vec::new();
        let mut want = Vec::new();
        for t in 1..n_out {
            let mut ct = vec![0.0; n_out];
            ct[0] = 1.0;
            ct[t] = -1.0;
            let slope: Vec<f64> = (0..widths[0]).map(|j| rows[0][j] - rows[t][j]).collect();
            let corner = min_corner(&x, eps, &slope);
            want.push(objective_exact(&m, &corner, &ct).unwrap());
            c.extend(ct);
        }
        let c = network::DMatrix::from_row_slice(n_out - 1, n_out, &c);
        let j = dual_objective(&m, &dom, &a1, &c, &AlphaRule::Paper).unwrap();
        for (t, w) in want.iter().enumerate() {
            let v = j.values[t];
            assert_ne!(
                w.cmp_f64(v),
                Some(std::cmp::Ordering::Less),
                "J {v} above exact"
            );
            let wf = w.to_f64();
            assert!(
                wf - v <= TIGHT * wf.abs().max(1.0),
                "seed {seed} target {t}: J {v} vs exact {wf}"
            );
            assert!(
                (j.nominal[t] - wf).abs() <= TIGHT * wf.abs().max(1.0),
                "nominal J {}",
                j.nominal[t]
            );
        }
    }
}
