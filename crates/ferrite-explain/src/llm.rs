//! Attention maps of a GGUF language model (Llama family) over a prompt: one forward pass with
//! the weights captured, every layer and head, causal.
//!
//! Layer: explain.

use crate::text::AttentionMaps;
use ferrite_core::{Error, Result};
use ferrite_models::LanguageModel;
use std::path::Path;

/// Whether `path` names a GGUF model file.
pub fn is_gguf(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// Every layer's attention over the prompt `text` (queries and keys are its tokens).
///
/// # Errors
/// An unreadable model, an empty prompt, tokenizer failures.
pub fn llm_attention(model: &Path, text: &str) -> Result<AttentionMaps> {
    let m = LanguageModel::open(model)?;
    let ids = m.encode(text)?;
    if ids.is_empty() {
        return Err(Error::Invalid {
            op: "explain",
            detail: format!("{text:?} encodes to no tokens"),
        });
    }
    let mut cache = m.llama.new_cache();
    let (_, layers) = m.llama.forward_with_attention(&ids, &mut cache)?;
    let t = ids.len();
    // Each token as text (byte-level BPE's 'Ġ' shown as the space it stands for).
    let tokens: Vec<String> = ids
        .iter()
        .map(|&i| m.tokenizer.decode(&[i], false).unwrap_or_else(|_| format!("<{i}>")))
        .collect();
    Ok(AttentionMaps {
        text: text.to_string(),
        queries: tokens.clone(),
        keys: tokens,
        layers: layers.len(),
        heads: m.llama.config.heads,
        maps: layers
            .iter()
            .map(|l| l.chunks(t * t).map(<[f32]>::to_vec).collect())
            .collect(),
    })
}
