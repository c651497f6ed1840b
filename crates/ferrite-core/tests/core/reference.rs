//! Forward values and gradients checked against PyTorch, from `tests/reference/core_ops.json`
//! (written by `tools/make_core_reference.py`; CI does not need PyTorch).
//!
//! Tolerance: |ferrite − torch| ≤ 2e-5 + 1e-4·|torch|, elementwise, in f32 — a few ulps of the
//! different summation orders of the two implementations.

use ferrite_core::testing::{assert_close, load_reference, ref_tensor};
use ferrite_core::{CrossEntropyOptions, Result, Tensor};
use std::collections::BTreeMap;

const ATOL: f64 = 2e-5;
const RTOL: f64 = 1e-4;

fn run_case(case: &serde_json::Value, inputs: &BTreeMap<String, Tensor>) -> Result<Tensor> {
    let p = &case["params"];
    let x = |k: &str| inputs[k].clone();
    Ok(match case["op"].as_str().unwrap() {
        "softmax" => x("x").softmax(p["dim"].as_i64().unwrap() as isize)?,
        "log_softmax" => x("x").log_softmax(p["dim"].as_i64().unwrap() as isize)?,
        "gelu" => x("x").gelu(p["approximate"] == "tanh")?,
        "silu" => x("x").silu()?,
        "layer_norm" => {
            let xx = x("x");
            let n = *xx.shape().last().unwrap();
            xx.layer_norm(&[n], Some(&x("weight")), Some(&x("bias")), p["eps"].as_f64().unwrap())?
        }
        "rms_norm" => {
            let xx = x("x");
            let n = *xx.shape().last().unwrap();
            xx.rms_norm(&[n], Some(&x("weight")), p["eps"].as_f64().unwrap())?
        }
        "cross_entropy" => {
            let o = CrossEntropyOptions {
                ignore_index: p["ignore_index"].as_i64().unwrap(),
                label_smoothing: p["label_smoothing"].as_f64().unwrap(),
            };
            x("logits").cross_entropy(&x("targets"), o)?
        }
        "matmul" => x("a").matmul(&x("b"))?,
        "matmul_bt" => x("a").matmul(&x("b").t()?)?,
        other => panic!("unknown op {other} in reference file"),
    })
}

#[test]
fn forward_and_backward_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/reference/core_ops.json");
    let r = load_reference(path).unwrap();
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 12, "expected at least 12 reference cases");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut inputs = BTreeMap::new();
        for (k, v) in case["inputs"].as_object().unwrap() {
            let rt = ref_tensor(v).unwrap();
            let is_int = k == "targets";
            let t = if is_int {
                rt.to_i64().unwrap()
            } else {
                rt.to_f32().unwrap().requires_grad_(true)
            };
            inputs.insert(k.clone(), t);
        }
        let y = run_case(case, &inputs).unwrap();
        let want = ref_tensor(&case["output"]).unwrap();
        assert_eq!(y.shape(), want.shape.as_slice(), "{name}: output shape");
        assert_close(&y.to_f64_vec(), &want.data, ATOL, RTOL, &format!("{name} forward"));

        let g = ref_tensor(&case["grad_output"]).unwrap().to_f32().unwrap();
        let grads = y.backward_with(&g).unwrap();
        for (k, v) in case["grads"].as_object().unwrap() {
            let want = ref_tensor(v).unwrap();
            let got = grads
                .get(&inputs[k])
                .unwrap_or_else(|| panic!("{name}: no gradient for {k}"));
            assert_eq!(got.shape(), want.shape.as_slice(), "{name}: grad shape of {k}");
            assert_close(
                &got.to_f64_vec(),
                &want.data,
                ATOL,
                RTOL,
                &format!("{name} grad of {k}"),
            );
        }
    }
}
