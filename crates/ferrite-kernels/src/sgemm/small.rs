//! The unpacked sgemm path for products that fit in cache: no blocking, no packing, no allocation.
//!
//! Layer: kernels (sgemm internals). A 64×64×64 product takes about 3 µs; copying its operands
//! would cost a noticeable part of that, so the microkernel reads A and B where they are (both
//! row-major: callers send anything else to `sgemm::blocked`, which packs). Also used for short,
//! wide products (a few rows of A against a large B), where packing B would cost as much as the
//! arithmetic.

use super::kernel::{Kernel, Tile};
use super::{Dst, Src};

/// `C (+)= A·B` for an `m×n` block, all dimensions ≥ 1, A and B with unit column stride.
///
/// Tiles C into strips two vectors wide (32 columns with AVX-512, where tiles can then be 14 rows
/// tall: measured faster than 6×64 tiles for 32–64-row products; 16 with AVX2). A last strip of one
/// vector or less joins the one before, making a three-vector strip rather than a one-vector one
/// that is load-bound. Within each strip, row tiles of near-equal height, so 32 rows run as
/// 11+11+10 rather than 14+14+4. The B strip stays in L1 across the rows.
///
/// # Safety
/// The CPU must have `K`'s features; `a.cs == b.cs == 1`; `a` must reach `m×k`, `b` `k×n` and `c`
/// `m×n` elements, and nothing else may touch that part of C.
pub unsafe fn gemm<K: Kernel>(m: usize, n: usize, k: usize, a: Src, b: Src, c: Dst, accumulate: bool) {
    debug_assert!(a.cs == 1 && b.cs == 1);
    let strip = 2 * K::LANES;
    let mut j0 = 0;
    while j0 < n {
        let left = n - j0;
        let nr = if left <= strip + K::LANES { left } else { strip };
        let tiles = m.div_ceil(K::mr_max(nr.div_ceil(K::LANES)));
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
            K::tile_dyn::<false, false>(mr, tile);
            i0 += mr;
        }
        j0 += nr;
    }
}
