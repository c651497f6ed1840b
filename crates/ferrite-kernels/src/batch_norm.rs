//! Batch normalization over `[N, C, S]` buffers (S = the spatial size, 1 after a dense layer):
//! per-channel statistics, the normalize-scale-shift pass, and the fused backward. Two passes over
//! the data each way, where the composed version took about ten.
//!
//! Layer: kernels. Statistics accumulate in f64 (sums of many f32 values); channels are spread over
//! threads for the reductions and (sample, channel) rows for the elementwise passes.

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
    if d.s == 0 {
        return vec![T::ZERO; len];
    }
    threads::zeroed_chunks(len, d.s, threads::should_parallelize(len), |r, o| f(r, r % d.c, o))
}

/// The rows of channel `c`.
fn channel_rows<T>(x: &[T], d: BnDims, c: usize) -> impl Iterator<Item = &[T]> {
    (0..d.n).map(move |n| &x[(n * d.c + c) * d.s..][..d.s])
}

/// Per-channel mean and biased variance (two passes: mean, then squared deviations).
pub fn stats<T: Float>(x: &[T], d: BnDims) -> (Vec<f64>, Vec<f64>) {
    let m = d.count().max(1) as f64;
    per_channel(d, |c| {
        let mean = channel_rows(x, d, c)
            .map(|r| r.iter().fold(0.0f64, |a, &v| a + v.to_f64()))
            .sum::<f64>()
            / m;
        let var = channel_rows(x, d, c)
            .map(|r| {
                r.iter().fold(0.0f64, |a, &v| {
                    let e = v.to_f64() - mean;
                    a + e * e
                })
            })
            .sum::<f64>()
            / m;
        (mean, var)
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
        for (o, &v) in out.iter_mut().zip(&x[r * d.s..][..d.s]) {
            *o = v * scale + shift;
        }
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
        channel_rows(gy, d, c)
            .zip(channel_rows(x, d, c))
            .fold((0.0, 0.0), |(sg, sgx), (g, xr)| {
                let (mut a, mut b) = (0.0f64, 0.0f64);
                for (&gv, &xv) in g.iter().zip(xr) {
                    a += gv.to_f64();
                    b += gv.to_f64() * (xv.to_f64() - mean[c]);
                }
                (sg + a, sgx + b * invstd[c])
            })
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
            for ((o, &gv), &xv) in out.iter_mut().zip(g).zip(xr) {
                *o = a * gv + cx * (xv - mu) + b;
            }
        } else {
            let a = T::from_f64(k);
            for (o, &gv) in out.iter_mut().zip(g) {
                *o = a * gv;
            }
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
