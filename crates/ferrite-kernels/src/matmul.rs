//! Matrix multiplication on strided operands: ferrite's own AVX-512 / AVX2 kernels (`sgemm`) for
//! f32 where the CPU has them, the `gemm` crate for everything else (f64, other CPUs,
//! matrix-vector shapes).
//!
//! Layer: kernels. Strides are in elements and may be anything (a transposed operand is just swapped
//! strides), so `A @ B^T` needs no copy. Threads: on the `gemm` crate, products below 96³
//! multiply-adds run single-threaded (the pool's hand-off costs more than the arithmetic); `sgemm`
//! splits products from 48³ on, below 256³ with the spinning team of `threads::split`.

use crate::float::Float;
use crate::threads;
use gemm::Parallelism;
use std::any::TypeId;
use std::mem::MaybeUninit;

/// Multiply-add count below which a product never uses threads.
const PAR_MIN_FLOPS: usize = 96 * 96 * 96;

/// A 2-D strided view of a matrix: element (i, j) lives at `ptr[offset + i*rs + j*cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: isize,
    pub cs: isize,
}

/// `dst[m×n] = lhs[m×k] · rhs[k×n]` (or `+=` when `accumulate`), `dst` row-major contiguous with row
/// stride `dst_rs`.
///
/// # Panics
/// Only on a ferrite bug: callers check that every index the strides reach lies inside the slices.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    dst_rs: usize,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    accumulate: bool,
    allow_threads: bool,
) {
    // SAFETY: `[T]` and `[MaybeUninit<T>]` have the same layout, and `product` only ever writes
    // initialized values through the view, so `dst` stays initialized.
    let view = unsafe { &mut *(dst as *mut [T] as *mut [MaybeUninit<T>]) };
    product(m, n, k, view, dst_rs, lhs, rhs, accumulate, allow_threads);
}

/// `dst[m×n] = lhs · rhs` into memory that need not be initialized: every one of the `m×n`
/// elements (at row stride `dst_rs`) is written, so a fresh output buffer needs no zero-fill.
/// Skipping that fill measured about 4% of a 1024³ product and 5% of a 64³ one.
#[allow(clippy::too_many_arguments)]
pub fn matmul_uninit<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [MaybeUninit<T>],
    dst_rs: usize,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    allow_threads: bool,
) {
    product(m, n, k, dst, dst_rs, lhs, rhs, false, allow_threads);
}

/// The shared body of `matmul` and `matmul_uninit`. With `accumulate == false` no element of
/// `dst` is read before it is written (both kernels honour that), so `dst` may be uninitialized.
#[allow(clippy::too_many_arguments)]
fn product<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [MaybeUninit<T>],
    dst_rs: usize,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    accumulate: bool,
    allow_threads: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= (m - 1) * dst_rs + n, "ferrite bug: matmul dst too small");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_rs..i * dst_rs + n].fill(MaybeUninit::new(T::ZERO));
            }
        }
        return;
    }
    check_reach(lhs, m, k);
    check_reach(rhs, k, n);
    #[cfg(target_arch = "x86_64")]
    if let (Some(lhs), Some(rhs)) = (as_f32(lhs), as_f32(rhs)) {
        if crate::sgemm::suits(m, n, k, lhs.cs, rhs.rs) {
            // T is f32 here (as_f32 checked), so the cast is to the same type.
            let c = dst.as_mut_ptr().cast::<f32>();
            // SAFETY: `suits` checked the CPU; the asserts above checked the reach of all three
            // operands, and `dst` is exclusively borrowed.
            unsafe { crate::sgemm::matmul(m, n, k, c, dst_rs, lhs, rhs, accumulate, allow_threads) };
            return;
        }
    }
    let flops = m * n * k;
    let mut run = |threads: usize| {
        let par = if threads > 1 && flops >= PAR_MIN_FLOPS {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        // SAFETY: the asserts above guarantee every element reached by (m, n, k, strides) is inside
        // the slices; `dst` is exclusively borrowed. gemm computes dst = alpha*dst + beta*lhs*rhs.
        unsafe {
            if TypeId::of::<T>() == TypeId::of::<f32>() {
                gemm::gemm::<f32>(
                    m,
                    n,
                    k,
                    dst.as_mut_ptr() as *mut f32,
                    1,
                    dst_rs as isize,
                    accumulate,
                    lhs.data.as_ptr().add(lhs.offset) as *const f32,
                    lhs.cs,
                    lhs.rs,
                    rhs.data.as_ptr().add(rhs.offset) as *const f32,
                    rhs.cs,
                    rhs.rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                );
            } else if TypeId::of::<T>() == TypeId::of::<f64>() {
                gemm::gemm::<f64>(
                    m,
                    n,
                    k,
                    dst.as_mut_ptr() as *mut f64,
                    1,
                    dst_rs as isize,
                    accumulate,
                    lhs.data.as_ptr().add(lhs.offset) as *const f64,
                    lhs.cs,
                    lhs.rs,
                    rhs.data.as_ptr().add(rhs.offset) as *const f64,
                    rhs.cs,
                    rhs.rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                );
            } else {
                unreachable!("ferrite bug: matmul for an element type without a gemm kernel");
            }
        }
    };
    if allow_threads && flops >= PAR_MIN_FLOPS {
        threads::install(run);
    } else {
        run(1);
    }
}

/// `a` as f32 when `T` is f32 (the element type is only known generically here).
#[cfg(target_arch = "x86_64")]
fn as_f32<T: Float>(a: MatRef<'_, T>) -> Option<MatRef<'_, f32>> {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: T is f32, so the slice is the same memory with the same length and type.
    let data = unsafe { std::slice::from_raw_parts(a.data.as_ptr().cast::<f32>(), a.data.len()) };
    Some(MatRef {
        data,
        offset: a.offset,
        rs: a.rs,
        cs: a.cs,
    })
}

fn check_reach<T>(a: MatRef<'_, T>, rows: usize, cols: usize) {
    assert!(a.rs >= 0 && a.cs >= 0, "ferrite bug: negative matmul stride");
    let last = a.offset + (rows - 1) * a.rs as usize + (cols - 1) * a.cs as usize;
    assert!(last < a.data.len(), "ferrite bug: matmul operand out of bounds");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn matches_naive_including_transposed_rhs() {
        let (m, n, k) = (7, 5, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = naive(m, n, k, &a, &b);
        let mut c = vec![0.0; m * n];
        let lhs = MatRef {
            data: &a,
            offset: 0,
            rs: k as isize,
            cs: 1,
        };
        let rhs = MatRef {
            data: &b,
            offset: 0,
            rs: n as isize,
            cs: 1,
        };
        matmul(m, n, k, &mut c, n, lhs, rhs, false, true);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }
        // B stored transposed (n×k row-major) and read through swapped strides.
        let mut bt = vec![0.0; n * k];
        for p in 0..k {
            for j in 0..n {
                bt[j * k + p] = b[p * n + j];
            }
        }
        let rhs_t = MatRef {
            data: &bt,
            offset: 0,
            rs: 1,
            cs: k as isize,
        };
        let mut c2 = vec![1.0; m * n];
        matmul(m, n, k, &mut c2, n, lhs, rhs_t, true, true);
        for (x, y) in c2.iter().zip(&want) {
            assert!((x - (y + 1.0)).abs() < 1e-12);
        }
    }
}
