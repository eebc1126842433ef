//! The candle dual (f64) equals `dual` on random dense and conv nets: every intermediate
//! bound and J to 1e-9 relative (both are f64 sums of the same products in different
//! orders); and the robust loss's gradient matches central finite differences to 1e-5.

use candle_core::{DType, Device, Tensor};
use dual::{algorithm1, dual_objective, margin_objectives, AlphaRule, InputDomain};
use network::{Architecture, Init, Model, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use train::{dual_bound, robust_loss, TensorNet};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1.0)
}

fn conv_model(seed: u64) -> Model {
    Architecture::conv_net(
        Shape::Image { c: 1, h: 6, w: 6 },
        &[(3, 3, 2, 1), (4, 3, 1, 1)],
        &[10, 4],
    )
    .init(Init::Paper, seed)
    .unwrap()
}

#[test]
fn candle_dual_equals_the_nalgebra_dual() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let models = [
        Architecture::mlp(&[2, 100, 100, 100, 100, 2])
            .init(Init::Paper, 1)
            .unwrap(),
        Architecture::mlp(&[8, 30, 30, 5])
            .init(Init::Standard, 2)
            .unwrap(),
        conv_model(3),
    ];
    let dev = Device::Cpu;
    for model in &models {
        let net = TensorNet::from_model(model, DType::F64, &dev).unwrap();
        for eps in [0.05, 0.1, 0.25] {
            let bsz = 3;
            let n1 = model.input_len();
            let xs: Vec<f64> = (0..bsz * n1).map(|_| rng.random()).collect();
            let labels: Vec<usize> = (0..bsz)
                .map(|b| model.predict(&xs[b * n1..(b + 1) * n1]).unwrap())
                .collect();
            let x = net
                .batch(network::DMatrixView::from_slice(&xs, n1, xs.len() / n1))
                .unwrap();
            let r = (x.ones_like().unwrap() * eps).unwrap();
            let n = model.output_len();
            let c = train::margin_objectives(&labels, n, DType::F64, &dev).unwrap();
            let td = dual_bound(&net, &x, &r, &c).unwrap();
            let j = td.j.to_vec2::<f64>().unwrap();
            for b in 0..bsz {
                let dom = InputDomain::new(&xs[b * n1..(b + 1) * n1], eps, None).unwrap();
                let ab = algorithm1(model, &dom).unwrap();
                for (i, (tl, tu)) in td.lower.iter().zip(&td.upper).enumerate() {
                    let (tl, tu) = (tl.to_vec2::<f64>().unwrap(), tu.to_vec2::<f64>().unwrap());
                    for k in 0..tl[b].len() {
                        assert!(
                            rel(tl[b][k], ab.lower[i][k]) <= 1e-9,
                            "{} layer {i} unit {k}: {} vs {}",
                            model.describe(),
                            tl[b][k],
                            ab.lower[i][k]
                        );
                        assert!(rel(tu[b][k], ab.upper[i][k]) <= 1e-9);
                    }
                }
                let cm = margin_objectives(n, labels[b]).unwrap();
                let jd = dual_objective(model, &dom, &ab, &cm, &AlphaRule::Paper).unwrap();
                for (t, &jt) in j[b].iter().enumerate() {
                    assert!(
                        rel(jt, jd.values[t]) <= 1e-9,
                        "{} J[{t}]: {} vs {}",
                        model.describe(),
                        jt,
                        jd.values[t]
                    );
                }
            }
        }
    }
}

#[test]
fn transpose_is_the_adjoint_in_candle_too() {
    let model = conv_model(4);
    let net = TensorNet::from_model(&model, DType::F64, &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for t in 0..2 {
        let (ni, no) = (net.layers[t].n_in, net.layers[t].n_out);
        let x = Tensor::from_vec(
            (0..ni).map(|_| rng.random::<f64>()).collect::<Vec<_>>(),
            (1, ni),
            &Device::Cpu,
        )
        .unwrap();
        let y = Tensor::from_vec(
            (0..no).map(|_| rng.random::<f64>()).collect::<Vec<_>>(),
            (1, no),
            &Device::Cpu,
        )
        .unwrap();
        let lhs = (net.linear(t, &x).unwrap() * &y)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let rhs = (net.linear_transpose(t, &y).unwrap() * &x)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(rel(lhs, rhs) <= 1e-12, "{lhs} vs {rhs}");
    }
}

#[test]
fn robust_loss_gradient_matches_finite_differences() {
    let model = Architecture::mlp(&[3, 12, 12, 3])
        .init(Init::Paper, 5)
        .unwrap();
    let xs = [0.2, 0.5, 0.9, 0.7, 0.1, 0.4];
    let labels = [0usize, 2];
    let eps = 0.1;
    let net = TensorNet::from_model(&model, DType::F64, &Device::Cpu).unwrap();
    let x = net
        .batch(network::DMatrixView::from_slice(&xs, 3, xs.len() / 3))
        .unwrap();
    let (loss, _) = robust_loss(&net, &x, &labels, eps, None).unwrap();
    let grads = loss.backward().unwrap();
    let loss_at = |m: &Model| -> f64 {
        let n = TensorNet::from_model(m, DType::F64, &Device::Cpu).unwrap();
        robust_loss(
            &n,
            &n.batch(network::DMatrixView::from_slice(&xs, 3, xs.len() / 3))
                .unwrap(),
            &labels,
            eps,
            None,
        )
        .unwrap()
        .0
        .to_scalar::<f64>()
        .unwrap()
    };
    let mut checked = 0;
    for (vi, var) in net.vars().iter().enumerate() {
        let g = grads
            .get(var.as_tensor())
            .expect("every weight has a gradient")
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for idx in [0, g.len() / 2, g.len() - 1] {
            let h = 1e-6;
            let perturb = |delta: f64| -> f64 {
                let mut layers = model.layers().to_vec();
                let li = model.affine()[vi / 2].layer_index;
                if let network::Layer::Dense { weight, bias, .. } = &mut layers[li] {
                    if vi % 2 == 0 {
                        weight[idx] += delta
                    } else {
                        bias[idx] += delta
                    }
                }
                loss_at(&Model::new(model.input_shape(), layers).unwrap())
            };
            let fd = (perturb(h) - perturb(-h)) / (2.0 * h);
            assert!(
                (g[idx] - fd).abs() <= 1e-5 * g[idx].abs().max(fd.abs()).max(1e-3),
                "var {vi} entry {idx}: autograd {} vs finite difference {fd}",
                g[idx]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
}
