//! AVX2 + FMA + F16C dot products of one block-quantized weight row with an f32 vector, reading
//! the blocks directly (no decoded copy): the generation path of a quantized language model is
//! a sequence of such matrix-vector products, bound by how fast weights are unpacked.
//!
//! Layer: kernels (quant internals). Per 32-weight block: the f16 scale(s) converted with F16C,
//! the 4-bit or 8-bit codes widened to eight-lane f32 vectors, multiplied with x by FMA; Q4_1's
//! minimum and Q4_0's offset of 8 enter through the block's Σx. `quant::dot_row` calls these
//! only when the CPU has the features.

use std::arch::x86_64::*;

/// True when this CPU can run the functions below (`is_x86_feature_detected!` caches).
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

#[inline(always)]
unsafe fn half(p: *const u8) -> f32 {
    let h = u16::from_le_bytes([*p, *p.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// Eight bytes at `p` (unsigned 4-bit codes or signed 8-bit codes) as f32 lanes.
#[inline(always)]
unsafe fn u8x8(v: __m128i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
}
#[inline(always)]
unsafe fn i8x8(v: __m128i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
}

/// The 32 weights' codes of a 4-bit block (16 bytes at `qs`) as four vectors: weights 0–7, 8–15
/// (low nibbles) and 16–23, 24–31 (high nibbles).
#[inline(always)]
unsafe fn nibbles(qs: *const u8) -> [__m256; 4] {
    let bytes = _mm_loadu_si128(qs as *const __m128i);
    let mask = _mm_set1_epi8(0x0f);
    let lo = _mm_and_si128(bytes, mask);
    let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    [
        u8x8(lo),
        u8x8(_mm_srli_si128(lo, 8)),
        u8x8(hi),
        u8x8(_mm_srli_si128(hi, 8)),
    ]
}

/// (Σ q·x, Σ x) of one block.
#[inline(always)]
unsafe fn block_sums(q: [__m256; 4], x: *const f32) -> (__m256, __m256) {
    let xs = [
        _mm256_loadu_ps(x),
        _mm256_loadu_ps(x.add(8)),
        _mm256_loadu_ps(x.add(16)),
        _mm256_loadu_ps(x.add(24)),
    ];
    let qx = _mm256_fmadd_ps(
        q[3],
        xs[3],
        _mm256_fmadd_ps(q[2], xs[2], _mm256_fmadd_ps(q[1], xs[1], _mm256_mul_ps(q[0], xs[0]))),
    );
    let sx = _mm256_add_ps(_mm256_add_ps(xs[0], xs[1]), _mm256_add_ps(xs[2], xs[3]));
    (qx, sx)
}

/// Σ w·x over `blocks` Q4_1 blocks (20 bytes each: d, m, 16 code bytes): w = d·q + m.
///
/// # Safety
/// AVX2/FMA/F16C available; `row` holds `20·blocks` bytes and `x` `32·blocks` floats.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_1(row: *const u8, x: *const f32, blocks: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for b in 0..blocks {
        let p = row.add(20 * b);
        let (qx, sx) = block_sums(nibbles(p.add(4)), x.add(32 * b));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(p)), qx, acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(p.add(2))), sx, acc);
    }
    hsum(acc)
}

/// Σ w·x over Q4_0 blocks (18 bytes: d, 16 code bytes): w = d·(q − 8).
///
/// # Safety
/// As [`dot_q4_1`], 18 bytes per block.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_0(row: *const u8, x: *const f32, blocks: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let eight = _mm256_set1_ps(8.0);
    for b in 0..blocks {
        let p = row.add(18 * b);
        let (qx, sx) = block_sums(nibbles(p.add(2)), x.add(32 * b));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(p)), _mm256_fnmadd_ps(eight, sx, qx), acc);
    }
    hsum(acc)
}

/// Σ w·x over Q8_0 blocks (34 bytes: d, 32 signed codes): w = d·q.
///
/// # Safety
/// As [`dot_q4_1`], 34 bytes per block.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q8_0(row: *const u8, x: *const f32, blocks: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for b in 0..blocks {
        let p = row.add(34 * b);
        let lo = _mm_loadu_si128(p.add(2) as *const __m128i);
        let hi = _mm_loadu_si128(p.add(18) as *const __m128i);
        let q = [
            i8x8(lo),
            i8x8(_mm_srli_si128(lo, 8)),
            i8x8(hi),
            i8x8(_mm_srli_si128(hi, 8)),
        ];
        let (qx, _) = block_sums(q, x.add(32 * b));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half(p)), qx, acc);
    }
    hsum(acc)
}

/// An f32 vector quantized to 8 bits per 32-value block, as llama.cpp's Q8_1 activations:
/// `x ≈ d·q`, with `s = d·Σq` kept per block for the weight formats that add a constant.
pub struct Q8Vector {
    pub d: Vec<f32>,
    pub s: Vec<f32>,
    pub q: Vec<i8>,
}

/// Quantizes `x` (a multiple of 32 values) block by block with scale max|x|/127.
pub fn quantize_q8(x: &[f32]) -> Q8Vector {
    let blocks = x.len() / 32;
    let (mut d, mut s, mut q) = (
        Vec::with_capacity(blocks),
        Vec::with_capacity(blocks),
        vec![0i8; blocks * 32],
    );
    for (b, xs) in x.chunks_exact(32).enumerate() {
        // As llama.cpp's AVX2 quantize_row_q8_0/q8_1: multiply by 127/amax, round half to even.
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (o, &v) in q[32 * b..32 * b + 32].iter_mut().zip(xs) {
            let c = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
            *o = c;
            sum += c as i32;
        }
        d.push(scale);
        s.push(scale * sum as f32);
    }
    Q8Vector { d, s, q }
}

/// Σ over 32 lanes of u8 `w` × i8 `x`, as eight i32 lanes converted to f32.
#[inline(always)]
unsafe fn dot_u8_i8(w: __m256i, x: __m256i) -> __m256 {
    let pairs = _mm256_maddubs_epi16(w, x);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// A 4-bit block's 16 code bytes as 32 unsigned bytes in weight order (low nibbles are
/// weights 0–15, high nibbles 16–31).
#[inline(always)]
unsafe fn nibbles_u8(qs: *const u8) -> __m256i {
    let bytes = _mm_loadu_si128(qs as *const __m128i);
    let mask = _mm_set1_epi8(0x0f);
    let lo = _mm_and_si128(bytes, mask);
    let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    _mm256_set_m128i(hi, lo)
}

/// The block formats with integer dot products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotFormat {
    /// 20 bytes per block: scale, minimum, 16 bytes of 4-bit codes.
    Q4_1,
    /// 18 bytes per block: scale, 16 bytes of 4-bit codes offset by 8.
    Q4_0,
    /// 34 bytes per block: scale, 32 signed bytes.
    Q8_0,
}

/// Σ w·x of one weight row against each of several Q8 vectors, in groups of four: each weight
/// block is unpacked once and multiplied with the four vectors' blocks, so a row costs one read
/// and one unpacking however many sequences decode together. `block(b)` gives block b's weight
/// bytes, its scale d_w and the coefficient c of the block's constant term c·s_x; `signed`
/// says the bytes are signed (Q8_0: signs move onto x so the u8×i8 product takes |q_w|).
/// `maddubs` never saturates on these formats (a pair sums to at most 2·128·127 < 2¹⁵). Each
/// vector's result is exactly what it would be alone.
///
/// AVX-VNNI's `vpdpbusd` (one instruction for `maddubs` + `madd`) was tried here and measured
/// slower on a Sapphire Rapids core: SmolLM2 decoding 48–52 against 61–65 tokens/s.
#[inline(always)]
unsafe fn dots_many(
    xs: &[Q8Vector],
    out: &mut [f32],
    blocks: usize,
    signed: bool,
    block: impl Fn(usize) -> (__m256i, f32, f32),
) {
    for (xg, og) in xs.chunks(4).zip(out.chunks_mut(4)) {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut consts = [0.0f32; 4];
        for b in 0..blocks {
            let (w, d, c) = block(b);
            let wu = if signed { _mm256_sign_epi8(w, w) } else { w };
            for (t, x) in xg.iter().enumerate() {
                let xq = _mm256_loadu_si256(x.q.as_ptr().add(32 * b) as *const __m256i);
                let xq = if signed { _mm256_sign_epi8(xq, w) } else { xq };
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d[b]), dot_u8_i8(wu, xq), acc[t]);
                consts[t] += c * x.s[b];
            }
        }
        for (t, o) in og.iter_mut().enumerate() {
            *o = hsum(acc[t]) + consts[t];
        }
    }
}

/// Σ w·x of `blocks` blocks of one weight row in `format` against each Q8 vector of `xs`, into
/// `out` (one value per vector): Q4_1 is Σ_b d_w·d_x·Σ q_w q_x + m_w·s_x, Q4_0 is
/// Σ_b d_w·(d_x·Σ q_w q_x − 8·s_x), Q8_0 is Σ_b d_w·d_x·Σ q_w q_x.
///
/// # Safety
/// AVX2/FMA/F16C available; `row` holds `blocks` blocks of the format, each vector at least
/// `blocks` blocks, `out` as many values as `xs`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dots(format: DotFormat, row: *const u8, xs: &[Q8Vector], blocks: usize, out: &mut [f32]) {
    match format {
        DotFormat::Q4_1 => dots_many(xs, out, blocks, false, |b| {
            let p = row.add(20 * b);
            (nibbles_u8(p.add(4)), half(p), half(p.add(2)))
        }),
        DotFormat::Q4_0 => dots_many(xs, out, blocks, false, |b| {
            let p = row.add(18 * b);
            let d = half(p);
            (nibbles_u8(p.add(2)), d, -8.0 * d)
        }),
        DotFormat::Q8_0 => dots_many(xs, out, blocks, true, |b| {
            let p = row.add(34 * b);
            (_mm256_loadu_si256(p.add(2) as *const __m256i), half(p), 0.0)
        }),
    }
}
