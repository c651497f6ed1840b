//! Tiny randomly initialized BERT, RoBERTa and DistilBERT checkpoints saved by `transformers`
//! (`tests/fixtures/tiny-*`, written with reference outputs to `tests/reference/bert.json` by
//! `tools/make_bert_reference.py`) load into ferrite and reproduce the hidden states, pooler
//! outputs and classification logits.
//!
//! Tolerance: |ferrite − transformers| ≤ 1e-4 (absolute, f32), as the issue asks.

use ferrite_core::testing::{assert_close, load_reference, ref_tensor};
use ferrite_core::Tensor;
use ferrite_models::{EncoderInput, PretrainedModel, Task};
use std::path::{Path, PathBuf};

const ATOL: f64 = 1e-4;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reference() -> serde_json::Value {
    load_reference(repo().join("tests/reference/bert.json")).unwrap()
}

fn inputs(case: &serde_json::Value) -> EncoderInput {
    let t = |name: &str| ref_tensor(&case["inputs"][name]).unwrap().to_i64().unwrap();
    EncoderInput {
        input_ids: t("input_ids"),
        attention_mask: t("attention_mask"),
        token_type_ids: case["inputs"].get("token_type_ids").map(|_| t("token_type_ids")),
    }
}

fn check(case: &serde_json::Value, name: &str, got: &Tensor) {
    let want = ref_tensor(&case["outputs"][name]).unwrap();
    assert_eq!(got.shape(), want.shape.as_slice(), "{name}: shape");
    assert_close(&got.to_f64_vec(), &want.data, ATOL, 0.0, name);
}

fn run(fixture: &str) {
    let r = reference();
    let case = &r[fixture];
    let (model, report) = PretrainedModel::load(repo().join("tests/fixtures").join(fixture), None).unwrap();
    assert!(
        report.initialized.is_empty() && report.ignored.is_empty(),
        "{fixture}: {report:?}"
    );
    let input = inputs(case);
    let out = model.encode(&input, false, false).unwrap();
    let outputs = case["outputs"].as_object().unwrap();
    if outputs.contains_key("last_hidden_state") {
        check(case, "last_hidden_state", &out.last_hidden_state);
    }
    if outputs.contains_key("pooler_output") {
        check(case, "pooler_output", out.pooler_output.as_ref().expect("pooler"));
    }
    if outputs.contains_key("logits") {
        check(case, "logits", &model.head_logits(&out, false).unwrap());
    }
}

#[test]
fn tiny_bert_matches_transformers() {
    run("tiny-bert");
}

#[test]
fn tiny_bert_sequence_classifier_matches_transformers() {
    run("tiny-bert-cls");
}

#[test]
fn tiny_bert_token_classifier_matches_transformers() {
    run("tiny-bert-token-cls");
}

#[test]
fn tiny_distilbert_matches_transformers() {
    run("tiny-distilbert");
}

#[test]
fn tiny_distilbert_sequence_classifier_matches_transformers() {
    run("tiny-distilbert-cls");
}

#[test]
fn tiny_roberta_matches_transformers() {
    run("tiny-roberta");
}

#[test]
fn task_checkpoint_loads_as_bare_encoder_and_back() {
    let r = reference();
    let dir = repo().join("tests/fixtures/tiny-bert-cls");
    // The classifier checkpoint as a bare encoder: the head is reported as ignored.
    let (enc, report) = PretrainedModel::load(&dir, Some(Task::Encoder)).unwrap();
    assert_eq!(
        report.ignored,
        vec!["classifier.bias".to_string(), "classifier.weight".to_string()]
    );
    // A bare encoder checkpoint as a classifier: the head starts fresh and is reported.
    let (cls, report) = PretrainedModel::load(
        repo().join("tests/fixtures/tiny-bert"),
        Some(Task::SequenceClassification(5)),
    )
    .unwrap();
    assert_eq!(
        report.initialized,
        vec!["classifier.weight".to_string(), "classifier.bias".to_string()]
    );
    let input = inputs(&r["tiny-bert"]);
    assert_eq!(cls.logits(&input, false).unwrap().shape(), [2, 5]);
    // Saving and reloading a task model reproduces its logits exactly.
    let out = std::env::temp_dir().join(format!("ferrite-save-{}", std::process::id()));
    let labels = ["a", "b", "c"].map(String::from);
    let (m, _) = PretrainedModel::load(&dir, None).unwrap();
    m.save(&out, &labels, None).unwrap();
    let (back, report) = PretrainedModel::load(&out, None).unwrap();
    assert!(report.initialized.is_empty() && report.ignored.is_empty());
    assert_eq!(back.task, Task::SequenceClassification(3));
    let x = inputs(&r["tiny-bert-cls"]);
    assert_eq!(
        m.logits(&x, false).unwrap().to_vec::<f32>().unwrap(),
        back.logits(&x, false).unwrap().to_vec::<f32>().unwrap()
    );
    assert!(enc.logits(&x, false).unwrap_err().to_string().contains("no task head"));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn bad_checkpoints_get_clear_errors() {
    let tmp = std::env::temp_dir().join(format!("ferrite-badckpt-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let src = repo().join("tests/fixtures/tiny-bert");
    // A config whose hidden size disagrees with the weights: the shape mismatch is named.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    config["intermediate_size"] = serde_json::json!(40);
    std::fs::write(tmp.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(src.join("model.safetensors"), tmp.join("model.safetensors")).unwrap();
    let e = PretrainedModel::load(&tmp, None).err().unwrap().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("intermediate.dense") && e.contains("shape"),
        "{e}"
    );
    // One layer fewer in the config, or absurd sizes: named against the weights before anything
    // is allocated from them (10¹² used to abort in the allocator).
    config["intermediate_size"] = serde_json::json!(37);
    for (field, value, want) in [
        ("num_hidden_layers", 1u64, "num_hidden_layers says 1, but"),
        ("num_hidden_layers", 1_000_000_000_000, "holds 2 layers"),
        (
            "vocab_size",
            1_000_000_000_000,
            "vocab_size × hidden_size says [1000000000000,",
        ),
        (
            "max_position_embeddings",
            1_000_000_000_000,
            "max_position_embeddings × hidden_size",
        ),
    ] {
        let mut c = config.clone();
        c[field] = serde_json::json!(value);
        std::fs::write(tmp.join("config.json"), c.to_string()).unwrap();
        let e = PretrainedModel::load(&tmp, None).err().unwrap().to_string();
        assert!(
            e.contains("config.json") && e.contains("model.safetensors") && e.contains(want),
            "{e}"
        );
    }
    // An architecture ferrite does not implement.
    config["model_type"] = serde_json::json!("gpt2");
    std::fs::write(tmp.join("config.json"), config.to_string()).unwrap();
    let e = PretrainedModel::load(&tmp, None).err().unwrap().to_string();
    assert!(e.contains("unsupported architecture") && e.contains("gpt2"), "{e}");
    // Ids outside the vocabulary and over-long inputs are errors, not panics.
    let (m, _) = PretrainedModel::load(&src, None).unwrap();
    let ids = Tensor::from_vec(vec![0i64, 500], [1, 2]).unwrap();
    let mask = Tensor::from_vec(vec![1i64, 1], [1, 2]).unwrap();
    let input = EncoderInput {
        input_ids: ids,
        attention_mask: mask,
        token_type_ids: None,
    };
    let e = m.encode(&input, false, false).err().unwrap().to_string();
    assert!(e.contains("500") && e.contains("outside"), "{e}");
    let long = Tensor::zeros([1, 65])
        .unwrap()
        .to_dtype(ferrite_core::DType::I64)
        .unwrap();
    let input = EncoderInput {
        input_ids: long.clone(),
        attention_mask: long,
        token_type_ids: None,
    };
    let e = m.encode(&input, false, false).err().unwrap().to_string();
    assert!(e.contains("65 tokens") && e.contains("maximum of 64"), "{e}");
    // A classifier whose id2label lists fewer classes than its head has: transformers takes the
    // label count from id2label and then refuses the head's size; so does ferrite (it used to
    // load and rename the classes LABEL_0…).
    let cls = repo().join("tests/fixtures/tiny-bert-cls");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cls.join("config.json")).unwrap()).unwrap();
    config["id2label"] = serde_json::json!({"0": "neg", "1": "pos"});
    std::fs::write(tmp.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(cls.join("model.safetensors"), tmp.join("model.safetensors")).unwrap();
    let e = PretrainedModel::load(&tmp, None).err().unwrap().to_string();
    assert!(e.contains("model.safetensors") && e.contains("classifier"), "{e}");
    // Without id2label, `num_labels` gives the count (3 here, and the head loads); without
    // both, transformers assumes 2, which this 3-class head then contradicts.
    config.as_object_mut().unwrap().remove("id2label");
    config.as_object_mut().unwrap().remove("label2id");
    config["num_labels"] = serde_json::json!(3);
    std::fs::write(tmp.join("config.json"), config.to_string()).unwrap();
    PretrainedModel::load(&tmp, None).unwrap();
    config.as_object_mut().unwrap().remove("num_labels");
    std::fs::write(tmp.join("config.json"), config.to_string()).unwrap();
    let e = PretrainedModel::load(&tmp, None).err().unwrap().to_string();
    assert!(e.contains("model.safetensors") && e.contains("classifier"), "{e}");
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn sharded_half_precision_checkpoint_loads() {
    // tiny-bert re-saved as two shards listed by model.safetensors.index.json, one of them in f16
    // and one in bf16: the loader finds the shards, converts to f32, and the outputs stay within
    // half-precision rounding of transformers' f32 reference.
    use ferrite_core::DType;
    use ferrite_nn::checkpoint::{load_safetensors, save_safetensors};
    use std::collections::BTreeMap;
    let r = reference();
    let src = repo().join("tests/fixtures/tiny-bert");
    let tmp = std::env::temp_dir().join(format!("ferrite-shards-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(src.join("config.json"), tmp.join("config.json")).unwrap();
    let (tensors, _) = load_safetensors(src.join("model.safetensors")).unwrap();
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    let mut map = serde_json::Map::new();
    for (i, (name, t)) in tensors.into_iter().enumerate() {
        let (shard, file, dtype) = if i % 2 == 0 {
            (&mut a, "model-00001-of-00002.safetensors", DType::F16)
        } else {
            (&mut b, "model-00002-of-00002.safetensors", DType::BF16)
        };
        map.insert(name.clone(), serde_json::json!(file));
        shard.insert(name, t.to_dtype(dtype).unwrap());
    }
    save_safetensors(tmp.join("model-00001-of-00002.safetensors"), &a, None).unwrap();
    save_safetensors(tmp.join("model-00002-of-00002.safetensors"), &b, None).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(tmp.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let (model, report) = PretrainedModel::load(&tmp, None).unwrap();
    assert!(report.initialized.is_empty() && report.ignored.is_empty());
    let case = &r["tiny-bert"];
    let out = model.encode(&inputs(case), false, false).unwrap();
    let want = ref_tensor(&case["outputs"]["last_hidden_state"]).unwrap();
    // bf16 keeps 8 bits of mantissa: hidden states (unit scale after LayerNorm) move by a few 1e-3.
    assert_close(
        &out.last_hidden_state.to_f64_vec(),
        &want.data,
        1e-2,
        0.0,
        "sharded f16/bf16 tiny-bert",
    );
    std::fs::remove_dir_all(&tmp).ok();
}
