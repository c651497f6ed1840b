//! `BatchNorm` (PyTorch's BatchNorm1d/2d): per-channel normalization over dim 1 with learned
//! scale and shift, and running statistics kept as buffers (`running_mean`, `running_var`,
//! `num_batches_tracked`, PyTorch's state-dict names) that training updates and inference uses.
//!
//! Layer: nn.

use crate::init::Init;
use crate::module::Module;
use crate::var_map::VarBuilder;
use ferrite_core::{BatchNormOptions, DType, Result, Tensor};

/// Batch normalization over channel dim 1 of `[N, C]` or `[N, C, …]` inputs.
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    pub momentum: f64,
    pub eps: f64,
}

impl BatchNorm {
    /// Creates (or loads, through `vb`) the affine parameters (1 and 0) and the buffers (0 and 1).
    pub fn new(vb: &VarBuilder, channels: usize, momentum: f64, eps: f64) -> Result<Self> {
        Ok(BatchNorm {
            weight: vb.get(&[channels], "weight", Init::Ones)?,
            bias: vb.get(&[channels], "bias", Init::Zeros)?,
            running_mean: vb.buffer(&[channels], "running_mean", 0.0, DType::F32)?,
            running_var: vb.buffer(&[channels], "running_var", 1.0, DType::F32)?,
            num_batches_tracked: vb.buffer(&[], "num_batches_tracked", 0.0, DType::I64)?,
            momentum,
            eps,
        })
    }
}

impl Module for BatchNorm {
    /// Training mode normalizes with the batch's statistics and updates the running ones;
    /// inference mode normalizes with the running statistics.
    ///
    /// # Shapes
    /// `[N, C]` or `[N, C, ..]` → the same shape, normalized per channel `C` (batch statistics when training, running statistics otherwise).
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let opts = BatchNormOptions {
            training: train,
            momentum: self.momentum,
            eps: self.eps,
        };
        let y = x.batch_norm(
            Some((&self.running_mean, &self.running_var)),
            Some(&self.weight),
            Some(&self.bias),
            opts,
        )?;
        if train {
            self.num_batches_tracked
                .update_::<i64>(|v| v.iter_mut().for_each(|n| *n += 1))?;
        }
        Ok(y)
    }
}
