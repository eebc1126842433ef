//! The exact forward pass (`network::exact`): equal to the f64 forward pass where f64 is
//! exact (small dyadic weights and inputs), within rounding elsewhere, and ordered.

use std::cmp::Ordering;

use network::{objective_exact, preactivations_exact, Architecture, Dyadic, Init, Model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Weights, biases and inputs that are multiples of 1/8 and small: every f64 operation of
/// the forward pass is exact, so the two forward passes agree to the last bit, layer by
/// layer (ReLU included: some pre-activations are negative).
#[test]
fn exact_forward_equals_f64_where_f64_is_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (arch, seed) in [
        (Architecture::mlp(&[3, 5, 4, 2]), 0u64),
        (Architecture::mlp(&[2, 3, 3, 3, 1]), 1),
        (
            Architecture::conv_net(
                network::Shape::Image { c: 1, h: 4, w: 5 },
                &[(2, 3, 2, 1)],
                &[3],
            ),
            2,
        ),
    ] {
        let base = arch.init(Init::Paper, seed).unwrap();
        let m: Model = base
            .map_parameters(|_, w, b| {
                w.iter_mut().for_each(|v| *v = (*v * 8.0).round() / 8.0);
                b.iter_mut().for_each(|v| *v = (*v * 8.0).round() / 8.0);
            })
            .unwrap();
        for _ in 0..10 {
            let x: Vec<f64> = (0..m.input_len())
                .map(|_| (rng.random_range(-8.0..8.0f64)).round() / 8.0)
                .collect();
            let exact = preactivations_exact(&m, &x).unwrap();
            let float = m.preactivations_batch(network::as_column(&x)).unwrap();
            assert_eq!(exact.len(), float.len());
            let mut negative = 0;
            for (e, f) in exact.iter().zip(&float) {
                assert_eq!(e.len(), f.len());
                for (a, b) in e.iter().zip(f) {
                    assert_eq!(
                        a.cmp_f64(*b),
                        Some(Ordering::Equal),
                        "{} vs {b}",
                        a.to_f64()
                    );
                    assert_eq!(a.to_f64(), *b);
                    negative += usize::from(*b < 0.0);
                }
            }
            let c: Vec<f64> = (0..m.output_len()).map(|k| k as f64 - 0.5).collect();
            let want: f64 = c
                .iter()
                .zip(float.last().unwrap())
                .map(|(a, b)| a * b)
                .sum();
            assert_eq!(objective_exact(&m, &x, &c).unwrap().to_f64(), want);
            let _ = negative;
        }
    }
}

/// Elsewhere the exact values are within the forward pass's rounding, and dyadic
/// arithmetic orders, multiplies and converts as the real numbers do.
#[test]
fn exact_arithmetic_orders_and_rounds() {
    let m = Architecture::mlp(&[4, 16, 16, 3])
        .init(Init::Paper, 9)
        .unwrap();
    let x = [0.3, -0.7, 0.11, 0.05];
    let exact = preactivations_exact(&m, x).unwrap();
    let float = m.preactivations_batch(network::as_column(&x)).unwrap();
    for (e, f) in exact.iter().zip(&float) {
        for (a, b) in e.iter().zip(f) {
            assert!((a.to_f64() - b).abs() <= 1e-12 * b.abs().max(1.0));
        }
    }
    let d = |v: f64| Dyadic::from_f64(v).unwrap();
    assert_eq!(d(1.5).mul(&d(-2.25)).to_f64(), -3.375);
    assert_eq!(d(3.0).mul(&d(0.5)).cmp_f64(1.5), Some(Ordering::Equal));
    assert!(d(0.1) < d(0.2) && d(-1.0) < d(0.0));
    assert_eq!(d(0.1).partial_cmp(&d(0.1)), Some(Ordering::Equal));
    assert!(d(1e300).mul(&d(1e10)).to_f64().is_infinite());
    assert!(d(1e300).mul(&d(1e10)) > d(f64::MAX));
    assert_eq!(d(123456.789).to_f64(), 123456.789);
    assert_eq!(d(-7.0e-300).to_f64(), -7.0e-300);
    // Subnormals: 2^-1074 and 3 * 2^-1074 (exponent -1074, no implicit bit).
    let tiny = f64::from_bits(1);
    assert_eq!(d(tiny).cmp_f64(tiny), Some(Ordering::Equal));
    assert_eq!(
        d(tiny).add(&d(tiny)).add(&d(tiny)).cmp_f64(3.0 * tiny),
        Some(Ordering::Equal)
    );
    assert!(d(tiny) < d(f64::MIN_POSITIVE) && d(-tiny) < d(0.0));
    assert_eq!(d(-3.0 * tiny).to_f64(), -3.0 * tiny);
    // A long product has a mantissa far wider than f64's range (30 x 53 bits): the
    // conversion must keep its leading bits, not overflow.
    let one_plus = d(1.0 + f64::EPSILON);
    let mut p = d(1.0);
    for _ in 0..30 {
        p = p.mul(&one_plus);
    }
    assert!(
        (p.to_f64() - (1.0 + 30.0 * f64::EPSILON)).abs() <= 4.0 * f64::EPSILON,
        "{}",
        p.to_f64()
    );
    assert_eq!(m.hidden_layers(), 2);
    assert_eq!(
        Architecture::mlp(&[2, 3])
            .init(Init::Paper, 0)
            .unwrap()
            .hidden_layers(),
        0
    );
}
