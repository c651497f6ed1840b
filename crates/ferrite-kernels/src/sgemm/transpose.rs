//! f32 transposes in registers (16×16 AVX-512, 8×8 AVX2), for packing operands that arrive transposed.
//!
//! Layer: kernels (sgemm internals). Packing `x·Wᵀ`'s B (or `Xᵀ·dY`'s A) element by element costs
//! about a cycle per element, a few percent of a large product; transposing whole 16×16 blocks in
//! registers (64 shuffles per 256 elements) makes it a fraction of that.

use std::arch::x86_64::*;

/// Returns `t` with `t[j]` lane `i` = `r[i]` lane `j`.
///
/// Three stages of the classic unpack/shuffle network: after `unpack` and `shuffle_ps`, register
/// `b[4g + c]` holds, in its 128-bit lane `l`, column `4l + c` of rows `4g..4g+4`; two rounds of
/// `shuffle_f32x4` then transpose the 128-bit lanes of `b[c], b[4+c], b[8+c], b[12+c]`.
///
/// # Safety
/// AVX-512F must be available.
#[inline]
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub unsafe fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    let mut a = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    let mut b = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (lo, hi) = (a[4 * g], a[4 * g + 1]);
        let (lo2, hi2) = (a[4 * g + 2], a[4 * g + 3]);
        b[4 * g] = _mm512_shuffle_ps::<0x44>(lo, lo2);
        b[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(lo, lo2);
        b[4 * g + 2] = _mm512_shuffle_ps::<0x44>(hi, hi2);
        b[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(hi, hi2);
    }
    let mut t = [_mm512_setzero_ps(); 16];
    for c in 0..4 {
        let (x0, x1, x2, x3) = (b[c], b[4 + c], b[8 + c], b[12 + c]);
        let p0 = _mm512_shuffle_f32x4::<0x88>(x0, x1);
        let p1 = _mm512_shuffle_f32x4::<0x88>(x2, x3);
        let q0 = _mm512_shuffle_f32x4::<0xDD>(x0, x1);
        let q1 = _mm512_shuffle_f32x4::<0xDD>(x2, x3);
        t[c] = _mm512_shuffle_f32x4::<0x88>(p0, p1);
        t[4 + c] = _mm512_shuffle_f32x4::<0x88>(q0, q1);
        t[8 + c] = _mm512_shuffle_f32x4::<0xDD>(p0, p1);
        t[12 + c] = _mm512_shuffle_f32x4::<0xDD>(q0, q1);
    }
    t
}

/// Returns `t` with `t[j]` lane `i` = `r[i]` lane `j`: unpack pairs of rows, shuffle pairs of
/// pairs (register `s[c]` then holds column `c` of rows 0–3 in its low half and column `c + 4` in
/// its high half, `s[4 + c]` the same for rows 4–7), then swap 128-bit halves across the two.
///
/// # Safety
/// AVX2 must be available.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let mut s = [_mm256_setzero_ps(); 8];
    for h in 0..2 {
        let (r0, r1, r2, r3) = (r[4 * h], r[4 * h + 1], r[4 * h + 2], r[4 * h + 3]);
        let (lo01, hi01) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (lo23, hi23) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        s[4 * h] = _mm256_shuffle_ps::<0x44>(lo01, lo23);
        s[4 * h + 1] = _mm256_shuffle_ps::<0xEE>(lo01, lo23);
        s[4 * h + 2] = _mm256_shuffle_ps::<0x44>(hi01, hi23);
        s[4 * h + 3] = _mm256_shuffle_ps::<0xEE>(hi01, hi23);
    }
    std::array::from_fn(|j| {
        let c = j % 4;
        if j < 4 {
            _mm256_permute2f128_ps::<0x20>(s[c], s[4 + c])
        } else {
            _mm256_permute2f128_ps::<0x31>(s[c], s[4 + c])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_8x8() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let m: Vec<f32> = (0..64).map(|v| v as f32).collect();
        let mut out = [0f32; 64];
        // SAFETY: AVX2 checked above; loads and stores stay inside the 64-element arrays.
        unsafe {
            let rows: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(m.as_ptr().add(8 * i)));
            for (j, t) in transpose8(rows).into_iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(8 * j), t);
            }
        }
        for i in 0..8 {
            for j in 0..8 {
                assert_eq!(out[8 * j + i], m[8 * i + j]);
            }
        }
    }

    #[test]
    fn transposes() {
        if !is_x86_feature_detected!("avx512f") {
            return;
        }
        let m: Vec<f32> = (0..256).map(|v| v as f32).collect();
        let mut out = [0f32; 256];
        // SAFETY: AVX-512 checked above; loads and stores stay inside the 256-element arrays.
        unsafe {
            let rows: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(m.as_ptr().add(16 * i)));
            for (j, t) in transpose16(rows).into_iter().enumerate() {
                _mm512_storeu_ps(out.as_mut_ptr().add(16 * j), t);
            }
        }
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(out[16 * j + i], m[16 * i + j]);
            }
        }
    }
}
