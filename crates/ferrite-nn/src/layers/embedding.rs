//! `Embedding`: a `[vocab, dim]` table looked up by i64 ids (`[..] -> [.., dim]`). Layer: nn.

use crate::init::Init;
use crate::module::Module;
use crate::var_map::VarBuilder;
use ferrite_core::{Result, Tensor};

/// A learned lookup table (PyTorch `nn.Embedding`, N(0, 1) init).
///
/// ```
/// use ferrite_core::Tensor;
/// use ferrite_nn::{Embedding, Module, VarBuilder, VarMap};
/// let emb = Embedding::new(&VarBuilder::new(&VarMap::new(), 0), 10, 3)?;
/// let ids = Tensor::from_vec(vec![1i64, 7, 1], [3])?;
/// let x = emb.forward(&ids, false)?;
/// assert_eq!(x.shape(), &[3, 3]);
/// let v = x.to_vec::<f32>()?;
/// assert_eq!(v[..3], v[6..]); // the same id, the same row
/// assert!(emb.forward(&Tensor::from_vec(vec![10i64], [1])?, false).is_err()); // out of range
/// # Ok::<(), ferrite_core::Error>(())
/// ```
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
    /// # Shapes
    /// `ids` i64 `[..]` → `[.., dim]`.
    fn forward(&self, ids: &Tensor, _train: bool) -> Result<Tensor> {
        self.weight.embedding(ids)
    }
}
