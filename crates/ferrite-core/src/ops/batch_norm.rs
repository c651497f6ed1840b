//! Batch normalization (`torch.nn.functional.batch_norm`) as one fused primitive: per-channel
//! statistics and the normalize-scale-shift in two passes, and a fused backward.
//!
//! Layer: core (ops). Running statistics are plain tensors updated in place, outside the graph,
//! exactly as PyTorch does: `running = (1 − momentum)·running + momentum·batch`, with the
//! unbiased batch variance.

use crate::error::{Error, Result};
use crate::grad_mode::with_no_grad;
use crate::op::Op;
use crate::storage::{contig, Storage};
use crate::tensor::Tensor;
use ferrite_kernels::batch_norm::{self as kb, BnDims};
use std::sync::Arc;

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

/// What the backward pass needs besides the inputs.
#[derive(Clone, Debug)]
pub struct BatchNormSaved {
    pub(crate) dims: BnDims,
    pub(crate) mean: Arc<Vec<f64>>,
    pub(crate) invstd: Arc<Vec<f64>>,
    /// The statistics came from this batch (training), so they depend on the input.
    pub(crate) batch_stats: bool,
}

fn dims_of(x: &Tensor) -> BnDims {
    let s = x.shape();
    BnDims {
        n: s[0],
        c: s[1],
        s: s[2..].iter().product(),
    }
}

fn floats(op: &'static str, t: &Tensor) -> Result<Vec<f64>> {
    if !t.dtype().is_float() {
        return Err(Error::unsupported_dtype(op, t.dtype()));
    }
    Ok(t.to_f64_vec())
}

impl Tensor {
    /// Batch normalization over channel dim 1 of an `[N, C, …]` input. In training mode the batch
    /// statistics normalize and `running` (mean, var), if given, is updated in place; in inference
    /// mode the running statistics normalize.
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
        for p in [weight, bias].into_iter().flatten() {
            if p.dtype() != self.dtype() {
                return Err(Error::dtype(
                    OP,
                    format!(
                        "input and weight/bias dtypes must match, got {:?} and {:?}",
                        self.dtype(),
                        p.dtype()
                    ),
                ));
            }
        }
        let d = dims_of(self);
        let (mean, var) = if opts.training {
            if d.count() <= 1 {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "training needs more than one value per channel, got input {:?}",
                        self.shape()
                    ),
                ));
            }
            let (mean, var) = match &*self.read() {
                Storage::F32(v) => kb::stats(&contig(v, self.layout()), d),
                Storage::F64(v) => kb::stats(&contig(v, self.layout()), d),
                other => return Err(Error::unsupported_dtype(OP, other.dtype())),
            };
            if let (Some(rm), Some(rv)) = (rm, rv) {
                let (m, unbiased) = (opts.momentum, d.count() as f64 / (d.count() - 1) as f64);
                let new_m: Vec<f64> = floats(OP, rm)?
                    .iter()
                    .zip(&mean)
                    .map(|(r, b)| (1.0 - m) * r + m * b)
                    .collect();
                let new_v: Vec<f64> = floats(OP, rv)?
                    .iter()
                    .zip(&var)
                    .map(|(r, b)| (1.0 - m) * r + m * b * unbiased)
                    .collect();
                with_no_grad(|| -> Result<()> {
                    rm.assign_(&Tensor::from_vec(new_m, [c])?.to_dtype(rm.dtype())?)?;
                    rv.assign_(&Tensor::from_vec(new_v, [c])?.to_dtype(rv.dtype())?)
                })?;
            }
            (mean, var)
        } else {
            let (Some(rm), Some(rv)) = (rm, rv) else {
                return Err(Error::invalid(OP, "inference mode needs running_mean and running_var"));
            };
            (floats(OP, rm)?, floats(OP, rv)?)
        };
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + opts.eps).sqrt()).collect();
        let out = {
            let x = self.read();
            let (w, b) = (weight.map(|w| w.read()), bias.map(|b| b.read()));
            macro_rules! run {
                ($v:ident, $variant:ident) => {{
                    let wv = w.as_deref().and_then(|s| match s {
                        Storage::$variant(v) => Some(contig(v, weight.map_or(self.layout(), |t| t.layout()))),
                        _ => None,
                    });
                    let bv = b.as_deref().and_then(|s| match s {
                        Storage::$variant(v) => Some(contig(v, bias.map_or(self.layout(), |t| t.layout()))),
                        _ => None,
                    });
                    Storage::$variant(kb::normalize(
                        &contig($v, self.layout()),
                        d,
                        &mean,
                        &invstd,
                        wv.as_deref(),
                        bv.as_deref(),
                    ))
                }};
            }
            match &*x {
                Storage::F32(v) => run!(v, F32),
                Storage::F64(v) => run!(v, F64),
                other => return Err(Error::unsupported_dtype(OP, other.dtype())),
            }
        };
        let saved = BatchNormSaved {
            dims: d,
            mean: Arc::new(mean),
            invstd: Arc::new(invstd),
            batch_stats: opts.training,
        };
        Ok(Tensor::from_op(out, self.shape().to_vec(), || Op::BatchNorm {
            x: self.clone(),
            weight: weight.cloned(),
            bias: bias.cloned(),
            saved,
        }))
    }
}

/// Gradients (input, weight, bias) of a fused batch norm for the output gradient `g`.
pub(crate) fn batch_norm_backward(
    x: &Tensor,
    weight: Option<&Tensor>,
    g: &Tensor,
    s: &BatchNormSaved,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "batch_norm backward";
    let (xs, gs) = (x.read(), g.read());
    let ws = weight.map(|w| w.read());
    macro_rules! run {
        ($a:ident, $b:ident, $variant:ident) => {{
            let wv = ws.as_deref().and_then(|st| match st {
                Storage::$variant(v) => Some(contig(v, weight.map_or(x.layout(), |t| t.layout()))),
                _ => None,
            });
            let (dx, dw, db) = kb::backward(
                &contig($a, x.layout()),
                &contig($b, g.layout()),
                s.dims,
                &s.mean,
                &s.invstd,
                wv.as_deref(),
                s.batch_stats,
            );
            (Storage::$variant(dx), Storage::$variant(dw), Storage::$variant(db))
        }};
    }
    let (dx, dw, db) = match (&*xs, &*gs) {
        (Storage::F32(a), Storage::F32(b)) => run!(a, b, F32),
        (Storage::F64(a), Storage::F64(b)) => run!(a, b, F64),
        (a, _) => return Err(Error::unsupported_dtype(OP, a.dtype())),
    };
    let c = s.dims.c;
    Ok((
        Tensor::from_storage(dx, x.shape().to_vec()),
        Tensor::from_storage(dw, vec![c]),
        Tensor::from_storage(db, vec![c]),
    ))
}
