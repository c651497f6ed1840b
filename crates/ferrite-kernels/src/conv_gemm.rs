//! Fused 2-D convolution, forward and backward, one sample at a time: each sample's columns are
//! unfolded into a small per-thread buffer and multiplied right away, so the full
//! `[N, C·kh·kw, OH·OW]` column tensor is never built (for a 3×3, 64-channel layer on a batch of
//! 32 at 32×32 that tensor is 75 MB, larger than the allocator reuses, so every call paid for fresh
//! pages) and backward recomputes columns instead of keeping them alive between passes.
//!
//! Layer: kernels. Samples are spread over threads when there are enough of them; otherwise the
//! GEMMs themselves use the threads. Geometry and operand sizes are validated by the caller.

use crate::conv::{fold_sample, unfold_sample, Conv2dGeometry};
use crate::matmul::{matmul, MatRef};
use crate::threads;
use crate::Float;
use rayon::prelude::*;

/// The shapes of one grouped convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub geometry: Conv2dGeometry,
    pub out_channels: usize,
    pub groups: usize,
}

impl ConvShape {
    fn cols(&self) -> (usize, usize) {
        let (oh, ow) = self.geometry.out_hw();
        (self.geometry.col_rows(), oh * ow)
    }
    fn in_sample(&self) -> usize {
        self.geometry.channels * self.geometry.h.input * self.geometry.w.input
    }
    /// (output rows per group, column rows per group)
    fn per_group(&self) -> (usize, usize) {
        (self.out_channels / self.groups, self.geometry.col_rows() / self.groups)
    }
    fn samples_in_parallel(&self) -> bool {
        let t = threads::num_threads();
        t > 1 && self.geometry.batch >= t && threads::should_parallelize(self.geometry.batch * self.cols().1 * 64)
    }
}

fn mat<T>(data: &[T], offset: usize, rs: usize, cs: usize) -> MatRef<'_, T> {
    MatRef {
        data,
        offset,
        rs: rs as isize,
        cs: cs as isize,
    }
}

/// `out[n] = W · unfold(x[n]) (+ bias)`, per group; `x` `[N, C, H, W]`, `w` `[O, C/g, kh, kw]`,
/// result `[N, O, OH·OW]`.
pub fn conv2d_forward<T: Float>(x: &[T], w: &[T], bias: Option<&[T]>, s: &ConvShape) -> Vec<T> {
    let (rows, len) = s.cols();
    let (og, kg) = s.per_group();
    let per_out = s.out_channels * len;
    if per_out == 0 {
        return Vec::new();
    }
    let one = |n: usize, dst: &mut [T], cols: &mut Vec<T>, threaded: bool| {
        cols.resize(rows * len, T::ZERO);
        unfold_sample(&x[n * s.in_sample()..][..s.in_sample()], &s.geometry, cols);
        if let Some(b) = bias {
            for (row, &bv) in dst.chunks_exact_mut(len).zip(b) {
                row.fill(bv);
            }
        }
        for g in 0..s.groups {
            let lhs = mat(w, g * og * kg, kg, 1);
            let rhs = mat(cols, g * kg * len, len, 1);
            matmul(
                og,
                len,
                kg,
                &mut dst[g * og * len..],
                len,
                lhs,
                rhs,
                bias.is_some(),
                threaded,
            );
        }
    };
    let parallel = s.samples_in_parallel();
    threads::zeroed_chunks_with(
        s.geometry.batch * per_out,
        per_out,
        parallel,
        Vec::new,
        |cols, n, dst| one(n, dst, cols, !parallel),
    )
}

/// Which gradients [`conv2d_backward`] computes: the input's (the first layer's input needs
/// none) and the weight's (DP-SGD takes per-example weight gradients instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGrads {
    pub input: bool,
    pub weight: bool,
}

impl ConvGrads {
    pub const ALL: ConvGrads = ConvGrads {
        input: true,
        weight: true,
    };
}

/// Gradients of [`conv2d_forward`] given the output gradient `gy` `[N, O, OH·OW]`:
/// (input `[N, C, H, W]`, weight `[O, C/g, kh, kw]`, bias `[O]`). Columns are recomputed. What
/// `need` leaves out comes back empty (the input's) or zero (the weight's) and costs nothing:
/// no columns are unfolded without the weight's gradient, nothing is folded without the input's.
pub fn conv2d_backward<T: Float>(
    x: &[T],
    w: &[T],
    gy: &[T],
    s: &ConvShape,
    need: ConvGrads,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (rows, len) = s.cols();
    let (og, kg) = s.per_group();
    let per_out = s.out_channels * len;
    let w_len = s.out_channels * kg;
    let in_sample = s.in_sample();
    let dx_len = if need.input { s.geometry.batch * in_sample } else { 0 };
    let zeros = || (vec![T::ZERO; w_len], vec![T::ZERO; s.out_channels], Vec::new());
    if per_out == 0 || in_sample == 0 {
        return (
            vec![T::ZERO; dx_len],
            vec![T::ZERO; w_len],
            vec![T::ZERO; s.out_channels],
        );
    }
    // dx is zeroed sample by sample by the task that folds into it (see `threads::zeroed_chunks`).
    let mut dx: Vec<T> = Vec::with_capacity(dx_len);
    // One sample: dW += gy[n]·colsᵀ, db += Σ gy[n], dx[n] = fold(Wᵀ·gy[n]).
    type Acc<T> = (Vec<T>, Vec<T>, Vec<T>);
    let one = |n: usize, dxn: Option<&mut [T]>, acc: &mut Acc<T>, threaded: bool| {
        let (dw, db, buf) = acc;
        let g = &gy[n * per_out..][..per_out];
        buf.resize(rows * len, T::ZERO);
        if need.weight {
            unfold_sample(&x[n * in_sample..][..in_sample], &s.geometry, buf);
            for gi in 0..s.groups {
                let lhs = mat(g, gi * og * len, len, 1);
                let rhs = mat(buf, gi * kg * len, 1, len); // colsᵀ: [len, kg]
                matmul(og, kg, len, &mut dw[gi * og * kg..], kg, lhs, rhs, true, threaded);
            }
        }
        for (o, row) in g.chunks_exact(len).enumerate() {
            db[o] += row.iter().fold(T::ZERO, |a, &v| a + v);
        }
        if let Some(dxn) = dxn {
            for gi in 0..s.groups {
                let lhs = mat(w, gi * og * kg, 1, kg); // W_gᵀ: [kg, og]
                let rhs = mat(g, gi * og * len, len, 1);
                matmul(kg, len, og, &mut buf[gi * kg * len..], len, lhs, rhs, false, threaded);
            }
            fold_sample(buf, &s.geometry, dxn);
        }
    };
    let sum = |mut a: Acc<T>, b: Acc<T>| {
        a.0.iter_mut().zip(&b.0).for_each(|(x, &y)| *x += y);
        a.1.iter_mut().zip(&b.1).for_each(|(x, &y)| *x += y);
        a
    };
    let dx_buf = &mut dx.spare_capacity_mut()[..dx_len];
    let batch = s.geometry.batch;
    let (dw, db, _) = if s.samples_in_parallel() {
        // A fixed split — one run of consecutive samples per thread, summed in order — so the
        // gradients are the same in every run at a given thread count (rayon's adaptive
        // fold/reduce would group the partial sums differently from run to run).
        let parts = threads::num_threads().clamp(1, batch);
        let per_part = batch.div_ceil(parts);
        let run = |p: usize, part: Option<&mut [std::mem::MaybeUninit<T>]>| {
            let mut acc = zeros();
            let count = per_part.min(batch - p * per_part);
            match part {
                Some(part) => {
                    for (i, dxn) in part.chunks_mut(in_sample).enumerate() {
                        one(p * per_part + i, Some(threads::zero_init(dxn)), &mut acc, false);
                    }
                }
                None => (0..count).for_each(|i| one(p * per_part + i, None, &mut acc, false)),
            }
            acc
        };
        let partials: Vec<Acc<T>> = threads::install(|_| {
            if need.input {
                dx_buf
                    .par_chunks_mut(per_part * in_sample)
                    .enumerate()
                    .map(|(p, part)| run(p, Some(part)))
                    .collect()
            } else {
                (0..batch.div_ceil(per_part))
                    .into_par_iter()
                    .map(|p| run(p, None))
                    .collect()
            }
        });
        partials.into_iter().fold(zeros(), sum)
    } else {
        let mut acc = zeros();
        if need.input {
            for (n, dxn) in dx_buf.chunks_mut(in_sample).enumerate() {
                one(n, Some(threads::zero_init(dxn)), &mut acc, true);
            }
        } else {
            (0..batch).for_each(|n| one(n, None, &mut acc, true));
        }
        acc
    };
    // SAFETY: the sample pieces cover all `dx_len` elements and `zero_init` wrote each one.
    unsafe { dx.set_len(dx_len) };
    (dx, dw, db)
}

/// Every sample's own weight gradient `gy[n]·unfold(x[n])ᵀ` (per group), `[N, O, C/g·kh·kw]`:
/// DP-SGD's per-example gradients of a convolution, computed sample by sample with the columns
/// in a small per-thread buffer, as [`conv2d_backward`] computes their sum.
pub fn conv2d_weight_grads_per_sample<T: Float>(x: &[T], gy: &[T], s: &ConvShape) -> Vec<T> {
    let (rows, len) = s.cols();
    let (og, kg) = s.per_group();
    let per_out = s.out_channels * len;
    let w_len = s.out_channels * kg;
    if w_len == 0 {
        return Vec::new();
    }
    let parallel = s.samples_in_parallel();
    threads::zeroed_chunks_with(
        s.geometry.batch * w_len,
        w_len,
        parallel,
        Vec::new,
        |buf: &mut Vec<T>, n, dw| {
            if per_out == 0 {
                return;
            }
            let g = &gy[n * per_out..][..per_out];
            buf.resize(rows * len, T::ZERO);
            unfold_sample(&x[n * s.in_sample()..][..s.in_sample()], &s.geometry, buf);
            for gi in 0..s.groups {
                let lhs = mat(g, gi * og * len, len, 1);
                let rhs = mat(buf, gi * kg * len, 1, len);
                matmul(og, kg, len, &mut dw[gi * og * kg..], kg, lhs, rhs, false, !parallel);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::tests::axis;
    use crate::conv::{fold, unfold};

    fn vals(n: usize, seed: usize) -> Vec<f64> {
        (0..n).map(|i| (((i + seed) * 7919 % 23) as f64 - 11.0) / 7.0).collect()
    }

    /// The fused kernels against the unfused definition: out[n] = W·unfold(x)[n].
    #[test]
    fn fused_forward_and_backward_match_unfold_then_gemm() {
        let g = Conv2dGeometry {
            batch: 3,
            channels: 4,
            h: axis(6, 3, 2, 1, 1),
            w: axis(5, 2, 1, 1, 2),
        };
        let s = ConvShape {
            geometry: g,
            out_channels: 6,
            groups: 2,
        };
        let (rows, len) = s.cols();
        let (og, kg) = s.per_group();
        let x = vals(3 * 4 * 6 * 5, 1);
        let w = vals(6 * kg, 2);
        let b = vals(6, 3);
        let cols = unfold(&x, &g);
        let mut want = vec![0.0; 3 * 6 * len];
        for n in 0..3 {
            for o in 0..6 {
                let gi = o / og;
                for l in 0..len {
                    let mut acc = b[o];
                    for k in 0..kg {
                        acc += w[o * kg + k] * cols[(n * rows + gi * kg + k) * len + l];
                    }
                    want[(n * 6 + o) * len + l] = acc;
                }
            }
        }
        let got = conv2d_forward(&x, &w, Some(&b), &s);
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-9));

        let gy = vals(want.len(), 4);
        let (dx, dw, db) = conv2d_backward(&x, &w, &gy, &s, ConvGrads::ALL);
        let mut dcols = vec![0.0; cols.len()];
        let (mut dw_want, mut db_want) = (vec![0.0; w.len()], vec![0.0; 6]);
        for n in 0..3 {
            for o in 0..6 {
                let gi = o / og;
                for l in 0..len {
                    let gv = gy[(n * 6 + o) * len + l];
                    db_want[o] += gv;
                    for k in 0..kg {
                        let c = (n * rows + gi * kg + k) * len + l;
                        dw_want[o * kg + k] += gv * cols[c];
                        dcols[c] += gv * w[o * kg + k];
                    }
                }
            }
        }
        let dx_want = fold(&dcols, &g);
        for (got, want, what) in [(&dx, &dx_want, "dx"), (&dw, &dw_want, "dw"), (&db, &db_want, "db")] {
            assert!(got.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 1e-9), "{what}");
        }
        // Only what is asked for: no input gradient, or no weight gradient, the rest unchanged.
        let (dx1, dw1, db1) = conv2d_backward(
            &x,
            &w,
            &gy,
            &s,
            ConvGrads {
                input: false,
                weight: true,
            },
        );
        assert!(dx1.is_empty() && dw1 == dw && db1 == db);
        let (dx2, dw2, db2) = conv2d_backward(
            &x,
            &w,
            &gy,
            &s,
            ConvGrads {
                input: true,
                weight: false,
            },
        );
        assert!(dx2 == dx && dw2.iter().all(|&v| v == 0.0) && db2 == db);
        // Per-sample weight gradients sum to the batch's.
        let per = conv2d_weight_grads_per_sample(&x, &gy, &s);
        assert_eq!(per.len(), 3 * w.len());
        for (k, want) in dw_want.iter().enumerate() {
            let total: f64 = (0..3).map(|n| per[n * w.len() + k]).sum();
            assert!((total - want).abs() < 1e-9, "per-sample dw[{k}]: {total} vs {want}");
        }
    }

    /// Weight gradients summed over samples on several threads come out bit for bit the same
    /// in every run (the reproducibility resumed training relies on).
    #[test]
    fn parallel_weight_gradients_are_reproducible() {
        threads::set_num_threads(2);
        let g = Conv2dGeometry {
            batch: 16,
            channels: 8,
            h: axis(16, 3, 1, 1, 1),
            w: axis(16, 3, 1, 1, 1),
        };
        let s = ConvShape {
            geometry: g,
            out_channels: 8,
            groups: 1,
        };
        assert!(s.samples_in_parallel());
        let (_, kg) = s.per_group();
        // f32 with irregular values, so any other grouping of the sums rounds differently.
        let f32s =
            |n: usize, seed: usize| -> Vec<f32> { vals(n, seed).iter().map(|&v| (v * 1.37 + 0.013) as f32).collect() };
        let x = f32s(16 * 8 * 16 * 16, 4);
        let w = f32s(8 * kg, 5);
        let gy = f32s(16 * 8 * 16 * 16, 6);
        let first = conv2d_backward(&x, &w, &gy, &s, ConvGrads::ALL);
        for _ in 0..8 {
            let again = conv2d_backward(&x, &w, &gy, &s, ConvGrads::ALL);
            assert!(again.1 == first.1 && again.2 == first.2 && again.0 == first.0);
        }
    }
}
