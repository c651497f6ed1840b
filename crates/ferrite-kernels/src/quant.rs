//! Block-quantized weight matrices in llama.cpp's formats, multiplied without dequantizing the
//! whole matrix: each weight row is decoded block by block into a small buffer that stays in L1
//! and is reused for every input row (token) of the product.
//!
//! Layer: kernels. Formats (32 weights per block, little-endian f16 scales):
//! - `Q4_0` (18 bytes): scale d, 16 bytes of nibbles; w = d·(q − 8).
//! - `Q4_1` (20 bytes): scale d, minimum m, 16 bytes of nibbles; w = d·q + m.
//! - `Q8_0` (34 bytes): scale d, 32 signed bytes; w = d·q.
//!
//! In every 4-bit block, byte j holds weight j in its low nibble and weight j + 16 in its high
//! nibble. F16 and F32 rows are supported too, so a model can mix formats.

use crate::matmul::{matmul, MatRef};
use crate::threads;
use rayon::prelude::*;

/// How a matrix's rows are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantKind {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
}

impl QuantKind {
    /// (weights per block, bytes per block)
    pub fn block(self) -> (usize, usize) {
        match self {
            QuantKind::F32 => (1, 4),
            QuantKind::F16 => (1, 2),
            QuantKind::Q4_0 => (32, 18),
            QuantKind::Q4_1 => (32, 20),
            QuantKind::Q8_0 => (32, 34),
        }
    }

    /// Bytes of one row of `cols` weights (`None` when `cols` is not a whole number of blocks).
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        let (per, size) = self.block();
        if !cols.is_multiple_of(per) {
            return None;
        }
        (cols / per).checked_mul(size)
    }
}

/// A row-major `rows × cols` matrix of quantized weights (`data` holds exactly its rows).
#[derive(Clone, Copy, Debug)]
pub struct QuantMatrix<'a> {
    pub kind: QuantKind,
    pub data: &'a [u8],
    pub rows: usize,
    pub cols: usize,
}

/// IEEE half → f32 (subnormals, infinities and NaN included).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: value = f · 2^-24.
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

fn half(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

impl QuantMatrix<'_> {
    /// Checks that `data` holds exactly `rows × cols` weights of `kind`.
    pub fn is_consistent(&self) -> bool {
        self.kind
            .row_bytes(self.cols)
            .and_then(|rb| rb.checked_mul(self.rows))
            .is_some_and(|n| n == self.data.len())
    }

    /// Decodes row `r` into `out` (`cols` values).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let rb = self.kind.row_bytes(self.cols).unwrap_or(0);
        let row = &self.data[r * rb..(r + 1) * rb];
        match self.kind {
            QuantKind::F32 => {
                for (o, c) in out.iter_mut().zip(row.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            QuantKind::F16 => {
                for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
                    *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            QuantKind::Q4_0 => {
                for (o, b) in out.chunks_exact_mut(32).zip(row.chunks_exact(18)) {
                    let d = half(b, 0);
                    for j in 0..16 {
                        o[j] = d * ((b[2 + j] & 0x0f) as f32 - 8.0);
                        o[j + 16] = d * ((b[2 + j] >> 4) as f32 - 8.0);
                    }
                }
            }
            QuantKind::Q4_1 => {
                for (o, b) in out.chunks_exact_mut(32).zip(row.chunks_exact(20)) {
                    let (d, m) = (half(b, 0), half(b, 2));
                    for j in 0..16 {
                        o[j] = d * (b[4 + j] & 0x0f) as f32 + m;
                        o[j + 16] = d * (b[4 + j] >> 4) as f32 + m;
                    }
                }
            }
            QuantKind::Q8_0 => {
                for (o, b) in out.chunks_exact_mut(32).zip(row.chunks_exact(34)) {
                    let d = half(b, 0);
                    for j in 0..32 {
                        o[j] = d * (b[2 + j] as i8) as f32;
                    }
                }
            }
        }
    }
}

/// Σ w·x of row `r` of `w` with `x` (`cols` floats), reading the quantized blocks directly with
/// AVX2 when the CPU has it; otherwise the row is decoded into `scratch` first.
pub fn dot_row(w: &QuantMatrix, r: usize, x: &[f32], scratch: &mut Vec<f32>) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::quant_avx2 as simd;
        let rb = w.kind.row_bytes(w.cols).unwrap_or(0);
        let row = &w.data[r * rb..(r + 1) * rb];
        let blocks = w.cols / 32;
        if x.len() >= w.cols && simd::available() {
            // SAFETY: the CPU has AVX2/FMA/F16C; `row` holds `blocks` blocks of this kind and
            // `x` at least 32·blocks floats.
            let fast = unsafe {
                match w.kind {
                    QuantKind::Q4_1 => Some(simd::dot_q4_1(row.as_ptr(), x.as_ptr(), blocks)),
                    QuantKind::Q4_0 => Some(simd::dot_q4_0(row.as_ptr(), x.as_ptr(), blocks)),
                    QuantKind::Q8_0 => Some(simd::dot_q8_0(row.as_ptr(), x.as_ptr(), blocks)),
                    QuantKind::F32 | QuantKind::F16 => None,
                }
            };
            if let Some(v) = fast {
                return v;
            }
        }
    }
    scratch.resize(w.cols, 0.0);
    w.dequantize_row(r, scratch);
    dot(scratch, x)
}

/// Σ a·b with eight independent accumulators (vectorizes; summation order fixed).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Rows of W decoded and multiplied together: enough to amortize a thread hand-off.
const ROWS_PER_TASK: usize = 16;
/// From this many input rows on, a group of decoded weight rows is multiplied with all of them by
/// the f32 GEMM (register-blocked) instead of one dot product per (row, token).
const GEMM_MIN_TOKENS: usize = 8;
/// Weight rows per GEMM group: 64 rows of 1536 f32 are 384 KB, inside L2.
const GEMM_ROWS: usize = 64;

/// `out[t·rows + r] = Σ_c W[r, c]·x[t·cols + c]` for `tokens` input rows: `x` `[tokens, cols]`,
/// `out` `[tokens, rows]` (x·Wᵀ, as a linear layer computes).
///
/// # Panics
/// Only on inconsistent sizes, which callers check (`is_consistent`, slice lengths).
pub fn quant_matmul(w: &QuantMatrix, x: &[f32], tokens: usize, out: &mut [f32]) {
    assert!(
        w.is_consistent() && x.len() == tokens * w.cols && out.len() == tokens * w.rows,
        "ferrite bug: quant_matmul sizes"
    );
    let (rows, cols) = (w.rows, w.cols);
    #[cfg(target_arch = "x86_64")]
    if tokens < GEMM_MIN_TOKENS && integer_dots(w) {
        return matvec_q8(std::slice::from_ref(w), x, tokens, &mut [out]);
    }
    let per_task = if tokens >= GEMM_MIN_TOKENS {
        GEMM_ROWS
    } else {
        ROWS_PER_TASK
    };
    // Each task decodes a group of rows once and multiplies them with every token; results are
    // written to a per-task buffer `[tokens, group]` and scattered afterwards.
    let task = |g: usize| -> Vec<f32> {
        let r0 = g * per_task;
        let n = per_task.min(rows - r0);
        let mut res = vec![0.0f32; tokens * n];
        if tokens >= GEMM_MIN_TOKENS {
            let mut buf = vec![0.0f32; n * cols];
            for (i, row) in buf.chunks_mut(cols).enumerate() {
                w.dequantize_row(r0 + i, row);
            }
            // res[t, i] = Σ_c x[t, c]·W[r0 + i, c]: x row-major times the decoded rows transposed.
            let lhs = MatRef {
                data: x,
                offset: 0,
                rs: cols as isize,
                cs: 1,
            };
            let rhs = MatRef {
                data: &buf,
                offset: 0,
                rs: 1,
                cs: cols as isize,
            };
            matmul(tokens, n, cols, &mut res, n, lhs, rhs, false, false);
            return res;
        }
        let mut scratch = Vec::new();
        for i in 0..n {
            for t in 0..tokens {
                res[t * n + i] = dot_row(w, r0 + i, &x[t * cols..(t + 1) * cols], &mut scratch);
            }
        }
        res
    };
    let groups = rows.div_ceil(per_task);
    let parts: Vec<Vec<f32>> = if threads::should_parallelize(rows * cols * tokens.max(1) / 4) && groups > 1 {
        threads::install(|_| (0..groups).into_par_iter().map(task).collect())
    } else {
        (0..groups).map(task).collect()
    };
    for (g, res) in parts.iter().enumerate() {
        let r0 = g * per_task;
        let n = per_task.min(rows - r0);
        for t in 0..tokens {
            out[t * rows + r0..t * rows + r0 + n].copy_from_slice(&res[t * n..(t + 1) * n]);
        }
    }
}

/// Whether `w`'s products with a few input rows run on 8-bit integer dot products: AVX2 and a
/// 4- or 8-bit block format.
#[cfg(target_arch = "x86_64")]
fn integer_dots(w: &QuantMatrix) -> bool {
    matches!(w.kind, QuantKind::Q4_0 | QuantKind::Q4_1 | QuantKind::Q8_0) && crate::quant_avx2::available()
}

/// Matrix-vector products for each of `tokens` rows of x with every matrix of `ws` (all with
/// `cols` columns), as llama.cpp computes them: each row of x quantized to 8 bits per 32-value
/// block once, each weight row's blocks multiplied in integers. A weight row is read once for
/// all the tokens (its few hundred bytes stay in L1 while every token's dot runs), so decoding
/// several sequences together costs little more memory traffic than one. The rows of all
/// matrices are split over threads together (one fork-join for, say, Q, K and V, for every
/// token) and written into `outs[i]` (`[tokens, ws[i].rows]`).
#[cfg(target_arch = "x86_64")]
fn matvec_q8(ws: &[QuantMatrix], x: &[f32], tokens: usize, outs: &mut [&mut [f32]]) {
    use crate::quant_avx2 as simd;
    let cols = ws[0].cols;
    let blocks = cols / 32;
    let total: usize = ws.iter().map(|w| w.rows).sum();
    let xq: Vec<simd::Q8Vector> = (0..tokens)
        .map(|t| simd::quantize_q8(&x[t * cols..(t + 1) * cols]))
        .collect();
    // `dst[g * tokens + t]`: row g of the stacked matrices times token t.
    let mut dst = vec![0.0f32; total * tokens];
    let row_dots = |g: usize, out: &mut [f32]| {
        let (mut i, mut r) = (0, g);
        while r >= ws[i].rows {
            r -= ws[i].rows;
            i += 1;
        }
        let w = &ws[i];
        let rb = w.kind.row_bytes(cols).unwrap_or(0);
        let p = w.data[r * rb..(r + 1) * rb].as_ptr();
        let format = match w.kind {
            QuantKind::Q4_1 => simd::DotFormat::Q4_1,
            QuantKind::Q4_0 => simd::DotFormat::Q4_0,
            _ => simd::DotFormat::Q8_0,
        };
        // SAFETY: `integer_dots` checked the CPU and formats; row r holds `blocks` blocks of
        // this kind, each vector of `xq` as many 32-value blocks, and `out` one value per vector.
        unsafe { simd::dots(format, p, &xq, blocks, out) }
    };
    let threads = threads::num_threads();
    if threads > 1 && threads::should_parallelize(total * cols * tokens / 8) {
        // A decode step is ~150 of these products of 50–500 µs each: the spinning team's
        // hand-off (about a microsecond) instead of the pool's (10–20 µs) per product.
        let chunk = total.div_ceil(4 * threads).max(16);
        let out = RowsOut(dst.as_mut_ptr());
        threads::split(total.div_ceil(chunk), |c| {
            let rows = chunk.min(total - c * chunk);
            // SAFETY: part c owns rows c·chunk .. c·chunk + rows of `dst` (`tokens` values each),
            // disjoint from every other part's, and `dst` outlives the split.
            let o = unsafe { std::slice::from_raw_parts_mut(out.at(c * chunk * tokens), rows * tokens) };
            for (i, out) in o.chunks_mut(tokens).enumerate() {
                row_dots(c * chunk + i, out);
            }
        });
    } else {
        for (g, out) in dst.chunks_mut(tokens).enumerate() {
            row_dots(g, out);
        }
    }
    let mut at = 0;
    for (w, out) in ws.iter().zip(outs.iter_mut()) {
        for r in 0..w.rows {
            for t in 0..tokens {
                out[t * w.rows + r] = dst[(at + r) * tokens + t];
            }
        }
        at += w.rows;
    }
}

/// `dst` handed to the parts of a split, each writing its own rows.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct RowsOut(*mut f32);

#[cfg(target_arch = "x86_64")]
impl RowsOut {
    /// The pointer `offset` values in (a method, so closures capture the `Sync` wrapper whole).
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

// SAFETY: the parts of `matvec_q8`'s split write disjoint rows of one buffer that outlives them.
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for RowsOut {}
// SAFETY: as for `Sync`.
#[cfg(target_arch = "x86_64")]
unsafe impl Send for RowsOut {}

/// [`quant_matmul`] of the same input with several matrices of equal width (Q/K/V, gate/up):
/// `outs[i]` receives `x·ws[i]ᵀ`. Below 8 input rows the products share one quantization of x
/// and one thread fork-join.
///
/// # Panics
/// Only on inconsistent sizes, which callers check.
pub fn quant_matmul_many(ws: &[QuantMatrix], x: &[f32], tokens: usize, outs: &mut [&mut [f32]]) {
    assert!(
        ws.len() == outs.len() && ws.iter().all(|w| w.cols == ws[0].cols),
        "ferrite bug: quant_matmul_many sizes"
    );
    #[cfg(target_arch = "x86_64")]
    if tokens < GEMM_MIN_TOKENS && ws.iter().all(|w| integer_dots(w) && w.is_consistent()) {
        assert!(
            x.len() == tokens * ws[0].cols && ws.iter().zip(outs.iter()).all(|(w, o)| o.len() == tokens * w.rows),
            "ferrite bug: quant_matmul_many sizes"
        );
        return matvec_q8(ws, x, tokens, outs);
    }
    for (w, out) in ws.iter().zip(outs.iter_mut()) {
        quant_matmul(w, x, tokens, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(v: f32) -> [u8; 2] {
        // Exact for the values used below (multiples of 1/64 in a small range).
        let bits = v.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        if v == 0.0 {
            return sign.to_le_bytes();
        }
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        let frac = ((bits >> 13) & 0x3ff) as u16;
        (sign | ((exp as u16) << 10) | frac).to_le_bytes()
    }

    #[test]
    fn half_precision_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(u16::from_le_bytes(f16_bytes(0.375))), 0.375);
    }

    /// One block of each format decoded by hand, and the product against the decoded values.
    #[test]
    fn blocks_decode_and_multiply() {
        let nib: Vec<u8> = (0..16u8).map(|j| j | ((15 - j) << 4)).collect();
        let mut q41 = f16_bytes(0.5).to_vec();
        q41.extend(f16_bytes(-1.0));
        q41.extend(&nib);
        let mut q40 = f16_bytes(0.25).to_vec();
        q40.extend(&nib);
        let mut q80 = f16_bytes(0.125).to_vec();
        q80.extend((0..32).map(|j| (j as i8 - 16) as u8));
        let q = |j: usize| if j < 16 { j as f32 } else { (31 - j) as f32 };
        type Expected = Box<dyn Fn(usize) -> f32>;
        let cases: [(QuantKind, &[u8], Expected); 3] = [
            (QuantKind::Q4_1, &q41, Box::new(move |j| 0.5 * q(j) - 1.0)),
            (QuantKind::Q4_0, &q40, Box::new(move |j| 0.25 * (q(j) - 8.0))),
            (QuantKind::Q8_0, &q80, Box::new(|j| 0.125 * (j as f32 - 16.0))),
        ];
        for (kind, data, want) in cases {
            let w = QuantMatrix {
                kind,
                data,
                rows: 1,
                cols: 32,
            };
            assert!(w.is_consistent());
            let mut row = vec![0.0; 32];
            w.dequantize_row(0, &mut row);
            for (j, v) in row.iter().enumerate() {
                assert_eq!(*v, want(j), "{kind:?} weight {j}");
            }
            // Integers in [−3, 3] quantize exactly at scale 3/127·…: compare with a tolerance
            // that covers the 8-bit activations of the integer path.
            let x: Vec<f32> = (0..64).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut out = vec![0.0; 2];
            quant_matmul(&w, &x, 2, &mut out);
            for t in 0..2 {
                let e: f32 = (0..32).map(|j| want(j) * x[t * 32 + j]).sum();
                let scale: f32 = (0..32).map(|j| (want(j) * x[t * 32 + j]).abs()).sum();
                assert!(
                    (out[t] - e).abs() <= 1e-2 * scale.max(1.0),
                    "{kind:?}: {} vs {e}",
                    out[t]
                );
            }
            let mut scratch = Vec::new();
            let exact = dot_row(&w, 0, &x[..32], &mut scratch);
            let e: f32 = (0..32).map(|j| want(j) * x[j]).sum();
            assert!((exact - e).abs() < 1e-4, "{kind:?} f32 path");
        }
    }

    /// Many rows and tokens (the threaded, grouped paths: dot products, and the GEMM from 8
    /// tokens on) against a plain loop over decoded rows.
    #[test]
    fn grouped_product_matches_plain_loop() {
        for tokens in [5, 9] {
            grouped(tokens);
        }
    }

    /// A token's result does not depend on the other tokens of the call, bit for bit, in every
    /// integer format: sequences decoded together (the server's continuous batching) get what
    /// each gets alone.
    #[test]
    fn each_token_gets_what_it_gets_alone() {
        let (rows, cols) = (19, 96);
        for (kind, block) in [(QuantKind::Q4_1, 20), (QuantKind::Q4_0, 18), (QuantKind::Q8_0, 34)] {
            let mut data = Vec::new();
            for b in 0..rows * cols / 32 {
                data.extend(f16_bytes(0.01 * (b % 7 + 1) as f32));
                if kind == QuantKind::Q4_1 {
                    data.extend(f16_bytes(-0.05 * (b % 3) as f32));
                }
                let header = if kind == QuantKind::Q4_1 { 4 } else { 2 };
                data.extend((0..block - header).map(|i| ((b * 31 + i * 37) % 251) as u8));
            }
            let w = QuantMatrix {
                kind,
                data: &data,
                rows,
                cols,
            };
            assert!(w.is_consistent());
            let tokens = 6;
            let x: Vec<f32> = (0..tokens * cols).map(|i| ((i * 13 % 17) as f32 - 8.0) / 3.0).collect();
            let mut together = vec![0.0; tokens * rows];
            quant_matmul(&w, &x, tokens, &mut together);
            for t in 0..tokens {
                let mut alone = vec![0.0; rows];
                quant_matmul(&w, &x[t * cols..(t + 1) * cols], 1, &mut alone);
                assert_eq!(&together[t * rows..(t + 1) * rows], &alone[..], "{kind:?} token {t}");
            }
        }
    }

    /// Several matrices in one call give what separate calls give.
    #[test]
    fn many_matrices_match_separate_products() {
        let data: Vec<u8> = (0..40 * 2 * 34)
            .map(|i| if i % 34 == 1 { 0x2c } else { (i * 29 % 253) as u8 })
            .collect();
        let (a, b) = data.split_at(24 * 2 * 34);
        let wa = QuantMatrix {
            kind: QuantKind::Q8_0,
            data: a,
            rows: 24,
            cols: 64,
        };
        let wb = QuantMatrix {
            kind: QuantKind::Q8_0,
            data: b,
            rows: 16,
            cols: 64,
        };
        for tokens in [1, 3, 9] {
            let x: Vec<f32> = (0..tokens * 64).map(|i| ((i * 11 % 13) as f32 - 6.0) / 4.0).collect();
            let (mut oa, mut ob) = (vec![0.0; tokens * 24], vec![0.0; tokens * 16]);
            quant_matmul_many(&[wa, wb], &x, tokens, &mut [&mut oa, &mut ob]);
            let (mut sa, mut sb) = (vec![0.0; tokens * 24], vec![0.0; tokens * 16]);
            quant_matmul(&wa, &x, tokens, &mut sa);
            quant_matmul(&wb, &x, tokens, &mut sb);
            assert_eq!((oa, ob), (sa, sb), "{tokens} tokens");
        }
    }

    fn grouped(tokens: usize) {
        let (rows, cols) = (37, 64);
        let data: Vec<u8> = (0..rows * 2 * 34)
            .map(|i| if i % 34 == 1 { 0x2c } else { (i * 37 % 251) as u8 })
            .collect();
        let w = QuantMatrix {
            kind: QuantKind::Q8_0,
            data: &data,
            rows,
            cols,
        };
        let x: Vec<f32> = (0..tokens * cols).map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0).collect();
        let mut out = vec![0.0; tokens * rows];
        quant_matmul(&w, &x, tokens, &mut out);
        let mut row = vec![0.0; cols];
        for r in 0..rows {
            w.dequantize_row(r, &mut row);
            for t in 0..tokens {
                let e: f32 = row.iter().zip(&x[t * cols..]).map(|(a, b)| a * b).sum();
                // 8-bit activations below 8 tokens: within 1% of the row's |w|·|x| mass.
                let mass: f32 = row.iter().zip(&x[t * cols..]).map(|(a, b)| (a * b).abs()).sum();
                assert!(
                    (out[t * rows + r] - e).abs() <= 1e-2 * mass.max(1e-3),
                    "{} vs {e}",
                    out[t * rows + r]
                );
            }
        }
    }
}
