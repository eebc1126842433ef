//! Reproduces the shared golden fixtures (`testdata/golden.json`): Algorithm 1 bounds,
//! index-set counts, interval output bounds and J with the paper's alpha, on three dense
//! and two conv nets. The fixtures come from two independent implementations agreeing to
//! 1e-9, so we ask for 1e-9 relative (scaled by max(1, |value|)).

use dual::{algorithm1, dual_objective, interval_bounds, AlphaRule, InputDomain};
use network::{argmax, model_from_json, Model};
use serde_json::Value;

const TOL: f64 = 1e-9;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read golden.json"))
        .expect("parse golden.json")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Converts a fixture model into the project's model format (adds the header).
fn fixture_model(case: &Value) -> Model {
    let mut m = case["model"].clone();
    m["format"] = "convex-outer-model".into();
    m["version"] = 1.into();
    model_from_json(&m.to_string(), case["name"].as_str().unwrap())
        .unwrap()
        .0
}

fn assert_close(what: &str, got: &network::DVector<f64>, want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = TOL * w.abs().max(1.0);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (tol {tol:e})"
        );
    }
}

#[test]
fn golden_cases_reproduce() {
    let g = golden();
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let model = fixture_model(case);
        let x = floats(&case["x"]);
        let eps = case["eps"].as_f64().unwrap();
        let logits = model.forward(&x).unwrap();
        assert_close(&format!("{name} logits"), &logits, &floats(&case["logits"]));
        let pred = argmax(&logits);
        assert_eq!(
            pred as u64,
            case["predicted"].as_u64().unwrap(),
            "{name} predicted"
        );

        let dom = InputDomain::new(&x, eps, None).unwrap();
        let b = algorithm1(&model, &dom).unwrap();
        let want = case["algorithm1_bounds"].as_array().unwrap();
        assert_eq!(want.len(), model.hidden_layers(), "{name}: hidden layers");
        for (i, w) in want.iter().enumerate() {
            assert_close(
                &format!("{name} alg1 l[{i}]"),
                &b.lower[i],
                &floats(&w["l"]),
            );
            assert_close(
                &format!("{name} alg1 u[{i}]"),
                &b.upper[i],
                &floats(&w["u"]),
            );
        }
        let counts = b.counts(&model);
        for (i, w) in case["index_set_counts"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_eq!(
                counts[i].off as u64,
                w["I_minus"].as_u64().unwrap(),
                "{name} I- layer {i}"
            );
            assert_eq!(
                counts[i].on as u64,
                w["I_plus"].as_u64().unwrap(),
                "{name} I+ layer {i}"
            );
            assert_eq!(
                counts[i].unstable as u64,
                w["I"].as_u64().unwrap(),
                "{name} I layer {i}"
            );
        }

        let ib = interval_bounds(&model, &dom).unwrap();
        assert_close(
            &format!("{name} interval l"),
            ib.lower.last().unwrap(),
            &floats(&case["interval_bounds_output"]["l"]),
        );
        assert_close(
            &format!("{name} interval u"),
            ib.upper.last().unwrap(),
            &floats(&case["interval_bounds_output"]["u"]),
        );

        let c = dual::margin_objectives(model.output_len(), pred).unwrap();
        let j = dual_objective(&model, &dom, &b, &c, &AlphaRule::Paper).unwrap();
        assert_close(
            &format!("{name} J"),
            &j.values,
            &floats(&case["J_paper_alpha"]),
        );
        // And the chain against the fixture's sampled minimum.
        for (t, (jv, s)) in j
            .values
            .iter()
            .zip(floats(&case["sampled_min_20000_corners"]))
            .enumerate()
        {
            assert!(
                *jv <= s + TOL * s.abs().max(1.0),
                "{name} target {t}: J {jv} > sampled {s}"
            );
        }
    }
}
