//! Attention maps of a trained translation model (`ferrite train examples/translate-en-fr.toml`
//! runs): the sentence is translated, then run once more with the translation as decoder input
//! to read every layer's encoder self-attention, decoder self-attention and cross-attention —
//! the last shows which source tokens each output token looked at.
//!
//! Layer: explain.

use crate::text::AttentionMaps;
use ferrite_core::{Error, Result, Tensor};
use ferrite_models::generate;
use ferrite_text::{BOS, EOS};
use ferrite_train::seq2seq::TranslationModel;
use serde::Serialize;

/// Which attention of an encoder–decoder model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionPart {
    /// Decoder positions (output tokens) over source tokens.
    #[default]
    Cross,
    /// Source tokens over source tokens (the only part a BERT-family encoder has).
    Encoder,
    /// Output tokens over earlier output tokens (causal).
    Decoder,
}

impl AttentionPart {
    /// `cross`, `encoder` or `decoder`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cross" => Ok(AttentionPart::Cross),
            "encoder" | "self" => Ok(AttentionPart::Encoder),
            "decoder" => Ok(AttentionPart::Decoder),
            other => Err(Error::Invalid {
                op: "explain",
                detail: format!("unknown attention part '{other}' (cross, encoder, decoder)"),
            }),
        }
    }
}

/// A translation and the attention maps behind it.
pub struct TranslationAttention {
    pub translation: String,
    pub encoder: AttentionMaps,
    pub decoder: AttentionMaps,
    pub cross: AttentionMaps,
}

impl TranslationAttention {
    pub fn part(&self, part: AttentionPart) -> &AttentionMaps {
        match part {
            AttentionPart::Cross => &self.cross,
            AttentionPart::Encoder => &self.encoder,
            AttentionPart::Decoder => &self.decoder,
        }
    }
}

/// Translates `text` (beam search of size `beam`, 1 = greedy) and captures the attention maps
/// of the model producing that translation.
///
/// # Errors
/// Tokenizer and model failures.
pub fn translation_attention(m: &TranslationModel, text: &str, beam: usize) -> Result<TranslationAttention> {
    let max = m.config.data.max_tokens;
    let mut src = m.tokenizer.encode(text)?;
    src.truncate(max.saturating_sub(1));
    src.push(EOS);
    let strategy = m.config.decode.strategy(beam)?;
    let mut out = generate(
        &m.model,
        std::slice::from_ref(&src),
        &strategy,
        &m.config.decode.options(),
    )?
    .pop()
    .unwrap_or_default();
    if out.first() == Some(&BOS) {
        out.remove(0);
    }
    if out.last() == Some(&EOS) {
        out.pop();
    }
    let translation = m.tokenizer.decode(&out)?;
    let tgt_in: Vec<u32> = std::iter::once(BOS).chain(out.iter().copied()).collect();
    let ids = |v: &[u32]| Tensor::from_vec(v.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(), [1, v.len()]);
    let maps = m.model.attention_maps(&ids(&src)?, &[src.len()], &ids(&tgt_in)?)?;
    let name = |i: &u32| m.tokenizer.id_to_token(*i).unwrap_or_else(|| format!("<{i}>"));
    let source: Vec<String> = src.iter().map(name).collect();
    // Decoder position t reads tgt_in[..=t] and emits out[t] (the last one emits EOS): rows are
    // labelled with what each position produced.
    let produced: Vec<String> = out.iter().chain(std::iter::once(&EOS)).map(name).collect();
    let title = format!("{text} → {translation}");
    let build = |layers: &[Tensor], queries: &[String], keys: &[String]| {
        AttentionMaps::from_layers(&title, queries.to_vec(), keys.to_vec(), layers)
    };
    Ok(TranslationAttention {
        encoder: build(&maps.encoder, &source, &source)?,
        decoder: build(&maps.decoder, &produced, &produced)?,
        cross: build(&maps.cross, &produced, &source)?,
        translation,
    })
}
