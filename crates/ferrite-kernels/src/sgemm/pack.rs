//! Buffers for the blocked sgemm's packed operands: reusable per thread (no allocation per call
//! once warm), and the sizes of the layouts the microkernels stream.
//!
//! Layer: kernels (sgemm internals). The packers themselves belong to each ISA's kernel
//! (`Kernel::pack_a`, `Kernel::pack_b`): they read any row/column strides, so a transposed operand
//! costs one strided read there instead of a copy beforehand. Layouts: A row by row at the fixed
//! stride `A_RS`, B as zero-padded `kc×NR_PACKED` panels.

use super::kernel::Kernel;
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
    /// into `K::NR_PACKED`-wide panels on first use.
    ///
    /// # Safety
    /// As for `K::pack_b` for this panel; `p < 64`; the buffer was sized for `(p + 1)·NR_PACKED·kc` f32.
    pub unsafe fn get<K: Kernel>(
        &mut self,
        p: usize,
        kc: usize,
        w: usize,
        b: *const f32,
        rs: isize,
        cs: isize,
    ) -> *const f32 {
        let out = self.buf.as_mut_ptr().cast::<f32>().add(p * K::NR_PACKED * kc);
        if self.packed & (1 << p) == 0 {
            K::pack_b(kc, w, b, rs, cs, out);
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

/// Row stride of packed A, in f32: the deepest block any kernel uses (512) plus one cache line, so
/// that the rows of a tile fall in different L1 sets.
pub const A_RS: usize = 512 + 16;

/// Floats needed to pack an `mc×kc` block of A.
pub fn a_len(mc: usize) -> usize {
    mc * A_RS
}

/// Floats needed to pack a `kc×nc` block of B in panels `nr` wide (columns rounded up to whole panels).
pub fn b_len(kc: usize, nc: usize, nr: usize) -> usize {
    nc.div_ceil(nr) * nr * kc
}

/// Packs the `mc×kc` block of A at `a` element by element (row `i` at `out[i·A_RS ..]`): the
/// fallback of every kernel's `pack_a` for strides it does not vectorize.
///
/// # Safety
/// Every `(i < mc, p < kc)` element is readable through the strides; `out` holds `a_len(mc)` f32.
pub unsafe fn pack_a_strided(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32) {
    for i in 0..mc {
        for p in 0..kc {
            *out.add(i * A_RS + p) = *a.offset(i as isize * rs + p as isize * cs);
        }
    }
}

/// Packs one `kc×w` panel of B at `src` element by element (`dst[p·w + j]`, zero from column `nr`
/// on): the fallback of every kernel's `pack_b` for strides it does not vectorize.
///
/// # Safety
/// Every `(p < kc, j < nr)` element is readable through the strides; `dst` holds `kc·w` f32.
pub unsafe fn pack_b_panel_strided(
    kc: usize,
    w: usize,
    nr: usize,
    src: *const f32,
    rs: isize,
    cs: isize,
    dst: *mut f32,
) {
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
