//! `LayerNorm` over the last dimension, with learnable `weight` (ones) and `bias` (zeros). Layer: nn.

use crate::init::Init;
use crate::module::Module;
use crate::var_map::VarBuilder;
use ferrite_core::{Result, Tensor};

/// Layer normalization (PyTorch `nn.LayerNorm(d)`; default eps 1e-5).
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(vb: &VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm {
            weight: vb.get(&[dim], "weight", Init::Ones)?,
            bias: vb.get(&[dim], "bias", Init::Zeros)?,
            eps,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        x.layer_norm(self.weight.shape(), Some(&self.weight), Some(&self.bias), self.eps)
    }
}
