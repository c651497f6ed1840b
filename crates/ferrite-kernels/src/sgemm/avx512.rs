//! The AVX-512 f32 microkernel: one register tile of `C (+)= A·B`, `MR` rows by `NV` zmm vectors
//! (16 columns each), accumulated in `MR·NV` registers.
//!
//! Layer: kernels (sgemm internals). Raw pointers only; the callers (`sgemm::blocked`,
//! `sgemm::small`) have checked every address. Each k step loads one row of B (`NV` zmm) and broadcasts
//! `MR` elements of A: `MR·NV` FMAs fed by `MR + NV` loads, so with the shapes below the two FMA
//! ports stay the bottleneck and at least 8 independent accumulators hide the 4-cycle FMA latency.
//! With a packed operand the k loop is unrolled by 4, so pointer updates are paid once per 4 steps
//! and every other address is an immediate offset; the all-in-place tile of the small path is not
//! unrolled, because LLVM then hoists the broadcasts of several steps and spills accumulators.
//!
//! Operand layouts: see `kernel::Kernel`. Packed B panels are 64 columns (four zmm) wide; the
//! columns of an in-place B past `nr` are masked off. The packers are here too: they use the
//! same masked loads, and a 16×16 register transpose for operands stored the other way round.

use super::kernel::{Kernel, Tile};
use super::pack::{pack_a_strided, pack_b_panel_strided, A_RS};
use super::transpose::transpose16;
use std::arch::x86_64::*;

/// The AVX-512F/VL + FMA kernel (Intel since Skylake-SP, AMD since Zen 4).
#[derive(Clone, Copy)]
pub struct Avx512;

impl Kernel for Avx512 {
    const LANES: usize = 16;
    const NR_PACKED: usize = 64;
    // Tuned over {256, 384, 512, 768} on Sapphire Rapids (48 KB L1d, 2 MB L2): 512×512 was best at
    // 1 and 2 threads for 256³–2048³ (each thread's panels are 1 MB of its L2).
    const KC: usize = 512;
    const NC: usize = 512;

    /// `MR·NV` accumulators plus `NV` B vectors and a broadcast must fit the 32 zmm registers.
    fn mr_max(nv: usize) -> usize {
        match nv {
            1 | 2 => 14,
            3 => 8,
            _ => 6,
        }
    }

    unsafe fn tile_dyn<const PA: bool, const PB: bool>(mr: usize, t: Tile) {
        tile_dyn::<PA, PB>(mr, t)
    }

    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32) {
        pack_a(mc, kc, a, rs, cs, out)
    }

    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, out: *mut f32) {
        pack_b(kc, nc, b, rs, cs, Self::NR_PACKED, out)
    }
}

/// Bit mask selecting the first `n` (clamped to 16) lanes.
#[inline(always)]
pub fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// One `MR×nr` tile of C.
///
/// # Safety
/// AVX-512F/VL and FMA must be available; `1 <= t.nr <= 16·NV`. A: `MR` rows of `kc` readable
/// elements at stride `A_RS` (`PA`) or `a_rs`. B: `kc` rows of a packed panel (`PB`) or of `nr`
/// readable elements at stride `b_rs`. C: rows `0..MR`, columns `0..nr` writable through `c_rs`.
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn tile<const MR: usize, const NV: usize, const PA: bool, const PB: bool>(t: Tile) {
    let masks: [__mmask16; NV] = std::array::from_fn(|v| lanes(t.nr.saturating_sub(16 * v)));
    let b_rs = if PB { Avx512::NR_PACKED as isize } else { t.b_rs };
    let a_rs = if PA { A_RS as isize } else { t.a_rs };
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    // One k step: broadcast A(i, p+u) from `a + i·a_rs + u`, B row p+u from `b + u·b_rs`.
    let step = |acc: &mut [[__m512; NV]; MR], a: *const f32, b: *const f32, u: usize| {
        let row = b.wrapping_offset(u as isize * b_rs);
        let bv: [__m512; NV] = std::array::from_fn(|v| {
            if PB {
                _mm512_loadu_ps(row.wrapping_add(16 * v))
            } else {
                _mm512_maskz_loadu_ps(masks[v], row.wrapping_add(16 * v))
            }
        });
        for (i, acc_i) in acc.iter_mut().enumerate() {
            let ai = _mm512_set1_ps(*a.wrapping_offset(i as isize * a_rs + u as isize));
            for v in 0..NV {
                acc_i[v] = _mm512_fmadd_ps(ai, bv[v], acc_i[v]);
            }
        }
    };
    let (mut a, mut b) = (t.a, t.b);
    let unroll = if PA || PB { 4 } else { 1 };
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
    for (i, row) in acc.into_iter().enumerate() {
        let c = t.c.wrapping_offset(i as isize * t.c_rs);
        for (v, mut x) in row.into_iter().enumerate() {
            let cv = c.wrapping_add(16 * v);
            if t.accumulate {
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(masks[v], cv));
            }
            _mm512_mask_storeu_ps(cv, masks[v], x);
        }
    }
}

/// Runs [`tile`] for `mr` rows and as many vectors as `t.nr` columns need, both chosen at run time.
///
/// # Safety
/// As for [`tile`]; `1 <= mr <= mr_max(ceil(t.nr / 16))`, `1 <= t.nr <= 64`.
unsafe fn tile_dyn<const PA: bool, const PB: bool>(mr: usize, t: Tile) {
    macro_rules! rows {
        ($nv:literal: $($r:literal)*) => {
            match mr {
                $($r => tile::<$r, $nv, PA, PB>(t),)*
                _ => unreachable!("ferrite bug: sgemm tile of {mr} rows, {} columns", t.nr),
            }
        };
    }
    match t.nr.div_ceil(16) {
        1 => rows!(1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
        2 => rows!(2: 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
        3 => rows!(3: 1 2 3 4 5 6 7 8),
        _ => rows!(4: 1 2 3 4 5 6),
    }
}

/// Packs the `mc×kc` block of A at `a` (strides `rs`, `cs`, `kc <= KC`) row by row: row `i` at
/// `out[i·A_RS ..]`, k contiguous. Only A without unit column stride comes here (the blocked path
/// reads row-major A in place), so the column-major case is the one made fast.
///
/// # Safety
/// AVX-512F must be available; every `(i < mc, p < kc)` element must be readable through the strides;
/// `out` must hold `a_len(mc)` f32.
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32) {
    if rs == 1 {
        // A stored column-major: transpose 16×16 blocks (rows i0.., depths p0..) through registers.
        for i0 in (0..mc).step_by(16) {
            let rows = lanes(mc - i0);
            for p0 in (0..kc).step_by(16) {
                let depth = 16.min(kc - p0);
                let cols: [__m512; 16] = std::array::from_fn(|p| {
                    if p < depth {
                        _mm512_maskz_loadu_ps(rows, a.offset((p0 + p) as isize * cs).add(i0))
                    } else {
                        _mm512_setzero_ps()
                    }
                });
                for (i, row) in transpose16(cols).into_iter().enumerate().take(mc - i0) {
                    _mm512_mask_storeu_ps(out.add((i0 + i) * A_RS + p0), lanes(depth), row);
                }
            }
        }
    } else {
        pack_a_strided(mc, kc, a, rs, cs, out);
    }
}

/// Packs the `kc×nc` block of B at `b` (strides `rs`, `cs`) into `ceil(nc/w)` panels of `kc×w`
/// (`out[panel·w·kc + p·w + j]`), zero past column `nc`; `w` is a multiple of 16.
///
/// # Safety
/// AVX-512F must be available; every `(p < kc, j < nc)` element must be readable through the strides;
/// `out` must hold `b_len(kc, nc, w)` f32.
#[target_feature(enable = "avx512f,avx512vl,fma")]
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, w: usize, out: *mut f32) {
    for (panel, j0) in (0..nc).step_by(w).enumerate() {
        let dst = out.add(panel * w * kc);
        let src = b.offset(j0 as isize * cs);
        let nr = w.min(nc - j0);
        if cs == 1 {
            for p in 0..kc {
                let row = src.offset(p as isize * rs);
                for v in (0..w).step_by(16) {
                    let m = lanes(nr.saturating_sub(v));
                    let x = _mm512_maskz_loadu_ps(m, row.wrapping_add(v));
                    _mm512_storeu_ps(dst.add(p * w + v), x);
                }
            }
        } else if rs == 1 {
            // B stored column-major (`x·Wᵀ`): transpose 16×16 blocks (columns v.., depths p0..).
            for v in (0..w).step_by(16) {
                let width = nr.saturating_sub(v).min(16);
                for p0 in (0..kc).step_by(16) {
                    let depth = lanes(kc - p0);
                    let rows: [__m512; 16] = std::array::from_fn(|j| {
                        if j < width {
                            let col = src.offset((v + j) as isize * cs);
                            _mm512_maskz_loadu_ps(depth, col.add(p0))
                        } else {
                            _mm512_setzero_ps()
                        }
                    });
                    for (p, row) in transpose16(rows).into_iter().enumerate().take(kc - p0) {
                        _mm512_storeu_ps(dst.add((p0 + p) * w + v), row);
                    }
                }
            }
        } else {
            pack_b_panel_strided(kc, w, nr, src, rs, cs, dst);
        }
    }
}
