//! Reductions on contiguous buffers: along the last axis (rows) or the leading axis.
//!
//! Layer: kernels. Sums use eight independent accumulators, which vectorizes and also halves the
//! rounding error growth of a naive running sum.

use crate::float::Float;
use crate::threads;
use rayon::prelude::*;

/// What a reduction computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceFn {
    Sum,
    Max,
    Min,
}

/// Index of the largest element, the first one on ties, as `torch.argmax`: a NaN counts as larger
/// than any number, so the first NaN wins. 0 for an empty slice. The one argmax: the tensor op and
/// greedy decoding both call it, so they cannot drift apart.
pub fn argmax_slice<T: Float>(x: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        #[allow(clippy::eq_op)] // `v != v` is the NaN test `Float` has without another trait method.
        if v != v {
            return i;
        }
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// Sum of a slice with eight accumulators.
#[inline(always)]
pub fn sum_slice<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for &v in rest {
        s += v;
    }
    s
}

/// Dot product with eight accumulators.
#[inline(always)]
pub fn dot_slice<T: Float>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += *x * *y;
    }
    s
}

#[inline]
fn reduce_slice<T: Float>(x: &[T], op: ReduceFn) -> T {
    match op {
        ReduceFn::Sum => sum_slice(x),
        // NaN propagates, as in PyTorch.
        ReduceFn::Max => x
            .iter()
            .fold(T::NEG_INFINITY, |m, &v| if v > m || v.is_nan() { v } else { m }),
        ReduceFn::Min => x
            .iter()
            .fold(T::INFINITY, |m, &v| if v < m || v.is_nan() { v } else { m }),
    }
}

/// Reduces a contiguous `[rows, len]` buffer along its last axis.
pub fn reduce_rows<T: Float>(src: &[T], rows: usize, len: usize, op: ReduceFn) -> Vec<T> {
    debug_assert_eq!(src.len(), rows * len);
    if len == 0 {
        let v = match op {
            ReduceFn::Sum => T::ZERO,
            ReduceFn::Max => T::NEG_INFINITY,
            ReduceFn::Min => T::INFINITY,
        };
        return vec![v; rows];
    }
    if !threads::should_parallelize(rows * len) {
        return src.chunks_exact(len).map(|r| reduce_slice(r, op)).collect();
    }
    if rows >= 2 * threads::num_threads() {
        threads::install(|_| src.par_chunks_exact(len).map(|r| reduce_slice(r, op)).collect())
    } else {
        // Few long rows: split each row across threads and combine partial results.
        let chunk = threads::PAR_MIN_ELEMS / 2;
        threads::install(|_| {
            src.chunks_exact(len)
                .map(|r| {
                    let parts: Vec<T> = r.par_chunks(chunk).map(|c| reduce_slice(c, op)).collect();
                    reduce_slice(&parts, op)
                })
                .collect()
        })
    }
}

/// Reduces a contiguous `[lead, rest]` buffer over its leading axis (e.g. a bias gradient).
pub fn reduce_leading<T: Float>(src: &[T], lead: usize, rest: usize, op: ReduceFn) -> Vec<T> {
    debug_assert_eq!(src.len(), lead * rest);
    let init = match op {
        ReduceFn::Sum => T::ZERO,
        ReduceFn::Max => T::NEG_INFINITY,
        ReduceFn::Min => T::INFINITY,
    };
    let combine = |acc: &mut [T], row: &[T]| match op {
        ReduceFn::Sum => acc.iter_mut().zip(row).for_each(|(a, &b)| *a += b),
        ReduceFn::Max => acc.iter_mut().zip(row).for_each(|(a, &b)| {
            if b > *a || b.is_nan() {
                *a = b
            }
        }),
        ReduceFn::Min => acc.iter_mut().zip(row).for_each(|(a, &b)| {
            if b < *a || b.is_nan() {
                *a = b
            }
        }),
    };
    if rest == 0 {
        return Vec::new();
    }
    if threads::should_parallelize(lead * rest) && rest >= 64 {
        // Split the columns: each task owns a band of output columns.
        let n = threads::num_threads();
        let band = rest.div_ceil(n * 2).max(16);
        let mut out = vec![init; rest];
        threads::install(|_| {
            out.par_chunks_mut(band).enumerate().for_each(|(t, acc)| {
                let c0 = t * band;
                for r in 0..lead {
                    combine(acc, &src[r * rest + c0..r * rest + c0 + acc.len()]);
                }
            })
        });
        return out;
    }
    let mut out = vec![init; rest];
    for r in 0..lead {
        combine(&mut out, &src[r * rest..(r + 1) * rest]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_is_torch_argmax() {
        assert_eq!(argmax_slice(&[0.1f32, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax_slice(&[1.0f64, f64::NAN, 3.0, f64::NAN]), 1);
        assert_eq!(argmax_slice(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(argmax_slice::<f32>(&[]), 0);
    }

    #[test]
    fn rows_and_leading_agree_with_loops() {
        let x: Vec<f64> = (0..60).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
        let rows = reduce_rows(&x, 6, 10, ReduceFn::Sum);
        for r in 0..6 {
            assert_eq!(rows[r], x[r * 10..(r + 1) * 10].iter().sum::<f64>());
        }
        let lead = reduce_leading(&x, 6, 10, ReduceFn::Max);
        for c in 0..10 {
            let m = (0..6).map(|r| x[r * 10 + c]).fold(f64::MIN, f64::max);
            assert_eq!(lead[c], m);
        }
    }
}
