//! Reductions: sum, mean, max, min, var over any set of axes (with keepdim), argmax, and `sum_to`
//! (the broadcast-undoing sum used by backward rules).
//!
//! Layer: core (ops).

use crate::error::{Error, Result};
use crate::op::Op;
use crate::shape::resolve_dims;
use crate::storage::{contig, map_float, Storage};
use crate::tensor::Tensor;
use ferrite_kernels::reduce::{self as kr, ReduceFn};
use ferrite_kernels::Float;

fn reduce_storage<T: Float>(v: &[T], t: &Tensor, dims: &[usize], f: ReduceFn) -> Vec<T> {
    let shape = t.shape();
    let l = t.layout();
    let len: usize = dims.iter().map(|&d| shape[d]).product();
    // Counted from the kept axes, not numel / len: an empty reduced axis still leaves rows (of 0).
    let rows: usize = (0..shape.len())
        .filter(|d| !dims.contains(d))
        .map(|d| shape[d])
        .product();
    // Leading axes of a contiguous tensor: accumulate whole rows (vectorized, no transpose).
    if let Some(r) = l.contiguous_range()
        && dims.iter().enumerate().all(|(i, &d)| i == d)
        && len > 0
    {
        return kr::reduce_leading(&v[r], len, rows, f);
    }
    // General case: kept dims first, reduced dims last, then reduce each row.
    let kept: Vec<usize> = (0..shape.len()).filter(|d| !dims.contains(d)).collect();
    let perm: Vec<usize> = kept.iter().chain(dims).copied().collect();
    let pl = l.permute(&perm);
    kr::reduce_rows(&contig(v, &pl), rows, len, f)
}

impl Tensor {
    fn reduce_op(&self, dims: &[isize], keepdim: bool, f: ReduceFn, name: &'static str) -> Result<Tensor> {
        let dims = if dims.is_empty() {
            (0..self.ndim()).collect()
        } else {
            resolve_dims(name, dims, self.shape())?
        };
        if f != ReduceFn::Sum && dims.iter().any(|&d| self.shape()[d] == 0) {
            return Err(Error::invalid(
                name,
                format!("cannot reduce an empty dimension of shape {:?}", self.shape()),
            ));
        }
        let out_shape: Vec<usize> = self
            .shape()
            .iter()
            .enumerate()
            .filter_map(|(i, &s)| {
                if dims.contains(&i) {
                    keepdim.then_some(1)
                } else {
                    Some(s)
                }
            })
            .collect();
        let s = map_float!(name, &*self.read(), |v| reduce_storage(v, self, &dims, f))?;
        Ok(Tensor::from_op(s, out_shape, || Op::Reduce {
            x: self.clone(),
            f,
            dims: dims.clone(),
            keepdim,
        }))
    }

    /// Sum over `dims` (empty = all dims).
    ///
    /// ```
    /// use ferrite_core::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(x.sum(&[0], false).unwrap().to_vec::<f32>().unwrap(), vec![4.0, 6.0]);
    /// ```
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(dims, keepdim, ReduceFn::Sum, "sum")
    }
    /// Sum of all elements (a 0-d tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }
    /// Maximum over `dims`; the gradient is shared equally among tied maxima (as `torch.amax`).
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(dims, keepdim, ReduceFn::Max, "max")
    }
    /// Minimum over `dims` (gradient as for `max`).
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(dims, keepdim, ReduceFn::Min, "min")
    }

    fn reduced_count(&self, dims: &[isize], name: &'static str) -> Result<usize> {
        Ok(if dims.is_empty() {
            self.numel()
        } else {
            resolve_dims(name, dims, self.shape())?
                .iter()
                .map(|&d| self.shape()[d])
                .product()
        })
    }

    /// Mean over `dims` (empty = all dims).
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let n = self.reduced_count(dims, "mean")?;
        self.sum(dims, keepdim)?.div_scalar(n as f64)
    }
    /// Mean of all elements.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Variance over `dims`; `unbiased` divides by n−1 (PyTorch's default) instead of n.
    pub fn var(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Result<Tensor> {
        let n = self.reduced_count(dims, "var")?;
        let denom = if unbiased { n.saturating_sub(1) } else { n };
        if denom == 0 {
            return Err(Error::invalid(
                "var",
                format!("not enough elements ({n}) over dims {dims:?}"),
            ));
        }
        let centered = self.sub(&self.mean(dims, true)?)?;
        centered.sqr()?.sum(dims, keepdim)?.div_scalar(denom as f64)
    }

    /// Index of the maximum along `dim` (i64; the first on ties, a NaN counts as the maximum, as
    /// `torch.argmax`); not differentiable.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        let d = crate::shape::resolve_dim("argmax", dim, self.shape())?;
        let size = self.shape()[d];
        if size == 0 {
            return Err(Error::invalid(
                "argmax",
                format!("cannot take argmax over an empty dimension of shape {:?}", self.shape()),
            ));
        }
        let moved = self.transpose(d as isize, -1)?.contiguous()?;
        let vals = moved.to_f64_vec();
        let idx: Vec<i64> = vals.chunks(size).map(|row| kr::argmax_slice(row) as i64).collect();
        let mut shape = self.shape().to_vec();
        if keepdim {
            shape[d] = 1;
        } else {
            shape.remove(d);
        }
        Tensor::from_vec(idx, shape)
    }

    /// Sums a broadcast result back down to `shape` (which must broadcast to `self.shape()`).
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let nd = self.ndim();
        if shape.len() > nd {
            return Err(Error::Broadcast {
                op: "sum_to",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        let extra = nd - shape.len();
        let mut dims: Vec<isize> = (0..extra as isize).collect();
        for (i, &s) in shape.iter().enumerate() {
            let here = self.shape()[i + extra];
            if s == 1 && here != 1 {
                dims.push((i + extra) as isize);
            } else if s != here {
                return Err(Error::Broadcast {
                    op: "sum_to",
                    lhs: self.shape().to_vec(),
                    rhs: shape.to_vec(),
                });
            }
        }
        if dims.is_empty() {
            return self.reshape(shape);
        }
        self.sum(&dims, true)?.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn argmax_along_any_dim_takes_the_first_maximum_and_nan() {
        // [[1, 5, 5], [7, NaN, 2]]: rows → [1, 1]; columns → [1, 0, 0].
        let t = Tensor::from_vec(vec![1.0f32, 5.0, 5.0, 7.0, f32::NAN, 2.0], [2, 3]).unwrap();
        assert_eq!(t.argmax(-1, false).unwrap().to_vec::<i64>().unwrap(), vec![1, 1]);
        assert_eq!(t.argmax(0, false).unwrap().to_vec::<i64>().unwrap(), vec![1, 1, 0]);
        assert_eq!(t.argmax(0, true).unwrap().shape(), &[1, 3]);
    }
}
