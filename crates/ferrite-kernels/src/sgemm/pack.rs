//! Packing for the blocked sgemm: copies blocks of A and B into the layouts the microkernel streams,
//! and the reusable per-thread buffers they live in (no allocation per call once warm).
//!
//! Layer: kernels (sgemm internals). Packing reads any row/column strides, so a transposed operand
//! costs one strided read here instead of a copy beforehand (a 16×16 register transpose when the
//! operand is stored the other way round). Layouts are what `avx512::tile` reads with `PA`/`PB`:
//! A row by row at the fixed stride `A_RS`, B as zero-padded `kc×64` panels.

use super::avx512::lanes;
use super::blocked::KC;
use super::transpose::transpose16;
use std::arch::x86_64::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// A cache line of f32, so packed panels start 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct Line([f32; 16]);

thread_local! {
    static A_BUF: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
    static B_PANELS: Cell<Panels> = const { Cell::new(Panels::EMPTY) };
}

/// Runs `f` with this thread's reusable buffer for packed A, of at least `floats` f32.
///
/// The buffer is taken out of the thread-local for the duration, so a nested call on the same thread
/// (rayon may run another job while this one waits) gets a fresh buffer instead of aliasing this one.
pub fn with_a_buf<R>(floats: usize, f: impl FnOnce(*mut f32) -> R) -> R {
    let mut buf = A_BUF.take();
    let lines = floats.div_ceil(16);
    if buf.len() < lines {
        buf = vec![Line([0.0; 16]); lines];
    }
    let r = f(buf.as_mut_ptr().cast::<f32>());
    A_BUF.set(buf);
    r
}

/// One thread's packed panels of one B block.
///
/// Every thread packs the panels it uses itself: on two cores, packing a panel again from the
/// shared source measured cheaper than fetching a panel another core packed (and waiting for it).
pub struct Panels {
    /// The block these panels belong to (see `new_block_id`).
    block: u64,
    /// Bit `p` is set once panel `p` is packed.
    packed: u64,
    buf: Vec<Line>,
}

impl Panels {
    const EMPTY: Panels = Panels {
        block: 0,
        packed: 0,
        buf: Vec::new(),
    };

    /// Panel `p` (`w` columns wide, `kc` deep) of the block whose source starts at `b`, packed
    /// into `nr`-wide panels on first use.
    ///
    /// # Safety
    /// As for [`pack_b`] for this panel; `p < 64`; the buffer was sized for `(p + 1)·nr·kc` f32.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn get(
        &mut self,
        p: usize,
        kc: usize,
        w: usize,
        b: *const f32,
        rs: isize,
        cs: isize,
        nr: usize,
    ) -> *const f32 {
        let out = self.buf.as_mut_ptr().cast::<f32>().add(p * nr * kc);
        if self.packed & (1 << p) == 0 {
            pack_b(kc, w, b, rs, cs, nr, out);
            self.packed |= 1 << p;
        }
        out
    }
}

impl Default for Panels {
    fn default() -> Self {
        Panels::EMPTY
    }
}

/// A fresh id for a B block, so no thread mistakes panels packed for an earlier block for its own.
pub fn new_block_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `f` with this thread's panels of block `block`, whose buffer holds at least `floats` f32.
pub fn with_panels<R>(block: u64, floats: usize, f: impl FnOnce(&mut Panels) -> R) -> R {
    let mut panels = B_PANELS.take();
    if panels.block != block {
        panels.block = block;
        panels.packed = 0;
    }
    let lines = floats.div_ceil(16);
    if panels.buf.len() < lines {
        panels.buf = vec![Line([0.0; 16]); lines];
        panels.packed = 0;
    }
    let r = f(&mut panels);
    B_PANELS.set(panels);
    r
}

/// Row stride of packed A, in f32: the deepest block plus one cache line, so that the rows of a tile
/// fall in different L1 sets.
pub const A_RS: usize = KC + 16;

/// Floats needed to pack an `mc×kc` block of A.
pub fn a_len(mc: usize) -> usize {
    mc * A_RS
}

/// Floats needed to pack a `kc×nc` block of B in panels `nr` wide (columns rounded up to whole panels).
pub fn b_len(kc: usize, nc: usize, nr: usize) -> usize {
    nc.div_ceil(nr) * nr * kc
}

/// Packs the `mc×kc` block of A at `a` (strides `rs`, `cs`, `kc <= KC`) row by row: row `i` at
/// `out[i·A_RS ..]`, k contiguous. Only A without unit column stride comes here (the blocked path
/// reads row-major A in place), so the column-major case is the one made fast.
///
/// # Safety
/// AVX-512F must be available; every `(i < mc, p < kc)` element must be readable through the strides;
/// `out` must hold `a_len(mc)` f32.
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32) {
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
        for i in 0..mc {
            for p in 0..kc {
                *out.add(i * A_RS + p) = *a.offset(i as isize * rs + p as isize * cs);
            }
        }
    }
}

/// Packs the `kc×nc` block of B at `b` (strides `rs`, `cs`) into `ceil(nc/w)` panels of `kc×w`
/// (`out[panel·w·kc + p·w + j]`), zero past column `nc`; `w` is a multiple of 16.
///
/// # Safety
/// AVX-512F must be available; every `(p < kc, j < nc)` element must be readable through the strides;
/// `out` must hold `b_len(kc, nc, w)` f32.
#[target_feature(enable = "avx512f,avx512vl,fma")]
pub unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, w: usize, out: *mut f32) {
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
            for p in 0..kc {
                for j in 0..w {
                    *dst.add(p * w + j) = if j < nr {
                        *src.offset(p as isize * rs + j as isize * cs)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}
