//! The unpacked sgemm path for products that fit in cache: no blocking, no packing, no allocation.
//!
//! Layer: kernels (sgemm internals). A 64×64×64 product takes about 3 µs; copying its operands
//! would cost a noticeable part of that, so the microkernel reads A and B where they are (both
//! row-major: callers send anything else to `sgemm::blocked`, which packs). Also used for short,
//! wide products (a few rows of A against a large B), where packing B would cost as much as the
//! arithmetic.

use super::avx512::{mr_max, tile_dyn, Tile};
use super::{Dst, Src};

/// Columns per strip: two zmm vectors, so tiles can be 14 rows tall (measured faster here than
/// 6×64 tiles for 32–64-row products).
const NR: usize = 32;

/// `C (+)= A·B` for an `m×n` block, all dimensions ≥ 1, A and B with unit column stride.
///
/// Tiles C into 32-column strips (a last strip of 16 columns or fewer joins the one before, making
/// a 48-column strip of 8-row tiles rather than a 16-column one that is load-bound) and, within
/// each strip, row tiles of near-equal height, so 32 rows run as 11+11+10 rather than 14+14+4. The
/// B strip stays in L1 across the rows.
///
/// # Safety
/// AVX-512F/VL and FMA must be available; `a.cs == b.cs == 1`; `a` must reach `m×k`, `b` `k×n` and
/// `c` `m×n` elements, and nothing else may touch that part of C.
pub unsafe fn gemm(m: usize, n: usize, k: usize, a: Src, b: Src, c: Dst, accumulate: bool) {
    debug_assert!(a.cs == 1 && b.cs == 1);
    let mut j0 = 0;
    while j0 < n {
        let left = n - j0;
        let nr = if left <= NR + 16 { left } else { NR };
        let tiles = m.div_ceil(mr_max(nr.div_ceil(16)));
        let (base, extra) = (m / tiles, m % tiles);
        let mut i0 = 0;
        for t in 0..tiles {
            let mr = base + usize::from(t < extra);
            let tile = Tile {
                kc: k,
                a: a.at(i0, 0),
                a_rs: a.rs,
                b: b.at(0, j0),
                b_rs: b.rs,
                c: c.at(i0, j0),
                c_rs: c.rs,
                nr,
                accumulate,
            };
            tile_dyn::<false, false>(mr, tile);
            i0 += mr;
        }
        j0 += nr;
    }
}
