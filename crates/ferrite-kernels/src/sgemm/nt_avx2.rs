//! `C (+)= A·Wᵀ` for few rows of A with AVX2: dot products along K, no packing.
//!
//! Layer: kernels (sgemm internals). The AVX2 twin of `nt` (read it for why this path exists):
//! with 16 ymm registers a tile is 3 rows of A × 4 rows of W, 12 accumulators of 8 lanes; per 8
//! values of K it loads 3 + 4 vectors for 12 FMAs. At the end of K the 4 accumulators of each row
//! of A are reduced together by two `hadd` rounds and one 128-bit add.

use super::{Dst, Src};
use std::arch::x86_64::*;

/// Rows of A per tile.
const TA: usize = 3;
/// Rows of W per tile.
const TW: usize = 4;

/// `C (+)= A·B` where B is stored transposed (`b.rs == 1`) and A is row-major (`a.cs == 1`); all
/// dimensions ≥ 1.
///
/// # Safety
/// AVX2 and FMA must be available; `a.cs == 1`, `b.rs == 1`; `a` must reach `m×k`, `b` `k×n` and
/// `c` `m×n` elements, and nothing else may touch that part of C.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm(m: usize, n: usize, k: usize, a: Src, b: Src, c: Dst, accumulate: bool) {
    debug_assert!(a.cs == 1 && b.rs == 1);
    for j0 in (0..n).step_by(TW) {
        let nr = TW.min(n - j0);
        // Rows past the edge repeat the last real row: valid memory, results never stored.
        let w: [*const f32; TW] = std::array::from_fn(|j| b.at(0, j0 + j.min(nr - 1)));
        for i0 in (0..m).step_by(TA) {
            let mr = TA.min(m - i0);
            let x: [*const f32; TA] = std::array::from_fn(|i| a.at(i0 + i.min(mr - 1), 0));
            let sums = tile(k, x, w);
            for (i, s) in sums.iter().enumerate().take(mr) {
                let mut out = [0f32; TW];
                _mm_storeu_ps(out.as_mut_ptr(), *s);
                let row = c.at(i0 + i, j0);
                for (j, v) in out.into_iter().enumerate().take(nr) {
                    *row.add(j) = if accumulate { *row.add(j) + v } else { v };
                }
            }
        }
    }
}

/// The dot products of 3 rows of A with 4 rows of W: lane `j` of result `i` is `A row i · W row j`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile(k: usize, x: [*const f32; TA], w: [*const f32; TW]) -> [__m128; TA] {
    let mut acc = [[_mm256_setzero_ps(); TW]; TA];
    // One chunk of 8 values of K at `p`, the lanes past K masked off when `mask` is given.
    let mut step = |p: usize, mask: Option<__m256i>| {
        let load = |ptr: *const f32| match mask {
            Some(m) => _mm256_maskload_ps(ptr, m),
            None => _mm256_loadu_ps(ptr),
        };
        let xv: [__m256; TA] = std::array::from_fn(|i| load(x[i].add(p)));
        for j in 0..TW {
            let wv = load(w[j].add(p));
            for i in 0..TA {
                acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
            }
        }
    };
    let full = k / 8 * 8;
    let mut p = 0;
    while p < full {
        step(p, None);
        p += 8;
    }
    if p < k {
        const BITS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        let mask = _mm256_loadu_si256(BITS.as_ptr().add(8 - (k - p)).cast());
        step(p, Some(mask));
    }
    acc.map(|[a0, a1, a2, a3]| {
        // [a0 a0 a1 a1 | …] pair sums, then [a0 a1 a2 a3 | a0 a1 a2 a3] quad sums per 128-bit half.
        let h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h))
    })
}
