//! Convolution: `unfold` (im2col) and `fold` (col2im) as recorded primitives, and conv1d/conv2d
//! built on them as `unfold → matmul (+ bias)`.
//!
//! Layer: core (ops). Building convolution from unfold + the GEMM means it needs no backward rule
//! of its own: the matmul rule gives the weight and column gradients, and fold (the adjoint of
//! unfold) carries the column gradient back to the image.

use crate::error::{Error, Result};
use crate::op::Op;
use crate::storage::{contig, map_float, Storage};
use crate::tensor::Tensor;
use ferrite_kernels::conv::{self as kc, ConvAxis, Conv2dGeometry};

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
            format!("expected a 4-D [batch, channels, height, width] input, got shape {:?}", x.shape()),
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
        Ok(Tensor::from_op(s, vec![g.batch, g.col_rows(), oh * ow], || Op::Unfold {
            x: self.clone(),
            geometry: g,
        }))
    }

    /// Sums columns `[N, C·kh·kw, OH·OW]` back into an image of `geometry`'s shape (col2im, the
    /// adjoint of [`unfold2d`](Self::unfold2d)).
    pub(crate) fn fold_geometry(&self, g: Conv2dGeometry) -> Result<Tensor> {
        let (oh, ow) = g.out_hw();
        let want = [g.batch, g.col_rows(), oh * ow];
        if self.shape() != want {
            return Err(Error::shape("fold2d", self.shape(), &want, "columns must match the geometry"));
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
        if let Some(b) = bias {
            if b.shape() != [out_c] {
                return Err(Error::shape(OP, b.shape(), &[out_c], "bias must have one value per output channel"));
            }
        }
        let g = geometry(OP, self, [ws[2], ws[3]], opts.stride, opts.padding, opts.dilation)?;
        let (n, (oh, ow)) = (xs[0], g.out_hw());
        let pointwise = ws[2] == 1 && ws[3] == 1 && opts.stride == [1, 1] && opts.padding == [0, 0];
        let cols = if pointwise {
            self.reshape([n, xs[1], oh * ow])?
        } else {
            self.unfold_geometry(g)?
        };
        let k = g.col_rows() / groups;
        let out = if groups == 1 {
            weight.reshape([out_c, k])?.matmul(&cols)?
        } else {
            let w = weight.reshape([groups, out_c / groups, k])?;
            w.matmul(&cols.reshape([n, groups, k, oh * ow])?)?
        };
        let out = out.reshape([n, out_c, oh, ow])?;
        match bias {
            Some(b) => out.add(&b.reshape([1, out_c, 1, 1])?),
            None => Ok(out),
        }
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
