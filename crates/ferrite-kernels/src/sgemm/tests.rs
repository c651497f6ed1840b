//! Tests of the sgemm kernels against a naive f64 product: edge sizes around the tiles (14×32 and
//! 6×64 with AVX-512, 12×8 and 6×16 with AVX2) and the cache blocks (KC, NC, MC), transposed and
//! offset operands, padded output rows, accumulation, one and two threads. They call the sgemm
//! directly, once per kernel the CPU can run, so shapes that `matmul::matmul` would hand to the
//! `gemm` crate are covered too. Skipped (passing) on CPUs with neither AVX-512 nor AVX2.

use super::{available, matmul_on, Isa};
use crate::matmul::MatRef;
use crate::threads;

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// How an operand is laid out in its buffer.
#[derive(Clone, Copy, Debug)]
struct Layout {
    transposed: bool,
    offset: usize,
}

/// Stores a `rows×cols` matrix (given row-major in `v`) as `layout` asks; returns buffer and view.
fn store(v: &[f32], rows: usize, cols: usize, l: Layout) -> (Vec<f32>, isize, isize) {
    let mut buf = vec![f32::NAN; l.offset + rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            let at = if l.transposed { j * rows + i } else { i * cols + j };
            buf[l.offset + at] = v[i * cols + j];
        }
    }
    let (rs, cs) = if l.transposed { (1, rows) } else { (cols, 1) };
    (buf, rs as isize, cs as isize)
}

#[allow(clippy::too_many_arguments)]
fn check(m: usize, n: usize, k: usize, la: Layout, lb: Layout, pad: usize, acc: bool, thr: usize) {
    let (a, b) = (values(m * k, 1 + m as u64), values(k * n, 7 + n as u64));
    let (abuf, ars, acs) = store(&a, m, k, la);
    let (bbuf, brs, bcs) = store(&b, k, n, lb);
    let dst_rs = n + pad;
    let init = values(m * dst_rs, 3);
    let fresh = || if acc { init.clone() } else { vec![f32::NAN; m * dst_rs] };
    let lhs = MatRef {
        data: &abuf,
        offset: la.offset,
        rs: ars,
        cs: acs,
    };
    let rhs = MatRef {
        data: &bbuf,
        offset: lb.offset,
        rs: brs,
        cs: bcs,
    };
    threads::set_num_threads(thr);
    if k == 0 {
        // sgemm::matmul's callers handle k == 0 (and route by shape); test that path as a user sees it.
        let mut c = fresh();
        crate::matmul::matmul(m, n, k, &mut c, dst_rs, lhs, rhs, acc, true);
        compare(
            &c,
            &a,
            &b,
            &init,
            (m, n, k),
            dst_rs,
            acc,
            &format!("{la:?} {lb:?} threads={thr}"),
        );
        return;
    }
    for isa in Isa::all() {
        let mut c = fresh();
        // SAFETY: the test's buffers hold the shapes; `Isa::all` lists what this CPU runs.
        unsafe { matmul_on(isa, m, n, k, c.as_mut_ptr(), dst_rs, lhs, rhs, acc, true) };
        compare(
            &c,
            &a,
            &b,
            &init,
            (m, n, k),
            dst_rs,
            acc,
            &format!("{isa:?} {la:?} {lb:?} threads={thr}"),
        );
    }
}

/// Checks C against the f64 product (plus `init` when `acc`) and that nothing past column n changed.
#[allow(clippy::too_many_arguments)]
fn compare(
    c: &[f32],
    a: &[f32],
    b: &[f32],
    init: &[f32],
    (m, n, k): (usize, usize, usize),
    dst_rs: usize,
    acc: bool,
    what: &str,
) {
    let tol = 1e-6 * k as f64 + 1e-6;
    for i in 0..m {
        for j in 0..n {
            let mut want: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
            if acc {
                want += init[i * dst_rs + j] as f64;
            }
            let got = c[i * dst_rs + j] as f64;
            assert!(
                (got - want).abs() <= tol,
                "{m}x{n}x{k} {what} acc={acc}: c[{i},{j}] = {got}, want {want}"
            );
        }
        for j in n..dst_rs.min(c.len() - i * dst_rs) {
            let (got, was) = (c[i * dst_rs + j], if acc { init[i * dst_rs + j] } else { f32::NAN });
            assert!(got.to_bits() == was.to_bits(), "wrote past column n at ({i},{j})");
        }
    }
}

const PLAIN: Layout = Layout {
    transposed: false,
    offset: 0,
};

#[test]
fn edge_sizes_all_layouts() {
    if !available() {
        return;
    }
    let sizes: &[usize] = &[1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 100, 130, 257];
    let combos = sizes
        .iter()
        .flat_map(|&m| sizes.iter().flat_map(move |&n| sizes.iter().map(move |&k| (m, n, k))));
    // A third of the 2197 combinations, cycling the layouts, padding, accumulation and threads.
    for (v, (m, n, k)) in combos.skip(2).step_by(3).enumerate() {
        let la = Layout {
            transposed: v % 2 == 1,
            offset: v % 5,
        };
        let lb = Layout {
            transposed: v % 4 >= 2,
            offset: v % 3,
        };
        check(m, n, k, la, lb, v % 3 * 5, v % 7 == 3, 1 + v % 2);
    }
}

#[test]
fn every_tile_height_and_width() {
    if !available() {
        return;
    }
    for m in 1..=30 {
        for n in [1, 5, 16, 17, 31, 32, 33, 63, 65] {
            check(m, n, 9, PLAIN, PLAIN, 0, false, 1);
            check(
                m,
                n,
                9,
                PLAIN,
                Layout {
                    transposed: true,
                    offset: 1,
                },
                2,
                true,
                1,
            );
        }
    }
}

#[test]
fn blocked_path_crosses_every_cache_block() {
    if !available() {
        return;
    }
    let t = Layout {
        transposed: true,
        offset: 3,
    };
    // k > KC (512) gives several pc blocks, n > NC (512) several jc blocks, and a transposed A
    // with m > MC (2048) several ic blocks. With two threads, from 256³ multiply-adds on (the
    // pool): few rows split rows of tiles between threads (9×2000×1000), short products split
    // columns (10×1300×1300); below that (the team): blocks of columns (20×1300×40) or, for tall
    // products and those with fewer than two column strips, of rows (2100×33×70, 300×5×600).
    for thr in [1, 2] {
        check(300, 130, 1100, PLAIN, PLAIN, 0, false, thr);
        check(351, 97, 600, t, t, 4, true, thr);
        check(20, 1300, 40, PLAIN, t, 1, false, thr);
        check(2100, 33, 70, t, PLAIN, 0, true, thr);
        check(9, 2000, 1000, PLAIN, t, 0, true, thr);
        check(1, 257, 1000, PLAIN, PLAIN, 0, false, thr);
        check(10, 1300, 1300, PLAIN, PLAIN, 3, true, thr);
        check(300, 5, 600, PLAIN, PLAIN, 0, false, thr);
    }
}

#[test]
fn k_of_zero_and_accumulate_into_wide_rows() {
    if !available() {
        return;
    }
    check(5, 40, 0, PLAIN, PLAIN, 3, true, 1);
    check(64, 64, 64, PLAIN, PLAIN, 64, true, 2);
}

#[test]
fn dot_product_path_for_x_times_w_transposed() {
    if !available() {
        return;
    }
    // `x·Wᵀ` with at most NT_MAX_ROWS rows: every tile remainder (rows, W rows mod 4), full and
    // masked K chunks, column splits between two threads, accumulation and padded rows of C.
    let w = Layout {
        transposed: true,
        offset: 2,
    };
    let mut v = 0;
    for m in [1, 2, 3, 4, 5, 7, 8, 13, 16] {
        for n in [2, 3, 4, 5, 17, 64, 100, 700] {
            for k in [1, 15, 16, 17, 48, 100, 385] {
                v += 1;
                check(m, n, k, PLAIN, w, v % 3, v % 2 == 0, 1 + v % 2);
            }
        }
    }
}
