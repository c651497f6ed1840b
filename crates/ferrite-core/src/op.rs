//! The closed set of recorded operations (the autodiff graph's node kinds).
//!
//! Layer: core. Each variant holds its input tensors and the parameters its backward rule needs;
//! [`Op::inputs`] is the only place that walks children. Composite ops (mean, var, mse, dropout,
//! masked_fill, stack, …) are built from these and need no rule of their own. Backward rules live in
//! `backward.rs`.

use crate::tensor::Tensor;
use ferrite_kernels::conv::{Conv2dGeometry, PoolAxis};
use ferrite_kernels::conv_gemm::ConvShape;
use ferrite_kernels::elementwise::{BinaryFn, UnaryFn};
use ferrite_kernels::reduce::ReduceFn;
use std::sync::Arc;

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// A recorded primitive.
#[derive(Clone, Debug)]
pub enum Op {
    Unary(Tensor, UnaryFn),
    /// x·mul + add
    Affine {
        x: Tensor,
        mul: f64,
        add: f64,
    },
    /// x^e for a scalar e
    Powf(Tensor, f64),
    Clamp {
        x: Tensor,
        min: f64,
        max: f64,
    },
    /// Broadcasting binary op; inputs keep their own shapes, the output has the broadcast shape.
    Binary(Tensor, Tensor, BinaryFn),
    /// Reduction over sorted `dims`; the output keeps reduced dims as size 1 iff `keepdim`.
    Reduce {
        x: Tensor,
        f: ReduceFn,
        dims: Vec<usize>,
        keepdim: bool,
    },
    /// Batched matrix product (both operands ≥ 2-D, batch dims broadcast).
    Matmul(Tensor, Tensor),
    /// Fused x·wᵀ + b (the dense layer), chosen by profiling small-batch training.
    Linear {
        x: Tensor,
        weight: Tensor,
        bias: Option<Tensor>,
    },
    /// Any reshape (view or copy); backward reshapes back.
    Reshape(Tensor),
    Permute(Tensor, Vec<usize>),
    Narrow {
        x: Tensor,
        dim: usize,
        start: usize,
    },
    /// Broadcast view to a larger shape; backward sums.
    Expand(Tensor),
    /// Contiguous copy.
    Copy(Tensor),
    /// Float-to-float dtype conversion; backward converts back.
    ToDType(Tensor),
    Cat(Vec<Tensor>, usize),
    IndexSelect {
        x: Tensor,
        index: Tensor,
        dim: usize,
    },
    Gather {
        x: Tensor,
        index: Tensor,
        dim: usize,
    },
    ScatterAdd {
        x: Tensor,
        index: Tensor,
        src: Tensor,
        dim: usize,
    },
    Where {
        cond: Tensor,
        a: Tensor,
        b: Tensor,
    },
    /// Softmax over the last dimension.
    Softmax(Tensor),
    /// Log-softmax over the last dimension.
    LogSoftmax(Tensor),
    /// Layer norm over the trailing `len` elements.
    LayerNorm {
        x: Tensor,
        weight: Option<Tensor>,
        bias: Option<Tensor>,
        len: usize,
        eps: f64,
    },
    /// RMS norm over the trailing `len` elements.
    RmsNorm {
        x: Tensor,
        weight: Option<Tensor>,
        len: usize,
        eps: f64,
    },
    /// Fused 2-D convolution `[N, C, H, W]` → `[N, O, OH, OW]` (columns recomputed in backward).
    Conv2d {
        x: Tensor,
        weight: Tensor,
        bias: Option<Tensor>,
        shape: ConvShape,
    },
    /// Fused batch normalization over channel dim 1.
    BatchNorm {
        x: Tensor,
        weight: Option<Tensor>,
        bias: Option<Tensor>,
        saved: crate::ops::BatchNormSaved,
    },
    /// im2col: `[N, C, H, W]` → `[N, C·kh·kw, OH·OW]`; backward folds.
    Unfold {
        x: Tensor,
        geometry: Conv2dGeometry,
    },
    /// col2im (the adjoint of `Unfold`); backward unfolds.
    Fold {
        x: Tensor,
        geometry: Conv2dGeometry,
    },
    /// Max or average pooling over the last two dims with explicit per-axis windows.
    Pool2d {
        x: Tensor,
        kind: PoolKind,
        h: Arc<PoolAxis>,
        w: Arc<PoolAxis>,
    },
    /// Mean cross-entropy of `[N, C]` logits against i64 targets.
    CrossEntropy {
        logits: Tensor,
        targets: Tensor,
        ignore_index: i64,
        label_smoothing: f64,
        count: usize,
    },
}

impl Op {
    /// The tensors this op read, in a fixed order.
    pub fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Unary(x, _)
            | Op::Affine { x, .. }
            | Op::Powf(x, _)
            | Op::Clamp { x, .. }
            | Op::Reduce { x, .. }
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Narrow { x, .. }
            | Op::Expand(x)
            | Op::Copy(x)
            | Op::ToDType(x)
            | Op::Softmax(x)
            | Op::LogSoftmax(x)
            | Op::Unfold { x, .. }
            | Op::Fold { x, .. }
            | Op::Pool2d { x, .. } => vec![x],
            Op::Binary(a, b, _) | Op::Matmul(a, b) => vec![a, b],
            Op::Cat(xs, _) => xs.iter().collect(),
            Op::IndexSelect { x, index, .. } | Op::Gather { x, index, .. } => vec![x, index],
            Op::ScatterAdd { x, index, src, .. } => vec![x, index, src],
            Op::Where { cond, a, b } => vec![cond, a, b],
            Op::LayerNorm { x, weight, bias, .. } => {
                let mut v = vec![x];
                v.extend(weight.iter());
                v.extend(bias.iter());
                v
            }
            Op::RmsNorm { x, weight, .. } => {
                let mut v = vec![x];
                v.extend(weight.iter());
                v
            }
            Op::CrossEntropy { logits, targets, .. } => vec![logits, targets],
            Op::BatchNorm { x, weight, bias, .. } => {
                let mut v = vec![x];
                v.extend(weight.iter());
                v.extend(bias.iter());
                v
            }
            Op::Conv2d { x, weight, bias, .. } => {
                let mut v = vec![x, weight];
                v.extend(bias.iter());
                v
            }
            Op::Linear { x, weight, bias } => {
                let mut v = vec![x, weight];
                v.extend(bias.iter());
                v
            }
        }
    }
}
