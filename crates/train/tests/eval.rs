//! Table 1's columns obey the order no attack can break: clean error and PGD error are
//! at most the robust error bound (every certified example resists every attack).

use candle_core::{DType, Device};
use network::{data::mnist_split, Architecture, Init};
use train::{evaluate, train, TensorNet, TrainConfig};

#[test]
fn attacks_never_exceed_the_robust_bound() {
    let (tr, te) = mnist_split(0).unwrap();
    let model = Architecture::mlp(&[784, 40, 10])
        .init(Init::Standard, 0)
        .unwrap();
    let net = TensorNet::from_model(&model, DType::F32, &Device::Cpu).unwrap();
    let small = tr.subset(&(0..500).collect::<Vec<_>>(), "train500");
    let cfg = TrainConfig {
        robust: false,
        eps: 0.0,
        eps_start: 0.0,
        ramp_epochs: 0,
        epochs: 3,
        batch_size: 50,
        lr: 1e-3,
        seed: 0,
        projections: None,
        first_epoch: 0,
    };
    train(&net, &small, &cfg, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    let idx: Vec<usize> = (0..60).collect();
    for eps in [0.01, 0.05] {
        let row = evaluate(&net, &te, &idx, eps, Some((0.0, 1.0)), 30, 0).unwrap();
        assert!(
            row.clean_error < 0.5,
            "3 epochs of training should beat chance: {row:?}"
        );
        assert!(row.clean_error <= row.robust_error_bound, "{row:?}");
        assert!(row.pgd_error <= row.robust_error_bound, "{row:?}");
        assert!(row.fgsm_error <= row.robust_error_bound, "{row:?}");
        assert!(
            row.pgd_error >= row.clean_error - 1.0 / 60.0,
            "PGD should not make a standard model more accurate: {row:?}"
        );
    }
}
