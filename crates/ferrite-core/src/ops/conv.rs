//! Convolution: conv2d as one fused primitive (per sample: unfold into a small buffer, then GEMM;
//! backward recomputes the columns), conv1d as a conv2d of height 1, and `unfold` (im2col) /
//! `fold` (col2im) as recorded primitives of their own.
//!
//! Layer: core (ops). The fused kernels are in `ferrite_kernels::conv_gemm`; they never build the
//! batch's whole column tensor, which for real layers is larger than the allocator keeps around.

use crate::error::{Error, Result};
use crate::op::Op;
use crate::storage::{contig, map_float, Storage};
use crate::tensor::Tensor;
use ferrite_kernels::conv::{self as kc, Conv2dGeometry, ConvAxis};
use ferrite_kernels::conv_gemm::{self as kg, ConvShape};
use ferrite_kernels::Float;

/// Stride, padding, dilation and groups of a 2-D convolution (PyTorch's defaults: 1, 0, 1, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dOptions {
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
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}

/// Stride, padding, dilation and groups of a 1-D convolution (PyTorch's defaults: 1, 0, 1, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

/// The `[N, C, H, W]` window geometry for `x`, or an error naming `op`, the input shape and the
/// window when it gives no output.
pub(crate) fn geometry(
    op: &'static str,
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> Result<Conv2dGeometry> {
    if x.ndim() != 4 {
        return Err(Error::invalid(
            op,
            format!(
                "expected a 4-D [batch, channels, height, width] input, got shape {:?}",
                x.shape()
            ),
        ));
    }
    let s = x.shape();
    let axis = |i: usize| ConvAxis {
        input: s[2 + i],
        kernel: kernel[i],
        stride: stride[i],
        padding: padding[i],
        dilation: dilation[i],
    };
    let g = Conv2dGeometry {
        batch: s[0],
        channels: s[1],
        h: axis(0),
        w: axis(1),
    };
    if g.h.output().is_none() || g.w.output().is_none() {
        return Err(Error::invalid(
            op,
            format!(
                "input {:?} gives no output for kernel {kernel:?}, stride {stride:?}, padding {padding:?}, \
                 dilation {dilation:?} (kernel, stride and dilation must be ≥ 1 and the dilated kernel must fit \
                 the padded input)",
                x.shape()
            ),
        ));
    }
    Ok(g)
}

impl Tensor {
    /// Extracts sliding `kernel` windows of an `[N, C, H, W]` tensor into columns
    /// `[N, C·kh·kw, OH·OW]` (`torch.nn.functional.unfold`; `opts.groups` is ignored).
    ///
    /// # Errors
    /// A non-4-D input, or a window that gives no output (the message names both).
    pub fn unfold2d(&self, kernel: [usize; 2], opts: Conv2dOptions) -> Result<Tensor> {
        let g = geometry("unfold2d", self, kernel, opts.stride, opts.padding, opts.dilation)?;
        self.unfold_geometry(g)
    }

    pub(crate) fn unfold_geometry(&self, g: Conv2dGeometry) -> Result<Tensor> {
        let (oh, ow) = g.out_hw();
        let s = map_float!("unfold2d", &*self.read(), |v| kc::unfold(&contig(v, self.layout()), &g))?;
        Ok(Tensor::from_op(s, vec![g.batch, g.col_rows(), oh * ow], || {
            Op::Unfold {
                x: self.clone(),
                geometry: g,
            }
        }))
    }

    /// Sums columns `[N, C·kh·kw, OH·OW]` back into an image of `geometry`'s shape (col2im, the
    /// adjoint of [`unfold2d`](Self::unfold2d)).
    pub(crate) fn fold_geometry(&self, g: Conv2dGeometry) -> Result<Tensor> {
        let (oh, ow) = g.out_hw();
        let want = [g.batch, g.col_rows(), oh * ow];
        if self.shape() != want {
            return Err(Error::shape(
                "fold2d",
                self.shape(),
                &want,
                "columns must match the geometry",
            ));
        }
        let s = map_float!("fold2d", &*self.read(), |v| kc::fold(&contig(v, self.layout()), &g))?;
        Ok(Tensor::from_op(
            s,
            vec![g.batch, g.channels, g.h.input, g.w.input],
            || Op::Fold {
                x: self.clone(),
                geometry: g,
            },
        ))
    }

    /// 2-D convolution (cross-correlation, as `torch.nn.functional.conv2d`).
    ///
    /// # Shapes
    /// input `[N, C, H, W]`, weight `[O, C/groups, kh, kw]`, bias `[O]` → `[N, O, OH, OW]`.
    ///
    /// # Errors
    /// A non-4-D input or weight, channels that do not match `weight` (both shapes named), channels
    /// or outputs not divisible by `groups`, a bias of the wrong shape, or a kernel that does not fit.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: Conv2dOptions) -> Result<Tensor> {
        const OP: &str = "conv2d";
        if weight.ndim() != 4 || self.ndim() != 4 {
            return Err(Error::shape(
                OP,
                self.shape(),
                weight.shape(),
                "input must be [batch, channels, height, width] and weight [out_channels, in_channels/groups, kh, kw]",
            ));
        }
        let (ws, xs) = (weight.shape(), self.shape());
        let (out_c, groups) = (ws[0], opts.groups);
        if groups == 0 || xs[1] % groups != 0 || out_c % groups != 0 {
            return Err(Error::shape(
                OP,
                xs,
                ws,
                format!("groups = {groups} must divide both the input channels and the output channels"),
            ));
        }
        if ws[1] * groups != xs[1] {
            return Err(Error::shape(
                OP,
                xs,
                ws,
                format!(
                    "input has {} channels but the weight expects {} ({} per group × {groups} groups)",
                    xs[1],
                    ws[1] * groups,
                    ws[1]
                ),
            ));
        }
        if let Some(b) = bias
            && b.shape() != [out_c]
        {
            return Err(Error::shape(
                OP,
                b.shape(),
                &[out_c],
                "bias must have one value per output channel",
            ));
        }
        let geometry = geometry(OP, self, [ws[2], ws[3]], opts.stride, opts.padding, opts.dilation)?;
        let shape = ConvShape {
            geometry,
            out_channels: out_c,
            groups,
        };
        let (oh, ow) = geometry.out_hw();
        let b64 = bias.map(|b| b.to_f64_vec());
        fn fwd<T: Float>(x: &[T], w: &[T], b: Option<&Vec<f64>>, s: &ConvShape) -> Vec<T> {
            let b: Option<Vec<T>> = b.map(|b| b.iter().map(|&v| T::from_f64(v)).collect());
            kg::conv2d_forward(x, w, b.as_deref(), s)
        }
        let s = super::read2(self, weight, |xs, wsto| match (xs, wsto) {
            (Storage::F32(x), Storage::F32(w)) => Ok(Storage::F32(fwd(
                &contig(x, self.layout()),
                &contig(w, weight.layout()),
                b64.as_ref(),
                &shape,
            ))),
            (Storage::F64(x), Storage::F64(w)) => Ok(Storage::F64(fwd(
                &contig(x, self.layout()),
                &contig(w, weight.layout()),
                b64.as_ref(),
                &shape,
            ))),
            (a, b) if a.dtype() != b.dtype() => Err(Error::dtype(
                OP,
                format!(
                    "input and weight dtypes must match, got {:?} and {:?}",
                    a.dtype(),
                    b.dtype()
                ),
            )),
            (a, _) => Err(Error::unsupported_dtype(OP, a.dtype())),
        })?;
        Ok(Tensor::from_op(s, vec![xs[0], out_c, oh, ow], || Op::Conv2d {
            x: self.clone(),
            weight: weight.clone(),
            bias: bias.cloned(),
            shape,
        }))
    }

    /// 1-D convolution (`torch.nn.functional.conv1d`): input `[N, C, L]`, weight `[O, C/groups, k]`,
    /// bias `[O]` → `[N, O, L_out]`. Runs as a 2-D convolution of height 1.
    ///
    /// # Errors
    /// As [`conv2d`](Self::conv2d), for 3-D input and weight.
    pub fn conv1d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: Conv1dOptions) -> Result<Tensor> {
        if self.ndim() != 3 || weight.ndim() != 3 {
            return Err(Error::shape(
                "conv1d",
                self.shape(),
                weight.shape(),
                "input must be [batch, channels, length] and weight [out_channels, in_channels/groups, k]",
            ));
        }
        let o = Conv2dOptions {
            stride: [1, opts.stride],
            padding: [0, opts.padding],
            dilation: [1, opts.dilation],
            groups: opts.groups,
        };
        self.unsqueeze(2)?.conv2d(&weight.unsqueeze(2)?, bias, o)?.squeeze(2)
    }
}

impl Tensor {
    /// Each sample's own gradient of a conv2d's weight, given the conv's input (`self`, `[N, C,
    /// H, W]`) and its output gradient `gy` `[N, O, OH, OW]`: `[N, O, C/groups, kh, kw]` — what
    /// DP-SGD clips per example. Not recorded for autodiff.
    ///
    /// # Errors
    /// Shapes that do not form the convolution `weight_shape`, `opts` describe (both named).
    pub fn conv2d_per_example_weight_grads(
        &self,
        gy: &Tensor,
        weight_shape: &[usize],
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d per-example weight gradients";
        let [out_c, per_group, kh, kw] = weight_shape[..] else {
            return Err(Error::shape(
                OP,
                self.shape(),
                weight_shape,
                "weight shape must be [out, in/groups, kh, kw]",
            ));
        };
        if self.ndim() != 4
            || opts.groups == 0
            || per_group * opts.groups != self.shape()[1]
            || out_c % opts.groups != 0
        {
            return Err(Error::shape(
                OP,
                self.shape(),
                weight_shape,
                format!(
                    "input and weight do not form a convolution with groups = {}",
                    opts.groups
                ),
            ));
        }
        let geometry = geometry(OP, self, [kh, kw], opts.stride, opts.padding, opts.dilation)?;
        let (oh, ow) = geometry.out_hw();
        let want = [geometry.batch, out_c, oh, ow];
        if gy.shape() != want {
            return Err(Error::shape(
                OP,
                gy.shape(),
                &want,
                "the output gradient must have the convolution's output shape",
            ));
        }
        let shape = ConvShape {
            geometry,
            out_channels: out_c,
            groups: opts.groups,
        };
        let gs = gy.read();
        let xs = self.read();
        let out = match (&*xs, &*gs) {
            (Storage::F32(x), Storage::F32(g)) => Storage::F32(kg::conv2d_weight_grads_per_sample(
                &contig(x, self.layout()),
                &contig(g, gy.layout()),
                &shape,
            )),
            (Storage::F64(x), Storage::F64(g)) => Storage::F64(kg::conv2d_weight_grads_per_sample(
                &contig(x, self.layout()),
                &contig(g, gy.layout()),
                &shape,
            )),
            (a, _) => return Err(Error::unsupported_dtype(OP, a.dtype())),
        };
        Ok(Tensor::from_storage(
            out,
            vec![geometry.batch, out_c, per_group, kh, kw],
        ))
    }
}

/// Gradients of a fused conv2d: (input, weight, bias) for the output gradient `g`; the input's
/// (weight's) only when `x` (`weight`) requires grad — `None` otherwise, and never computed.
pub(crate) fn conv2d_backward(
    x: &Tensor,
    weight: &Tensor,
    g: &Tensor,
    s: &ConvShape,
) -> Result<(Option<Tensor>, Option<Tensor>, Tensor)> {
    const OP: &str = "conv2d backward";
    let need = kg::ConvGrads {
        input: x.requires_grad(),
        weight: weight.requires_grad(),
    };
    let gs = g.read();
    let parts = super::read2(x, weight, |xs, ws| match (xs, ws, &*gs) {
        (Storage::F32(a), Storage::F32(w), Storage::F32(gv)) => {
            let (dx, dw, db) = kg::conv2d_backward(
                &contig(a, x.layout()),
                &contig(w, weight.layout()),
                &contig(gv, g.layout()),
                s,
                need,
            );
            Ok((Storage::F32(dx), Storage::F32(dw), Storage::F32(db)))
        }
        (Storage::F64(a), Storage::F64(w), Storage::F64(gv)) => {
            let (dx, dw, db) = kg::conv2d_backward(
                &contig(a, x.layout()),
                &contig(w, weight.layout()),
                &contig(gv, g.layout()),
                s,
                need,
            );
            Ok((Storage::F64(dx), Storage::F64(dw), Storage::F64(db)))
        }
        (a, _, _) => Err(Error::unsupported_dtype(OP, a.dtype())),
    })?;
    Ok((
        need.input.then(|| Tensor::from_storage(parts.0, x.shape().to_vec())),
        need.weight
            .then(|| Tensor::from_storage(parts.1, weight.shape().to_vec())),
        Tensor::from_storage(parts.2, vec![s.out_channels]),
    ))
}
