//! `Embedding`: a `[vocab, dim]` table looked up by i64 ids (`[..] -> [.., dim]`). Layer: nn.

use crate::init::Init;
use crate::module::Module;
use crate::var_map::VarBuilder;
use ferrite_core::{Result, Tensor};

/// A learned lookup table (PyTorch `nn.Embedding`, N(0, 1) init).
pub struct Embedding {
    pub weight: Tensor,
}

impl Embedding {
    pub fn new(vb: &VarBuilder, vocab: usize, dim: usize) -> Result<Self> {
        Ok(Embedding {
            weight: vb.get(&[vocab, dim], "weight", Init::Normal { mean: 0.0, std: 1.0 })?,
        })
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor, _train: bool) -> Result<Tensor> {
        self.weight.embedding(ids)
    }
}
