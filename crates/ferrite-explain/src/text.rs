//! Explaining a fine-tuned text classifier (`ferrite finetune` runs, or any Hugging Face
//! sequence-classification directory): token attributions with respect to the input word
//! embeddings, and the model's attention maps.
//!
//! Layer: explain. As in Captum's BERT tutorials, attributions are taken on the word embeddings
//! (positions and token types are added inside the model), a token's score is the sum of its
//! embedding dimensions' attributions (the L2 norm for saliency), and the integrated-gradients
//! baseline keeps the first and last tokens (`[CLS]`/`[SEP]`, `<s>`/`</s>`) and replaces every
//! other token by the padding token.

use crate::gradient_methods::{input_x_gradient, saliency, smooth_grad};
use crate::integrated::integrated_gradients;
use crate::run::{Completeness, ExplainOptions, Method};
use crate::target::{Forward, Target};
use ferrite_core::{no_grad, Error, Result, Tensor};
use ferrite_models::EncoderInput;
use ferrite_train::finetune::trainer::batch_input;
use ferrite_train::finetune::{encode_examples, Classifier, LabelledText};
use serde::Serialize;

/// Token attributions for one text (the `--json` output of `ferrite explain` on a text run).
#[derive(Clone, Debug, Serialize)]
pub struct TokenExplanation {
    pub method: Method,
    pub text: String,
    pub target: usize,
    pub target_name: String,
    /// The explained logit f(x).
    pub output: f64,
    pub predicted: usize,
    /// (label, probability) for every class.
    pub probabilities: Vec<(String, f32)>,
    pub tokens: Vec<String>,
    pub ids: Vec<u32>,
    /// One score per token.
    pub token_scores: Vec<f32>,
    #[serde(flatten)]
    pub completeness: Option<Completeness>,
}

/// A text encoded for the classifier: ids (special tokens included, cut to the run's `max_len`)
/// and their token strings.
pub struct EncodedText {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
}

/// Tokenizes `text` as the classifier does.
///
/// # Errors
/// A tokenizer failure, or a text that encodes to nothing.
pub fn encode_text(c: &Classifier, text: &str) -> Result<EncodedText> {
    let (enc, _) = encode_examples(
        &c.tokenizer,
        &[LabelledText {
            text: text.to_string(),
            label: 0,
        }],
    )?;
    let ids = enc.into_iter().next().map(|e| e.ids).unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::Invalid {
            op: "explain",
            detail: format!("{text:?} encodes to no tokens"),
        });
    }
    let tokens = ids
        .iter()
        .map(|&i| c.tokenizer.id_to_token(i).unwrap_or_else(|| format!("<{i}>")))
        .collect();
    Ok(EncodedText { ids, tokens })
}

/// The encoder input of `rows` copies of one id row.
fn repeated_input(ids: &[u32], rows: usize, pad: u32) -> Result<EncoderInput> {
    batch_input(&vec![ids; rows], pad)
}

/// Token attributions for `text` with `opts.method` (saliency, input × gradient, SmoothGrad or
/// integrated gradients), explaining `opts.target` (default: the predicted label).
///
/// # Errors
/// A target label out of range (named), occlusion (not offered for text), tokenizer and model
/// failures.
pub fn explain_text(c: &Classifier, text: &str, opts: &ExplainOptions) -> Result<TokenExplanation> {
    let enc = encode_text(c, text)?;
    let pad = c.tokenizer.pad_id();
    let one = repeated_input(&enc.ids, 1, pad)?;
    let words = {
        let _g = no_grad();
        c.model.encoder.word_embeddings(&one.input_ids)?
    };
    let model = |emb: &Tensor| -> Result<Tensor> {
        let input = repeated_input(&enc.ids, emb.shape().first().copied().unwrap_or(1), pad)?;
        c.model.logits_from_embeds(&input, emb, false)
    };
    let logits = {
        let _g = no_grad();
        model(&words)?.to_f64_vec()
    };
    let probs = softmax(&logits);
    let predicted = ferrite_models::argmax(&logits.iter().map(|&v| v as f32).collect::<Vec<_>>()) as usize;
    let target_id = opts.target.unwrap_or(predicted);
    let target = Target::All(target_id);
    target.resolve(1, logits.len())?;
    let (attr, completeness) = attribute(&model, &words, &enc, pad, c, &target, opts)?;
    let h = c.model.encoder.config.hidden_size;
    let a = attr.to_vec::<f32>()?;
    let token_scores = a
        .chunks(h)
        .map(|d| match opts.method {
            // Gradient magnitude per token: the L2 norm over the embedding dimensions.
            Method::Saliency | Method::SmoothGrad => d.iter().map(|v| v * v).sum::<f32>().sqrt(),
            _ => d.iter().sum(),
        })
        .collect();
    Ok(TokenExplanation {
        method: opts.method,
        text: text.to_string(),
        target: target_id,
        target_name: c.labels.get(target_id).cloned().unwrap_or_default(),
        output: logits[target_id],
        predicted,
        probabilities: c.labels.iter().cloned().zip(probs.iter().map(|&p| p as f32)).collect(),
        tokens: enc.tokens,
        ids: enc.ids,
        token_scores,
        completeness,
    })
}

fn attribute(
    model: &Forward,
    words: &Tensor,
    enc: &EncodedText,
    pad: u32,
    c: &Classifier,
    target: &Target,
    opts: &ExplainOptions,
) -> Result<(Tensor, Option<Completeness>)> {
    Ok(match opts.method {
        Method::Saliency => (saliency(model, words, target, false)?, None),
        Method::InputXGradient => (input_x_gradient(model, words, target)?, None),
        Method::SmoothGrad => {
            let mut s = opts.smooth;
            s.abs = false;
            (smooth_grad(model, words, target, &s)?, None)
        }
        Method::IntegratedGradients => {
            let n = enc.ids.len();
            let base_ids: Vec<u32> = (0..n)
                .map(|i| if i == 0 || i + 1 == n { enc.ids[i] } else { pad })
                .collect();
            let baseline = {
                let _g = no_grad();
                c.model
                    .encoder
                    .word_embeddings(&repeated_input(&base_ids, 1, pad)?.input_ids)?
            };
            let r = integrated_gradients(model, words, &baseline, target, &opts.ig)?;
            let done = Completeness {
                steps: opts.ig.steps,
                f_baseline: r.f_baseline[0],
                delta: r.delta[0],
                completeness_gap: r.completeness_gap()[0],
            };
            (r.attributions, Some(done))
        }
        Method::Occlusion | Method::Attention => {
            return Err(Error::Invalid {
                op: "explain",
                detail: format!(
                    "{:?} gives no token attributions; use ig, saliency, grad_x_input or smoothgrad (attention maps: TextRequest::Attention)",
                    opts.method
                ),
            });
        }
    })
}

fn softmax(v: &[f64]) -> Vec<f64> {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Attention probabilities of every layer and head: `maps[layer][head]` is a row-major
/// `queries × keys` matrix (row = the attending token, column = the token attended to; self-
/// attention has the same tokens on both axes, a decoder's cross-attention its output tokens
/// against the source tokens).
#[derive(Clone, Debug, Serialize)]
pub struct AttentionMaps {
    /// What the maps are of (the text, or "source → translation").
    pub text: String,
    pub queries: Vec<String>,
    pub keys: Vec<String>,
    pub layers: usize,
    pub heads: usize,
    pub maps: Vec<Vec<Vec<f32>>>,
}

impl AttentionMaps {
    /// The `queries × keys` map of one head, or the mean over heads (`head = None`).
    ///
    /// # Errors
    /// A layer or head that does not exist (the valid ranges are named).
    pub fn select(&self, layer: usize, head: Option<usize>) -> Result<Vec<f32>> {
        let bad = |what: &str, i: usize, n: usize| Error::Invalid {
            op: "explain",
            detail: format!(
                "{what} {i} does not exist: the model has {n} {what}s (0..={})",
                n.saturating_sub(1)
            ),
        };
        let heads = self.maps.get(layer).ok_or_else(|| bad("layer", layer, self.layers))?;
        match head {
            Some(h) => heads.get(h).cloned().ok_or_else(|| bad("head", h, self.heads)),
            None => {
                let n = heads.first().map_or(0, Vec::len);
                Ok((0..n)
                    .map(|i| heads.iter().map(|m| m[i]).sum::<f32>() / heads.len().max(1) as f32)
                    .collect())
            }
        }
    }
}

/// Captures every layer's attention probabilities for `text` (one forward pass with
/// `output_attentions`; the normal path never computes them).
///
/// # Errors
/// Tokenizer and model failures.
pub fn attention_maps(c: &Classifier, text: &str) -> Result<AttentionMaps> {
    let enc = encode_text(c, text)?;
    let input = repeated_input(&enc.ids, 1, c.tokenizer.pad_id())?;
    let _g = no_grad();
    let out = c.model.encode(&input, false, true)?;
    AttentionMaps::from_layers(text, enc.tokens.clone(), enc.tokens, &out.attentions)
}

impl AttentionMaps {
    /// The maps of per-layer attention tensors `[1, H, Q, K]`, queries and keys labelled.
    ///
    /// # Errors
    /// A tensor that is not `[1, H, Q, K]`.
    pub fn from_layers(text: &str, queries: Vec<String>, keys: Vec<String>, layers: &[Tensor]) -> Result<Self> {
        let (heads, maps) = split_heads(layers)?;
        Ok(AttentionMaps {
            text: text.to_string(),
            queries,
            keys,
            layers: maps.len(),
            heads,
            maps,
        })
    }
}

/// Splits per-layer attention tensors `[1, H, Q, K]` into `maps[layer][head]` matrices.
fn split_heads(layers: &[Tensor]) -> Result<(usize, Vec<Vec<Vec<f32>>>)> {
    let mut heads = 0;
    let mut maps = Vec::with_capacity(layers.len());
    for a in layers {
        let s = a.shape();
        if s.len() != 4 || s[0] != 1 {
            return Err(Error::Invalid {
                op: "explain",
                detail: format!("attention weights must be [1, heads, queries, keys], got {s:?}"),
            });
        }
        heads = s[1];
        let v = a.contiguous()?.to_vec::<f32>()?;
        maps.push(v.chunks(s[2] * s[3]).map(<[f32]>::to_vec).collect());
    }
    Ok((heads, maps))
}
