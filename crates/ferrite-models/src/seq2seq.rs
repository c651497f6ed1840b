//! The encoder–decoder `Transformer` (Vaswani et al. 2017) for sequence-to-sequence tasks:
//! token embeddings scaled by √d plus positional encodings, an encoder stack, a decoder stack
//! with causal self-attention and cross-attention, and a projection to vocabulary logits.
//!
//! Layer: models, built from `ferrite-nn`'s encoder and decoder layers. Options follow
//! fairseq/PyTorch practice: post-LN or pre-LN (pre-LN adds a final LayerNorm to each stack, as
//! `nn.Transformer` does), shared source/target embeddings, an output projection tied to the
//! target embedding. Token ids are i64 tensors; padding is id 0 and is masked out of every
//! attention. Incremental decoding keeps an `nn` [`KvCache`]; decoding strategies are in
//! `seq2seq_decode.rs`, on the shared generation module.

use ferrite_core::{CrossEntropyOptions, DType, Error, Result, Tensor};
use ferrite_nn::transformer::{
    causal_mask, padding_mask, DecoderLayer, DecoderMasks, EncoderLayer, NeedWeights, PositionalEncoding,
    TransformerLayerConfig as LayerConfig,
};
use ferrite_nn::{Activation, Init, KvCache, LayerNorm, Module, VarBuilder};
use serde::{Deserialize, Serialize};

/// The padding token id every sequence uses.
pub const PAD_ID: i64 = 0;

/// Fixed sinusoidal or learned position table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positional {
    #[default]
    Sinusoidal,
    Learned,
}

fn default_max_positions() -> usize {
    512
}
fn yes() -> bool {
    true
}
fn relu() -> Activation {
    Activation::Relu
}

/// Sizes and options of a [`Transformer`]. The vocabulary sizes usually come from a tokenizer,
/// so they default to 0 in a config file and are filled in before building.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    #[serde(default)]
    pub src_vocab: usize,
    #[serde(default)]
    pub tgt_vocab: usize,
    pub d_model: usize,
    pub heads: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub ffn: usize,
    #[serde(default)]
    pub dropout: f64,
    /// `relu` (default) or `gelu`.
    #[serde(default = "relu")]
    pub activation: Activation,
    #[serde(default)]
    pub norm_first: bool,
    #[serde(default)]
    pub positional: Positional,
    #[serde(default = "default_max_positions")]
    pub max_positions: usize,
    /// One embedding matrix for source and target (needs equal vocabularies).
    #[serde(default = "yes")]
    pub share_embeddings: bool,
    /// Output projection = target embedding matrix (no separate weight, no bias).
    #[serde(default = "yes")]
    pub tie_output: bool,
}

impl TransformerConfig {
    fn layer(&self) -> LayerConfig {
        LayerConfig {
            d_model: self.d_model,
            heads: self.heads,
            ffn: self.ffn,
            dropout: self.dropout,
            activation: self.activation,
            norm_first: self.norm_first,
            eps: 1e-5,
        }
    }

    /// Checks the sizes before any parameter is created.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::Invalid {
                op: "Transformer",
                detail,
            })
        };
        if self.src_vocab == 0 || self.tgt_vocab == 0 {
            return bad(format!(
                "vocabulary sizes must be > 0 (src {}, tgt {})",
                self.src_vocab, self.tgt_vocab
            ));
        }
        if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return bad(format!(
                "d_model {} must be a positive multiple of heads {}",
                self.d_model, self.heads
            ));
        }
        if self.share_embeddings && self.src_vocab != self.tgt_vocab {
            return bad(format!(
                "share_embeddings needs equal vocabularies (src {}, tgt {})",
                self.src_vocab, self.tgt_vocab
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        if self.max_positions == 0 {
            return bad("max_positions must be > 0".into());
        }
        Ok(())
    }
}

/// A stack of layers with its own positional encoding and, for pre-LN, a final LayerNorm.
struct Stack<L> {
    layers: Vec<L>,
    pos: PositionalEncoding,
    norm: Option<LayerNorm>,
}

fn stack<L>(
    vb: &VarBuilder,
    c: &TransformerConfig,
    n: usize,
    make: impl Fn(&VarBuilder, &LayerConfig) -> Result<L>,
) -> Result<Stack<L>> {
    let lc = c.layer();
    let layers = (0..n)
        .map(|i| make(&vb.pp("layers").pp(i.to_string()), &lc))
        .collect::<Result<Vec<_>>>()?;
    let pos = match c.positional {
        Positional::Sinusoidal => PositionalEncoding::sinusoidal(c.max_positions, c.d_model)?,
        Positional::Learned => PositionalEncoding::learned(&vb.pp("pos"), c.max_positions, c.d_model)?,
    };
    let norm = c
        .norm_first
        .then(|| LayerNorm::new(&vb.pp("norm"), c.d_model, lc.eps))
        .transpose()?;
    Ok(Stack { layers, pos, norm })
}

/// One batch of teacher-forced training pairs, padded with [`PAD_ID`].
pub struct Seq2SeqBatch {
    /// `[B, Ts]` i64 source ids (ending in EOS).
    pub src: Tensor,
    /// `[B, Tt]` decoder input (BOS + target).
    pub tgt_in: Tensor,
    /// `[B, Tt]` decoder target (target + EOS), PAD where padded.
    pub tgt_out: Tensor,
    pub src_lens: Vec<usize>,
    pub tgt_lens: Vec<usize>,
}

impl Seq2SeqBatch {
    /// Pads `(source, decoder input, decoder target)` triples into a batch. The decoder input and
    /// target of one example must have equal lengths.
    pub fn new(examples: &[(&[u32], &[u32], &[u32])]) -> Result<Self> {
        if examples.is_empty() {
            return Err(Error::Invalid {
                op: "Seq2SeqBatch",
                detail: "empty batch".into(),
            });
        }
        for (i, (s, ti, to)) in examples.iter().enumerate() {
            if s.is_empty() || ti.is_empty() || ti.len() != to.len() {
                return Err(Error::Invalid {
                    op: "Seq2SeqBatch",
                    detail: format!(
                        "example {i}: source {} tokens, decoder input {}, target {} (need non-empty, input = target)",
                        s.len(),
                        ti.len(),
                        to.len()
                    ),
                });
            }
        }
        let src_lens: Vec<usize> = examples.iter().map(|e| e.0.len()).collect();
        let tgt_lens: Vec<usize> = examples.iter().map(|e| e.1.len()).collect();
        Ok(Seq2SeqBatch {
            src: pad_ids(examples.iter().map(|e| e.0))?,
            tgt_in: pad_ids(examples.iter().map(|e| e.1))?,
            tgt_out: pad_ids(examples.iter().map(|e| e.2))?,
            src_lens,
            tgt_lens,
        })
    }

    /// Non-padding target tokens (the loss is averaged over these).
    pub fn target_tokens(&self) -> usize {
        self.tgt_lens.iter().sum()
    }
}

/// Right-pads id sequences with [`PAD_ID`] into an i64 `[B, max_len]` tensor.
pub fn pad_ids<'a>(seqs: impl ExactSizeIterator<Item = &'a [u32]> + Clone) -> Result<Tensor> {
    let (b, t) = (seqs.len(), seqs.clone().map(<[u32]>::len).max().unwrap_or(0));
    let mut v = vec![PAD_ID; b * t];
    for (row, s) in seqs.enumerate() {
        for (j, &id) in s.iter().enumerate() {
            v[row * t + j] = id as i64;
        }
    }
    Tensor::from_vec(v, [b, t])
}

/// Attention probabilities of every layer of a seq2seq model (see
/// [`Transformer::attention_maps`]).
#[derive(Clone, Debug, Default)]
pub struct Seq2SeqAttention {
    /// Per encoder layer, `[B, H, Ts, Ts]`.
    pub encoder: Vec<Tensor>,
    /// Per decoder layer, `[B, H, Tt, Tt]` (causal: zero above the diagonal).
    pub decoder: Vec<Tensor>,
    /// Per decoder layer, `[B, H, Tt, Ts]`.
    pub cross: Vec<Tensor>,
}

/// Encoder output plus what the decoder needs to attend to it.
#[derive(Clone)]
pub struct Memory {
    /// `[B, Ts, d]`
    pub states: Tensor,
    /// `[B, Ts]` u8, 1 = padding.
    pub key_padding: Tensor,
}

impl Memory {
    /// The key-padding mask as `[B, 1, 1, Ts]` (u8, 1 = padding), the shape attention broadcasts.
    ///
    /// # Errors
    /// Never for a memory made by [`Transformer::encode`].
    pub fn attention_mask(&self) -> Result<Tensor> {
        let (b, ts) = (self.key_padding.shape()[0], self.key_padding.shape()[1]);
        self.key_padding.reshape([b, 1, 1, ts])
    }

    /// Keeps rows `index` (i64 `[N]`), e.g. to repeat each source once per beam.
    pub fn index_select(&self, index: &Tensor) -> Result<Memory> {
        Ok(Memory {
            states: self.states.index_select(0, index)?,
            key_padding: self.key_padding.index_select(0, index)?,
        })
    }
}

/// The encoder–decoder Transformer.
pub struct Transformer {
    cfg: TransformerConfig,
    src_embed: Tensor,
    tgt_embed: Tensor,
    output: Tensor,
    encoder: Stack<EncoderLayer>,
    decoder: Stack<DecoderLayer>,
}

impl Transformer {
    /// Parameters: `embed.weight` (shared) or `src_embed.weight`/`tgt_embed.weight`,
    /// `encoder.layers.N.*`, `decoder.layers.N.*` (PyTorch's layer names), `*.norm.*` for pre-LN,
    /// `output.weight` when not tied. Embeddings start as N(0, d^-½), so after the √d scale they
    /// have unit variance (fairseq).
    pub fn new(vb: &VarBuilder, cfg: &TransformerConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let emb_init = Init::Normal {
            mean: 0.0,
            std: (d as f64).powf(-0.5),
        };
        let (src_embed, tgt_embed) = if cfg.share_embeddings {
            let e = vb.pp("embed").get(&[cfg.src_vocab, d], "weight", emb_init)?;
            (e.clone(), e)
        } else {
            (
                vb.pp("src_embed").get(&[cfg.src_vocab, d], "weight", emb_init)?,
                vb.pp("tgt_embed").get(&[cfg.tgt_vocab, d], "weight", emb_init)?,
            )
        };
        let output = if cfg.tie_output {
            tgt_embed.clone()
        } else {
            vb.pp("output")
                .get(&[cfg.tgt_vocab, d], "weight", Init::GlorotUniform)?
        };
        Ok(Transformer {
            encoder: stack(&vb.pp("encoder"), cfg, cfg.encoder_layers, EncoderLayer::new)?,
            decoder: stack(&vb.pp("decoder"), cfg, cfg.decoder_layers, DecoderLayer::new)?,
            cfg: cfg.clone(),
            src_embed,
            tgt_embed,
            output,
        })
    }

    pub fn config(&self) -> &TransformerConfig {
        &self.cfg
    }

    /// Embedding · √d + position table (from `offset`), then dropout.
    fn embed(
        &self,
        table: &Tensor,
        ids: &Tensor,
        pos: &PositionalEncoding,
        offset: usize,
        train: bool,
    ) -> Result<Tensor> {
        let x = table.embedding(ids)?.mul_scalar((self.cfg.d_model as f64).sqrt())?;
        pos.forward(&x, offset)?.dropout(self.cfg.dropout, train)
    }

    fn check_ids(&self, ids: &Tensor, what: &'static str) -> Result<()> {
        if ids.ndim() != 2 || ids.dtype() != DType::I64 {
            return Err(Error::Invalid {
                op: "Transformer",
                detail: format!(
                    "{what} must be i64 [batch, length], got {:?} {:?}",
                    ids.dtype(),
                    ids.shape()
                ),
            });
        }
        Ok(())
    }

    /// Runs the encoder over `src` `[B, Ts]` (i64) whose row i has `src_lens[i]` real tokens.
    ///
    /// # Shapes
    /// `src` i64 `[B, Ts]` → states `[B, Ts, d]` and key padding `[B, Ts]`.
    pub fn encode(&self, src: &Tensor, src_lens: &[usize], train: bool) -> Result<Memory> {
        self.check_ids(src, "source ids")?;
        if src_lens.len() != src.shape()[0] {
            return Err(Error::Invalid {
                op: "Transformer::encode",
                detail: format!("{} lengths for a batch of {}", src_lens.len(), src.shape()[0]),
            });
        }
        let key_padding = padding_mask(src_lens, src.shape()[1])?;
        let mut x = self.embed(&self.src_embed, src, &self.encoder.pos, 0, train)?;
        for l in &self.encoder.layers {
            x = l.forward(&x, Some(&key_padding), None, train)?;
        }
        if let Some(n) = &self.encoder.norm {
            x = n.forward(&x, false)?;
        }
        Ok(Memory { states: x, key_padding })
    }

    fn project(&self, mut x: Tensor) -> Result<Tensor> {
        if let Some(n) = &self.decoder.norm {
            x = n.forward(&x, false)?;
        }
        x.linear(&self.output, None)
    }

    /// Decoder logits `[B, Tt, V]` for the whole decoder input `tgt_in` `[B, Tt]` (teacher
    /// forcing; position t sees inputs 0..=t).
    ///
    /// # Shapes
    /// `tgt_in` i64 `[B, Tt]`, memory `[B, Ts, d]` → logits `[B, Tt, V]`.
    pub fn decode(&self, tgt_in: &Tensor, tgt_lens: Option<&[usize]>, memory: &Memory, train: bool) -> Result<Tensor> {
        self.check_ids(tgt_in, "decoder input ids")?;
        let t = tgt_in.shape()[1];
        let causal = causal_mask(t, t)?;
        let tgt_pad = tgt_lens.map(|l| padding_mask(l, t)).transpose()?;
        let masks = DecoderMasks {
            tgt_mask: Some(&causal),
            tgt_key_padding_mask: tgt_pad.as_ref(),
            memory_key_padding_mask: Some(&memory.key_padding),
        };
        let mut x = self.embed(&self.tgt_embed, tgt_in, &self.decoder.pos, 0, train)?;
        for l in &self.decoder.layers {
            x = l.forward(&x, &memory.states, masks, train)?;
        }
        self.project(x)
    }

    /// Every attention map for source `src` `[B, Ts]` (row lengths `src_lens`) and decoder input
    /// `tgt_in` `[B, Tt]`, in inference mode and without recording gradients: per layer, encoder
    /// self-attention `[B, H, Ts, Ts]`, decoder self-attention `[B, H, Tt, Tt]` and
    /// cross-attention `[B, H, Tt, Ts]` (row = decoder position, column = source token).
    ///
    /// # Errors
    /// As [`encode`](Self::encode) and [`decode`](Self::decode).
    pub fn attention_maps(&self, src: &Tensor, src_lens: &[usize], tgt_in: &Tensor) -> Result<Seq2SeqAttention> {
        let _g = ferrite_core::no_grad();
        let need = NeedWeights::PerHead;
        self.check_ids(src, "source ids")?;
        self.check_ids(tgt_in, "decoder input ids")?;
        if src_lens.len() != src.shape()[0] {
            return Err(Error::Invalid {
                op: "Transformer::attention_maps",
                detail: format!("{} lengths for a batch of {}", src_lens.len(), src.shape()[0]),
            });
        }
        let key_padding = padding_mask(src_lens, src.shape()[1])?;
        let mut out = Seq2SeqAttention::default();
        let mut x = self.embed(&self.src_embed, src, &self.encoder.pos, 0, false)?;
        for l in &self.encoder.layers {
            let (y, w) = l.forward_weights(&x, Some(&key_padding), None, need, false)?;
            out.encoder.extend(w);
            x = y;
        }
        if let Some(n) = &self.encoder.norm {
            x = n.forward(&x, false)?;
        }
        let t = tgt_in.shape()[1];
        let causal = causal_mask(t, t)?;
        let masks = DecoderMasks {
            tgt_mask: Some(&causal),
            tgt_key_padding_mask: None,
            memory_key_padding_mask: Some(&key_padding),
        };
        let mut y = self.embed(&self.tgt_embed, tgt_in, &self.decoder.pos, 0, false)?;
        for l in &self.decoder.layers {
            let (z, sw, cw) = l.forward_weights(&y, &x, masks, need, false)?;
            out.decoder.extend(sw);
            out.cross.extend(cw);
            y = z;
        }
        Ok(out)
    }

    /// Logits for a teacher-forced batch.
    ///
    /// # Shapes
    /// batch `src` `[B, Ts]`, `tgt_in` `[B, Tt]` → logits `[B, Tt, V]`.
    pub fn forward(&self, batch: &Seq2SeqBatch, train: bool) -> Result<Tensor> {
        let memory = self.encode(&batch.src, &batch.src_lens, train)?;
        // Padded target positions come after every real one, so the causal mask already keeps
        // real queries off them; their own outputs are ignored by the loss.
        self.decode(&batch.tgt_in, None, &memory, train)
    }

    /// Label-smoothed cross-entropy over the non-padding target tokens (mean).
    ///
    /// # Shapes
    /// batch of `[B, Ts]` / `[B, Tt]` ids → a scalar.
    pub fn loss(&self, batch: &Seq2SeqBatch, label_smoothing: f64, train: bool) -> Result<Tensor> {
        let logits = self.forward(batch, train)?;
        let v = logits.shape()[2];
        logits.reshape([logits.numel() / v.max(1), v])?.cross_entropy(
            &batch.tgt_out.reshape([batch.tgt_out.numel()])?,
            CrossEntropyOptions {
                ignore_index: PAD_ID,
                label_smoothing,
            },
        )
    }

    /// Starts incremental decoding against `memory`: its keys/values projected once per layer
    /// into a fresh cache.
    ///
    /// # Errors
    /// A memory of another width than the model's.
    pub fn start_cache(&self, memory: &Memory) -> Result<KvCache> {
        let mut cache = KvCache::new(self.decoder.layers.len());
        for (i, l) in self.decoder.layers.iter().enumerate() {
            l.start_cache(&memory.states, &mut cache, i)?;
        }
        Ok(cache)
    }

    /// Logits for `new_ids`, the positions after the `cache.len()` already decoded; appends their
    /// keys/values to `cache`. `memory_mask` is [`Memory::attention_mask`] of the batch (rows
    /// reordered as the cache's).
    ///
    /// # Shapes
    /// `new_ids` `[B, Tn]` (i64) → `[B, Tn, V]`.
    ///
    /// # Errors
    /// Ids of the wrong dtype or shape, positions past `max_positions`.
    pub fn decode_step(&self, new_ids: &Tensor, cache: &mut KvCache, memory_mask: &Tensor) -> Result<Tensor> {
        self.check_ids(new_ids, "decoder input ids")?;
        let mut x = self.embed(&self.tgt_embed, new_ids, &self.decoder.pos, cache.len(), false)?;
        for (i, l) in self.decoder.layers.iter().enumerate() {
            x = l.forward_cached(&x, cache, i, Some(memory_mask))?;
        }
        self.project(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_core::no_grad;
    use ferrite_nn::VarMap;

    fn tiny(norm_first: bool) -> (VarMap, Transformer) {
        let map = VarMap::new();
        let cfg = TransformerConfig {
            src_vocab: 11,
            tgt_vocab: 11,
            d_model: 16,
            heads: 4,
            encoder_layers: 2,
            decoder_layers: 2,
            ffn: 32,
            dropout: 0.0,
            activation: Activation::Relu,
            norm_first,
            positional: Positional::Sinusoidal,
            max_positions: 32,
            share_embeddings: true,
            tie_output: true,
        };
        let m = Transformer::new(&VarBuilder::new(&map, 3), &cfg).unwrap();
        (map, m)
    }

    #[test]
    fn attention_maps_are_probabilities_with_masks_respected() {
        let (_map, m) = tiny(true);
        let src = Tensor::from_vec(vec![3i64, 4, 5, 0, 6, 7, 8, 9], [2, 4]).unwrap();
        let tgt = Tensor::from_vec(vec![1i64, 5, 6, 1, 7, 8], [2, 3]).unwrap();
        let a = m.attention_maps(&src, &[3, 4], &tgt).unwrap();
        assert_eq!((a.encoder.len(), a.decoder.len(), a.cross.len()), (2, 2, 2));
        assert_eq!(a.cross[0].shape(), &[2, 4, 3, 4]);
        assert_eq!(a.decoder[1].shape(), &[2, 4, 3, 3]);
        for maps in [&a.encoder, &a.decoder, &a.cross] {
            for w in maps.iter() {
                let k = w.shape()[3];
                let v = w.to_vec::<f32>().unwrap();
                for row in v.chunks(k) {
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                }
            }
        }
        // Sample 0's padded source position gets no attention; the decoder never looks ahead.
        let cross = a.cross[0].to_vec::<f32>().unwrap();
        assert!((0..12).all(|r| cross[r * 4 + 3] == 0.0));
        let dec = a.decoder[0].to_vec::<f32>().unwrap();
        assert!(dec.chunks(9).all(|m| m[1] == 0.0 && m[2] == 0.0 && m[5] == 0.0));
        // Asking for the maps does not change what a layer computes.
        let x = Tensor::randn([2, 4, 16]).unwrap();
        let layer = &m.encoder.layers[0];
        let plain = layer.forward(&x, None, None, false).unwrap().to_vec::<f32>().unwrap();
        let (with, w) = layer
            .forward_weights(&x, None, None, NeedWeights::PerHead, false)
            .unwrap();
        assert_eq!(with.to_vec::<f32>().unwrap(), plain);
        assert_eq!(w.unwrap().shape(), &[2, 4, 4, 4]);
    }

    #[test]
    fn cached_decoding_matches_full_decoding() {
        for norm_first in [false, true] {
            let (_map, m) = tiny(norm_first);
            let src = Tensor::from_vec(vec![5i64, 6, 7, 2, 8, 9, 2, 0], [2, 4]).unwrap();
            let tgt = Tensor::from_vec(vec![1i64, 4, 5, 6, 1, 7, 8, 9], [2, 4]).unwrap();
            let _g = no_grad();
            let mem = m.encode(&src, &[4, 3], false).unwrap();
            let full = m.decode(&tgt, None, &mem, false).unwrap().to_vec::<f32>().unwrap();
            let mut cache = m.start_cache(&mem).unwrap();
            let mask = mem.attention_mask().unwrap();
            // Two tokens at once, then one at a time.
            let mut got = m.decode_step(&tgt.narrow(1, 0, 2).unwrap(), &mut cache, &mask).unwrap();
            for t in 2..4 {
                let step = m.decode_step(&tgt.narrow(1, t, 1).unwrap(), &mut cache, &mask).unwrap();
                got = Tensor::cat(&[got, step], 1).unwrap();
            }
            let got = got.to_vec::<f32>().unwrap();
            for (a, b) in full.iter().zip(&got) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b} (norm_first {norm_first})");
            }
        }
    }

    #[test]
    fn padding_does_not_change_real_positions() {
        let (_map, m) = tiny(false);
        let _g = no_grad();
        let a = Tensor::from_vec(vec![5i64, 6, 2], [1, 3]).unwrap();
        let padded = Tensor::from_vec(vec![5i64, 6, 2, 0, 0], [1, 5]).unwrap();
        let tgt = Tensor::from_vec(vec![1i64, 4], [1, 2]).unwrap();
        let x = m
            .decode(&tgt, None, &m.encode(&a, &[3], false).unwrap(), false)
            .unwrap();
        let y = m
            .decode(&tgt, None, &m.encode(&padded, &[3], false).unwrap(), false)
            .unwrap();
        for (p, q) in x.to_vec::<f32>().unwrap().iter().zip(y.to_vec::<f32>().unwrap()) {
            assert!((p - q).abs() < 1e-5);
        }
    }

    #[test]
    fn loss_is_finite_and_errors_are_clear() {
        let (_map, m) = tiny(true);
        let b = Seq2SeqBatch::new(&[(&[5, 6, 2], &[1, 7], &[7, 2]), (&[8, 2], &[1, 9, 10], &[9, 10, 2])]).unwrap();
        let l = m.loss(&b, 0.1, true).unwrap().item().unwrap();
        assert!(l.is_finite() && l > 0.0);
        assert!(Seq2SeqBatch::new(&[(&[5], &[1, 2], &[2])]).is_err());
        let bad = Tensor::from_vec(vec![1.0f32, 2.0], [1, 2]).unwrap();
        let e = m.encode(&bad, &[2], false).err().unwrap().to_string();
        assert!(e.contains("i64"), "{e}");
    }
}
