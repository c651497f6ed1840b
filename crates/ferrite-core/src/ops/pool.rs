//! Pooling: max, average and adaptive average pooling over the last two dims, one recorded
//! primitive ([`Op::Pool2d`]) whose windows are listed per axis, so strided, padded, dilated and
//! adaptive pooling share one kernel and one backward rule.
//!
//! Layer: core (ops).

use crate::error::{Error, Result};
use crate::op::{Op, PoolKind};
use crate::storage::{contig, map_float, Storage};
use crate::tensor::Tensor;
use ferrite_kernels::conv::{self as kc, ConvAxis, PoolAxis};
use std::sync::Arc;

/// Kernel, stride (default = kernel), padding and dilation of a pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Pool2dOptions {
    /// A square `k × k` window with stride `k`, no padding (PyTorch's `MaxPool2d(k)`).
    pub fn new(k: usize) -> Self {
        Pool2dOptions {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
            dilation: [1, 1],
        }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
}

fn check_input(op: &'static str, x: &Tensor) -> Result<(usize, usize, usize)> {
    if x.ndim() < 3 {
        return Err(Error::invalid(
            op,
            format!(
                "expected a [batch, channels, height, width] or [channels, height, width] input, got shape {:?}",
                x.shape()
            ),
        ));
    }
    let s = x.shape();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    Ok((s[..s.len() - 2].iter().product(), h, w))
}

fn sliding_axes(op: &'static str, x: &Tensor, o: &Pool2dOptions, count_pad: bool) -> Result<(PoolAxis, PoolAxis)> {
    let (_, h, w) = check_input(op, x)?;
    let mk = |i: usize, input: usize| {
        let a = ConvAxis {
            input,
            kernel: o.kernel[i],
            stride: o.stride[i],
            padding: o.padding[i],
            dilation: o.dilation[i],
        };
        if a.kernel == 0 || 2 * a.padding > a.kernel {
            return None; // PyTorch: padding must be at most half the kernel, so no window is all padding
        }
        PoolAxis::sliding(a, count_pad)
    };
    match (mk(0, h), mk(1, w)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Error::invalid(
            op,
            format!(
                "input {:?} gives no output for kernel {:?}, stride {:?}, padding {:?}, dilation {:?} (padding \
                 must be at most half the kernel, the window must fit the padded input)",
                x.shape(),
                o.kernel,
                o.stride,
                o.padding,
                o.dilation
            ),
        )),
    }
}

impl Tensor {
    fn pool2d(&self, op: &'static str, kind: PoolKind, h: PoolAxis, w: PoolAxis) -> Result<Tensor> {
        let (planes, _, _) = check_input(op, self)?;
        let s = map_float!(op, &*self.read(), |v| {
            let x = contig(v, self.layout());
            match kind {
                PoolKind::Max => kc::max_pool2d(&x, planes, &h, &w),
                PoolKind::Avg => kc::avg_pool2d(&x, planes, &h, &w),
            }
        })?;
        let mut shape = self.shape().to_vec();
        let nd = shape.len();
        shape[nd - 2] = h.output();
        shape[nd - 1] = w.output();
        Ok(Tensor::from_op(s, shape, || Op::Pool2d {
            x: self.clone(),
            kind,
            h: Arc::new(h),
            w: Arc::new(w),
        }))
    }

    /// Max pooling over the last two dims (`torch.nn.functional.max_pool2d`); NaN propagates and
    /// the gradient goes to the first maximum of each window.
    ///
    /// # Errors
    /// Fewer than 3 dims, padding above half the kernel, or a window that does not fit.
    pub fn max_pool2d(&self, opts: Pool2dOptions) -> Result<Tensor> {
        let (h, w) = sliding_axes("max_pool2d", self, &opts, true)?;
        self.pool2d("max_pool2d", PoolKind::Max, h, w)
    }

    /// Average pooling over the last two dims (`torch.nn.functional.avg_pool2d`); with
    /// `count_include_pad` the zero padding counts in each window's divisor. Dilation must be 1.
    ///
    /// # Errors
    /// As [`max_pool2d`](Self::max_pool2d), or a dilation other than 1.
    pub fn avg_pool2d(&self, opts: Pool2dOptions, count_include_pad: bool) -> Result<Tensor> {
        if opts.dilation != [1, 1] {
            return Err(Error::invalid(
                "avg_pool2d",
                format!("dilation must be 1, got {:?}", opts.dilation),
            ));
        }
        let (h, w) = sliding_axes("avg_pool2d", self, &opts, count_include_pad)?;
        self.pool2d("avg_pool2d", PoolKind::Avg, h, w)
    }

    /// Adaptive average pooling to `output_size` (`torch.nn.functional.adaptive_avg_pool2d`):
    /// output cell i reads input rows `[⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉)`, likewise for columns.
    ///
    /// # Errors
    /// Fewer than 3 dims, or a zero output size.
    pub fn adaptive_avg_pool2d(&self, output_size: [usize; 2]) -> Result<Tensor> {
        const OP: &str = "adaptive_avg_pool2d";
        let (_, h, w) = check_input(OP, self)?;
        if output_size.contains(&0) || h == 0 || w == 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "output size {output_size:?} and input {:?} must be non-empty",
                    self.shape()
                ),
            ));
        }
        let (ah, aw) = (
            PoolAxis::adaptive(h, output_size[0]),
            PoolAxis::adaptive(w, output_size[1]),
        );
        self.pool2d(OP, PoolKind::Avg, ah, aw)
    }
}

/// The gradient of a pooling op with respect to its input (not itself differentiable again).
pub(crate) fn pool2d_backward(x: &Tensor, g: &Tensor, kind: PoolKind, h: &PoolAxis, w: &PoolAxis) -> Result<Tensor> {
    let planes = x.numel() / (h.input * w.input).max(1);
    let s = match kind {
        PoolKind::Max => super::read2(x, g, |xs, gs| match (xs, gs) {
            (Storage::F32(a), Storage::F32(b)) => Ok(Storage::F32(kc::max_pool2d_backward(
                &contig(a, x.layout()),
                &contig(b, g.layout()),
                planes,
                h,
                w,
            ))),
            (Storage::F64(a), Storage::F64(b)) => Ok(Storage::F64(kc::max_pool2d_backward(
                &contig(a, x.layout()),
                &contig(b, g.layout()),
                planes,
                h,
                w,
            ))),
            (a, _) => Err(Error::unsupported_dtype("max_pool2d backward", a.dtype())),
        })?,
        PoolKind::Avg => map_float!("avg_pool2d backward", &*g.read(), |v| kc::avg_pool2d_backward(
            &contig(v, g.layout()),
            planes,
            h,
            w
        ))?,
    };
    Ok(Tensor::from_storage(s, x.shape().to_vec()))
}
