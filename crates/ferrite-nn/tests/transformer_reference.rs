//! Multi-head attention and Transformer encoder/decoder layers against `torch.nn.MultiheadAttention`,
//! `TransformerEncoderLayer` and `TransformerDecoderLayer` with the same weights, from
//! `tests/reference/transformer.json` (written by `tools/make_transformer_reference.py`).
//!
//! Tolerance: |ferrite − torch| ≤ 1e-5 + 1e-4·|torch| for outputs and gradients (f32).

use ferrite_core::testing::{assert_close, load_reference, ref_tensor};
use ferrite_core::{DType, Tensor};
use ferrite_nn::transformer::{
    sinusoidal_table, DecoderLayer, DecoderMasks, EncoderLayer, MultiHeadAttention, NeedWeights, TransformerLayerConfig,
};
use ferrite_nn::{Activation, VarBuilder, VarMap};
use std::collections::BTreeMap;

const ATOL: f64 = 1e-5;
const RTOL: f64 = 1e-4;

fn input(case: &serde_json::Value, name: &str) -> Tensor {
    let t = ref_tensor(&case["inputs"][name]).unwrap_or_else(|e| panic!("input {name}: {e}"));
    if name.ends_with("mask") {
        t.to_f32().unwrap().to_dtype(DType::U8).unwrap()
    } else {
        t.to_f32().unwrap().requires_grad_(true)
    }
}

fn load_params(map: &VarMap, case: &serde_json::Value) {
    let params: BTreeMap<String, Tensor> = case["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), ref_tensor(v).unwrap().to_f32().unwrap()))
        .collect();
    map.load(&params, "transformer.json").unwrap();
}

fn check(case: &serde_json::Value, name: &str, got: &Tensor) {
    let want = ref_tensor(&case["outputs"][name]).unwrap();
    assert_eq!(got.shape(), want.shape.as_slice(), "{} {name}: shape", case["name"]);
    assert_close(
        &got.to_f64_vec(),
        &want.data,
        ATOL,
        RTOL,
        &format!("{} {name}", case["name"]),
    );
}

fn check_grads(case: &serde_json::Value, out: &Tensor, map: &VarMap, inputs: &[(&str, &Tensor)]) {
    let g = ref_tensor(&case["inputs"]["grad_output"]).unwrap().to_f32().unwrap();
    let grads = out.backward_with(&g).unwrap();
    for (k, v) in case["grads"].as_object().unwrap() {
        let want = ref_tensor(v).unwrap();
        let t = map
            .get(k)
            .or_else(|| inputs.iter().find(|(n, _)| n == k).map(|(_, t)| (*t).clone()))
            .unwrap_or_else(|| panic!("no tensor {k}"));
        let got = grads.get(&t).unwrap_or_else(|| panic!("no gradient for {k}"));
        assert_close(
            &got.to_f64_vec(),
            &want.data,
            ATOL,
            RTOL,
            &format!("{} grad {k}", case["name"]),
        );
    }
}

fn layer_config(c: &serde_json::Value) -> TransformerLayerConfig {
    TransformerLayerConfig {
        d_model: c["d_model"].as_u64().unwrap() as usize,
        heads: c["nhead"].as_u64().unwrap() as usize,
        ffn: c["dim_feedforward"].as_u64().unwrap() as usize,
        dropout: 0.0,
        activation: if c["activation"] == "gelu" {
            Activation::Gelu
        } else {
            Activation::Relu
        },
        norm_first: c["norm_first"].as_bool().unwrap(),
        eps: c["layer_norm_eps"].as_f64().unwrap(),
    }
}

#[test]
fn layers_match_pytorch() {
    let r = load_reference(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/transformer.json"
    ))
    .unwrap();
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let map = VarMap::new();
        let vb = VarBuilder::new(&map, 0);
        match case["name"].as_str().unwrap() {
            "mha_self" => {
                let mha = MultiHeadAttention::new(&vb, 8, 2, 0.0, true).unwrap();
                load_params(&map, case);
                let (x, kpm, am) = (
                    input(case, "x"),
                    input(case, "key_padding_mask"),
                    input(case, "attn_mask"),
                );
                let (out, w) = mha
                    .forward(&x, &x, &x, Some(&kpm), Some(&am), NeedWeights::PerHead, false)
                    .unwrap();
                check(case, "out", &out);
                check(case, "weights", &w.unwrap());
                let (o2, w2) = mha
                    .forward(&x, &x, &x, None, None, NeedWeights::Averaged, false)
                    .unwrap();
                check(case, "out_nomask", &o2);
                check(case, "weights_avg", &w2.unwrap());
                check_grads(case, &out, &map, &[("x", &x)]);
            }
            "mha_cross" => {
                let mha = MultiHeadAttention::new(&vb, 8, 2, 0.0, true).unwrap();
                load_params(&map, case);
                let (q, mem, kpm) = (
                    input(case, "query"),
                    input(case, "memory"),
                    input(case, "key_padding_mask"),
                );
                let (out, w) = mha
                    .forward(&q, &mem, &mem, Some(&kpm), None, NeedWeights::PerHead, false)
                    .unwrap();
                check(case, "out", &out);
                check(case, "weights", &w.unwrap());
            }
            "encoder_post_ln" | "encoder_pre_ln_gelu" => {
                let layer = EncoderLayer::new(&vb, &layer_config(&case["config"])).unwrap();
                load_params(&map, case);
                let (src, kpm) = (input(case, "src"), input(case, "src_key_padding_mask"));
                let out = layer.forward(&src, Some(&kpm), None, false).unwrap();
                check(case, "out", &out);
                if case
                    .get("grads")
                    .is_some_and(|g| g.as_object().is_some_and(|o| !o.is_empty()))
                {
                    check_grads(case, &out, &map, &[("src", &src)]);
                }
            }
            "decoder_post_ln" | "decoder_pre_ln" => {
                let layer = DecoderLayer::new(&vb, &layer_config(&case["config"])).unwrap();
                load_params(&map, case);
                let (tgt, mem) = (input(case, "tgt"), input(case, "memory"));
                let (tm, tkpm, mkpm) = (
                    input(case, "tgt_mask"),
                    input(case, "tgt_key_padding_mask"),
                    input(case, "memory_key_padding_mask"),
                );
                let masks = DecoderMasks {
                    tgt_mask: Some(&tm),
                    tgt_key_padding_mask: Some(&tkpm),
                    memory_key_padding_mask: Some(&mkpm),
                };
                let out = layer.forward(&tgt, &mem, masks, false).unwrap();
                check(case, "out", &out);
                if case
                    .get("grads")
                    .is_some_and(|g| g.as_object().is_some_and(|o| !o.is_empty()))
                {
                    check_grads(case, &out, &map, &[("tgt", &tgt), ("memory", &mem)]);
                }
            }
            "sinusoidal_pe" => check(case, "pe", &sinusoidal_table(10, 8).unwrap()),
            other => panic!("unexpected case {other}"),
        }
    }
}
