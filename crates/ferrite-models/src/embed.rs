//! Sentence embeddings as sentence-transformers computes them: encoder → pooling over real tokens
//! (mean, CLS or max, per the model's `1_Pooling/config.json`) → L2 normalization when the model
//! lists a `Normalize` module.
//!
//! Layer: models. Texts are encoded in batches sorted by length, so a short sentence is never
//! padded to a long neighbour's length (padding costs time, not correctness: masks exclude it).

use crate::bert::EncoderInput;
use crate::checkpoint::ModelDir;
use crate::pretrained::{PretrainedModel, Task};
use ferrite_core::{no_grad, DType, Error, Result, Tensor};
use ferrite_text::PretrainedTokenizer;
use std::path::Path;

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Average over real tokens (sentence-transformers' `pooling_mode_mean_tokens`).
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
    /// Elementwise maximum over real tokens.
    Max,
}

/// Masked pooling of `hidden` `[B, T, H]` with `mask` `[B, T]` (1 = real token) → `[B, H]`.
///
/// # Errors
/// Shapes that do not agree.
pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    let m = mask.to_dtype(hidden.dtype())?.unsqueeze(-1)?; // [B, T, 1]
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean => {
            let summed = hidden.mul(&m)?.sum(&[1], false)?;
            let count = m.sum(&[1], false)?.clamp(1e-9, f64::INFINITY)?;
            summed.div(&count)
        }
        Pooling::Max => {
            // Padding gets a large negative value so it never wins, as sentence-transformers does.
            let pad = m.lt_scalar(0.5)?;
            hidden.masked_fill(&pad, -1e9)?.max(&[1], false)
        }
    }
}

/// Divides each row of `[B, H]` by its L2 norm (rows of zeros stay zero).
///
/// # Errors
/// A tensor that is not 2-D.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    if x.ndim() != 2 {
        return Err(Error::Invalid {
            op: "l2_normalize",
            detail: format!("expected [batch, dim], got {:?}", x.shape()),
        });
    }
    let norm = x.mul(x)?.sum(&[1], true)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
    x.div(&norm)
}

/// A sentence-embedding model: tokenizer + encoder + pooling (+ normalization).
pub struct SentenceEmbedder {
    pub model: PretrainedModel,
    pub tokenizer: PretrainedTokenizer,
    pub pooling: Pooling,
    pub normalize: bool,
    /// Texts per forward pass.
    pub batch_size: usize,
}

impl SentenceEmbedder {
    /// Loads a model directory with `tokenizer.json`. sentence-transformers' files decide pooling
    /// (`1_Pooling/config.json`), normalization (`modules.json`) and the maximum length
    /// (`sentence_bert_config.json`'s `max_seq_length`); without them: mean pooling, L2
    /// normalization, and the position table's length.
    ///
    /// # Errors
    /// Missing or malformed files, an unsupported architecture or pooling mode.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let files = ModelDir::open(dir)?;
        let (model, _ignored_head) = PretrainedModel::load_from(&files, Some(Task::Encoder))?;
        let mut tokenizer = PretrainedTokenizer::from_file(dir.join("tokenizer.json"))?;
        let pooling = match files.optional_json("1_Pooling/config.json")? {
            None => Pooling::Mean,
            Some(p) => {
                let on = |k: &str| p.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
                if on("pooling_mode_mean_tokens") {
                    Pooling::Mean
                } else if on("pooling_mode_cls_token") {
                    Pooling::Cls
                } else if on("pooling_mode_max_tokens") {
                    Pooling::Max
                } else {
                    return Err(Error::file(
                        dir.join("1_Pooling/config.json"),
                        "no supported pooling mode (mean, cls or max tokens) is switched on",
                    ));
                }
            }
        };
        let normalize = match files.optional_json("modules.json")? {
            None => true,
            Some(m) => m.as_array().is_some_and(|mods| {
                mods.iter().any(|x| {
                    x.get("type")
                        .and_then(|t| t.as_str())
                        .is_some_and(|t| t.ends_with("Normalize"))
                })
            }),
        };
        let model_max = model.encoder.config.max_input_len();
        let max_len = files
            .optional_json("sentence_bert_config.json")?
            .and_then(|c| c.get("max_seq_length").and_then(|v| v.as_u64()))
            .map_or(model_max, |n| (n as usize).min(model_max));
        tokenizer.set_max_len(max_len)?;
        Ok(SentenceEmbedder {
            model,
            tokenizer,
            pooling,
            normalize,
            batch_size: 32,
        })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.model.encoder.config.hidden_size
    }

    /// Embeds texts, returning one vector per text in input order. Texts longer than the maximum
    /// length are truncated (as sentence-transformers does).
    ///
    /// # Errors
    /// A tokenizer failure.
    ///
    /// # Shapes
    /// `texts.len()` texts → that many vectors of the model's hidden size.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed_counted(texts)?.0)
    }

    /// [`embed`](Self::embed), and how many tokens each text became (after truncation, special
    /// tokens included) — what an API bills as usage.
    ///
    /// # Errors
    /// A tokenizer failure.
    pub fn embed_counted(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        let _guard = no_grad();
        let mut tokens = vec![0; texts.len()];
        let mut order: Vec<usize> = (0..texts.len()).collect();
        // Longest first, like sentence-transformers, so batches hold similar lengths.
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.batch_size.max(1)) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let enc = self.tokenizer.encode_batch(&batch, None)?;
            let input = EncoderInput::from_rows(&enc.ids, &enc.attention_mask, Some(&enc.type_ids))?;
            let vectors = self.embed_input(&input)?;
            let h = self.dim();
            for ((row, &i), &len) in vectors.chunks(h).zip(chunk).zip(&enc.lengths) {
                out[i] = row.to_vec();
                tokens[i] = len;
            }
        }
        Ok((out, tokens))
    }

    /// Pooled (and normalized) `[B, H]` embeddings of an encoded batch, flattened row-major.
    /// Runs without recording gradients.
    ///
    /// # Errors
    /// See [`crate::Encoder::forward`].
    pub fn embed_input(&self, input: &EncoderInput) -> Result<Vec<f32>> {
        let _guard = no_grad();
        let hidden = self.model.encode(input, false, false)?.last_hidden_state;
        let mut v = pool(&hidden, &input.attention_mask, self.pooling)?;
        if self.normalize {
            v = l2_normalize(&v)?;
        }
        v.to_dtype(DType::F32)?.to_vec::<f32>()
    }
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na * nb)) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_ignores_padding() {
        let h = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 100.0, 100.0], [1, 3, 2]).unwrap();
        let m = Tensor::from_vec(vec![1i64, 1, 0], [1, 3]).unwrap();
        assert_eq!(
            pool(&h, &m, Pooling::Mean).unwrap().to_vec::<f32>().unwrap(),
            vec![2.0, 3.0]
        );
        assert_eq!(
            pool(&h, &m, Pooling::Max).unwrap().to_vec::<f32>().unwrap(),
            vec![3.0, 4.0]
        );
        assert_eq!(
            pool(&h, &m, Pooling::Cls).unwrap().to_vec::<f32>().unwrap(),
            vec![1.0, 2.0]
        );
        let n = l2_normalize(&Tensor::from_vec(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]).unwrap()).unwrap();
        assert_eq!(n.to_vec::<f32>().unwrap(), vec![0.6, 0.8, 0.0, 0.0]);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.70710677).abs() < 1e-6);
    }
}
