//! The BERT-family encoder: embeddings (+ positions, + token types), a stack of post-LN layers
//! (attention → add & norm → FFN → add & norm), and BERT's optional pooler.
//!
//! Layer: models. Parameters carry the checkpoint's own names (see [`Names`]), so a Hugging Face
//! `model.safetensors` loads without a renaming table and a fine-tuned model saves back to one.

use crate::config::{EncoderConfig, Family};
use ferrite_core::{DType, Error, Result, Tensor};
use ferrite_nn::transformer::{MultiHeadAttention, NeedWeights};
use ferrite_nn::{Activation, Init, LayerNorm, Linear, VarBuilder};

/// Parameter names inside one encoder layer, per family.
struct Names {
    layers: &'static str,
    q: &'static str,
    k: &'static str,
    v: &'static str,
    attn_out: &'static str,
    attn_norm: &'static str,
    ffn_in: &'static str,
    ffn_out: &'static str,
    out_norm: &'static str,
}

const BERT_NAMES: Names = Names {
    layers: "encoder.layer",
    q: "attention.self.query",
    k: "attention.self.key",
    v: "attention.self.value",
    attn_out: "attention.output.dense",
    attn_norm: "attention.output.LayerNorm",
    ffn_in: "intermediate.dense",
    ffn_out: "output.dense",
    out_norm: "output.LayerNorm",
};

const DISTILBERT_NAMES: Names = Names {
    layers: "transformer.layer",
    q: "attention.q_lin",
    k: "attention.k_lin",
    v: "attention.v_lin",
    attn_out: "attention.out_lin",
    attn_norm: "sa_layer_norm",
    ffn_in: "ffn.lin1",
    ffn_out: "ffn.lin2",
    out_norm: "output_layer_norm",
};

/// A linear layer initialized as Hugging Face does: weight N(0, std), bias 0.
pub(crate) fn hf_linear(vb: &VarBuilder, d_in: usize, d_out: usize, std: f64) -> Result<Linear> {
    let weight = vb.get(&[d_out, d_in], "weight", Init::Normal { mean: 0.0, std })?;
    let bias = vb.get(&[d_out], "bias", Init::Zeros)?;
    Linear::from_parts(weight, Some(bias))
}

/// The input of an encoder: `[B, T]` ids, a `[B, T]` mask (1 = real token, 0 = padding; any
/// integer or float dtype) and optional `[B, T]` token-type ids.
#[derive(Clone)]
pub struct EncoderInput {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub token_type_ids: Option<Tensor>,
}

impl EncoderInput {
    /// Tensors from padded id rows (what `PretrainedTokenizer::encode_batch` returns).
    ///
    /// # Errors
    /// Ragged rows.
    pub fn from_rows(ids: &[Vec<u32>], mask: &[Vec<u32>], type_ids: Option<&[Vec<u32>]>) -> Result<Self> {
        let b = ids.len();
        let t = ids.first().map_or(0, Vec::len);
        let flat = |rows: &[Vec<u32>], what: &str| -> Result<Tensor> {
            if rows.len() != b || rows.iter().any(|r| r.len() != t) {
                return Err(Error::Invalid {
                    op: "EncoderInput",
                    detail: format!("{what} rows must all have length {t} (batch {b})"),
                });
            }
            Tensor::from_vec(rows.iter().flatten().map(|&x| i64::from(x)).collect::<Vec<_>>(), [b, t])
        };
        Ok(EncoderInput {
            input_ids: flat(ids, "input id")?,
            attention_mask: flat(mask, "attention mask")?,
            token_type_ids: type_ids.map(|r| flat(r, "token type")).transpose()?,
        })
    }

    fn check(&self, cfg: &EncoderConfig) -> Result<(usize, usize)> {
        const OP: &str = "encoder";
        let s = self.input_ids.shape();
        if s.len() != 2 || self.input_ids.dtype() != DType::I64 {
            return Err(Error::Invalid {
                op: OP,
                detail: format!(
                    "input_ids must be an i64 [batch, len] tensor, got {:?} {s:?}",
                    self.input_ids.dtype()
                ),
            });
        }
        for (name, t) in [
            ("attention_mask", Some(&self.attention_mask)),
            ("token_type_ids", self.token_type_ids.as_ref()),
        ] {
            if let Some(t) = t
                && t.shape() != s
            {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: s.to_vec(),
                    rhs: t.shape().to_vec(),
                    detail: format!("{name} must have the shape of input_ids"),
                });
            }
        }
        if s[1] > cfg.max_input_len() {
            return Err(Error::Invalid {
                op: OP,
                detail: format!(
                    "sequence of {} tokens is longer than the model's maximum of {} (truncate the input)",
                    s[1],
                    cfg.max_input_len()
                ),
            });
        }
        Ok((s[0], s[1]))
    }
}

/// What the encoder returns.
pub struct EncoderOutput {
    /// `[B, T, H]`
    pub last_hidden_state: Tensor,
    /// `[B, H]`: tanh(dense(first token)), for BERT/RoBERTa checkpoints that have a pooler.
    pub pooler_output: Option<Tensor>,
    /// Per layer, `[B, heads, T, T]` attention probabilities, when asked for.
    pub attentions: Vec<Tensor>,
}

struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Option<Tensor>,
    norm: LayerNorm,
}

struct Layer {
    attention: MultiHeadAttention,
    attn_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    out_norm: LayerNorm,
}

/// A BERT / RoBERTa / DistilBERT encoder.
pub struct Encoder {
    pub config: EncoderConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pooler: Option<Linear>,
}

impl Encoder {
    /// Builds the encoder's parameters under `vb` with Hugging Face's initialization (load
    /// pretrained values afterwards). `with_pooler` adds BERT's `pooler.dense`.
    pub fn new(vb: &VarBuilder, config: &EncoderConfig, with_pooler: bool) -> Result<Self> {
        let c = config;
        let std = c.init_std;
        let normal = Init::Normal { mean: 0.0, std };
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let embeddings = Embeddings {
            word: e.get(&[c.vocab_size, h], "word_embeddings.weight", normal)?,
            position: e.get(&[c.max_positions, h], "position_embeddings.weight", normal)?,
            token_type: (c.type_vocab_size > 0)
                .then(|| e.get(&[c.type_vocab_size, h], "token_type_embeddings.weight", normal))
                .transpose()?,
            norm: LayerNorm::new(&e.pp("LayerNorm"), h, c.layer_norm_eps)?,
        };
        let names = match c.family {
            Family::Bert | Family::Roberta => &BERT_NAMES,
            Family::DistilBert => &DISTILBERT_NAMES,
        };
        let layers = (0..c.num_layers)
            .map(|i| {
                let l = vb.pp(format!("{}.{i}", names.layers));
                let lin = |n: &str, d_in, d_out| hf_linear(&l.pp(n), d_in, d_out, std);
                Ok(Layer {
                    attention: MultiHeadAttention::from_linears(
                        lin(names.q, h, h)?,
                        lin(names.k, h, h)?,
                        lin(names.v, h, h)?,
                        lin(names.attn_out, h, h)?,
                        c.num_heads,
                        c.attention_dropout,
                    )?,
                    attn_norm: LayerNorm::new(&l.pp(names.attn_norm), h, c.layer_norm_eps)?,
                    ffn_in: lin(names.ffn_in, h, c.intermediate_size)?,
                    ffn_out: lin(names.ffn_out, c.intermediate_size, h)?,
                    out_norm: LayerNorm::new(&l.pp(names.out_norm), h, c.layer_norm_eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let pooler = (with_pooler && c.family != Family::DistilBert)
            .then(|| hf_linear(&vb.pp("pooler.dense"), h, h, std))
            .transpose()?;
        Ok(Encoder {
            config: c.clone(),
            embeddings,
            layers,
            pooler,
        })
    }

    /// Position ids `[B, T]`: 0..T for BERT/DistilBERT; for RoBERTa, counted from
    /// `pad + 1` over non-pad tokens, with `pad` at pad tokens (as `transformers` does).
    fn position_ids(&self, ids: &Tensor, b: usize, t: usize) -> Result<Tensor> {
        if self.config.family != Family::Roberta {
            let row: Vec<i64> = (0..t as i64).collect();
            return Tensor::from_vec(row, [1, t])?.expand([b, t]);
        }
        let pad = self.config.pad_token_id as i64;
        let ids = ids.to_vec::<i64>()?;
        let pos: Vec<i64> = ids
            .chunks(t.max(1))
            .flat_map(|row| {
                let mut count = 0;
                row.iter()
                    .map(|&id| {
                        if id == pad {
                            pad
                        } else {
                            count += 1;
                            pad + count
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Tensor::from_vec(pos, [b, t])
    }

    /// The word embeddings of `ids` (`[B, T]` → `[B, T, H]`): the input that attribution methods
    /// differentiate with respect to (see [`forward_embeds`](Self::forward_embeds)).
    ///
    /// # Errors
    /// Ids outside the vocabulary.
    pub fn word_embeddings(&self, ids: &Tensor) -> Result<Tensor> {
        check_ids(ids, self.config.vocab_size, "input_ids")?;
        self.embeddings.word.embedding(ids)
    }

    fn embed(&self, input: &EncoderInput, words: Option<&Tensor>, b: usize, t: usize, train: bool) -> Result<Tensor> {
        let e = &self.embeddings;
        let ids = &input.input_ids;
        let mut x = match words {
            Some(w) => {
                let want = [b, t, self.config.hidden_size];
                if w.shape() != want {
                    return Err(Error::ShapeMismatch {
                        op: "encoder",
                        lhs: want.to_vec(),
                        rhs: w.shape().to_vec(),
                        detail: "word embeddings must be [batch, len, hidden] like input_ids".into(),
                    });
                }
                w.clone()
            }
            None => self.word_embeddings(ids)?,
        };
        x = x.add(&e.position.embedding(&self.position_ids(ids, b, t)?)?)?;
        if let Some(table) = &e.token_type {
            let types = match &input.token_type_ids {
                Some(tt) => {
                    check_ids(tt, self.config.type_vocab_size, "token_type_ids")?;
                    table.embedding(tt)?
                }
                None => table.narrow(0, 0, 1)?.unsqueeze(0)?, // type 0 everywhere, broadcast
            };
            x = x.add(&types)?;
        }
        x.layer_norm(
            e.norm.weight.shape(),
            Some(&e.norm.weight),
            Some(&e.norm.bias),
            e.norm.eps,
        )?
        .dropout(self.config.hidden_dropout, train)
    }

    /// Runs the encoder. `output_attentions` also returns every layer's attention probabilities.
    ///
    /// # Errors
    /// Inputs of the wrong shape or dtype, ids outside the vocabulary, or a sequence longer than
    /// the position table (the message says to truncate).
    ///
    /// # Shapes
    /// `input_ids` `[B, T]` → hidden states `[B, T, H]` (+ pooler `[B, H]`, attention maps `[B, heads, T, T]` per layer).
    pub fn forward(&self, input: &EncoderInput, train: bool, output_attentions: bool) -> Result<EncoderOutput> {
        self.forward_from(input, None, train, output_attentions)
    }

    /// Runs the encoder on given word embeddings `[B, T, H]` instead of looking up
    /// `input.input_ids` (Hugging Face's `inputs_embeds`); the ids still set positions (RoBERTa
    /// counts them over non-pad tokens) and the shape. Gradients flow back to `words`.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), and `words` of another shape than `[B, T, hidden]`.
    ///
    /// # Shapes
    /// `words` `[B, T, H]` (with `input_ids` `[B, T]`) → as [`forward`](Self::forward).
    pub fn forward_embeds(
        &self,
        input: &EncoderInput,
        words: &Tensor,
        train: bool,
        output_attentions: bool,
    ) -> Result<EncoderOutput> {
        self.forward_from(input, Some(words), train, output_attentions)
    }

    fn forward_from(
        &self,
        input: &EncoderInput,
        words: Option<&Tensor>,
        train: bool,
        output_attentions: bool,
    ) -> Result<EncoderOutput> {
        let (b, t) = input.check(&self.config)?;
        let mut x = self.embed(input, words, b, t, train)?;
        // 1 = may not attend, as MultiHeadAttention expects.
        let key_padding = input.attention_mask.to_dtype(DType::F32)?.lt_scalar(0.5)?;
        let need = if output_attentions {
            NeedWeights::PerHead
        } else {
            NeedWeights::No
        };
        let drop = self.config.hidden_dropout;
        let mut attentions = Vec::new();
        for layer in &self.layers {
            let (a, w) = layer
                .attention
                .forward(&x, &x, &x, Some(&key_padding), None, need, train)?;
            attentions.extend(w);
            x = add_norm(&x, &a.dropout(drop, train)?, &layer.attn_norm)?;
            let f = self
                .config
                .activation
                .apply(&x.linear(&layer.ffn_in.weight, layer.ffn_in.bias.as_ref())?)?;
            let f = f
                .linear(&layer.ffn_out.weight, layer.ffn_out.bias.as_ref())?
                .dropout(drop, train)?;
            x = add_norm(&x, &f, &layer.out_norm)?;
        }
        let pooler_output = self
            .pooler
            .as_ref()
            .map(|p| {
                x.narrow(1, 0, 1)?
                    .squeeze(1)?
                    .linear(&p.weight, p.bias.as_ref())
                    .and_then(|y| Activation::Tanh.apply(&y))
            })
            .transpose()?;
        Ok(EncoderOutput {
            last_hidden_state: x,
            pooler_output,
            attentions,
        })
    }

    /// Whether the encoder has BERT's pooler.
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }
}

/// Post-LN residual: norm(x + y).
fn add_norm(x: &Tensor, y: &Tensor, norm: &LayerNorm) -> Result<Tensor> {
    x.add(y)?
        .layer_norm(norm.weight.shape(), Some(&norm.weight), Some(&norm.bias), norm.eps)
}

/// Rejects ids outside `0..limit` with a message naming the input, before an index kernel sees them.
fn check_ids(ids: &Tensor, limit: usize, what: &str) -> Result<()> {
    let v = ids.to_vec::<i64>()?;
    if let Some(&bad) = v.iter().find(|&&i| i < 0 || i as usize >= limit) {
        return Err(Error::Invalid {
            op: "encoder",
            detail: format!("{what} contains {bad}, outside 0..{limit}"),
        });
    }
    Ok(())
}
