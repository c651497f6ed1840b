//! `Flatten`: `[batch, ...] -> [batch, ∏...]`. Layer: nn.

use crate::module::Module;
use ferrite_core::{Result, Tensor};

/// Flattens everything but the batch dimension.
pub struct Flatten;

impl Module for Flatten {
    /// # Shapes
    /// `[N, d1, d2, ..] → [N, d1·d2·…]`.
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        if x.ndim() <= 2 {
            return Ok(x.clone());
        }
        x.flatten(1, -1)
    }
}
