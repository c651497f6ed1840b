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
//! Operands come in two layouts each:
//! - A packed (`PA`): rows at the fixed stride `pack::A_RS`; else read in place, rows at `a_rs`, k
//!   contiguous (callers pack any other A).
//! - B packed (`PB`): `kc×64` panels, zero-padded (`b[p·64 + j]`); else B's own rows at `b_rs`, unit
//!   column stride, the columns past `nr` masked off.

use super::pack::A_RS;
use std::arch::x86_64::*;

/// Width of a packed B panel, and the widest tile: four zmm vectors.
pub const NR_PACKED: usize = 64;

/// Rows of the tallest tile `nv` vectors wide: `MR·NV` accumulators plus `NV` B vectors and a
/// broadcast must fit the 32 zmm registers.
pub const fn mr_max(nv: usize) -> usize {
    match nv {
        1 | 2 => 14,
        3 => 8,
        _ => 6,
    }
}

/// Where a tile's operands live. Strides are in elements; those of packed operands are ignored.
#[derive(Clone, Copy)]
pub struct Tile {
    pub kc: usize,
    pub a: *const f32,
    pub a_rs: isize,
    pub b: *const f32,
    pub b_rs: isize,
    pub c: *mut f32,
    pub c_rs: isize,
    /// Columns of C to write, `1..=16·NV`.
    pub nr: usize,
    /// `C += A·B` when true, else `C = A·B`.
    pub accumulate: bool,
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
pub unsafe fn tile<const MR: usize, const NV: usize, const PA: bool, const PB: bool>(t: Tile) {
    let masks: [__mmask16; NV] = std::array::from_fn(|v| lanes(t.nr.saturating_sub(16 * v)));
    let b_rs = if PB { NR_PACKED as isize } else { t.b_rs };
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
pub unsafe fn tile_dyn<const PA: bool, const PB: bool>(mr: usize, t: Tile) {
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
