//! Attributions against Captum 0.9 (`tests/reference/explain.json`, written by
//! `tools/make_explain_reference.py`): saliency (absolute and signed), input × gradient,
//! integrated gradients with all five of Captum's quadrature rules (points, weights,
//! attributions and convergence deltas), occlusion with overlapping and strided windows, and
//! SmoothGrad's averaging, on a small MLP and a small CNN whose weights the script exports.
//!
//! Tolerance: |ferrite − Captum| ≤ 1e-4 + 1e-4·|Captum| per element (both in f32; the models'
//! summation orders differ).

use ferrite_core::testing::{assert_close, load_reference, ref_tensor};
use ferrite_core::Tensor;
use ferrite_explain::*;
use ferrite_nn::LinearInit;
use ferrite_train::{LayerConfig, Sequential};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const ATOL: f64 = 1e-4;
const RTOL: f64 = 1e-4;

fn reference() -> Value {
    load_reference(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/explain.json"
    ))
    .unwrap()
}

fn tensor(v: &Value) -> Tensor {
    ref_tensor(v).unwrap().to_f32().unwrap()
}

/// The script's nn.Sequential models, layer for layer (so parameter names agree).
fn model(reference: &Value, name: &str) -> Sequential {
    let layers = match name {
        "mlp" => vec![
            json!({"type": "dense", "units": 8}),
            json!({"type": "activation", "activation": "tanh"}),
            json!({"type": "dense", "units": 3}),
        ],
        _ => vec![
            json!({"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": 1}),
            json!({"type": "activation", "activation": "relu"}),
            json!({"type": "avg_pool2d", "pool_size": 2}),
            json!({"type": "flatten"}),
            json!({"type": "dense", "units": 4}),
        ],
    };
    let spec = &reference["models"][name];
    let shape: Vec<usize> = serde_json::from_value(spec["input_shape"].clone()).unwrap();
    let mut m = Sequential::with_options(&shape, 0, LinearInit::Pytorch);
    for l in layers {
        m = m.add(serde_json::from_value::<LayerConfig>(l).unwrap()).unwrap();
    }
    let params: BTreeMap<String, Tensor> = spec["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), tensor(v)))
        .collect();
    m.var_map().load(&params, "explain.json").unwrap();
    m
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn attributions_match_captum() {
    let r = reference();
    let models: BTreeMap<&str, Sequential> = ["mlp", "cnn"].iter().map(|&n| (n, model(&r, n))).collect();
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 16);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let m = &models[case["model"].as_str().unwrap()];
        let f = |x: &Tensor| m.forward(x, false);
        let x = tensor(&case["x"]);
        let target = Target::PerSample(
            case["target"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as usize)
                .collect(),
        );
        let out = f(&x).unwrap().to_f64_vec();
        assert_close(
            &out,
            &tensor(&case["output"]).to_f64_vec(),
            ATOL,
            RTOL,
            &format!("{name}: model output"),
        );
        let flag = |k: &str| case[k].as_bool().unwrap_or(true);
        let got = match case["method"].as_str().unwrap() {
            "saliency" => saliency(&f, &x, &target, flag("abs")).unwrap(),
            "input_x_gradient" => input_x_gradient(&f, &x, &target).unwrap(),
            "smoothgrad_zero_noise" => {
                let o = SmoothGradOptions {
                    samples: case["nt_samples"].as_u64().unwrap() as usize,
                    stdev: case["stdevs"].as_f64().unwrap(),
                    abs: flag("abs"),
                    seed: 0,
                };
                smooth_grad(&f, &x, &target, &o).unwrap()
            }
            "integrated_gradients" => {
                let q = Quadrature::parse(case["quadrature"].as_str().unwrap()).unwrap();
                let steps = case["n_steps"].as_u64().unwrap() as usize;
                let (alphas, weights) = q.points(steps);
                assert_close(&alphas, &floats(&case["alphas"]), 1e-7, 0.0, &format!("{name}: alphas"));
                assert_close(
                    &weights,
                    &floats(&case["weights"]),
                    1e-7,
                    0.0,
                    &format!("{name}: weights"),
                );
                let opts = IgOptions {
                    steps,
                    quadrature: q,
                    batch_rows: 7, // several batches of path points, one of them partial
                };
                let res = integrated_gradients(&f, &x, &tensor(&case["baseline"]), &target, &opts).unwrap();
                assert_close(
                    &res.delta,
                    &tensor(&case["delta"]).to_f64_vec(),
                    ATOL,
                    RTOL,
                    &format!("{name}: delta"),
                );
                res.attributions
            }
            "occlusion" => {
                let ints = |k: &str| serde_json::from_value::<Vec<usize>>(case[k].clone()).unwrap();
                let mut o = OcclusionOptions::new(ints("window"), ints("strides"));
                o.baseline = vec![case["baseline"].as_f64().unwrap() as f32];
                o.batch = 5;
                occlusion(&f, &x, &target, &o).unwrap()
            }
            other => panic!("unknown method {other}"),
        };
        let want = tensor(&case["attributions"]);
        assert_eq!(got.shape(), want.shape(), "{name}");
        assert_close(&got.to_f64_vec(), &want.to_f64_vec(), ATOL, RTOL, name);
    }
}
