//! Positional encodings: the fixed sinusoidal table of Vaswani et al. (2017, §3.5) and a learned
//! table (`nn.Embedding` over positions).
//!
//! Layer: nn.

use crate::init::Init;
use crate::var_map::VarBuilder;
use ferrite_core::{Error, Result, Tensor};

/// `[max_len, d]`: pe[pos, 2i] = sin(pos/10000^(2i/d)), pe[pos, 2i+1] = cos(pos/10000^(2i/d)).
pub fn sinusoidal_table(max_len: usize, d: usize) -> Result<Tensor> {
    let mut v = vec![0f32; max_len * d];
    for pos in 0..max_len {
        for i in (0..d).step_by(2) {
            // exp(2i · (−ln 10000 / d)), computed in f32 as PyTorch's tutorial does.
            let div = ((i as f32) * (-(10000f32).ln() / d as f32)).exp();
            let a = pos as f32 * div;
            v[pos * d + i] = a.sin();
            if i + 1 < d {
                v[pos * d + i + 1] = a.cos();
            }
        }
    }
    Tensor::from_vec(v, [max_len, d])
}

/// Adds position information to `[B, T, d]` embeddings.
pub enum PositionalEncoding {
    Sinusoidal(Tensor),
    Learned(Tensor),
}

impl PositionalEncoding {
    pub fn sinusoidal(max_len: usize, d: usize) -> Result<Self> {
        Ok(PositionalEncoding::Sinusoidal(sinusoidal_table(max_len, d)?))
    }

    /// A learned `[max_len, d]` table named `weight` under `vb` (N(0, 0.02) init, as GPT-2).
    pub fn learned(vb: &VarBuilder, max_len: usize, d: usize) -> Result<Self> {
        Ok(PositionalEncoding::Learned(vb.get(
            &[max_len, d],
            "weight",
            Init::Normal { mean: 0.0, std: 0.02 },
        )?))
    }

    /// x + pe[offset..offset+T] (offset > 0 when decoding one step at a time).
    ///
    /// # Shapes
    /// `x` `[B, T, d]` → `[B, T, d]` (positions `offset..offset+T`).
    pub fn forward(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let table = match self {
            PositionalEncoding::Sinusoidal(t) | PositionalEncoding::Learned(t) => t,
        };
        let t = x.shape().get(1).copied().unwrap_or(0);
        if offset + t > table.shape()[0] {
            return Err(Error::Invalid {
                op: "PositionalEncoding",
                detail: format!(
                    "sequence of length {} at offset {offset} exceeds the maximum length {}",
                    t,
                    table.shape()[0]
                ),
            });
        }
        x.add(&table.narrow(0, offset, t)?)
    }
}
