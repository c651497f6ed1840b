//! Transformer encoder and decoder layers with PyTorch's `nn.TransformerEncoderLayer` /
//! `nn.TransformerDecoderLayer` structure and parameter names (post-LN or pre-LN, ReLU or GELU).
//!
//! Layer: nn. The seed's sketch got these wrong (no masks, no layer norm, the decoder's FFN output
//! replacing the residual); here each sub-block is residual + dropout + LayerNorm as in the paper.

use super::attention::causal_mask;
use super::mha::{MultiHeadAttention, NeedWeights};
use crate::kv_cache::KvCache;
use crate::layers::{LayerNorm, Linear, LinearInit};
use crate::module::{Activation, Module};
use crate::var_map::VarBuilder;
use ferrite_core::{Error, Result, Tensor};

/// Sizes and options shared by encoder and decoder layers.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerConfig {
    pub d_model: usize,
    pub heads: usize,
    pub ffn: usize,
    pub dropout: f64,
    /// `relu` or `gelu` (PyTorch's two choices).
    pub activation: Activation,
    /// Pre-LN (`norm_first = True`) instead of the original post-LN.
    pub norm_first: bool,
    pub eps: f64,
}

/// The position-wise feed-forward block: `linear2(dropout(act(linear1(x))))`.
pub struct FeedForward {
    linear1: Linear,
    linear2: Linear,
    act: Activation,
    dropout: f64,
}

impl FeedForward {
    fn new(vb: &VarBuilder, c: &LayerConfig) -> Result<Self> {
        Ok(FeedForward {
            linear1: Linear::new(&vb.pp("linear1"), c.d_model, c.ffn, true, LinearInit::Pytorch)?,
            linear2: Linear::new(&vb.pp("linear2"), c.ffn, c.d_model, true, LinearInit::Pytorch)?,
            act: c.activation,
            dropout: c.dropout,
        })
    }
    /// Pretrained weights: `linear1` `[ffn, d]`, `linear2` `[d, ffn]`.
    ///
    /// # Errors
    /// Linears that do not chain (`linear1`'s output is not `linear2`'s input).
    pub fn from_parts(linear1: Linear, linear2: Linear, act: Activation, dropout: f64) -> Result<Self> {
        if linear1.out_features() != linear2.in_features() {
            return Err(Error::ShapeMismatch {
                op: "FeedForward",
                lhs: linear1.weight.shape().to_vec(),
                rhs: linear2.weight.shape().to_vec(),
                detail: "linear1's output width must be linear2's input width".into(),
            });
        }
        Ok(FeedForward {
            linear1,
            linear2,
            act,
            dropout,
        })
    }

    /// Width of the hidden layer.
    pub fn hidden(&self) -> usize {
        self.linear1.out_features()
    }

    /// # Shapes
    /// `[.., d] → [.., d]`
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self
            .act
            .apply(&self.linear1.forward(x, train)?)?
            .dropout(self.dropout, train)?;
        self.linear2.forward(&h, train)
    }
}

/// One encoder layer: self-attention and feed-forward, each with residual and LayerNorm.
pub struct EncoderLayer {
    self_attn: MultiHeadAttention,
    ff: FeedForward,
    norm1: LayerNorm,
    norm2: LayerNorm,
    cfg: LayerConfig,
}

impl EncoderLayer {
    pub fn new(vb: &VarBuilder, c: &LayerConfig) -> Result<Self> {
        Ok(EncoderLayer {
            self_attn: MultiHeadAttention::new(&vb.pp("self_attn"), c.d_model, c.heads, c.dropout, true)?,
            ff: FeedForward::new(vb, c)?,
            norm1: LayerNorm::new(&vb.pp("norm1"), c.d_model, c.eps)?,
            norm2: LayerNorm::new(&vb.pp("norm2"), c.d_model, c.eps)?,
            cfg: *c,
        })
    }

    /// A layer from pretrained parts (a checkpoint with its own names, e.g. Whisper's encoder).
    pub fn from_parts(
        self_attn: MultiHeadAttention,
        ff: FeedForward,
        norm1: LayerNorm,
        norm2: LayerNorm,
        cfg: &LayerConfig,
    ) -> Self {
        EncoderLayer {
            self_attn,
            ff,
            norm1,
            norm2,
            cfg: *cfg,
        }
    }

    /// # Shapes
    /// `x` `[B, T, d]` → `[B, T, d]`; `key_padding_mask` `[B, T]` (u8, 1 = pad), `attn_mask`
    /// `[T, T]`.
    pub fn forward(
        &self,
        x: &Tensor,
        key_padding_mask: Option<&Tensor>,
        attn_mask: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        Ok(self
            .forward_weights(x, key_padding_mask, attn_mask, NeedWeights::No, train)?
            .0)
    }

    /// [`forward`](Self::forward), also returning the self-attention weights `[B, H, T, T]` when
    /// `need` asks for them (attention maps for explanation; the normal path never builds them).
    ///
    /// # Shapes
    /// `x` `[B, T, d]` → `[B, T, d]` and weights `[B, H, T, T]`.
    pub fn forward_weights(
        &self,
        x: &Tensor,
        key_padding_mask: Option<&Tensor>,
        attn_mask: Option<&Tensor>,
        need: NeedWeights,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let p = self.cfg.dropout;
        let mut weights = None;
        let mut sa = |h: &Tensor| -> Result<Tensor> {
            let (o, w) = self
                .self_attn
                .forward(h, h, h, key_padding_mask, attn_mask, need, train)?;
            weights = w;
            o.dropout(p, train)
        };
        let ff = |h: &Tensor| self.ff.forward(h, train)?.dropout(p, train);
        let out = if self.cfg.norm_first {
            let x = x.add(&sa(&self.norm1.forward(x, train)?)?)?;
            x.add(&ff(&self.norm2.forward(&x, train)?)?)?
        } else {
            let x = self.norm1.forward(&x.add(&sa(x)?)?, train)?;
            self.norm2.forward(&x.add(&ff(&x)?)?, train)?
        };
        Ok((out, weights))
    }
}

/// One decoder layer: masked self-attention, cross-attention to the encoder output, feed-forward.
pub struct DecoderLayer {
    self_attn: MultiHeadAttention,
    cross_attn: MultiHeadAttention,
    ff: FeedForward,
    norm1: LayerNorm,
    norm2: LayerNorm,
    norm3: LayerNorm,
    cfg: LayerConfig,
}

/// Masks for a decoder layer (all u8, 1 = may not attend).
#[derive(Clone, Copy, Default)]
pub struct DecoderMasks<'a> {
    /// `[Tt, Tt]`, usually causal.
    pub tgt_mask: Option<&'a Tensor>,
    /// `[B, Tt]`
    pub tgt_key_padding_mask: Option<&'a Tensor>,
    /// `[B, Ts]`
    pub memory_key_padding_mask: Option<&'a Tensor>,
}

impl DecoderLayer {
    pub fn new(vb: &VarBuilder, c: &LayerConfig) -> Result<Self> {
        Ok(DecoderLayer {
            self_attn: MultiHeadAttention::new(&vb.pp("self_attn"), c.d_model, c.heads, c.dropout, true)?,
            cross_attn: MultiHeadAttention::new(&vb.pp("multihead_attn"), c.d_model, c.heads, c.dropout, true)?,
            ff: FeedForward::new(vb, c)?,
            norm1: LayerNorm::new(&vb.pp("norm1"), c.d_model, c.eps)?,
            norm2: LayerNorm::new(&vb.pp("norm2"), c.d_model, c.eps)?,
            norm3: LayerNorm::new(&vb.pp("norm3"), c.d_model, c.eps)?,
            cfg: *c,
        })
    }

    /// A layer from pretrained parts (a checkpoint with its own names, e.g. Whisper's decoder).
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        self_attn: MultiHeadAttention,
        cross_attn: MultiHeadAttention,
        ff: FeedForward,
        norm1: LayerNorm,
        norm2: LayerNorm,
        norm3: LayerNorm,
        cfg: &LayerConfig,
    ) -> Self {
        DecoderLayer {
            self_attn,
            cross_attn,
            ff,
            norm1,
            norm2,
            norm3,
            cfg: *cfg,
        }
    }

    /// `x` attends to itself (masked) and to `memory`.
    ///
    /// # Shapes
    /// `x` `[B, Tt, d]`, `memory` `[B, Ts, d]` → `[B, Tt, d]`.
    pub fn forward(&self, x: &Tensor, memory: &Tensor, m: DecoderMasks<'_>, train: bool) -> Result<Tensor> {
        Ok(self.forward_weights(x, memory, m, NeedWeights::No, train)?.0)
    }

    /// [`forward`](Self::forward), also returning the self-attention `[B, H, Tt, Tt]` and
    /// cross-attention `[B, H, Tt, Ts]` weights when `need` asks for them.
    ///
    /// # Shapes
    /// `x` `[B, Tt, d]`, `memory` `[B, Ts, d]` → `[B, Tt, d]`, `[B, H, Tt, Tt]`, `[B, H, Tt, Ts]`.
    #[allow(clippy::type_complexity)]
    pub fn forward_weights(
        &self,
        x: &Tensor,
        memory: &Tensor,
        m: DecoderMasks<'_>,
        need: NeedWeights,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>, Option<Tensor>)> {
        let (mut self_w, mut cross_w) = (None, None);
        let sa = |h: &Tensor| -> Result<Tensor> {
            let (o, w) = self
                .self_attn
                .forward(h, h, h, m.tgt_key_padding_mask, m.tgt_mask, need, train)?;
            self_w = w;
            Ok(o)
        };
        let ca = |h: &Tensor| -> Result<Tensor> {
            let (o, w) = self
                .cross_attn
                .forward(h, memory, memory, m.memory_key_padding_mask, None, need, train)?;
            cross_w = w;
            Ok(o)
        };
        let out = self.sublayers(x, sa, ca, train)?;
        Ok((out, self_w, cross_w))
    }

    /// Incremental decoding: `x` holds only the new positions; their keys and values are appended
    /// to layer `layer` of `cache`, and they attend to every cached position (causally among
    /// themselves). Cross-attention reads the memory keys/values set once by
    /// [`start_cache`](Self::start_cache). Gives the same result as [`forward`](Self::forward) on
    /// the whole prefix, at O(T) per token. Inference only (no dropout, no gradients).
    ///
    /// # Shapes
    /// `x` `[B, Tn, d]` → `[B, Tn, d]`; `memory_mask` is the key-padding mask as `[B, 1, 1, Ts]`
    /// (u8, 1 = padding).
    ///
    /// # Errors
    /// A cache without this layer's cross-attention keys, or shapes that do not fit it.
    pub fn forward_cached(
        &self,
        x: &Tensor,
        cache: &mut KvCache,
        layer: usize,
        memory_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (cross_k, cross_v) =
            cache
                .cross(layer)
                .map(|(k, v)| (k.clone(), v.clone()))
                .ok_or_else(|| Error::Invalid {
                    op: "DecoderLayer::forward_cached",
                    detail: format!("the cache has no cross-attention keys for layer {layer} (call start_cache)"),
                })?;
        let sa = |h: &Tensor| -> Result<Tensor> {
            let q = self.self_attn.project_heads(h, 0)?; // (B, H, Tn, hd)
            let (k, v) = (self.self_attn.project_heads(h, 1)?, self.self_attn.project_heads(h, 2)?);
            let (k, v) = cache.append(layer, &k, &v)?; // (B, H, T, hd)
            let tn = q.shape()[2];
            let mask = (tn > 1).then(|| causal_mask(tn, k.shape()[2])).transpose()?;
            self.self_attn.attend_heads(&q, &k, &v, mask.as_ref(), false)
        };
        let ca = |h: &Tensor| -> Result<Tensor> {
            let q = self.cross_attn.project_heads(h, 0)?;
            self.cross_attn.attend_heads(&q, &cross_k, &cross_v, memory_mask, false)
        };
        self.sublayers(x, sa, ca, false)
    }

    /// Projects `memory` `[B, Ts, d]` into this layer's cross-attention keys and values and stores
    /// them in layer `layer` of `cache`.
    ///
    /// # Errors
    /// A memory whose width is not the layer's.
    pub fn start_cache(&self, memory: &Tensor, cache: &mut KvCache, layer: usize) -> Result<()> {
        cache.set_cross(
            layer,
            self.cross_attn.project_heads(memory, 1)?,
            self.cross_attn.project_heads(memory, 2)?,
        )
    }

    /// Residual + dropout + LayerNorm around self-attention `sa`, cross-attention `ca` and the
    /// feed-forward block, post-LN or pre-LN.
    fn sublayers(
        &self,
        x: &Tensor,
        sa: impl FnOnce(&Tensor) -> Result<Tensor>,
        ca: impl FnOnce(&Tensor) -> Result<Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let p = self.cfg.dropout;
        let ff = |h: &Tensor| self.ff.forward(h, train)?.dropout(p, train);
        if self.cfg.norm_first {
            let x = x.add(&sa(&self.norm1.forward(x, train)?)?.dropout(p, train)?)?;
            let x = x.add(&ca(&self.norm2.forward(&x, train)?)?.dropout(p, train)?)?;
            x.add(&ff(&self.norm3.forward(&x, train)?)?)
        } else {
            let x = self.norm1.forward(&x.add(&sa(x)?.dropout(p, train)?)?, train)?;
            let x = self.norm2.forward(&x.add(&ca(&x)?.dropout(p, train)?)?, train)?;
            self.norm3.forward(&x.add(&ff(&x)?)?, train)
        }
    }
}

/// `layers` encoder layers applied in turn (no masks: every position sees every position), as in
/// a Vision Transformer. Its attention maps are available through
/// `Module::forward_with_attention`.
pub struct EncoderStack {
    layers: Vec<EncoderLayer>,
}

impl EncoderStack {
    /// Layers named `0.*`, `1.*`, … under `vb`.
    pub fn new(vb: &VarBuilder, c: &LayerConfig, layers: usize) -> Result<Self> {
        let layers = (0..layers)
            .map(|i| EncoderLayer::new(&vb.pp(i.to_string()), c))
            .collect::<Result<_>>()?;
        Ok(EncoderStack { layers })
    }
}

impl Module for EncoderStack {
    /// # Shapes
    /// `[N, T, d] → [N, T, d]`
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h, None, None, train)?;
        }
        Ok(h)
    }

    /// # Shapes
    /// `[N, T, d] → [N, T, d]`, one `[N, H, T, T]` map per layer.
    fn forward_with_attention(&self, x: &Tensor, attentions: &mut Vec<Tensor>) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            let (y, w) = l.forward_weights(&h, None, None, NeedWeights::PerHead, false)?;
            attentions.extend(w);
            h = y;
        }
        Ok(h)
    }
}
