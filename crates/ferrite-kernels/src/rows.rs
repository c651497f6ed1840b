//! Fused per-row kernels: softmax, log-softmax, layer norm, RMS norm and their backward passes.
//!
//! Layer: kernels. All buffers are contiguous `[rows, len]`; the normalized axis is the last one.
//! Rows run in parallel above the size threshold.

use crate::float::Float;
use crate::reduce::{dot_slice, sum_slice};
use crate::threads;
use rayon::prelude::*;

/// A fresh `[rows, len]` buffer (`total` elements) with `f(row_index, out_row)` called on every
/// zeroed row, in parallel when large (each row is zeroed by the task that fills it).
pub fn new_rows<T: Float>(total: usize, len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) -> Vec<T> {
    let parallel = len > 0 && threads::should_parallelize(total) && total / len >= 2;
    threads::zeroed_chunks(total, len, parallel, f)
}

/// Maximum of a row, in 16 independent lanes so the loop vectorizes (a single running maximum is
/// a serial dependency chain the compiler may not reorder).
#[inline(always)]
fn row_max<T: Float>(x: &[T]) -> T {
    let mut lanes = [T::NEG_INFINITY; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, &v) in lanes.iter_mut().zip(c) {
            *m = if v > *m { v } else { *m };
        }
    }
    let m = lanes.iter().fold(T::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    tail.iter().fold(m, |m, &v| if v > m { v } else { m })
}

/// Numerically stable softmax of each row: exp(x - max) / Σ exp(x - max).
pub fn softmax<T: Float>(x: &[T], len: usize) -> Vec<T> {
    new_rows(x.len(), len, |r, o| softmax_row(&x[r * len..(r + 1) * len], o))
}

crate::simd::wide_fn! {
    /// One row of [`softmax`] (also used by `attention`).
    pub(crate) fn softmax_row<T: Float>(xr: &[T], o: &mut [T]) {
        let m = row_max(xr);
        if m == T::NEG_INFINITY {
            // A fully masked row: PyTorch returns NaN; we return zeros so masked padding rows stay finite.
            o.fill(T::ZERO);
            return;
        }
        for (o, &v) in o.iter_mut().zip(xr) {
            *o = (v - m).exp();
        }
        let inv = T::ONE / sum_slice(o);
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Numerically stable log-softmax of each row: x - max - log Σ exp(x - max).
pub fn log_softmax<T: Float>(x: &[T], len: usize) -> Vec<T> {
    new_rows(x.len(), len, |r, o| {
        let xr = &x[r * len..(r + 1) * len];
        let m = row_max(xr);
        let mut s = T::ZERO;
        for &v in xr {
            s += (v - m).exp();
        }
        let lse = m + s.ln();
        for (o, &v) in o.iter_mut().zip(xr) {
            *o = v - lse;
        }
    })
}

/// Softmax backward from the output y: dx = y ⊙ (g − Σ g⊙y).
pub fn softmax_backward<T: Float>(y: &[T], g: &[T], len: usize) -> Vec<T> {
    new_rows(y.len(), len, |r, o| {
        let (yr, gr) = (&y[r * len..(r + 1) * len], &g[r * len..(r + 1) * len]);
        let s = dot_slice(yr, gr);
        for ((o, &yv), &gv) in o.iter_mut().zip(yr).zip(gr) {
            *o = yv * (gv - s);
        }
    })
}

/// Log-softmax backward from the output y: dx = g − exp(y) · Σ g.
pub fn log_softmax_backward<T: Float>(y: &[T], g: &[T], len: usize) -> Vec<T> {
    new_rows(y.len(), len, |r, o| {
        let (yr, gr) = (&y[r * len..(r + 1) * len], &g[r * len..(r + 1) * len]);
        let s = sum_slice(gr);
        for ((o, &yv), &gv) in o.iter_mut().zip(yr).zip(gr) {
            *o = gv - yv.exp() * s;
        }
    })
}

#[inline(always)]
fn mean_rstd<T: Float>(x: &[T], eps: T) -> (T, T) {
    let n = T::from_usize(x.len());
    let mean = sum_slice(x) / n;
    let mut var = T::ZERO;
    for &v in x {
        let d = v - mean;
        var += d * d;
    }
    (mean, T::ONE / (var / n + eps).sqrt())
}

/// Layer norm of each row (biased variance, as PyTorch): (x − μ)/√(σ² + ε) · w + b.
pub fn layer_norm<T: Float>(x: &[T], w: Option<&[T]>, b: Option<&[T]>, len: usize, eps: T) -> Vec<T> {
    new_rows(x.len(), len, |r, o| {
        layer_norm_row(&x[r * len..(r + 1) * len], w, b, eps, o)
    })
}

crate::simd::wide_fn! {
    /// One row of [`layer_norm`].
    fn layer_norm_row<T: Float>(xr: &[T], w: Option<&[T]>, b: Option<&[T]>, eps: T, o: &mut [T]) {
        let (mean, rstd) = mean_rstd(xr, eps);
        match (w, b) {
            (Some(w), Some(b)) => {
                for (((o, &v), &w), &b) in o.iter_mut().zip(xr).zip(w).zip(b) {
                    *o = (v - mean) * rstd * w + b;
                }
            }
            _ => {
                for (j, (o, &v)) in o.iter_mut().zip(xr).enumerate() {
                    let mut y = (v - mean) * rstd;
                    if let Some(w) = w {
                        y *= w[j];
                    }
                    if let Some(b) = b {
                        y += b[j];
                    }
                    *o = y;
                }
            }
        }
    }
}

/// Layer norm backward. Returns (dx, dw, db); dw/db are the column sums over rows.
pub fn layer_norm_backward<T: Float>(
    x: &[T],
    w: Option<&[T]>,
    g: &[T],
    len: usize,
    eps: T,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let rows = x.len().checked_div(len).unwrap_or(0);
    let stats: Vec<(T, T)> = (0..rows).map(|r| mean_rstd(&x[r * len..(r + 1) * len], eps)).collect();
    let n = T::from_usize(len);
    let dx = new_rows(x.len(), len, |r, o| {
        let (xr, gr) = (&x[r * len..(r + 1) * len], &g[r * len..(r + 1) * len]);
        let (mean, rstd) = stats[r];
        // dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)), with ĝ = g ⊙ w.
        let mut s1 = T::ZERO;
        let mut s2 = T::ZERO;
        for j in 0..len {
            let gh = gr[j] * w.map_or(T::ONE, |w| w[j]);
            let xh = (xr[j] - mean) * rstd;
            s1 += gh;
            s2 += gh * xh;
        }
        let (m1, m2) = (s1 / n, s2 / n);
        for j in 0..len {
            let gh = gr[j] * w.map_or(T::ONE, |w| w[j]);
            let xh = (xr[j] - mean) * rstd;
            o[j] = rstd * (gh - m1 - xh * m2);
        }
    });
    let mut dw = vec![T::ZERO; len];
    let mut db = vec![T::ZERO; len];
    for r in 0..rows {
        let (mean, rstd) = stats[r];
        let (xr, gr) = (&x[r * len..(r + 1) * len], &g[r * len..(r + 1) * len]);
        for j in 0..len {
            dw[j] += gr[j] * (xr[j] - mean) * rstd;
            db[j] += gr[j];
        }
    }
    (dx, dw, db)
}

fn rrms<T: Float>(x: &[T], eps: T) -> T {
    T::ONE / (dot_slice(x, x) / T::from_usize(x.len()) + eps).sqrt()
}

/// RMS norm of each row: x / √(mean(x²) + ε) · w.
pub fn rms_norm<T: Float>(x: &[T], w: Option<&[T]>, len: usize, eps: T) -> Vec<T> {
    new_rows(x.len(), len, |r, o| {
        let xr = &x[r * len..(r + 1) * len];
        let s = rrms(xr, eps);
        for (j, (o, &v)) in o.iter_mut().zip(xr).enumerate() {
            *o = v * s * w.map_or(T::ONE, |w| w[j]);
        }
    })
}

/// RMS norm backward. Returns (dx, dw).
pub fn rms_norm_backward<T: Float>(x: &[T], w: Option<&[T]>, g: &[T], len: usize, eps: T) -> (Vec<T>, Vec<T>) {
    let rows = x.len().checked_div(len).unwrap_or(0);
    let n = T::from_usize(len);
    let dx = new_rows(x.len(), len, |r, o| {
        let (xr, gr) = (&x[r * len..(r + 1) * len], &g[r * len..(r + 1) * len]);
        let s = rrms(xr, eps);
        // dx = s · (ĝ − x̂ · mean(ĝ ⊙ x̂)), x̂ = x·s, ĝ = g ⊙ w.
        let mut acc = T::ZERO;
        for j in 0..len {
            acc += gr[j] * w.map_or(T::ONE, |w| w[j]) * xr[j] * s;
        }
        let m = acc / n;
        for j in 0..len {
            let gh = gr[j] * w.map_or(T::ONE, |w| w[j]);
            o[j] = s * (gh - xr[j] * s * m);
        }
    });
    let mut dw = vec![T::ZERO; len];
    for r in 0..rows {
        let (xr, gr) = (&x[r * len..(r + 1) * len], &g[r * len..(r + 1) * len]);
        let s = rrms(xr, eps);
        for j in 0..len {
            dw[j] += gr[j] * xr[j] * s;
        }
    }
    (dx, dw)
}

/// Fused cross-entropy over `[rows, classes]` logits with integer targets.
///
/// Per row the target distribution is q = (1 − ε)·onehot(t) + ε/C, and the loss is −Σ q·log_softmax(x)
/// (PyTorch's `label_smoothing`). Rows whose target equals `ignore_index` contribute nothing.
/// Returns (sum of row losses, number of counted rows), or `Err(row)` for a target outside [0, C).
pub fn cross_entropy<T: Float>(
    logits: &[T],
    targets: &[i64],
    classes: usize,
    ignore_index: i64,
    smoothing: T,
) -> Result<(T, usize), usize> {
    let mut count = 0;
    for (r, &t) in targets.iter().enumerate() {
        if t == ignore_index {
            continue;
        }
        if t < 0 || t as usize >= classes {
            return Err(r);
        }
        count += 1;
    }
    let c = T::from_usize(classes);
    let row_loss = |r: usize| -> T {
        let t = targets[r];
        if t == ignore_index {
            return T::ZERO;
        }
        let xr = &logits[r * classes..(r + 1) * classes];
        let m = row_max(xr);
        let mut s = T::ZERO;
        for &v in xr {
            s += (v - m).exp();
        }
        let lse = m + s.ln();
        let nll = lse - xr[t as usize];
        if smoothing > T::ZERO {
            // −mean_c log p_c = lse − mean(x)
            let smooth = lse - sum_slice(xr) / c;
            (T::ONE - smoothing) * nll + smoothing * smooth
        } else {
            nll
        }
    };
    // Row losses in parallel, summed in row order afterwards: the same number at any thread count.
    let mut losses = vec![T::ZERO; targets.len()];
    if threads::should_parallelize(logits.len()) && targets.len() >= 2 {
        threads::install(|_| losses.par_iter_mut().enumerate().for_each(|(r, l)| *l = row_loss(r)));
    } else {
        losses.iter_mut().enumerate().for_each(|(r, l)| *l = row_loss(r));
    }
    let total = losses.iter().fold(T::ZERO, |a, &b| a + b);
    Ok((total, count))
}

/// Cross-entropy backward: d logits = scale · (softmax(x) − q) per counted row, 0 for ignored rows.
/// Targets must already have been validated by [`cross_entropy`].
pub fn cross_entropy_backward<T: Float>(
    logits: &[T],
    targets: &[i64],
    classes: usize,
    ignore_index: i64,
    smoothing: T,
    scale: T,
) -> Vec<T> {
    let off = smoothing / T::from_usize(classes);
    new_rows(logits.len(), classes, |r, o| {
        let t = targets[r];
        if t == ignore_index {
            return; // the row stays zero
        }
        softmax_row(&logits[r * classes..(r + 1) * classes], o);
        for v in o.iter_mut() {
            *v = (*v - off) * scale;
        }
        o[t as usize] -= (T::ONE - smoothing) * scale;
    })
}
