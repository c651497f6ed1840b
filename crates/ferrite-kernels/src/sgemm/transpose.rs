//! A 16×16 f32 transpose in AVX-512 registers, for packing operands that arrive transposed.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes() {
        if !super::super::available() {
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
