//! `LayerNorm` over the last dimension, with learnable `weight` (ones) and `bias` (zeros). Layer: nn.

use crate::init::Init;
use crate::module::Module;
use crate::var_map::VarBuilder;
use ferrite_core::{Result, Tensor};

/// Layer normalization (PyTorch `nn.LayerNorm(d)`; default eps 1e-5).
///
/// ```
/// use ferrite_core::Tensor;
/// use ferrite_nn::{LayerNorm, Module, VarBuilder, VarMap};
/// let norm = LayerNorm::new(&VarBuilder::new(&VarMap::new(), 0), 4, 1e-5)?;
/// let y = norm.forward(&Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [1, 4])?, false)?;
/// let v = y.to_vec::<f32>()?;
/// assert!(v.iter().sum::<f32>().abs() < 1e-5 && (v[3] - 1.3416).abs() < 1e-3);
/// # Ok::<(), ferrite_core::Error>(())
/// ```
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
    /// # Shapes
    /// `[.., dim] → [.., dim]`, normalized over the last dim.
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        x.layer_norm(self.weight.shape(), Some(&self.weight), Some(&self.bias), self.eps)
    }
}
