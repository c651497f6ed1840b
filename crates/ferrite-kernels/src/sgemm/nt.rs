//! `C (+)= A·Wᵀ` for few rows of A: dot products along K, no packing.
//!
//! Layer: kernels (sgemm internals). `x·Wᵀ` with a PyTorch-layout weight `W [n, k]` is the
//! product behind every linear layer. With few rows of `x` (batch-1 inference, decoding steps)
//! the blocked path spends as long transposing W into panels as multiplying: W is touched once
//! per call either way, but the packing writes it all again. Here each C element is a dot
//! product of two contiguous rows — a row of A and a row of W — so W streams through once, in
//! the order it is stored, and nothing is written but C.
//!
//! A 4×4 tile of C keeps 16 zmm accumulators, each summing 16 lanes of one dot product; per 16
//! values of K it loads 4 rows of A and 4 rows of W for 16 FMAs (FMA-bound, not load-bound). At
//! the end of K the 16 accumulators are reduced together by a shuffle tree (46 instructions for
//! 16 sums rather than 16 separate horizontal reductions). Loop order: W rows outer, A rows inner,
//! so the 4 W rows of a strip stay in L1 while every row of A passes over them.

use super::avx512::lanes;
use super::{Dst, Src};
use std::arch::x86_64::*;

/// Rows of A and rows of W per tile.
const T: usize = 4;

/// `C (+)= A·B` where B is stored transposed (`b.rs == 1`: column j of B is a contiguous row of W
/// at `b.ptr + j·b.cs`) and A is row-major (`a.cs == 1`); all dimensions ≥ 1.
///
/// # Safety
/// AVX-512F/VL and FMA must be available; `a.cs == 1`, `b.rs == 1`; `a` must reach `m×k`, `b`
/// `k×n` and `c` `m×n` elements, and nothing else may touch that part of C.
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub unsafe fn gemm(m: usize, n: usize, k: usize, a: Src, b: Src, c: Dst, accumulate: bool) {
    debug_assert!(a.cs == 1 && b.rs == 1);
    for j0 in (0..n).step_by(T) {
        let nr = T.min(n - j0);
        // Rows past the edge repeat the last real row: valid memory, results never stored.
        let w: [*const f32; T] = std::array::from_fn(|j| b.at(0, j0 + j.min(nr - 1)));
        for i0 in (0..m).step_by(T) {
            let mr = T.min(m - i0);
            let x: [*const f32; T] = std::array::from_fn(|i| a.at(i0 + i.min(mr - 1), 0));
            let sums = tile(k, x, w);
            store(sums, c, i0, j0, mr, nr, accumulate);
        }
    }
}

/// The 16 dot products of 4 rows of A with 4 rows of W, as one vector: lane `4q + e` holds
/// `A row e · W row q`… reordered by [`reduce16`] so lane `4i + j` holds `A row i · W row j`.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn tile(k: usize, x: [*const f32; T], w: [*const f32; T]) -> __m512 {
    let mut acc = [_mm512_setzero_ps(); T * T];
    let full = k / 16 * 16;
    let mut p = 0;
    while p < full {
        let xv: [__m512; T] = std::array::from_fn(|i| _mm512_loadu_ps(x[i].add(p)));
        for j in 0..T {
            let wv = _mm512_loadu_ps(w[j].add(p));
            for i in 0..T {
                acc[i * T + j] = _mm512_fmadd_ps(xv[i], wv, acc[i * T + j]);
            }
        }
        p += 16;
    }
    if p < k {
        let mask = lanes(k - p);
        let xv: [__m512; T] = std::array::from_fn(|i| _mm512_maskz_loadu_ps(mask, x[i].add(p)));
        for j in 0..T {
            let wv = _mm512_maskz_loadu_ps(mask, w[j].add(p));
            for i in 0..T {
                acc[i * T + j] = _mm512_fmadd_ps(xv[i], wv, acc[i * T + j]);
            }
        }
    }
    reduce16(acc)
}

/// Lane `l` of the result is the sum of the 16 lanes of `v[l]`.
///
/// Halve the width three times while interleaving: 512→256-bit halves of pairs, then 128-bit
/// quarters of pairs of pairs, then within 128-bit lanes; that leaves lane `4q + e` holding the
/// sum of `v[4e + q]`, which one permute puts in place.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn reduce16(v: [__m512; 16]) -> __m512 {
    // s[l]: 128-bit lanes 0,1 hold halves-sums of v[2l], lanes 2,3 of v[2l+1].
    let s: [__m512; 8] = std::array::from_fn(|l| {
        let lo = _mm512_shuffle_f32x4::<0b01_00_01_00>(v[2 * l], v[2 * l + 1]);
        let hi = _mm512_shuffle_f32x4::<0b11_10_11_10>(v[2 * l], v[2 * l + 1]);
        _mm512_add_ps(lo, hi)
    });
    // t[m]: 128-bit lane q holds 4 partial sums of v[4m + q].
    let t: [__m512; 4] = std::array::from_fn(|m| {
        let lo = _mm512_shuffle_f32x4::<0b10_00_10_00>(s[2 * m], s[2 * m + 1]);
        let hi = _mm512_shuffle_f32x4::<0b11_01_11_01>(s[2 * m], s[2 * m + 1]);
        _mm512_add_ps(lo, hi)
    });
    // Within each 128-bit lane q: [a0+a2, b0+b2, a1+a3, b1+b3] for a = t0, b = t1 (and c, d).
    let ab = _mm512_add_ps(_mm512_unpacklo_ps(t[0], t[1]), _mm512_unpackhi_ps(t[0], t[1]));
    let cd = _mm512_add_ps(_mm512_unpacklo_ps(t[2], t[3]), _mm512_unpackhi_ps(t[2], t[3]));
    // [a, b, c, d] totals in lane q: lane 4q + e = sum of t[e]'s lane q = v[4e + q].
    let lo = _mm512_shuffle_ps::<0b01_00_01_00>(ab, cd);
    let hi = _mm512_shuffle_ps::<0b11_10_11_10>(ab, cd);
    let r = _mm512_add_ps(lo, hi);
    // Put v[l] in lane l: lane l = 4e + q (e = l / 4, q = l % 4) comes from lane 4q + e.
    let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(idx, r)
}

/// Writes (or adds) the `mr×nr` corner of a 4×4 tile whose lane `4i + j` is C(i0 + i, j0 + j).
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn store(sums: __m512, c: Dst, i0: usize, j0: usize, mr: usize, nr: usize, accumulate: bool) {
    let mut out = [0f32; 16];
    _mm512_storeu_ps(out.as_mut_ptr(), sums);
    for i in 0..mr {
        let row = c.at(i0 + i, j0);
        for j in 0..nr {
            let v = out[i * T + j];
            *row.add(j) = if accumulate { *row.add(j) + v } else { v };
        }
    }
}
