//! Batch normalization (`torch.nn.functional.batch_norm`), composed from reductions and
//! broadcasting arithmetic so its gradient comes from theirs.
//!
//! Layer: core (ops). Running statistics are plain tensors updated in place, outside the graph,
//! exactly as PyTorch does: `running = (1 − momentum)·running + momentum·batch`, with the
//! unbiased batch variance.

use crate::error::{Error, Result};
use crate::grad_mode::with_no_grad;
use crate::tensor::Tensor;

/// Mode, momentum and ε of [`Tensor::batch_norm`] (PyTorch defaults: momentum 0.1, ε 1e-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Normalize with the batch's statistics (and update the running ones) instead of the running ones.
    pub training: bool,
    pub momentum: f64,
    pub eps: f64,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

impl Tensor {
    /// Batch normalization over channel dim 1 of an `[N, C, …]` input. In training mode the batch
    /// statistics normalize and `running_mean`/`running_var` (if given) are updated in place; in
    /// inference mode the running statistics normalize.
    ///
    /// # Errors
    /// An input with fewer than 2 dims, a statistic or affine parameter that is not `[C]`, a
    /// training batch with one value per channel, or inference without running statistics.
    pub fn batch_norm(
        &self,
        running: Option<(&Tensor, &Tensor)>,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        opts: BatchNormOptions,
    ) -> Result<Tensor> {
        const OP: &str = "batch_norm";
        if self.ndim() < 2 {
            return Err(Error::invalid(
                OP,
                format!("expected an [N, C, …] input, got shape {:?}", self.shape()),
            ));
        }
        let c = self.shape()[1];
        let (rm, rv) = (running.map(|r| r.0), running.map(|r| r.1));
        for p in [rm, rv, weight, bias].into_iter().flatten() {
            if p.shape() != [c] {
                return Err(Error::shape(
                    OP,
                    self.shape(),
                    p.shape(),
                    format!("statistics and affine parameters must have one value per channel ([{c}])"),
                ));
            }
        }
        let mut bshape = vec![1usize; self.ndim()];
        bshape[1] = c;
        let dims: Vec<isize> = (0..self.ndim() as isize).filter(|&d| d != 1).collect();
        let per_channel = self.numel() / c.max(1);
        let (centered, inv_std) = if opts.training {
            if per_channel <= 1 {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "training needs more than one value per channel, got input {:?}",
                        self.shape()
                    ),
                ));
            }
            let mean = self.mean(&dims, true)?;
            let centered = self.sub(&mean)?;
            let var = centered.sqr()?.mean(&dims, true)?;
            if let (Some(rm), Some(rv)) = (rm, rv) {
                with_no_grad(|| -> Result<()> {
                    let m = opts.momentum;
                    let unbiased = per_channel as f64 / (per_channel - 1) as f64;
                    rm.assign_(&rm.mul_scalar(1.0 - m)?.add(&mean.reshape([c])?.mul_scalar(m)?)?)?;
                    rv.assign_(
                        &rv.mul_scalar(1.0 - m)?
                            .add(&var.reshape([c])?.mul_scalar(m * unbiased)?)?,
                    )
                })?;
            }
            (centered, var.add_scalar(opts.eps)?.rsqrt()?)
        } else {
            let (Some(rm), Some(rv)) = (rm, rv) else {
                return Err(Error::invalid(OP, "inference mode needs running_mean and running_var"));
            };
            let centered = self.sub(&rm.reshape(bshape.clone())?)?;
            (centered, rv.add_scalar(opts.eps)?.rsqrt()?.reshape(bshape.clone())?)
        };
        let mut y = centered.mul(&inv_std)?;
        if let Some(w) = weight {
            y = y.mul(&w.reshape(bshape.clone())?)?;
        }
        if let Some(b) = bias {
            y = y.add(&b.reshape(bshape)?)?;
        }
        Ok(y)
    }
}
