//! ferrite's own f32 GEMM for x86-64 CPUs with AVX-512 or AVX2: `C (+)= A·B` on strided operands.
//!
//! Layer: kernels. `matmul::matmul` sends f32 products here when the CPU has AVX-512F/VL + FMA or
//! AVX2 + FMA (checked at run time, cached by `is_x86_feature_detected!`) and the shape is not
//! matrix-vector-like; everything else stays on the `gemm` crate. Written to close the gap to MKL
//! (PyTorch): first on AVX-512 Xeons, then on AVX2-only AMD EPYCs, where the `gemm` crate reached
//! 0.68–0.8× of MKL's GFLOP/s.
//!
//! Pieces: `kernel` (what an ISA provides), `avx512` and `avx2` (register-tile microkernels, up to
//! 14×32 / 6×64 and 12×8 / 6×16, with their packers), `nt` and `nt_avx2` (dot products for `x·Wᵀ`
//! with few rows of x), `small` (unpacked path for products that fit in cache: no packing, no
//! allocation), `blocked` (the cache-blocked loop nest for the rest, with the threading from 256³
//! multiply-adds; smaller products are split in blocks of C by `run_split`), `pack` and
//! `transpose` (per-thread buffers, register transposes). `small` and `blocked` are generic over
//! the kernel. Every address is checked once, by `matmul::matmul`'s `check_reach`; below that, raw
//! pointers.

mod avx2;
mod avx512;
mod blocked;
mod kernel;
mod nt;
mod nt_avx2;
mod pack;
mod small;
#[cfg(test)]
mod tests;
mod transpose;

use crate::matmul::MatRef;
use crate::threads;
use avx2::Avx2;
use avx512::Avx512;
use kernel::Kernel;
use rayon::prelude::*;

/// Multiply-adds from which a product is split across the rayon pool; smaller ones from
/// [`TEAM_MIN_FLOPS`] go to the team of spinning helpers (`threads::split`). Handing work to the
/// pool costs 10–20 µs on the 2-core VMs this was tuned on (its workers sleep between regions);
/// the team's hand-off is well under a microsecond while its helpers spin. On the AVX2 EPYC at 2
/// threads (GFLOP/s, team vs pool, two runs): 128³ 127–148 vs 81–97, 192³ 130–148 vs 123–128, 256³
/// to 512³ level, 1024×256×256 144–147 vs 167–172 (the team's column split reads all of A once per
/// part; the pool's blocked loop nest reads it once per B block).
const PAR_MIN_FLOPS: usize = 256 * 256 * 256;
/// Multiply-adds from which a product is split at all: at 2 threads 32³ was no faster split
/// (1.1 µs either way), 48³ 1.07×, 32×64×64 1.3×, 64³ 1.65×.
const TEAM_MIN_FLOPS: usize = 48 * 48 * 48;
/// Multiply-adds up to which the unpacked path is used: its operands are then L1/L2 resident.
const SMALL_MAX_FLOPS: usize = 64 * 64 * 64;
/// Products with at most this many rows take the unpacked path at any size (one row of tiles).
const SHORT_ROWS: usize = 14;
/// Column granularity when the unpacked path is split between threads.
const SHORT_COLS: usize = 64;
/// Rows of A up to which `A·Wᵀ` (B stored transposed) takes the dot-product path in `nt`, which
/// reads W in place instead of packing it (see `nt.rs`). Measured on one core against the blocked
/// path and the `gemm` crate for K×N in {384×384, 384×1536, 1536×384, 256×1024, 256×6000}: 2–6×
/// faster at 4–8 rows, 1.0–1.8× at 16, slower from 32 rows on (A no longer stays in L1).
const NT_MAX_ROWS: usize = 16;

/// A read-only strided operand: element (i, j) at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
struct Src {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

/// The output: element (i, j) at `ptr + i·rs + j`.
#[derive(Clone, Copy)]
struct Dst {
    ptr: *mut f32,
    rs: isize,
}

// SAFETY: `Src` only reads, and `Dst` is handed to threads for disjoint blocks of C (see `matmul`).
unsafe impl Send for Src {}
// SAFETY: `Src` is only read, from any number of threads.
unsafe impl Sync for Src {}
// SAFETY: each thread gets a `Dst` for its own block of C; no two write the same element.
unsafe impl Send for Dst {}
// SAFETY: as for `Send`: concurrent users write disjoint blocks of C.
unsafe impl Sync for Dst {}

impl Src {
    fn at(self, i: usize, j: usize) -> *const f32 {
        self.ptr.wrapping_offset(i as isize * self.rs + j as isize * self.cs)
    }
}

impl Dst {
    fn at(self, i: usize, j: usize) -> *mut f32 {
        self.ptr.wrapping_offset(i as isize * self.rs + j as isize)
    }
}

/// The instruction sets this GEMM has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// The best kernel this CPU can run, if any (`is_x86_feature_detected!` caches its answers).
    fn detect() -> Option<Isa> {
        if !is_x86_feature_detected!("fma") {
            None
        } else if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
            Some(Isa::Avx512)
        } else if is_x86_feature_detected!("avx2") {
            Some(Isa::Avx2)
        } else {
            None
        }
    }

    /// Every kernel this CPU can run (the best first), so tests can check each.
    #[cfg(test)]
    fn all() -> Vec<Isa> {
        match Isa::detect() {
            Some(Isa::Avx512) => vec![Isa::Avx512, Isa::Avx2],
            Some(Isa::Avx2) => vec![Isa::Avx2],
            None => vec![],
        }
    }
}

/// True when this kernel should take an `m×k · k×n` f32 product: the CPU has AVX-512F/VL or AVX2,
/// and FMA, and the product is not matrix-vector-like. For
/// `n == 1`, or a few rows against a large B, the work is memory-bound and the `gemm` crate's
/// dedicated kernels measured up to 2× faster (e.g. 1×4096×4096, 4096×4096×1).
/// `lhs_cs`/`rhs_rs`: A's column stride and B's row stride; `x·Wᵀ` (1 and 1) with few rows takes
/// the dot-product path, which streams W like a matrix-vector kernel does and so keeps those shapes.
pub fn suits(m: usize, n: usize, k: usize, lhs_cs: isize, rhs_rs: isize) -> bool {
    let nt = lhs_cs == 1 && rhs_rs == 1 && m <= NT_MAX_ROWS && n > 1;
    let gemv_like = n == 1 || (m < 8 && k * n >= 1 << 16) || (m < 16 && k * n >= 1 << 20);
    (nt || !gemv_like) && available()
}

/// True when this CPU can run one of the kernels.
fn available() -> bool {
    Isa::detect().is_some()
}

/// `dst[m×n] = lhs · rhs` (or `+=` when `accumulate`), `dst` with row stride `dst_rs`. Without
/// `accumulate`, C is only written, never read, so it may be uninitialized memory.
///
/// # Safety
/// Callers (`matmul::matmul`) have checked that the CPU has the features (`suits`), that m, n, k ≥ 1,
/// and that every index the strides reach lies inside the slices (`dst` included: it points to at
/// least `(m-1)·dst_rs + n` elements that nothing else touches during the call).
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    accumulate: bool,
    allow_threads: bool,
) {
    if let Some(isa) = Isa::detect() {
        // SAFETY: the caller's guarantees, and `isa` was detected on this CPU.
        unsafe { matmul_on(isa, m, n, k, dst, dst_rs, lhs, rhs, accumulate, allow_threads) }
    }
}

/// [`matmul`] with the kernel chosen by the caller (tests run every kernel the CPU has).
///
/// # Safety
/// As for [`matmul`], and the CPU has `isa`'s features.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_on(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    accumulate: bool,
    allow_threads: bool,
) {
    let a = Src {
        ptr: lhs.data[lhs.offset..].as_ptr(),
        rs: lhs.rs,
        cs: lhs.cs,
    };
    let b = Src {
        ptr: rhs.data[rhs.offset..].as_ptr(),
        rs: rhs.rs,
        cs: rhs.cs,
    };
    let c = Dst {
        ptr: dst,
        rs: dst_rs as isize,
    };
    let flops = m * n * k;
    if allow_threads && flops >= PAR_MIN_FLOPS {
        threads::install(|t| {
            // SAFETY: as below; `run` hands threads disjoint blocks of C.
            unsafe { run_on(isa, m, n, k, a, b, c, accumulate, t) }
        });
    } else if allow_threads && flops >= TEAM_MIN_FLOPS && threads::num_threads() > 1 {
        // SAFETY: as below; the parts are disjoint blocks of C.
        unsafe { run_split(isa, m, n, k, a, b, c, accumulate) }
    } else {
        // SAFETY: the caller checked the CPU features and the reach of all three operands.
        unsafe { run_on(isa, m, n, k, a, b, c, accumulate, 1) }
    }
}

/// A product too small for the pool, split between the caller and the team (`threads::split`):
/// C in blocks of whole column strips of the microkernel (each block then takes the path `run`
/// picks for it), or in blocks of rows when C has fewer than two strips or is tall (m ≥ 4n: each
/// column block would read all of a large A again, each row block reads its own rows and shares
/// the small B). About four parts per thread, so a helper that wakes late still finds work, while
/// each part stays a few µs long.
///
/// # Safety
/// As for [`run`], with `isa`'s features.
#[allow(clippy::too_many_arguments)]
unsafe fn run_split(isa: Isa, m: usize, n: usize, k: usize, a: Src, b: Src, c: Dst, accumulate: bool) {
    let strip = match isa {
        Isa::Avx512 => 2 * Avx512::LANES,
        Isa::Avx2 => 2 * Avx2::LANES,
    };
    let most = 4 * threads::num_threads();
    let (rows, cols) = if m >= 48 && (n < 2 * strip || m >= 4 * n) {
        (m.div_ceil(most).next_multiple_of(24), n)
    } else if n >= 2 * strip {
        (m, n.div_ceil(most).next_multiple_of(strip))
    } else {
        (m, n)
    };
    let col_parts = n.div_ceil(cols);
    threads::split(m.div_ceil(rows) * col_parts, |part| {
        let (i0, j0) = ((part / col_parts) * rows, (part % col_parts) * cols);
        let a = Src { ptr: a.at(i0, 0), ..a };
        let b = Src { ptr: b.at(0, j0), ..b };
        let c = Dst { ptr: c.at(i0, j0), ..c };
        // SAFETY: the blocks are disjoint and inside the checked m×n; A and B are only read.
        unsafe { run_on(isa, rows.min(m - i0), cols.min(n - j0), k, a, b, c, accumulate, 1) }
    });
}

/// The dot-product path for `x·Wᵀ` of one ISA (`nt::gemm`, `nt_avx2::gemm`).
type NtGemm = unsafe fn(usize, usize, usize, Src, Src, Dst, bool);

/// [`run`] with `isa`'s kernels.
///
/// # Safety
/// As for [`run`], with `isa`'s features.
#[allow(clippy::too_many_arguments)]
unsafe fn run_on(isa: Isa, m: usize, n: usize, k: usize, a: Src, b: Src, c: Dst, accumulate: bool, threads: usize) {
    match isa {
        Isa::Avx512 => run::<Avx512>(m, n, k, a, b, c, accumulate, threads, nt::gemm),
        Isa::Avx2 => run::<Avx2>(m, n, k, a, b, c, accumulate, threads, nt_avx2::gemm),
    }
}

/// Chooses the path: unpacked for small products and for short, wide ones (at most one row of
/// tiles against a contiguous B, where packing B would cost as much as the arithmetic), both only
/// when A and B are row-major; cache-blocked otherwise. The unpacked path goes parallel by splitting
/// C's columns between threads.
///
/// # Safety
/// The CPU has `K`'s features; the operands reach `m×k`, `k×n`, `m×n` valid elements; nothing
/// else touches this block of C. `nt` is the dot-product path for the same ISA.
#[allow(clippy::too_many_arguments)]
unsafe fn run<K: Kernel>(
    m: usize,
    n: usize,
    k: usize,
    a: Src,
    b: Src,
    c: Dst,
    accumulate: bool,
    threads: usize,
    nt: NtGemm,
) {
    let row_major = a.cs == 1 && b.cs == 1;
    if a.cs == 1 && b.rs == 1 && b.cs != 1 && m <= NT_MAX_ROWS {
        let cols = n.div_ceil(threads).next_multiple_of(16);
        if threads <= 1 || n <= cols {
            nt(m, n, k, a, b, c, accumulate);
        } else {
            (0..n.div_ceil(cols)).into_par_iter().for_each(|part| {
                let j0 = part * cols;
                let b = Src { ptr: b.at(0, j0), ..b };
                let c = Dst { ptr: c.at(0, j0), ..c };
                // SAFETY: the column blocks are disjoint and inside the checked m×n.
                unsafe { nt(m, cols.min(n - j0), k, a, b, c, accumulate) }
            });
        }
    } else if !row_major || (m * n * k > SMALL_MAX_FLOPS && m > SHORT_ROWS) {
        blocked::gemm::<K>(m, n, k, a, b, c, accumulate, threads);
    } else if threads <= 1 || n <= SHORT_COLS {
        small::gemm::<K>(m, n, k, a, b, c, accumulate);
    } else {
        let cols = n.div_ceil(threads).next_multiple_of(SHORT_COLS);
        (0..n.div_ceil(cols)).into_par_iter().for_each(|part| {
            let j0 = part * cols;
            let b = Src { ptr: b.at(0, j0), ..b };
            let c = Dst { ptr: c.at(0, j0), ..c };
            // SAFETY: the column blocks are disjoint and inside the checked m×n.
            unsafe { small::gemm::<K>(m, cols.min(n - j0), k, a, b, c, accumulate) }
        });
    }
}
