//! Pure shape rules: broadcasting, dimension resolution, reshape targets. No data is touched here;
//! every op runs its shape rule first, so errors arrive before any compute.
//!
//! Layer: core.

use crate::error::{Error, Result};

/// Row-major contiguous strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for d in (0..shape.len()).rev() {
        strides[d] = acc;
        acc *= shape[d];
    }
    strides
}

/// Resolves a possibly negative dimension index against `shape`.
pub fn resolve_dim(op: &'static str, dim: isize, shape: &[usize]) -> Result<usize> {
    let nd = shape.len() as isize;
    let d = if dim < 0 { dim + nd } else { dim };
    if d < 0 || d >= nd {
        return Err(Error::DimOutOfRange {
            op,
            dim,
            shape: shape.to_vec(),
        });
    }
    Ok(d as usize)
}

/// Resolves a list of dimensions, sorted and deduplicated.
pub fn resolve_dims(op: &'static str, dims: &[isize], shape: &[usize]) -> Result<Vec<usize>> {
    let mut out = dims
        .iter()
        .map(|&d| resolve_dim(op, d, shape))
        .collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// NumPy/PyTorch broadcasting of two shapes.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::Broadcast {
                op,
                lhs: a.to_vec(),
                rhs: b.to_vec(),
            });
        };
    }
    Ok(out)
}

/// One dimension size in a shape argument; signed types allow `-1` ("infer") in reshape.
pub trait DimSize: Copy {
    fn as_isize(self) -> isize;
}
impl DimSize for usize {
    fn as_isize(self) -> isize {
        self as isize
    }
}
impl DimSize for i32 {
    fn as_isize(self) -> isize {
        self as isize
    }
}
impl DimSize for i64 {
    fn as_isize(self) -> isize {
        self as isize
    }
}
impl DimSize for isize {
    fn as_isize(self) -> isize {
        self
    }
}

/// Anything that names a shape: `&[2, 3]`, `[2, 3]`, `vec![2, 3]`, `&shape_vec`, `&[-1, 4]` (reshape).
pub trait ShapeArg {
    fn dims_signed(&self) -> Vec<isize>;
}
impl<T: DimSize> ShapeArg for &[T] {
    fn dims_signed(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<T: DimSize, const N: usize> ShapeArg for [T; N] {
    fn dims_signed(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<T: DimSize, const N: usize> ShapeArg for &[T; N] {
    fn dims_signed(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<T: DimSize> ShapeArg for Vec<T> {
    fn dims_signed(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}
impl<T: DimSize> ShapeArg for &Vec<T> {
    fn dims_signed(&self) -> Vec<isize> {
        self.iter().map(|d| d.as_isize()).collect()
    }
}

/// A concrete shape (no `-1`): errors on negative sizes.
pub fn concrete_shape(op: &'static str, s: &impl ShapeArg) -> Result<Vec<usize>> {
    let dims = s.dims_signed();
    if dims.iter().any(|&d| d < 0) {
        return Err(Error::invalid(op, format!("negative size in shape {dims:?}")));
    }
    Ok(dims.into_iter().map(|d| d as usize).collect())
}

/// Resolves a reshape target (at most one `-1`) for a tensor of `from` shape.
pub fn reshape_target(op: &'static str, from: &[usize], to: &impl ShapeArg) -> Result<Vec<usize>> {
    let to = to.dims_signed();
    let numel: usize = from.iter().product();
    let bad = || Error::ElementCount {
        op,
        from: from.to_vec(),
        to: to.clone(),
    };
    let infer: Vec<usize> = (0..to.len()).filter(|&i| to[i] == -1).collect();
    if infer.len() > 1 || to.iter().any(|&d| d < -1) {
        return Err(bad());
    }
    let known: usize = to.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
    let mut out: Vec<usize> = to.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(&i) = infer.first() {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(bad());
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_rules() {
        assert_eq!(broadcast_shapes("t", &[3, 1, 5], &[4, 5]).unwrap(), vec![3, 4, 5]);
        assert_eq!(broadcast_shapes("t", &[], &[2]).unwrap(), vec![2]);
        let e = broadcast_shapes("add", &[3, 2], &[4]).unwrap_err().to_string();
        assert!(e.contains("add") && e.contains("[3, 2]") && e.contains("[4]"), "{e}");
    }

    #[test]
    fn reshape_infers_one_dim() {
        assert_eq!(reshape_target("r", &[2, 6], &[3, -1]).unwrap(), vec![3, 4]);
        assert!(reshape_target("r", &[2, 6], &[5, -1]).is_err());
        assert!(reshape_target("r", &[2, 6], &[-1, -1]).is_err());
    }
}
