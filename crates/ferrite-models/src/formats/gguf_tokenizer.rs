//! The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`), rebuilt as a Hugging
//! Face `tokenizers` tokenizer: byte-level BPE (`tokenizer.ggml.model = "gpt2"`) with the
//! vocabulary, merges and special tokens of the file.
//!
//! Layer: models (formats). The pre-tokenizer follows `tokenizer.ggml.pre`: `smollm` splits every digit on
//! its own, then applies the GPT-2 regex (Hugging Face's Digits + ByteLevel, as SmolLM2's own
//! `tokenizer.json` does); the GPT-2-style presets (`gpt2`, `default`) use the regex alone.
//! Tokens of type 3 (control) are special tokens: `<|im_start|>` in a prompt is one token.

use crate::formats::gguf::Gguf;
use ferrite_core::{Error, Result};
use serde_json::{json, Map, Value};
use tokenizers::Tokenizer;

/// Builds the tokenizer a GGUF file describes.
///
/// # Errors
/// Missing or malformed tokenizer metadata, or a tokenizer kind ferrite does not build (named).
pub fn tokenizer_from_gguf(g: &Gguf) -> Result<Tokenizer> {
    let kind = g.get("tokenizer.ggml.model")?.as_str().unwrap_or_default().to_string();
    if kind != "gpt2" {
        return Err(Error::file(
            &g.path,
            format!("tokenizer.ggml.model '{kind}' is not supported (byte-level BPE, 'gpt2', is)"),
        ));
    }
    let pre = g
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let pre_tokenizer = match pre {
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level]}),
        "gpt2" | "default" => byte_level,
        other => {
            return Err(Error::file(
                &g.path,
                format!("tokenizer.ggml.pre '{other}' is not supported (smollm, gpt2, default are)"),
            ));
        }
    };
    let tokens = g.get_strings("tokenizer.ggml.tokens")?;
    let merges = g.get_strings("tokenizer.ggml.merges")?;
    let types: Vec<u64> = match g.metadata.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
        Some(a) => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    let mut vocab = Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        vocab.insert((*tok).to_string(), json!(id));
        if types.get(id) == Some(&3) {
            added.push(json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true}));
        }
    }
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": Value::Object(vocab), "merges": merges},
    });
    Tokenizer::from_bytes(spec.to_string().as_bytes())
        .map_err(|e| Error::file(&g.path, format!("cannot build the tokenizer from its metadata: {e}")))
}
