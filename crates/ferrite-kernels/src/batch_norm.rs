//! Batch normalization over `[N, C, S]` buffers (S = the spatial size, 1 after a dense layer):
//! per-channel statistics, the normalize-scale-shift pass, and the fused backward. Two passes over
//! the data each way, where the composed version took about ten.
//!
//! Layer: kernels. Statistics: each `[S]` row is summed in eight lanes of `T` (so it vectorizes) and
//! the rows are added in f64 (a channel sums N·S values); channels are spread over threads for the
//! reductions and (sample, channel) rows for the elementwise passes.

use crate::reduce::sum_slice;
use crate::threads;
use crate::Float;
use rayon::prelude::*;

/// `[N, C, S]` dimensions.
#[derive(Clone, Copy, Debug)]
pub struct BnDims {
    pub n: usize,
    pub c: usize,
    pub s: usize,
}

impl BnDims {
    /// Values per channel (N·S).
    pub fn count(&self) -> usize {
        self.n * self.s
    }
    fn rows(&self) -> usize {
        self.n * self.c
    }
}

/// Runs `f(channel)` for every channel, in parallel for large inputs, collecting the results.
fn per_channel<R: Send>(d: BnDims, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    if threads::should_parallelize(d.n * d.c * d.s) && d.c > 1 {
        threads::install(|_| (0..d.c).into_par_iter().map(&f).collect())
    } else {
        (0..d.c).map(f).collect()
    }
}

/// Calls `f(row, channel, dst_row)` for every `[S]` row of the output, in parallel when large.
fn per_row<T: Float>(d: BnDims, f: impl Fn(usize, usize, &mut [T]) + Sync + Send) -> Vec<T> {
    let len = d.rows() * d.s;
    threads::zeroed_chunks(len, d.s, threads::should_parallelize(len), |r, o| f(r, r % d.c, o))
}

/// The rows of channel `c`.
fn channel_rows<T>(x: &[T], d: BnDims, c: usize) -> impl Iterator<Item = &[T]> {
    (0..d.n).map(move |n| &x[(n * d.c + c) * d.s..][..d.s])
}

crate::simd::wide_fn! {
    /// Σ v over one row, in eight lanes of `T` (a single running f64 sum is a chain of dependent
    /// adds, 4 cycles each: the statistics passes spent most of their time there).
    fn row_sum<T: Float>(r: &[T]) -> f64 {
        sum_slice(r).to_f64()
    }
}

crate::simd::wide_fn! {
    /// Σ (v − mu)² over one row, in eight lanes.
    fn row_sq_dev<T: Float>(r: &[T], mu: T) -> f64 {
        let mut acc = [T::ZERO; 8];
        let chunks = r.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..8 {
                let e = c[i] - mu;
                acc[i] += e * e;
            }
        }
        let tail = rest.iter().fold(T::ZERO, |a, &v| a + (v - mu) * (v - mu));
        acc.iter().fold(tail.to_f64(), |a, &v| a + v.to_f64())
    }
}

crate::simd::wide_fn! {
    /// (Σ g, Σ g·(x − mu)) over one row, in eight lanes each.
    fn row_grad_sums<T: Float>(g: &[T], x: &[T], mu: T) -> (f64, f64) {
        let (mut sg, mut sgx) = ([T::ZERO; 8], [T::ZERO; 8]);
        let (cg, cx) = (g.chunks_exact(8), x.chunks_exact(8));
        let (rg, rx) = (cg.remainder(), cx.remainder());
        for (a, b) in cg.zip(cx) {
            for i in 0..8 {
                sg[i] += a[i];
                sgx[i] += a[i] * (b[i] - mu);
            }
        }
        let (mut tg, mut tgx) = (0.0f64, 0.0f64);
        for (&a, &b) in rg.iter().zip(rx) {
            tg += a.to_f64();
            tgx += (a * (b - mu)).to_f64();
        }
        (
            sg.iter().fold(tg, |s, &v| s + v.to_f64()),
            sgx.iter().fold(tgx, |s, &v| s + v.to_f64()),
        )
    }
}

crate::simd::wide_fn! {
    /// `out = v·scale + shift` over one row.
    fn affine_row<T: Float>(out: &mut [T], v: &[T], scale: T, shift: T) {
        for (o, &v) in out.iter_mut().zip(v) {
            *o = v * scale + shift;
        }
    }
}

crate::simd::wide_fn! {
    /// `out = a·g + cx·(x − mu) + b` over one row (the training-mode input gradient).
    fn dx_row<T: Float>(out: &mut [T], g: &[T], x: &[T], coef: (T, T, T, T)) {
        let (a, cx, mu, b) = coef;
        for ((o, &gv), &xv) in out.iter_mut().zip(g).zip(x) {
            *o = a * gv + cx * (xv - mu) + b;
        }
    }
}

/// Per-channel mean and biased variance (two passes: mean, then squared deviations), each row's
/// partial sum in `T` lanes and the rows added in f64.
pub fn stats<T: Float>(x: &[T], d: BnDims) -> (Vec<f64>, Vec<f64>) {
    let m = d.count().max(1) as f64;
    per_channel(d, |c| {
        let mean = channel_rows(x, d, c).map(row_sum).sum::<f64>() / m;
        let mu = T::from_f64(mean);
        // The deviations are taken from the rounded mean: Σ(v − μ̃)² = Σ(v − μ)² + m·(μ − μ̃)².
        let shift = mean - mu.to_f64();
        let var = channel_rows(x, d, c).map(|r| row_sq_dev(r, mu)).sum::<f64>() / m - shift * shift;
        (mean, var.max(0.0))
    })
    .into_iter()
    .unzip()
}

/// `y = (x − mean[c])·invstd[c]·w[c] + b[c]`.
pub fn normalize<T: Float>(
    x: &[T],
    d: BnDims,
    mean: &[f64],
    invstd: &[f64],
    w: Option<&[T]>,
    b: Option<&[T]>,
) -> Vec<T> {
    per_row(d, |r, c, out| {
        let scale = invstd[c] * w.map_or(1.0, |w| w[c].to_f64());
        let shift = b.map_or(0.0, |b| b[c].to_f64()) - mean[c] * scale;
        let (scale, shift) = (T::from_f64(scale), T::from_f64(shift));
        affine_row(out, &x[r * d.s..][..d.s], scale, shift);
    })
}

/// Gradients (x, weight, bias) of [`normalize`]. With `batch_stats` the mean and invstd were the
/// batch's own, so they depend on x (training); otherwise they are constants (inference).
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float>(
    x: &[T],
    gy: &[T],
    d: BnDims,
    mean: &[f64],
    invstd: &[f64],
    w: Option<&[T]>,
    batch_stats: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    // Σ gy and Σ gy·x̂ per channel.
    let sums: Vec<(f64, f64)> = per_channel(d, |c| {
        let mu = T::from_f64(mean[c]);
        let shift = mean[c] - mu.to_f64(); // Σ g·(x − μ) = Σ g·(x − μ̃) − (μ − μ̃)·Σ g
        let (sg, sgx) = channel_rows(gy, d, c)
            .zip(channel_rows(x, d, c))
            .map(|(g, xr)| row_grad_sums(g, xr, mu))
            .fold((0.0, 0.0), |(a, b), (p, q)| (a + p, b + q));
        (sg, (sgx - shift * sg) * invstd[c])
    });
    let m = d.count().max(1) as f64;
    let dx = per_row(d, |r, c, out| {
        let wc = w.map_or(1.0, |w| w[c].to_f64());
        let k = wc * invstd[c];
        let (g, xr) = (&gy[r * d.s..][..d.s], &x[r * d.s..][..d.s]);
        if batch_stats {
            // dx = w·invstd·(gy − mean(gy) − x̂·mean(gy·x̂))
            let (sg, sgx) = sums[c];
            let (a, b) = (T::from_f64(k), T::from_f64(-k * sg / m));
            let (cx, mu) = (T::from_f64(-k * sgx * invstd[c] / m), T::from_f64(mean[c]));
            dx_row(out, g, xr, (a, cx, mu, b));
        } else {
            affine_row(out, g, T::from_f64(k), T::ZERO);
        }
    });
    let dw = sums.iter().map(|&(_, sgx)| T::from_f64(sgx)).collect();
    let db = sums.iter().map(|&(sg, _)| T::from_f64(sg)).collect();
    (dx, dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_channels_have_zero_mean_and_unit_variance() {
        let d = BnDims { n: 3, c: 2, s: 4 };
        let x: Vec<f64> = (0..24).map(|i| ((i * 17) % 11) as f64 * 0.3 + (i % 2) as f64).collect();
        let (mean, var) = stats(&x, d);
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + 1e-12).sqrt()).collect();
        let y = normalize(&x, d, &mean, &invstd, None, None);
        let (m2, v2) = stats(&y, d);
        assert!(m2.iter().all(|m| m.abs() < 1e-12) && v2.iter().all(|v| (v - 1.0).abs() < 1e-9));
    }
}
