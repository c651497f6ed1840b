//! The AVX2 + FMA f32 microkernel and packers, for x86-64 CPUs without AVX-512 (AMD Zen 1–3,
//! Intel Haswell to Alder Lake clients).
//!
//! Layer: kernels (sgemm internals). Raw pointers only; the callers (`sgemm::blocked`,
//! `sgemm::small`) have checked every address. Same scheme as `avx512` with 8-lane ymm registers
//! and a 16-register file: the main tile is 6 rows × 16 columns (12 accumulators, 2 B vectors, 1
//! broadcast), which keeps both FMA ports busy (12 FMAs per 8 loads) and hides the FMA latency
//! (4–5 cycles × 2 ports ≤ 12 independent chains). Packed B panels are 16 columns wide, so a
//! 6×16 tile streams one contiguous panel. AVX2 has no mask registers: a tile whose last vector
//! is partial (`EDGE`) reads and writes that vector with `vmaskmov`, every other one unmasked.

use super::kernel::{Kernel, Tile};
use super::pack::{pack_a_strided, pack_b_panel_strided, A_RS};
use super::transpose::transpose8;
use std::arch::x86_64::*;

/// The AVX2 + FMA kernel.
#[derive(Clone, Copy)]
pub struct Avx2;

impl Kernel for Avx2 {
    const LANES: usize = 8;
    const NR_PACKED: usize = 16;
    // Tried {192, 256, 384, 512} × {256, 384, 512} on a 2-vCPU AMD EPYC (32 KB L1d, 512 KB L2),
    // best of many calls, four interleaved rounds: 512×512 was best or within noise at 256³–2048³
    // (fewer passes over C outweigh the B block overflowing L2), packing row-major A no better.
    const KC: usize = 512;
    const NC: usize = 512;

    /// `MR·NV` accumulators plus `NV` B vectors and a broadcast must fit the 16 ymm registers.
    fn mr_max(nv: usize) -> usize {
        match nv {
            1 => 12,
            2 => 6,
            _ => 4,
        }
    }

    unsafe fn tile_dyn<const PA: bool, const PB: bool>(mr: usize, t: Tile) {
        if t.nr.is_multiple_of(8) || PB {
            tile_rows::<PA, PB, false>(mr, t)
        } else {
            tile_rows::<PA, PB, true>(mr, t)
        }
    }

    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32) {
        pack_a(mc, kc, a, rs, cs, out)
    }

    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, out: *mut f32) {
        pack_b(kc, nc, b, rs, cs, out)
    }
}

/// A `vmaskmov` mask selecting the first `n` (clamped to 8) lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn lanes(n: usize) -> __m256i {
    const BITS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    _mm256_loadu_si256(BITS.as_ptr().add(8 - n.min(8)).cast())
}

/// One `MR×nr` tile of C, `NV` vectors wide.
///
/// # Safety
/// AVX2 and FMA must be available; `8·(NV-1) < t.nr <= 8·NV`, and `t.nr == 8·NV` unless `EDGE` or
/// `PB`. Operands as `Kernel::tile_dyn` describes.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const MR: usize, const NV: usize, const PA: bool, const PB: bool, const EDGE: bool>(t: Tile) {
    let last = lanes(t.nr - 8 * (NV - 1));
    let b_rs = if PB { Avx2::NR_PACKED as isize } else { t.b_rs };
    let a_rs = if PA { A_RS as isize } else { t.a_rs };
    let mut acc = [[_mm256_setzero_ps(); NV]; MR];
    // One k step: broadcast A(i, p+u) from `a + i·a_rs + u`, B row p+u from `b + u·b_rs`.
    let step = |acc: &mut [[__m256; NV]; MR], a: *const f32, b: *const f32, u: usize| {
        let row = b.wrapping_offset(u as isize * b_rs);
        let bv: [__m256; NV] = std::array::from_fn(|v| {
            if EDGE && !PB && v == NV - 1 {
                _mm256_maskload_ps(row.wrapping_add(8 * v), last)
            } else {
                _mm256_loadu_ps(row.wrapping_add(8 * v))
            }
        });
        for (i, acc_i) in acc.iter_mut().enumerate() {
            let ai = _mm256_broadcast_ss(&*a.wrapping_offset(i as isize * a_rs + u as isize));
            for v in 0..NV {
                acc_i[v] = _mm256_fmadd_ps(ai, bv[v], acc_i[v]);
            }
        }
    };
    let (mut a, mut b) = (t.a, t.b);
    // Unrolled by 4 on every path, so pointer updates are paid once per 4 steps. Unlike the AVX-512
    // kernel (which spills when its unpacked loop is unrolled), 12 accumulators leave LLVM room:
    // a 64³ product measured 7% faster (median of 15 alternated runs, 8.7 vs 9.4 µs).
    let unroll = 4;
    for _ in 0..t.kc / unroll {
        for u in 0..unroll {
            step(&mut acc, a, b, u);
        }
        a = a.wrapping_add(unroll);
        b = b.wrapping_offset(unroll as isize * b_rs);
    }
    for _ in 0..t.kc % unroll {
        step(&mut acc, a, b, 0);
        a = a.wrapping_add(1);
        b = b.wrapping_offset(b_rs);
    }
    let partial = !t.nr.is_multiple_of(8);
    for (i, row) in acc.into_iter().enumerate() {
        let c = t.c.wrapping_offset(i as isize * t.c_rs);
        for (v, mut x) in row.into_iter().enumerate() {
            let cv = c.wrapping_add(8 * v);
            if partial && v == NV - 1 {
                if t.accumulate {
                    x = _mm256_add_ps(x, _mm256_maskload_ps(cv, last));
                }
                _mm256_maskstore_ps(cv, last, x);
            } else {
                if t.accumulate {
                    x = _mm256_add_ps(x, _mm256_loadu_ps(cv));
                }
                _mm256_storeu_ps(cv, x);
            }
        }
    }
}

/// Runs [`tile`] for `mr` rows and as many vectors as `t.nr` columns need.
///
/// # Safety
/// As for `Kernel::tile_dyn`; `EDGE` when `t.nr` is not a multiple of 8 and B is not packed.
unsafe fn tile_rows<const PA: bool, const PB: bool, const EDGE: bool>(mr: usize, t: Tile) {
    macro_rules! rows {
        ($nv:literal: $($r:literal)*) => {
            match mr {
                $($r => tile::<$r, $nv, PA, PB, EDGE>(t),)*
                _ => unreachable!("ferrite bug: sgemm tile of {mr} rows, {} columns", t.nr),
            }
        };
    }
    match t.nr.div_ceil(8) {
        1 => rows!(1: 1 2 3 4 5 6 7 8 9 10 11 12),
        2 => rows!(2: 1 2 3 4 5 6),
        _ => rows!(3: 1 2 3 4),
    }
}

/// Packs A (see `Kernel::pack_a`). Only A without unit column stride comes here (the blocked path
/// reads row-major A in place), so the column-major case is the one made fast.
///
/// # Safety
/// As for `Kernel::pack_a`, with AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32) {
    if rs == 1 {
        // A stored column-major: transpose 8×8 blocks (rows i0.., depths p0..) through registers.
        for i0 in (0..mc).step_by(8) {
            let rows = lanes(mc - i0);
            for p0 in (0..kc).step_by(8) {
                let depth = 8.min(kc - p0);
                let cols: [__m256; 8] = std::array::from_fn(|p| {
                    if p < depth {
                        _mm256_maskload_ps(a.offset((p0 + p) as isize * cs).add(i0), rows)
                    } else {
                        _mm256_setzero_ps()
                    }
                });
                for (i, row) in transpose8(cols).into_iter().enumerate().take(mc - i0) {
                    _mm256_maskstore_ps(out.add((i0 + i) * A_RS + p0), lanes(depth), row);
                }
            }
        }
    } else {
        pack_a_strided(mc, kc, a, rs, cs, out);
    }
}

/// Packs B into 16-column panels (see `Kernel::pack_b`).
///
/// # Safety
/// As for `Kernel::pack_b`, with AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, out: *mut f32) {
    const W: usize = Avx2::NR_PACKED;
    for (panel, j0) in (0..nc).step_by(W).enumerate() {
        let dst = out.add(panel * W * kc);
        let src = b.offset(j0 as isize * cs);
        let nr = W.min(nc - j0);
        if cs == 1 {
            let (m0, m1) = (lanes(nr), lanes(nr.saturating_sub(8)));
            for p in 0..kc {
                let row = src.offset(p as isize * rs);
                _mm256_storeu_ps(dst.add(p * W), _mm256_maskload_ps(row, m0));
                _mm256_storeu_ps(dst.add(p * W + 8), _mm256_maskload_ps(row.wrapping_add(8), m1));
            }
        } else if rs == 1 {
            // B stored column-major (`x·Wᵀ`): transpose 8×8 blocks (columns v.., depths p0..).
            for v in (0..W).step_by(8) {
                let width = nr.saturating_sub(v).min(8);
                for p0 in (0..kc).step_by(8) {
                    let depth = lanes(kc - p0);
                    let rows: [__m256; 8] = std::array::from_fn(|j| {
                        if j < width {
                            _mm256_maskload_ps(src.offset((v + j) as isize * cs).add(p0), depth)
                        } else {
                            _mm256_setzero_ps()
                        }
                    });
                    for (p, row) in transpose8(rows).into_iter().enumerate().take(kc - p0) {
                        _mm256_storeu_ps(dst.add((p0 + p) * W + v), row);
                    }
                }
            }
        } else {
            pack_b_panel_strided(kc, W, nr, src, rs, cs, dst);
        }
    }
}
