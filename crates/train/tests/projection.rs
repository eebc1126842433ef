//! The random-projection estimate (training only):
//! * with `k` at least every column count it takes the exact path everywhere, and its
//!   bounds and `J` (the latter by the backward dual network) equal `dual_bound` to 1e-9;
//! * with projections, the first layer's estimated widths match the exact ones with the
//!   spread the Cauchy median estimator predicts (relative std pi / (2 sqrt k)), the
//!   error shrinks as `k` grows, and the estimate is not biased;
//! * the projected robust loss has a finite gradient for every weight.

use candle_core::{DType, Device, Tensor};
use network::{Architecture, Init, Model, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use train::{dual_bound, margin_objectives, projected_dual_bound, Projection, TensorNet};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1.0)
}

fn inputs(model: &Model, bsz: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n1 = model.input_len();
    let xs: Vec<f64> = (0..bsz * n1).map(|_| rng.random()).collect();
    let labels = (0..bsz)
        .map(|b| model.predict(&xs[b * n1..(b + 1) * n1]).unwrap())
        .collect();
    (xs, labels)
}

#[test]
fn with_k_above_every_count_it_is_the_exact_dual() {
    let models = [
        Architecture::mlp(&[2, 100, 100, 100, 100, 2])
            .init(Init::Paper, 1)
            .unwrap(),
        Architecture::mlp(&[8, 30, 30, 5])
            .init(Init::Standard, 2)
            .unwrap(),
        Architecture::conv_net(
            Shape::Image { c: 1, h: 6, w: 6 },
            &[(3, 3, 2, 1), (4, 3, 1, 1)],
            &[10, 4],
        )
        .init(Init::Paper, 3)
        .unwrap(),
    ];
    let dev = Device::Cpu;
    for (mi, model) in models.iter().enumerate() {
        let net = TensorNet::from_model(model, DType::F64, &dev).unwrap();
        for eps in [0.05, 0.1, 0.25] {
            let (xs, labels) = inputs(model, 3, 10 + mi as u64);
            let x = net
                .batch(network::DMatrixView::from_slice(
                    &xs,
                    model.input_len(),
                    xs.len() / model.input_len(),
                ))
                .unwrap();
            let r = (x.ones_like().unwrap() * eps).unwrap();
            let c = margin_objectives(&labels, model.output_len(), DType::F64, &dev).unwrap();
            let exact = dual_bound(&net, &x, &r, &c).unwrap();
            let proj =
                projected_dual_bound(&net, &x, &r, &c, Projection { k: 1000, seed: 0 }).unwrap();
            let close = |a: &Tensor, b: &Tensor, what: &str| {
                let (a, b) = (a.to_vec2::<f64>().unwrap(), b.to_vec2::<f64>().unwrap());
                for (ra, rb) in a.iter().zip(&b) {
                    for (p, q) in ra.iter().zip(rb) {
                        assert!(
                            rel(*p, *q) <= 1e-9,
                            "{} eps {eps} {what}: {p} vs {q}",
                            model.describe()
                        );
                    }
                }
            };
            for (i, (l, u)) in exact.lower.iter().zip(&exact.upper).enumerate() {
                close(l, &proj.lower[i], &format!("lower {i}"));
                close(u, &proj.upper[i], &format!("upper {i}"));
            }
            close(&exact.j, &proj.j, "J");
        }
    }
}

/// Widths `u - l` of hidden layer `i`, flattened over the batch.
fn widths(d: &train::TensorDual, i: usize) -> Vec<f64> {
    let w = (&d.upper[i] - &d.lower[i]).unwrap();
    w.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn projected_widths_follow_the_cauchy_median_estimator() {
    // 200 inputs, so k < 200 projects the input term; every unit of the first hidden
    // layer has width 2 eps ||W_j||_1, estimated by twice one Cauchy median.
    let model = Architecture::mlp(&[200, 100, 100, 10])
        .init(Init::Standard, 5)
        .unwrap();
    let dev = Device::Cpu;
    let net = TensorNet::from_model(&model, DType::F64, &dev).unwrap();
    let bsz = 32;
    let (xs, labels) = inputs(&model, bsz, 7);
    let x = net
        .batch(network::DMatrixView::from_slice(&xs, 200, xs.len() / 200))
        .unwrap();
    let r = (x.ones_like().unwrap() * 0.05).unwrap();
    let c = margin_objectives(&labels, 10, DType::F64, &dev).unwrap();
    let exact = dual_bound(&net, &x, &r, &c).unwrap();
    let w_exact = widths(&exact, 0);
    let mut errs = Vec::new();
    for k in [25usize, 199] {
        let p = projected_dual_bound(&net, &x, &r, &c, Projection { k, seed: 1 }).unwrap();
        let w = widths(&p, 0);
        let log_ratio: Vec<f64> = w.iter().zip(&w_exact).map(|(a, b)| (a / b).ln()).collect();
        let mean = log_ratio.iter().sum::<f64>() / log_ratio.len() as f64;
        let med_abs = median(log_ratio.iter().map(|v| v.abs()).collect());
        // For a single estimate the relative error is ~ N(0, (pi / (2 sqrt k))^2): its
        // median absolute value is 0.674 sigma; allow 1.5x that. The units of one example
        // share its projections (one large Cauchy entry moves them all), so the mean log
        // ratio is checked as a mean of `bsz` independent examples: within 3 sigma /
        // sqrt(bsz).
        let sigma = std::f64::consts::PI / (2.0 * (k as f64).sqrt());
        assert!(
            med_abs <= 1.5 * 0.674 * sigma,
            "k {k}: median |log ratio| {med_abs}, sigma {sigma}"
        );
        assert!(
            mean.abs() <= 3.0 * sigma / (bsz as f64).sqrt(),
            "k {k}: mean log ratio {mean}, sigma {sigma}"
        );
        eprintln!("k {k}: median abs log ratio {med_abs:.4}, mean {mean:.4}, sigma {sigma:.4}");
        errs.push(med_abs);
        // The deeper layers and J are finite and ordered.
        for i in 0..p.lower.len() {
            assert!(widths(&p, i).iter().all(|v| v.is_finite() && *v >= 0.0));
        }
        assert!(p
            .j
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
    }
    assert!(errs[1] < errs[0], "more projections did not help: {errs:?}");
}

#[test]
fn projected_loss_has_a_finite_gradient_for_every_weight() {
    let model = Architecture::conv_net(
        Shape::Image { c: 1, h: 8, w: 8 },
        &[(4, 3, 2, 1), (4, 3, 1, 1)],
        &[20, 3],
    )
    .init(Init::Standard, 4)
    .unwrap();
    let net = TensorNet::from_model(&model, DType::F32, &Device::Cpu).unwrap();
    let (xs, labels) = inputs(&model, 5, 3);
    let x = net
        .batch(network::DMatrixView::from_slice(&xs, 64, xs.len() / 64))
        .unwrap();
    let (loss, j) =
        train::robust_loss(&net, &x, &labels, 0.1, Some(Projection { k: 5, seed: 2 })).unwrap();
    assert_eq!(j.dims(), &[5, 3]);
    let grads = loss.backward().unwrap();
    for v in net.vars() {
        let g = grads
            .get(v.as_tensor())
            .expect("every weight has a gradient");
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(g.iter().all(|x| x.is_finite()));
        assert!(
            g.iter().any(|x| *x != 0.0),
            "a weight's gradient is all zero"
        );
    }
}
