//! Appendix B.1's setting: robust training of 2-100-100-100-100-2 on the 12-point toy
//! problem at eps 0.08 (Adam, lr 1e-3, full batch). Checked here: the robust loss falls,
//! and no attack beats a certificate (PGD's point keeps a margin >= the certified bound,
//! by the f64 `dual` crate). Not yet reached: robust error 0 on the 12 points (after
//! 1,500 epochs it is still 2-3 of 12; see the README's training status).

use candle_core::{DType, Device};
use dual::certify;
use network::{data::toy2d, Architecture, Init};
use train::{pgd, train, PgdConfig, Progress, TensorNet, TrainConfig};

#[test]
fn robust_training_lowers_the_loss_and_pgd_never_beats_a_certificate() {
    let data = toy2d(12, 0.16, 0).unwrap();
    let model = Architecture::mlp(&[2, 100, 100, 100, 100, 2])
        .init(Init::Standard, 0)
        .unwrap();
    let net = TensorNet::from_model(&model, DType::F32, &Device::Cpu).unwrap();
    let cfg = TrainConfig {
        robust: true,
        eps: 0.08,
        eps_start: 0.08,
        ramp_epochs: 0,
        epochs: 150,
        batch_size: 12,
        lr: 1e-3,
        seed: 0,
    };
    let mut batches = 0;
    let hist = train(&net, &data, &cfg, &mut |p| {
        if let Progress::Batch { .. } = p {
            batches += 1;
        }
    })
    .unwrap();
    assert_eq!((hist.len(), batches), (150, 150));
    assert!(
        hist[149].loss < hist[0].loss,
        "robust loss did not fall: {} -> {}",
        hist[0].loss,
        hist[149].loss
    );
    let trained = net.to_model().unwrap();
    // No attack beats a certificate: PGD's point is still classified correctly, and its
    // margin is at least the certified bound.
    let xs: Vec<f64> = data.images.clone();
    let f64net = TensorNet::from_model(&trained, DType::F64, &Device::Cpu).unwrap();
    let xt = f64net.batch(&xs, 2).unwrap();
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
