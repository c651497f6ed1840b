//! The cache-blocked sgemm for products too large for L1, optionally spread over the thread pool.
//!
//! Layer: kernels (sgemm internals). The five-loop nest of Goto & van de Geijn ("Anatomy of
//! High-Performance Matrix Multiplication", 2008), outermost first:
//! `pc` over K by `KC` → `ic` over M by `MC` (A block; only packed when A is not row-major) →
//! `jc` over N by `NC` (pack a `KC×NC` block of B, 1 MB, kept in L2) → `ir` over 6-row A micro-panels
//! (6×KC, 12 KB, kept in L1) → `jr` over the 64-column B panels, streamed from L2 → the microkernel.
//! Row-major A is read in place: a 6-row tile at any row stride still maps to at most 6 lines per
//! L1 set, and skipping the copy measured faster (as the `gemm` crate also does).
//!
//! Threads: one rayon fork-join per B block (a fork-join costs ~10 µs on the 2-core VM this was
//! tuned on, as much as a 128³ product on one core), over items of one micro-panel row each. Each
//! thread packs the B panels it uses itself: packing again from the shared source measured cheaper
//! than fetching a panel another core packed. A, when it must be packed, is packed once per block
//! in a parallel phase of its own. `KC` and `NC` are the kernel's (`Kernel::KC`, `Kernel::NC`),
//! tuned to its CPUs' caches. Written once for every ISA: the microkernel and packers come from `K`.

use super::kernel::{Kernel, Tile};
use super::pack::{a_len, b_len, new_block_id, with_a_buf, with_panels, A_RS};
use super::{Dst, Src};
use rayon::prelude::*;

/// Rows of A packed at once when A must be packed (`MC×KC` f32, up to 4 MB, read from L3).
const MC: usize = 2048;

/// Rows of a tile as wide as a packed panel (6 on both ISAs: 6×64 zmm or 6×16 ymm).
fn mr<K: Kernel>() -> usize {
    K::mr_max(K::NR_PACKED / K::LANES)
}

/// The packed-A buffer, shared by the threads of one product.
#[derive(Clone, Copy)]
struct Buf(*mut f32);

// SAFETY: threads write disjoint parts of a buffer, and read it only after the fork-join that wrote
// it has returned.
unsafe impl Send for Buf {}
// SAFETY: as for `Send`: shared access is disjoint writes, then reads after the join.
unsafe impl Sync for Buf {}

/// Runs `f` for `0..n`, spread over the pool when `threads > 1` (rayon splits the range and balances
/// it by work stealing).
fn for_each(threads: usize, n: usize, f: impl Fn(usize) + Send + Sync) {
    if threads > 1 && n > 1 {
        (0..n).into_par_iter().for_each(f);
    } else {
        (0..n).for_each(f);
    }
}

/// `C (+)= A·B` for an `m×n` block, all dimensions ≥ 1, on up to `threads` threads of the current pool.
///
/// # Safety
/// The CPU must have `K`'s features; `a` must reach `m×k`, `b` `k×n` and `c` `m×n` elements, and
/// nothing else may touch that part of C.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm<K: Kernel>(m: usize, n: usize, k: usize, a: Src, b: Src, c: Dst, accumulate: bool, threads: usize) {
    let kc_max = balanced(k, K::KC, 1);
    let nc_max = balanced(n, K::NC, K::NR_PACKED);
    let direct_a = a.cs == 1;
    let mc_max = if direct_a { m } else { balanced(m, MC, mr::<K>()) };
    let a_floats = if direct_a { 0 } else { a_len(mc_max) };
    with_a_buf(a_floats, |ap| {
        let ap = Buf(ap);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let acc = accumulate || pc > 0;
            for ic in (0..m).step_by(mc_max) {
                let mc = mc_max.min(m - ic);
                if !direct_a {
                    let group = 4 * mr::<K>();
                    for_each(threads, mc.div_ceil(group), |g| {
                        let (r0, ap) = (g * group, ap);
                        let rows = group.min(mc - r0);
                        // SAFETY: rows r0.. of the block lie in A and, at A_RS each, in the
                        // buffer; the groups are disjoint.
                        unsafe { K::pack_a(rows, kc, a.at(ic + r0, pc), a.rs, a.cs, ap.0.add(r0 * A_RS)) }
                    });
                }
                let (a_blk, a_rs) = if direct_a {
                    (a.at(ic, pc), a.rs)
                } else {
                    (ap.0.cast_const(), A_RS as isize)
                };
                for jc in (0..n).step_by(nc_max) {
                    let nc = nc_max.min(n - jc);
                    let block = Block {
                        kc,
                        a: Buf(a_blk.cast_mut()),
                        a_rs,
                        packed_a: !direct_a,
                        b: Src { ptr: b.at(pc, jc), ..b },
                        id: new_block_id(),
                        c: c.at(ic, jc),
                        c_rs: c.rs,
                        nc,
                        accumulate: acc,
                    };
                    compute::<K>(mc, &block, threads);
                }
            }
        }
    })
}

/// One `mc×nc` block of C: A packed or in place, B packed by each thread into its own panels.
#[derive(Clone, Copy)]
struct Block {
    kc: usize,
    a: Buf,
    a_rs: isize,
    packed_a: bool,
    /// The block's B source (`kc×nc`) and the id its packed panels are kept under.
    b: Src,
    id: u64,
    c: *mut f32,
    c_rs: isize,
    nc: usize,
    accumulate: bool,
}

// SAFETY: `c` points into C, and the items of `compute` write disjoint tiles of it; A and B are
// only read.
unsafe impl Send for Block {}
// SAFETY: as for `Send`: shared items write disjoint tiles of C and only read A and B.
unsafe impl Sync for Block {}

/// The `ir`/`jr` loops in one fork-join: one item per micro-panel of `mr` rows (its whole row of tiles, so the A
/// micro-panel stays in L1), or, when there are too few rows to feed every thread, per part of a
/// row. Each thread packs the B panels it uses on first use.
///
/// # Safety
/// As for [`gemm`], with `blk.a` reaching `mc` rows.
unsafe fn compute<K: Kernel>(mc: usize, blk: &Block, threads: usize) {
    let mr_full = mr::<K>();
    let rows = mc.div_ceil(mr_full);
    let panels = blk.nc.div_ceil(K::NR_PACKED);
    let parts = if threads > 1 {
        (2 * threads).div_ceil(rows).min(panels)
    } else {
        1
    };
    let floats = b_len(blk.kc, blk.nc, K::NR_PACKED);
    for_each(threads, rows * parts, |item| {
        let (i0, part) = ((item / parts) * mr_full, item % parts);
        let mr = mr_full.min(mc - i0);
        with_panels(blk.id, floats, |packed| {
            for p in (part * panels / parts)..((part + 1) * panels / parts) {
                let j0 = p * K::NR_PACKED;
                let (b, w) = (blk.b, K::NR_PACKED.min(blk.nc - j0));
                // SAFETY: panel p lies in this block of B, the tile in this block of C, which only
                // this item writes; A covers the tile's rows and depth.
                unsafe {
                    let t = Tile {
                        kc: blk.kc,
                        a: blk.a.0.wrapping_offset(i0 as isize * blk.a_rs),
                        a_rs: blk.a_rs,
                        b: packed.get::<K>(p, blk.kc, w, b.at(0, j0), b.rs, b.cs),
                        b_rs: K::NR_PACKED as isize,
                        c: blk.c.wrapping_offset(i0 as isize * blk.c_rs).wrapping_add(j0),
                        c_rs: blk.c_rs,
                        nr: w,
                        accumulate: blk.accumulate,
                    };
                    if blk.packed_a {
                        K::tile_dyn::<true, true>(mr, t)
                    } else {
                        K::tile_dyn::<false, true>(mr, t)
                    }
                }
            }
        })
    });
}

/// The block size ≤ `max` (a multiple of `unit`) that splits `len` into equal blocks.
fn balanced(len: usize, max: usize, unit: usize) -> usize {
    let blocks = len.div_ceil(max);
    len.div_ceil(blocks).next_multiple_of(unit).min(max).max(1)
}
