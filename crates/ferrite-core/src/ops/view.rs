//! Shape and view ops: reshape, permute/transpose, narrow/slice, squeeze/unsqueeze, expand,
//! contiguous, flatten, and the joins/splits cat, stack, split, chunk.
//!
//! Layer: core (ops). Views share storage and move no data; `contiguous` and non-viewable reshapes copy.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::op::Op;
use crate::shape::{concrete_shape, reshape_target, resolve_dim, ShapeArg};
use crate::storage::Storage;
use crate::tensor::Tensor;
use ferrite_kernels::strided::Plan;

impl Tensor {
    /// A tensor with the same elements in a new shape (one `-1` is inferred). A view when possible.
    ///
    /// # Errors
    /// A target whose element count differs: the message names `reshape` and both shapes.
    pub fn reshape(&self, shape: impl ShapeArg) -> Result<Tensor> {
        let target = reshape_target("reshape", self.shape(), &shape)?;
        if target == self.shape() {
            return Ok(self.clone());
        }
        if let Some(l) = self.layout().reshape_view(&target) {
            return Ok(self.view_with(l, || Op::Reshape(self.clone())));
        }
        let s = self.read().contiguous(self.layout());
        Ok(Tensor::from_op(s, target, || Op::Reshape(self.clone())))
    }

    /// Reorders dimensions (`perm` is a permutation of `0..ndim`; negatives count from the end).
    pub fn permute(&self, perm: &[isize]) -> Result<Tensor> {
        let nd = self.ndim();
        let p: Vec<usize> = perm
            .iter()
            .map(|&d| resolve_dim("permute", d, self.shape()))
            .collect::<Result<_>>()?;
        let mut seen = vec![false; nd];
        if p.len() != nd || p.iter().any(|&d| std::mem::replace(&mut seen[d], true)) {
            return Err(Error::invalid(
                "permute",
                format!("{perm:?} is not a permutation of the dims of shape {:?}", self.shape()),
            ));
        }
        if p.iter().enumerate().all(|(i, &d)| i == d) {
            return Ok(self.clone());
        }
        Ok(self.view_with(self.layout().permute(&p), || Op::Permute(self.clone(), p.clone())))
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = resolve_dim("transpose", d0, self.shape())?;
        let b = resolve_dim("transpose", d1, self.shape())?;
        let mut p: Vec<isize> = (0..self.ndim() as isize).collect();
        p.swap(a, b);
        self.permute(&p)
    }

    /// Transpose of the last two dimensions (a view).
    pub fn t(&self) -> Result<Tensor> {
        if self.ndim() < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs at least 2 dims, got shape {:?}", self.shape()),
            ));
        }
        self.transpose(-2, -1)
    }

    /// Keeps `len` entries of `dim` starting at `start` (a view).
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = resolve_dim("narrow", dim, self.shape())?;
        let size = self.shape()[d];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::IndexOutOfRange {
                op: "narrow",
                index: (start + len) as i64,
                size,
                dim: d,
                shape: self.shape().to_vec(),
            });
        }
        if start == 0 && len == size {
            return Ok(self.clone());
        }
        Ok(self.view_with(self.layout().narrow(d, start, len), || Op::Narrow {
            x: self.clone(),
            dim: d,
            start,
        }))
    }

    /// `narrow` by a half-open range.
    pub fn slice(&self, dim: isize, range: std::ops::Range<usize>) -> Result<Tensor> {
        self.narrow(dim, range.start, range.end.saturating_sub(range.start))
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = resolve_dim("squeeze", dim, self.shape())?;
        if self.shape()[d] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!("dimension {dim} of shape {:?} is not 1", self.shape()),
            ));
        }
        let mut s = self.shape().to_vec();
        s.remove(d);
        self.reshape(s)
    }

    /// Inserts a size-1 dimension at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let nd = self.ndim() as isize;
        let d = if dim < 0 { dim + nd + 1 } else { dim };
        if d < 0 || d > nd {
            return Err(Error::DimOutOfRange {
                op: "unsqueeze",
                dim,
                shape: self.shape().to_vec(),
            });
        }
        let mut s = self.shape().to_vec();
        s.insert(d as usize, 1);
        self.reshape(s)
    }

    /// Broadcasts to `shape` (a view with stride 0 on expanded dims), like `torch.Tensor.expand`.
    pub fn broadcast_to(&self, shape: impl ShapeArg) -> Result<Tensor> {
        let shape = concrete_shape("broadcast_to", &shape)?;
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let l = self.layout().broadcast_as("broadcast_to", &shape)?;
        Ok(self.view_with(l, || Op::Expand(self.clone())))
    }

    /// Same as [`Tensor::broadcast_to`].
    pub fn expand(&self, shape: impl ShapeArg) -> Result<Tensor> {
        self.broadcast_to(shape)
    }

    /// A contiguous copy, or `self` when already contiguous.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let s = self.read().contiguous(self.layout());
        Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::Copy(self.clone())))
    }

    /// Merges dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.ndim() == 0 {
            return self.reshape([1usize]);
        }
        let a = resolve_dim("flatten", start, self.shape())?;
        let b = resolve_dim("flatten", end, self.shape())?;
        if a > b {
            return Err(Error::invalid(
                "flatten",
                format!("start dim {start} is after end dim {end}"),
            ));
        }
        let s = self.shape();
        let mut out: Vec<usize> = s[..a].to_vec();
        out.push(s[a..=b].iter().product());
        out.extend_from_slice(&s[b + 1..]);
        self.reshape(out)
    }

    /// Concatenates along `dim`; all other dims must match.
    pub fn cat(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        const OP: &str = "cat";
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid(OP, "needs at least one tensor"))?;
        let d = resolve_dim(OP, dim, first.shape())?;
        for t in &tensors[1..] {
            let ok = t.ndim() == first.ndim()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !ok {
                return Err(Error::shape(
                    OP,
                    first.shape(),
                    t.shape(),
                    format!("all dims except {d} must match"),
                ));
            }
            if t.dtype() != first.dtype() {
                return Err(Error::dtype(
                    OP,
                    format!("dtypes must match, got {:?} and {:?}", first.dtype(), t.dtype()),
                ));
            }
        }
        let mut shape = first.shape().to_vec();
        shape[d] = tensors.iter().map(|t| t.shape()[d]).sum();
        let out_layout = Layout::contiguous(shape.clone());
        let mut out = Storage::full(first.dtype(), out_layout.numel(), 0.0);
        let mut start = 0;
        for t in tensors {
            let len = t.shape()[d];
            let region = out_layout.narrow(d, start, len);
            copy_into(&mut out, &region, &t.read(), t.layout());
            start += len;
        }
        Ok(Tensor::from_op(out, shape, || Op::Cat(tensors.to_vec(), d)))
    }

    /// Stacks equal-shaped tensors along a new dimension `dim`.
    pub fn stack(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let ts = tensors.iter().map(|t| t.unsqueeze(dim)).collect::<Result<Vec<_>>>()?;
        Tensor::cat(&ts, dim)
    }

    /// Splits into pieces of `size` along `dim` (the last may be smaller).
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        if size == 0 {
            return Err(Error::invalid("split", "split size must be positive"));
        }
        let d = resolve_dim("split", dim, self.shape())?;
        let n = self.shape()[d];
        (0..n)
            .step_by(size)
            .map(|s| self.narrow(d as isize, s, size.min(n - s)))
            .collect()
    }

    /// Splits into `chunks` nearly equal pieces along `dim` (as `torch.chunk`).
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor>> {
        if chunks == 0 {
            return Err(Error::invalid("chunk", "number of chunks must be positive"));
        }
        let d = resolve_dim("chunk", dim, self.shape())?;
        self.split(self.shape()[d].div_ceil(chunks).max(1), dim)
    }
}

/// Copies `src` (under `ls`) into the region `ld` of `dst`; shapes must match, dtypes must match.
pub(crate) fn copy_into(dst: &mut Storage, ld: &Layout, src: &Storage, ls: &Layout) {
    fn go<T: Copy>(d: &mut [T], ld: &Layout, s: &[T], ls: &Layout) {
        let plan = Plan::<2>::new(ld.shape(), [ld.strides(), ls.strides()]);
        let [sd, ss] = plan.inner_strides;
        let n = plan.inner_len;
        plan.for_rows(0, plan.rows(), |_, [od, os]| {
            let (bd, bs) = (ld.offset() + od, ls.offset() + os);
            if sd == 1 && ss == 1 {
                d[bd..bd + n].copy_from_slice(&s[bs..bs + n]);
            } else {
                for i in 0..n {
                    d[bd + i * sd] = s[bs + i * ss];
                }
            }
        });
    }
    macro_rules! dispatch {
        ($($v:ident),*) => {
            match (dst, src) {
                $((Storage::$v(d), Storage::$v(s)) => go(d, ld, s, ls),)*
                _ => unreachable!("ferrite bug: copy_into dtypes checked by caller"),
            }
        };
    }
    dispatch!(F32, F64, F16, BF16, I64, U8);
}

/// Zeros of `shape` with `g` written into the `narrow(dim, start, g.shape[dim])` region
/// (the backward of narrow, and of each piece of cat).
pub(crate) fn pad_into_zeros(g: &Tensor, shape: &[usize], dim: usize, start: usize) -> Result<Tensor> {
    let l = Layout::contiguous(shape.to_vec());
    let mut out = Storage::full(g.dtype(), l.numel(), 0.0);
    let region = l.narrow(dim, start, g.shape()[dim]);
    copy_into(&mut out, &region, &g.read(), g.layout());
    Ok(Tensor::from_storage(out, shape.to_vec()))
}
