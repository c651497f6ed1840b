//! What the loop nests (`blocked`, `small`) need from an instruction set: a register-tile
//! microkernel and the packers that lay out its operands. One implementation per ISA (`avx512`,
//! `avx2`); the loop nests are written once, generic over [`Kernel`].
//!
//! Layer: kernels (sgemm internals). Raw pointers only; `matmul::matmul` has checked every address.

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
    /// Columns of C to write, `1..=` the widest tile.
    pub nr: usize,
    /// `C += A·B` when true, else `C = A·B`.
    pub accumulate: bool,
}

/// One instruction set's microkernel and packers.
///
/// Operands come in two layouts each:
/// - A packed (`PA`): rows at the fixed stride `pack::A_RS`; else read in place, rows at `a_rs`, k
///   contiguous (callers pack any other A).
/// - B packed (`PB`): zero-padded `kc×NR_PACKED` panels (`b[p·NR_PACKED + j]`); else B's own rows
///   at `b_rs`, unit column stride, the columns past `nr` never read.
pub trait Kernel: Copy + Send + Sync + 'static {
    /// f32 lanes in one vector register.
    const LANES: usize;
    /// Width of a packed B panel, and of the widest tile.
    const NR_PACKED: usize;
    /// Depth of a packed block (A_RS leaves room for the deepest, 512).
    const KC: usize;
    /// Columns of B packed at once by each thread: `KC·NC` f32 are meant to stay in L2.
    const NC: usize;

    /// Rows of the tallest tile `nv` vectors wide (accumulators, B vectors and a broadcast must
    /// fit the register file).
    fn mr_max(nv: usize) -> usize;

    /// One `mr×t.nr` tile of C, with the tile shape chosen at run time.
    ///
    /// # Safety
    /// The CPU has the kernel's features; `1 <= t.nr <= NR_PACKED`, `1 <= mr <= mr_max(ceil(t.nr /
    /// LANES))`. A: `mr` rows of `kc` readable elements at stride `A_RS` (`PA`) or `a_rs`. B: `kc`
    /// rows of a packed panel (`PB`) or of `nr` readable elements at stride `b_rs`. C: rows
    /// `0..mr`, columns `0..nr` writable through `c_rs`.
    unsafe fn tile_dyn<const PA: bool, const PB: bool>(mr: usize, t: Tile);

    /// Packs the `mc×kc` block of A at `a` (strides `rs`, `cs`, `kc <= 512`) row by row: row `i` at
    /// `out[i·A_RS ..]`, k contiguous.
    ///
    /// # Safety
    /// The CPU has the kernel's features; every `(i < mc, p < kc)` element is readable through the
    /// strides; `out` holds `a_len(mc)` f32.
    unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rs: isize, cs: isize, out: *mut f32);

    /// Packs the `kc×nc` block of B at `b` (strides `rs`, `cs`) into `ceil(nc/NR_PACKED)` panels of
    /// `kc×NR_PACKED` (`out[panel·NR_PACKED·kc + p·NR_PACKED + j]`), zero past column `nc`.
    ///
    /// # Safety
    /// The CPU has the kernel's features; every `(p < kc, j < nc)` element is readable through the
    /// strides; `out` holds `b_len(kc, nc, NR_PACKED)` f32.
    unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rs: isize, cs: isize, out: *mut f32);
}
