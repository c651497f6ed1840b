//! Multi-head attention with PyTorch's `nn.MultiheadAttention` parameter layout (fused
//! `in_proj_weight` `[3E, E]`, `out_proj`) or separate `q_proj`/`k_proj`/`v_proj` (Hugging Face).
//!
//! Layer: nn. Self- and cross-attention, key-padding and attention masks (u8, 1 = masked),
//! optional per-head or head-averaged attention weights.

use super::attention::scaled_dot_product_attention;
use crate::init::Init;
use crate::layers::{Linear, LinearInit};
use crate::var_map::VarBuilder;
use ferrite_core::{DType, Error, Result, Tensor};

enum Projections {
    /// PyTorch: one `[3E, E]` weight; rows 0..E are q, E..2E k, 2E..3E v.
    Fused {
        weight: Tensor,
        bias: Tensor,
    },
    Separate {
        q: Linear,
        k: Linear,
        v: Linear,
    },
}

/// Multi-head attention.
///
/// ```
/// use ferrite_core::Tensor;
/// use ferrite_nn::transformer::{MultiHeadAttention, NeedWeights};
/// use ferrite_nn::{VarBuilder, VarMap};
/// let vars = VarMap::new();
/// let mha = MultiHeadAttention::new(&VarBuilder::new(&vars, 0), 8, 2, 0.0, true)?;
/// assert!(vars.get("in_proj_weight").is_some()); // PyTorch's parameter names
/// let x = Tensor::randn([2, 5, 8])?;
/// let (y, w) = mha.forward(&x, &x, &x, None, None, NeedWeights::PerHead, false)?;
/// assert_eq!((y.shape(), w.unwrap().shape()), (&[2usize, 5, 8][..], &[2usize, 2, 5, 5][..]));
/// # Ok::<(), ferrite_core::Error>(())
/// ```
pub struct MultiHeadAttention {
    proj: Projections,
    out_proj: Linear,
    heads: usize,
    dim: usize,
    pub dropout: f64,
}

/// Which attention weights to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeedWeights {
    No,
    /// `[B, H, Tq, Tk]`
    PerHead,
    /// `[B, Tq, Tk]`, averaged over heads (PyTorch's default).
    Averaged,
}

/// Elementwise OR of two u8 masks (broadcasting).
pub fn mask_or(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.to_dtype(DType::F32)?.add(&b.to_dtype(DType::F32)?)?.gt_scalar(0.5)
}

impl MultiHeadAttention {
    /// `fused_qkv = true` gives PyTorch's parameter names (`in_proj_weight`, `in_proj_bias`,
    /// `out_proj.*`); false gives `q_proj`, `k_proj`, `v_proj`, `out_proj`.
    pub fn new(vb: &VarBuilder, dim: usize, heads: usize, dropout: f64, fused_qkv: bool) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(Error::Invalid {
                op: "MultiHeadAttention",
                detail: format!("embed dim {dim} is not divisible by {heads} heads"),
            });
        }
        let proj = if fused_qkv {
            Projections::Fused {
                weight: vb.get(&[3 * dim, dim], "in_proj_weight", Init::GlorotUniform)?,
                bias: vb.get(&[3 * dim], "in_proj_bias", Init::Zeros)?,
            }
        } else {
            let lin = |n: &str| Linear::new(&vb.pp(n), dim, dim, true, LinearInit::Pytorch);
            Projections::Separate {
                q: lin("q_proj")?,
                k: lin("k_proj")?,
                v: lin("v_proj")?,
            }
        };
        let out_proj = Linear::new(&vb.pp("out_proj"), dim, dim, true, LinearInit::Pytorch)?;
        Ok(MultiHeadAttention {
            proj,
            out_proj,
            heads,
            dim,
            dropout,
        })
    }

    /// Multi-head attention over existing projections, for checkpoints that name them their own
    /// way (BERT's `query`/`key`/`value`/`output.dense`, DistilBERT's `q_lin`/…/`out_lin`).
    ///
    /// # Errors
    /// Projections that are not all `[dim, dim]`, or `dim` not divisible by `heads`.
    pub fn from_linears(q: Linear, k: Linear, v: Linear, out_proj: Linear, heads: usize, dropout: f64) -> Result<Self> {
        let dim = out_proj.out_features();
        for l in [&q, &k, &v, &out_proj] {
            if l.weight.shape() != [dim, dim] {
                return Err(Error::ShapeMismatch {
                    op: "MultiHeadAttention",
                    lhs: l.weight.shape().to_vec(),
                    rhs: vec![dim, dim],
                    detail: "every projection must be [dim, dim]".into(),
                });
            }
        }
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(Error::Invalid {
                op: "MultiHeadAttention",
                detail: format!("embed dim {dim} is not divisible by {heads} heads"),
            });
        }
        Ok(MultiHeadAttention {
            proj: Projections::Separate { q, k, v },
            out_proj,
            heads,
            dim,
            dropout,
        })
    }

    fn project(&self, x: &Tensor, which: usize) -> Result<Tensor> {
        match &self.proj {
            Projections::Fused { weight, bias } => {
                let e = self.dim;
                x.linear(&weight.narrow(0, which * e, e)?, Some(&bias.narrow(0, which * e, e)?))
            }
            Projections::Separate { q, k, v } => {
                let l = [q, k, v][which];
                x.linear(&l.weight, l.bias.as_ref())
            }
        }
    }

    /// `[B, T, E] -> [B, H, T, E/H]`
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        x.reshape([b, t, self.heads, self.dim / self.heads])?.transpose(1, 2) // (B, H, T, hd)
    }

    /// Attends from `query` to `key`/`value`.
    ///
    /// # Shapes
    /// `query` `[B, Tq, E]`, `key`/`value` `[B, Tk, E]`; `key_padding_mask` `[B, Tk]` and
    /// `attn_mask` `[Tq, Tk]` are u8 (1 = may not attend) → `[B, Tq, E]` and the requested
    /// weights (`[B, H, Tq, Tk]` per head or `[B, Tq, Tk]` averaged).
    // PyTorch's `MultiheadAttention.forward` arguments, one for one.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        key_padding_mask: Option<&Tensor>,
        attn_mask: Option<&Tensor>,
        need: NeedWeights,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        const OP: &str = "MultiHeadAttention";
        for t in [query, key, value] {
            if t.ndim() != 3 || t.shape()[2] != self.dim {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: t.shape().to_vec(),
                    rhs: vec![self.dim],
                    detail: "inputs must be [B, T, embed_dim]".into(),
                });
            }
        }
        let (b, tq) = (query.shape()[0], query.shape()[1]);
        let q = self.split_heads(&self.project(query, 0)?)?; // (B, H, Tq, hd)
        let k = self.split_heads(&self.project(key, 1)?)?; // (B, H, Tk, hd)
        let v = self.split_heads(&self.project(value, 2)?)?; // (B, H, Tk, hd)
        let kpm = key_padding_mask
            .map(|m| {
                if m.shape() != [b, key.shape()[1]] {
                    return Err(Error::ShapeMismatch {
                        op: OP,
                        lhs: m.shape().to_vec(),
                        rhs: vec![b, key.shape()[1]],
                        detail: "key_padding_mask must be [B, Tk]".into(),
                    });
                }
                m.reshape([b, 1, 1, key.shape()[1]]) // (B, 1, 1, Tk)
            })
            .transpose()?;
        let mask = match (kpm, attn_mask) {
            (Some(a), Some(c)) => Some(mask_or(&a, c)?),
            (Some(a), None) => Some(a),
            (None, Some(c)) => Some(c.clone()),
            (None, None) => None,
        };
        let (o, w) =
            scaled_dot_product_attention(&q, &k, &v, mask.as_ref(), self.dropout, train, need != NeedWeights::No)?;
        let o = o.transpose(1, 2)?.reshape([b, tq, self.dim])?; // (B, Tq, E)
        let out = o.linear(&self.out_proj.weight, self.out_proj.bias.as_ref())?;
        let w = match (need, w) {
            (NeedWeights::Averaged, Some(w)) => Some(w.mean(&[1], false)?),
            (_, w) => w,
        };
        Ok((out, w))
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Projects `x` `[B, T, E]` to queries (`which = 0`), keys (1) or values (2), split into heads:
    /// `[B, H, T, E/H]`. Incremental decoding projects only the new positions and keeps the
    /// keys/values of earlier ones (see `transformer::cache`).
    ///
    /// # Shapes
    /// `x` `[B, T, E]` → `[B, H, T, E/H]`.
    pub fn project_heads(&self, x: &Tensor, which: usize) -> Result<Tensor> {
        if x.ndim() != 3 || x.shape()[2] != self.dim {
            return Err(Error::ShapeMismatch {
                op: "MultiHeadAttention",
                lhs: x.shape().to_vec(),
                rhs: vec![self.dim],
                detail: "inputs must be [B, T, embed_dim]".into(),
            });
        }
        self.split_heads(&self.project(x, which)?)
    }

    /// Attention over already projected heads, then the output projection: q `[B, H, Tq, hd]`,
    /// k and v `[B, H, Tk, hd]`, `mask` u8 broadcastable to `[B, H, Tq, Tk]` → `[B, Tq, E]`.
    ///
    /// # Shapes
    /// q `[B, H, Tq, hd]`, k and v `[B, H, Tk, hd]` → `[B, Tq, E]`.
    pub fn attend_heads(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let (b, tq) = (q.shape()[0], q.shape()[2]);
        let (o, _) = scaled_dot_product_attention(q, k, v, mask, self.dropout, train, false)?;
        let o = o.transpose(1, 2)?.reshape([b, tq, self.dim])?;
        o.linear(&self.out_proj.weight, self.out_proj.bias.as_ref())
    }
}
