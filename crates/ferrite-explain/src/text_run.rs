//! `ferrite explain` on text models: a text classifier (a `ferrite finetune` run or a Hugging
//! Face sequence-classification directory) — token attributions or attention maps — and a
//! translation run — attention maps (cross, encoder or decoder) — and a GGUF language model
//! (Llama family) — its causal self-attention over the prompt. Written as HTML (`.html`) or
//! PNG (any other extension), with the numbers as JSON.
//!
//! Layer: explain.

use crate::html::{attention_html, token_attribution_html};
use crate::pictures::{plot_attention, plot_feature_attribution};
use crate::run::ExplainOptions;
use crate::seq2seq::{translation_attention, AttentionPart};
use crate::text::{attention_maps, explain_text, AttentionMaps};
use ferrite_core::{Error, Result};
use ferrite_train::config::RunKind;
use ferrite_train::finetune::Classifier;
use ferrite_train::seq2seq::TranslationModel;
use serde_json::{json, Value};
use std::path::Path;

/// What to show for a text.
#[derive(Clone, Debug)]
pub enum TextRequest {
    /// Token attributions with these options.
    Attribution(ExplainOptions),
    /// Attention of `layer` (default: the last) and `head` (default: every head and their
    /// mean); `part` for translation models (default: cross-attention).
    Attention {
        layer: Option<usize>,
        head: Option<usize>,
        part: Option<AttentionPart>,
    },
}

fn is_html(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::file(path, format!("cannot write: {e}")))
}

/// Explains `text` with the classifier in `dir` and writes `out`; returns the JSON report.
///
/// # Errors
/// A directory without a sequence-classification model, a target label, layer or head that does
/// not exist (named), and tokenizer/model failures.
pub fn explain_text_run(dir: &Path, text: &str, request: &TextRequest, out: &Path) -> Result<Value> {
    if crate::llm::is_gguf(dir) {
        let TextRequest::Attention { layer, head, .. } = request else {
            return Err(Error::Invalid {
                op: "explain",
                detail: "GGUF language models are explained with --method attention".into(),
            });
        };
        let maps = crate::llm::llm_attention(dir, text)?;
        return write_attention(&maps, *layer, *head, out, json!({}));
    }
    if matches!(RunKind::of_run_dir(dir), Ok(RunKind::Translate)) {
        return explain_translation(dir, text, request, out);
    }
    let c = Classifier::open(dir)?;
    match request {
        TextRequest::Attribution(opts) => {
            let e = explain_text(&c, text, opts)?;
            if is_html(out) {
                write(out, &token_attribution_html(&e))?;
            } else {
                let caption = format!(
                    "{:?} attributions of '{}' (logit {:.3})",
                    e.method, e.target_name, e.output
                );
                plot_feature_attribution(&e.tokens, &e.token_scores, &caption, out)?;
            }
            let mut v = serde_json::to_value(&e).map_err(|err| Error::file(out, err.to_string()))?;
            v["picture"] = json!(out.display().to_string());
            Ok(v)
        }
        TextRequest::Attention { layer, head, part } => {
            if matches!(part, Some(AttentionPart::Cross | AttentionPart::Decoder)) {
                return Err(Error::Invalid {
                    op: "explain",
                    detail: "a text classifier is an encoder: only --part encoder (its self-attention) exists".into(),
                });
            }
            let maps = attention_maps(&c, text)?;
            write_attention(&maps, *layer, *head, out, json!({}))
        }
    }
}

fn explain_translation(dir: &Path, text: &str, request: &TextRequest, out: &Path) -> Result<Value> {
    let TextRequest::Attention { layer, head, part } = request else {
        return Err(Error::Invalid {
            op: "explain",
            detail: "translation runs are explained with --method attention".into(),
        });
    };
    let m = TranslationModel::load(dir)?;
    let all = translation_attention(&m, text, 1)?;
    let part = part.unwrap_or_default();
    let extra = json!({ "translation": all.translation, "part": part });
    write_attention(all.part(part), *layer, *head, out, extra)
}

/// Writes the picture of `maps` (layer default: the last) and returns the JSON report.
pub(crate) fn write_attention(
    maps: &AttentionMaps,
    layer: Option<usize>,
    head: Option<usize>,
    out: &Path,
    extra: Value,
) -> Result<Value> {
    let layer = layer.unwrap_or(maps.layers.saturating_sub(1));
    let map = maps.select(layer, head)?;
    if is_html(out) {
        write(out, &attention_html(maps))?;
    } else {
        plot_attention(maps, layer, head, out)?;
    }
    let mut v = json!({
        "method": "attention",
        "text": maps.text,
        "queries": maps.queries,
        "keys": maps.keys,
        "layers": maps.layers,
        "heads": maps.heads,
        "layer": layer,
        "head": head,
        "map": map,
        "picture": out.display().to_string(),
    });
    if let (Some(v), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    Ok(v)
}

/// Whether `dir` is a `ferrite train` run of a `Sequential` model (its config's `task` says
/// regression or classification) rather than a text classifier or translation run.
pub fn is_sequential_run(dir: &Path) -> bool {
    matches!(
        RunKind::of_run_dir(dir),
        Ok(RunKind::Regression | RunKind::Classification)
    )
}
