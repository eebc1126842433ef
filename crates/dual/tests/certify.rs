//! Certificates, detection, robust error and the certified radius.

mod common;

use dual::{
    algorithm1, certified_radius, certify, detect, dual_objective, margin_objectives, robust_error,
    AlphaRule, InputDomain, RadiusOptions, RadiusStop,
};
use network::DMatrix;
use network::{data::toy2d, Architecture, Init};

#[test]
fn radius_holds_at_r_and_fails_at_1_01_r() {
    let mut found = 0;
    for seed in 0..12 {
        let model = Architecture::mlp(&[2, 50, 50, 2])
            .init(Init::Paper, seed)
            .unwrap();
        let x = [0.3 + 0.03 * seed as f64, 0.7];
        let y = model.predict(x).unwrap();
        let r = certified_radius(&model, x, y, None, RadiusOptions::default()).unwrap();
        assert_eq!(r.stop, RadiusStop::Converged, "seed {seed}: {r:?}");
        assert!(r.radius > 0.0);
        assert!(
            certify(&model, x, y, r.radius, None).unwrap().certified,
            "seed {seed}: not certified at the radius"
        );
        assert!(
            !certify(&model, x, y, 1.01 * r.radius, None)
                .unwrap()
                .certified,
            "seed {seed}: still certified at 1.01 r"
        );
        assert!(r.steps.len() <= 30, "seed {seed}: {} steps", r.steps.len());
        found += 1;
    }
    assert_eq!(found, 12);
}

#[test]
fn radius_on_a_conv_net() {
    let model = Architecture::parse("mnist-conv")
        .unwrap()
        .init(Init::Standard, 3)
        .unwrap();
    let (_, test) = network::data::mnist_split(0).unwrap();
    let (x, _) = test.example(0);
    let y = model.predict(x).unwrap();
    let r = certified_radius(
        &model,
        x,
        y,
        Some((0.0, 1.0)),
        RadiusOptions {
            initial: 0.001,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.stop, RadiusStop::Converged, "{r:?}");
    assert!(
        certify(&model, x, y, r.radius, Some((0.0, 1.0)))
            .unwrap()
            .certified
    );
    assert!(
        !certify(&model, x, y, 1.01 * r.radius, Some((0.0, 1.0)))
            .unwrap()
            .certified
    );
}

#[test]
fn a_wrong_label_has_radius_zero() {
    let model = Architecture::mlp(&[2, 20, 2]).init(Init::Paper, 1).unwrap();
    let x = [0.5, 0.5];
    let y = 1 - model.predict(x).unwrap();
    let r = certified_radius(&model, x, y, None, RadiusOptions::default()).unwrap();
    assert_eq!(r.stop, RadiusStop::NotCertifiedAtZero);
    assert_eq!(r.radius, 0.0);
}

#[test]
fn detection_certifies_the_predicted_class_and_eps_is_monotone() {
    let model = Architecture::mlp(&[2, 30, 30, 3])
        .init(Init::Paper, 5)
        .unwrap();
    let x = [0.2, 0.9];
    let c = detect(&model, x, 0.0, None).unwrap();
    assert_eq!(c.class, model.predict(x).unwrap());
    assert!(
        c.certified,
        "every correctly classified point is certified at eps 0 unless tied"
    );
    // The margin bound shrinks as eps grows.
    let mut last = f64::INFINITY;
    for eps in [0.0, 0.01, 0.05, 0.1, 0.2] {
        let m = detect(&model, x, eps, None).unwrap().min_margin();
        assert!(
            m <= last + 1e-12,
            "margin bound grew from {last} to {m} at eps {eps}"
        );
        last = m;
    }
}

#[test]
fn robust_error_counts_agree_with_certify() {
    let data = toy2d(12, 0.16, 3).unwrap();
    let model = Architecture::mlp(&[2, 20, 20, 2])
        .init(Init::Paper, 2)
        .unwrap();
    let idx: Vec<usize> = (0..data.len()).collect();
    let rep = robust_error(&model, &data, &idx, 0.05, None).unwrap();
    // An independent count: J of every margin row computed here, not through certify.
    let mut not_cert = 0;
    for &i in &idx {
        let (x, y) = data.example(i);
        let dom = InputDomain::new(x, 0.05, None).unwrap();
        let b = algorithm1(&model, &dom).unwrap();
        let c = margin_objectives(2, y).unwrap();
        let j = dual_objective(&model, &dom, &b, &c, &AlphaRule::Paper).unwrap();
        let certified = j.values[1 - y] > 0.0;
        assert_eq!(certified, rep.certified[i], "point {i}");
        not_cert += usize::from(!certified);
    }
    // The data and eps are chosen so that some points are certified and some are not:
    // otherwise the agreement above would be vacuous.
    assert!(
        0 < not_cert && not_cert < 12,
        "{not_cert} of 12 not certified"
    );
    assert_eq!(rep.robust_error, not_cert as f64 / 12.0);
    let wrong = idx
        .iter()
        .filter(|&&i| model.predict(data.example(i).0).unwrap() != data.labels[i])
        .count();
    assert_eq!(
        rep.clean_error,
        wrong as f64 / 12.0,
        "{wrong} misclassified"
    );
    assert!(
        wrong != 6,
        "a clean error of one half cannot tell right from wrong counts"
    );
    assert!(
        rep.robust_error >= rep.clean_error,
        "a misclassified point can never be certified"
    );
}

#[test]
fn bad_eps_and_box_are_errors() {
    let model = Architecture::mlp(&[2, 4, 2]).init(Init::Paper, 1).unwrap();
    for eps in [-0.1, f64::NAN, f64::INFINITY] {
        let e = certify(&model, [0.5, 0.5], 0, eps, None).unwrap_err();
        assert!(
            e.to_string().contains("eps must be a finite number >= 0"),
            "{e}"
        );
    }
    let e = certify(&model, [0.5, 0.5], 0, 0.1, Some((1.0, 0.0))).unwrap_err();
    assert!(e.to_string().contains("box"), "{e}");
    let e = certify(&model, [5.0, 0.5], 0, 0.1, Some((0.0, 1.0))).unwrap_err();
    assert!(e.to_string().contains("does not meet the box"), "{e}");
    let e = certify(&model, [0.5], 0, 0.1, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("input has length 1 but the model expects 2"),
        "{e}"
    );
    let e = certify(&model, [0.5, 0.5], 7, 0.1, None).unwrap_err();
    assert!(e.to_string().contains("class 7 is out of range"), "{e}");
}

/// A network whose units are all stably on for every eps searched: the margin bound is
/// exactly affine in eps, so the secant-Newton search of eq. 17 must land on the root in
/// a few steps without ever bisecting (the paper: 5-6 Newton steps), and the radius is
/// the root `m0 / ||w||_1` to the relative tolerance. A search that bisects or expands
/// needlessly (a broken Newton step) takes more steps and fails here.
#[test]
fn radius_newton_steps_on_an_affine_margin() {
    use network::{Layer, Model, Shape};
    let model = Model::new(
        Shape::Flat(2),
        vec![
            Layer::Dense {
                weight: vec![1.0, 0.5, -0.25, 1.0],
                bias: vec![100.0, 100.0],
                out_features: 2,
                in_features: 2,
            },
            Layer::Relu,
            Layer::Dense {
                weight: vec![1.0, 0.0, 0.0, 1.0],
                bias: vec![0.3, 0.0],
                out_features: 2,
                in_features: 2,
            },
        ],
    )
    .unwrap();
    let x = [0.1, 0.2];
    // margin f0 - f1 = 0.3 + (1.25 x0 - 0.5 x1): at x it is 0.325; its minimum over the
    // ball is 0.325 - eps * (1.25 + 0.5), so the radius is 0.325 / 1.75.
    let root = 0.325 / 1.75;
    let opts = RadiusOptions::default();
    let r = certified_radius(&model, x, 0, None, opts).unwrap();
    assert_eq!(r.stop, RadiusStop::Converged);
    assert!(
        r.radius <= root && root - r.radius <= 2.0 * opts.rel_tol * root,
        "{r:?}"
    );
    let upper = r.upper.unwrap();
    assert!(
        upper >= root && upper - r.radius <= opts.rel_tol * r.radius,
        "{r:?}"
    );
    assert!(
        r.steps.iter().all(|s| s.kind != "bisect"),
        "an affine margin needs no bisection: {:?}",
        r.steps
    );
    assert!(r.steps.len() <= 6, "{} steps: {:?}", r.steps.len(), r.steps);
}

/// A margin that no eps can break: the search stops at `max_eps` with `ReachedMaxEps`
/// and reports that eps as the radius (a lower bound on the true radius).
#[test]
fn radius_reaches_max_eps_when_always_certified() {
    let model = common::scalar_margin_net(0.0, 1.0);
    let opts = RadiusOptions {
        max_eps: 4.0,
        ..Default::default()
    };
    let r = certified_radius(&model, [0.5], 0, None, opts).unwrap();
    assert_eq!(r.stop, RadiusStop::ReachedMaxEps, "{r:?}");
    assert_eq!(r.radius, 4.0);
    assert_eq!(r.upper, None);
    assert!(r.steps.len() < opts.max_steps, "{r:?}");
}

#[test]
fn margins_select_the_rows_of_their_targets() {
    use dual::{DualError, Margins, Targets};
    // Every other class, in order: rows e_2 - e_t of margin_objectives.
    let m = Margins::new(4, 2, Targets::All).unwrap();
    assert_eq!(m.label, 2);
    assert_eq!(m.targets, vec![0, 1, 3]);
    let all = margin_objectives(4, 2).unwrap();
    for (k, &t) in m.targets.iter().enumerate() {
        assert_eq!(m.row(k), all.row(t).transpose(), "target {t}");
        assert_eq!(m.row(k)[2], 1.0);
        assert_eq!(m.row(k)[t], -1.0);
    }
    assert_eq!(m.c.shape(), (3, 4));
    // One class.
    let one = Margins::new(4, 2, Targets::Class(3)).unwrap();
    assert_eq!(
        (one.targets.clone(), one.c.clone()),
        (
            vec![3],
            DMatrix::from_row_slice(1, 4, &[0.0, 0.0, 1.0, -1.0])
        )
    );
    assert_eq!(one.row(0).as_slice(), &[0.0, 0.0, 1.0, -1.0]);
    // Two outputs are enough; one is not.
    assert_eq!(
        Margins::new(2, 1, Targets::All).unwrap().c,
        DMatrix::from_row_slice(1, 2, &[-1.0, 1.0])
    );
    assert!(matches!(
        Margins::new(1, 0, Targets::All),
        Err(DualError::NoTargets { n_out: 1 })
    ));
    // Out of range, or the label itself.
    assert!(matches!(
        Margins::new(4, 4, Targets::All),
        Err(DualError::Class {
            class: 4,
            n_classes: 4
        })
    ));
    assert!(matches!(
        Margins::new(4, 0, Targets::Class(4)),
        Err(DualError::Class {
            class: 4,
            n_classes: 4
        })
    ));
    assert!(matches!(
        Margins::new(4, 3, Targets::Class(3)),
        Err(DualError::TargetIsLabel { class: 3 })
    ));
    // Parsing: "all" or an index; anything else names what it got.
    assert_eq!("all".parse::<Targets>(), Ok(Targets::All));
    assert_eq!("7".parse::<Targets>(), Ok(Targets::Class(7)));
    assert!("seven"
        .parse::<Targets>()
        .unwrap_err()
        .contains("\"seven\""));
}

#[test]
fn the_label_is_the_flag_else_the_inputs_else_the_prediction() {
    use dual::{resolve_label, LabelSource};
    let logits = [0.5, 2.0, 2.0, -1.0];
    assert_eq!(
        resolve_label(Some(3), Some((0, "file")), logits),
        (3, LabelSource::Flag)
    );
    assert_eq!(
        resolve_label(None, Some((0, "file")), logits),
        (0, LabelSource::Input("file"))
    );
    // The first of equal maxima.
    assert_eq!(
        resolve_label(None, None, logits),
        (1, LabelSource::Predicted)
    );
    assert_eq!(
        [
            LabelSource::Flag,
            LabelSource::Input("dataset"),
            LabelSource::Predicted
        ]
        .map(|s| s.name()),
        ["flag", "dataset", "predicted"]
    );
}
