//! Appendix B.1's setting: robust training of 2-100-100-100-100-2 on the 12-point toy
//! problem at eps 0.08 (Adam, lr 1e-3, full batch, exact dual). Checked here: robust
//! error 0 on the 12 training points, certified afterwards by the f64 `dual` crate (not
//! by the f32 training bound), and no attack beats a certificate (PGD's point keeps a
//! margin >= the certified bound).
//!
//! The points are those of data seed 1. Not every draw of 12 points is this easy for
//! the paper's recipe: data seed 0's closest opposite-label pair is 0.165 apart (l-inf),
//! so their eps boxes leave a gap of 0.005, and after 4,000 epochs 10 of its 12 points
//! are certified; seed 3 (closest pair 0.177) reaches 11 of 12 after 3,000. Seeds 1
//! (0.175) and 2 (0.184) reach 12 of 12 (seed 1 by epoch 500). Measured with the same
//! settings as this test.

use candle_core::{DType, Device};
use dual::certify;
use network::{data::toy2d, Architecture, Init};
use train::{pgd, train, PgdConfig, Progress, TensorNet, TrainConfig};

#[test]
fn robust_training_reaches_robust_error_zero_and_pgd_never_beats_a_certificate() {
    let data = toy2d(12, 0.16, 1).unwrap();
    let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2])
        .init(Init::Standard, 1)
        .unwrap();
    let net = TensorNet::from_model(&model, DType::F32, &Device::Cpu).unwrap();
    let cfg = TrainConfig {
        robust: true,
        eps: 0.08,
        eps_start: 0.08,
        ramp_epochs: 0,
        epochs: 1000,
        batch_size: 12,
        lr: 1e-3,
        seed: 1,
        projections: None,
        first_epoch: 0,
    };
    let mut batches = 0;
    let hist = train(&net, &data, &cfg, &mut |p| {
        if let Progress::Batch { .. } = p {
            batches += 1;
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!((hist.len(), batches), (1000, 1000));
    assert!(
        hist[999].loss < hist[0].loss,
        "robust loss did not fall: {} -> {}",
        hist[0].loss,
        hist[999].loss
    );
    let trained = net.to_model().unwrap();
    assert_eq!(
        hist[999].robust_error,
        Some(0.0),
        "training bound: {:?}",
        hist[999]
    );
    let certified = (0..12)
        .filter(|&i| {
            let (x, y) = data.example(i);
            certify(&trained, x, y, 0.08, None).unwrap().certified
        })
        .count();
    assert_eq!(
        certified,
        12,
        "robust error by the f64 dual: {}/12",
        12 - certified
    );
    // No attack beats a certificate: PGD's point is still classified correctly, and its
    // margin is at least the certified bound.
    let xs: Vec<f64> = data.images.clone();
    let f64net = TensorNet::from_model(&trained, DType::F64, &Device::Cpu).unwrap();
    let xt = f64net
        .batch(network::DMatrixView::from_slice(&xs, 2, xs.len() / 2))
        .unwrap();
    let adv = pgd(&f64net, &xt, &data.labels, &PgdConfig::new(0.08, None, 1)).unwrap();
    let adv = adv.to_vec2::<f64>().unwrap();
    for (i, a) in adv.iter().enumerate() {
        let (x, y) = data.example(i);
        assert!(
            a.iter().zip(x).all(|(p, q)| (p - q).abs() <= 0.08 + 1e-12),
            "PGD left the ball"
        );
        let f = trained.forward(a).unwrap();
        let margin = f[y] - f[1 - y];
        let cert = certify(&trained, x, y, 0.08, None).unwrap();
        let bound = cert.min_margin();
        assert!(
            margin >= bound - 1e-9,
            "point {i}: PGD margin {margin} below the certified bound {bound}"
        );
        if cert.certified {
            assert!(margin > 0.0, "point {i}: certified but PGD flipped it");
        }
    }
}

/// A continued run numbers, schedules and shuffles its epochs as one long run would; the
/// observer's `Break` after an epoch stops it there.
#[test]
fn a_continued_run_keeps_the_schedule_and_an_observer_can_stop_it() {
    let data = toy2d(12, 0.16, 1).unwrap();
    let model = Architecture::mlp(&[2, 8, 2])
        .init(Init::Standard, 0)
        .unwrap();
    let net = TensorNet::from_model(&model, DType::F32, &Device::Cpu).unwrap();
    let cfg = TrainConfig {
        robust: true,
        eps: 0.08,
        eps_start: 0.04,
        ramp_epochs: 4,
        epochs: 5,
        batch_size: 5,
        lr: 1e-3,
        seed: 1,
        projections: None,
        first_epoch: 2,
    };
    let mut seen = Vec::new();
    let hist = train(&net, &data, &cfg, &mut |p| {
        if let Progress::Epoch(s) = p {
            seen.push(s.epoch);
            if s.epoch == 3 {
                return std::ops::ControlFlow::Break(());
            }
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(
        seen,
        vec![2, 3],
        "epochs numbered from first_epoch, stopped after 3"
    );
    assert_eq!(hist.iter().map(|s| s.epoch).collect::<Vec<_>>(), vec![2, 3]);
    // 12 points in batches of 5: 3 batches; the last batch of epoch 2 is at progress
    // (2 + 2/3) / 4 of the ramp, not (0 + 2/3) / 4.
    let expect = 0.04 + 0.04 * (2.0 + 2.0 / 3.0) / 4.0;
    assert!(
        (hist[0].eps - expect).abs() < 1e-12,
        "{} vs {expect}",
        hist[0].eps
    );
    assert_eq!(cfg.eps_at(4, 0, 3), 0.08);
}
