//! Index kernels on contiguous buffers viewed as `[outer, dim, inner]`: index_select, gather,
//! scatter_add and index_add.
//!
//! Layer: kernels. Indices must already be validated (in range, non-negative) by the caller, which
//! reports the bad index with the op name; here an invalid index is a ferrite bug.

/// `out[o, j, i] = src[o, idx[j], i]`: selects `idx.len()` slices along the middle axis.
pub fn index_select<T: Copy + Default>(src: &[T], outer: usize, dim: usize, inner: usize, idx: &[usize]) -> Vec<T> {
    // Appended slice by slice (no zero-fill): this gathers every training batch.
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &k in idx {
            let s = (o * dim + k) * inner;
            out.extend_from_slice(&src[s..s + inner]);
        }
    }
    out
}

/// `out[o, idx[j], i] += g[o, j, i]` into a zeroed `[outer, dim, inner]` buffer (index_select backward).
pub fn index_add<T: Copy + Default + std::ops::AddAssign>(
    g: &[T],
    outer: usize,
    dim: usize,
    inner: usize,
    idx: &[usize],
) -> Vec<T> {
    let mut out = vec![T::default(); outer * dim * inner];
    for o in 0..outer {
        for (j, &k) in idx.iter().enumerate() {
            let s = (o * idx.len() + j) * inner;
            let d = (o * dim + k) * inner;
            for (a, &b) in out[d..d + inner].iter_mut().zip(&g[s..s + inner]) {
                *a += b;
            }
        }
    }
    out
}

/// `out[o, j, i] = src[o, idx[o, j, i], i]` with src `[outer, dim, inner]`, idx `[outer, n, inner]`.
pub fn gather<T: Copy + Default>(src: &[T], outer: usize, dim: usize, inner: usize, idx: &[usize], n: usize) -> Vec<T> {
    let mut out = vec![T::default(); outer * n * inner];
    for o in 0..outer {
        for j in 0..n {
            for i in 0..inner {
                let p = (o * n + j) * inner + i;
                out[p] = src[(o * dim + idx[p]) * inner + i];
            }
        }
    }
    out
}

/// `dst[o, idx[o, j, i], i] += src[o, j, i]`, in place; dst `[outer, dim, inner]`, src/idx `[outer, n, inner]`.
#[allow(clippy::too_many_arguments)]
pub fn scatter_add<T: Copy + std::ops::AddAssign>(
    dst: &mut [T],
    outer: usize,
    dim: usize,
    inner: usize,
    idx: &[usize],
    src: &[T],
    n: usize,
) {
    for o in 0..outer {
        for j in 0..n {
            for i in 0..inner {
                let p = (o * n + j) * inner + i;
                dst[(o * dim + idx[p]) * inner + i] += src[p];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_then_add_round_trips_counts() {
        // [1, 3, 2] buffer; select rows 2, 0, 2.
        let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let idx = [2, 0, 2];
        assert_eq!(index_select(&src, 1, 3, 2, &idx), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        let g = [1.0; 6];
        assert_eq!(index_add(&g, 1, 3, 2, &idx), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    }
}
