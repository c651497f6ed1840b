//! Sliding-window kernels for convolution and pooling on contiguous `[N, C, H, W]` buffers:
//! `unfold` (im2col) and its adjoint `fold` (col2im), and max/average pooling over arbitrary
//! per-axis windows (which covers strided, padded, dilated and adaptive pooling alike).
//!
//! Layer: kernels. Convolution itself is `unfold` followed by a GEMM (done by the caller), so it
//! gets the matmul kernel's speed and threads; these loops only move data. Geometry must already be
//! validated by the caller (every window non-empty, output sizes ≥ 1).

use crate::threads;
use crate::Float;
use rayon::prelude::*;

/// One spatial axis of a convolution window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvAxis {
    pub input: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl ConvAxis {
    /// Output length `⌊(input + 2·padding − dilation·(kernel−1) − 1) / stride⌋ + 1`, or `None` when
    /// the (dilated) kernel is larger than the padded input or a parameter is zero.
    pub fn output(&self) -> Option<usize> {
        if self.kernel == 0 || self.stride == 0 || self.dilation == 0 {
            return None;
        }
        let span = self.dilation * (self.kernel - 1) + 1;
        let padded = self.input + 2 * self.padding;
        (padded >= span).then(|| (padded - span) / self.stride + 1)
    }

    /// Input index read by output position `o` at kernel tap `k`, if inside the (unpadded) input.
    #[inline]
    fn source(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.stride + k * self.dilation)
            .checked_sub(self.padding)
            .filter(|&i| i < self.input)
    }

    /// The output positions `lo..hi` whose tap `k` lands inside the input (a contiguous range:
    /// the source index grows with the position), and the source index of `lo`.
    #[inline]
    fn valid(&self, k: usize, out: usize) -> (usize, usize, usize) {
        let shift = k * self.dilation; // source = o·stride + shift − padding
        let lo = self.padding.saturating_sub(shift).div_ceil(self.stride);
        let hi = if self.input + self.padding > shift {
            ((self.input + self.padding - shift - 1) / self.stride + 1).min(out)
        } else {
            0
        };
        let lo = lo.min(hi);
        (lo, hi, (lo * self.stride + shift).saturating_sub(self.padding))
    }
}

/// The geometry of a 2-D convolution over `[batch, channels, h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub channels: usize,
    pub h: ConvAxis,
    pub w: ConvAxis,
}

impl Conv2dGeometry {
    /// (output height, output width); callers validate that both exist first.
    pub fn out_hw(&self) -> (usize, usize) {
        (self.h.output().unwrap_or(0), self.w.output().unwrap_or(0))
    }
    /// Rows of the unfolded matrix per sample: `channels · kh · kw`.
    pub fn col_rows(&self) -> usize {
        self.channels * self.h.kernel * self.w.kernel
    }
    fn col_len(&self) -> usize {
        let (oh, ow) = self.out_hw();
        oh * ow
    }
}

/// im2col: `[N, C, H, W]` → `[N, C·kh·kw, OH·OW]` (row `(c·kh + i)·kw + j` holds tap (i, j) of
/// channel c for every output position; padding reads as zero), as `torch.nn.functional.unfold`.
pub fn unfold<T: Float>(src: &[T], g: &Conv2dGeometry) -> Vec<T> {
    let (rows, len) = (g.col_rows(), g.col_len());
    let mut out = vec![T::ZERO; g.batch * rows * len];
    if len == 0 {
        return out;
    }
    let plane = g.h.input * g.w.input;
    let taps = g.h.kernel * g.w.kernel;
    let fill = |r: usize, dst: &mut [T]| {
        let (n, row) = (r / rows, r % rows);
        let c = row / taps;
        unfold_row(&src[(n * g.channels + c) * plane..][..plane], g, row % taps, dst);
    };
    if threads::should_parallelize(out.len()) {
        threads::install(|_| out.par_chunks_mut(len).enumerate().for_each(|(r, d)| fill(r, d)));
    } else {
        out.chunks_mut(len).enumerate().for_each(|(r, d)| fill(r, d));
    }
    out
}

/// The columns of one sample: `src` `[C, H, W]` → `dst` `[C·kh·kw, OH·OW]` (every element written).
pub(crate) fn unfold_sample<T: Float>(src: &[T], g: &Conv2dGeometry, dst: &mut [T]) {
    let (len, plane, taps) = (g.col_len(), g.h.input * g.w.input, g.h.kernel * g.w.kernel);
    if len == 0 {
        return;
    }
    for (row, d) in dst.chunks_exact_mut(len).enumerate() {
        unfold_row(&src[(row / taps) * plane..][..plane], g, row % taps, d);
    }
}

/// One column row: kernel tap `tap` of one channel `plane` at every output position.
fn unfold_row<T: Float>(plane: &[T], g: &Conv2dGeometry, tap: usize, dst: &mut [T]) {
    let (ki, kj) = (tap / g.w.kernel, tap % g.w.kernel);
    let ow = g.w.output().unwrap_or(0);
    let (lo, hi, first) = g.w.valid(kj, ow);
    for (oi, d) in dst.chunks_exact_mut(ow).enumerate() {
        let Some(ih) = g.h.source(oi, ki) else {
            d.fill(T::ZERO);
            continue;
        };
        let line = &plane[ih * g.w.input..][..g.w.input];
        // Padding cells only where there are some: most rows have none, and a `fill` of nothing
        // is still a memset call, per row of every tap.
        if lo > 0 {
            d[..lo].fill(T::ZERO);
        }
        if hi < ow {
            d[hi..].fill(T::ZERO);
        }
        if hi == lo {
            continue; // every tap of this row lands in the padding (`first` may lie past the line)
        }
        if g.w.stride == 1 {
            d[lo..hi].copy_from_slice(&line[first..first + (hi - lo)]);
        } else {
            // Chunks of `stride` elements, the first of each: one load per output and no
            // per-element bounds check (`step_by` costs a quarter of a DP-SGD CNN step here).
            for (v, chunk) in d[lo..hi].iter_mut().zip(line[first..].chunks(g.w.stride)) {
                *v = chunk[0];
            }
        }
    }
}

/// col2im, the adjoint of [`unfold`]: sums `[N, C·kh·kw, OH·OW]` columns back into `[N, C, H, W]`
/// (overlapping taps add up; padded taps are dropped), as `torch.nn.functional.fold`.
pub fn fold<T: Float>(cols: &[T], g: &Conv2dGeometry) -> Vec<T> {
    let (rows, len) = (g.col_rows(), g.col_len());
    let plane = g.h.input * g.w.input;
    let total = g.batch * g.channels * plane;
    if len == 0 || plane == 0 {
        return vec![T::ZERO; total];
    }
    let taps = g.h.kernel * g.w.kernel;
    // One output plane per task: each gathers from its own kh·kw rows, so no two tasks write alike.
    threads::zeroed_chunks(total, plane, threads::should_parallelize(cols.len()), |pi, dst| {
        let (n, c) = (pi / g.channels, pi % g.channels);
        fold_plane(&cols[(n * rows + c * taps) * len..][..taps * len], g, dst);
    })
}

/// Adds one sample's columns `[C·kh·kw, OH·OW]` into its image `dst` `[C, H, W]`.
pub(crate) fn fold_sample<T: Float>(cols: &[T], g: &Conv2dGeometry, dst: &mut [T]) {
    let (len, plane, taps) = (g.col_len(), g.h.input * g.w.input, g.h.kernel * g.w.kernel);
    if len == 0 || plane == 0 {
        return;
    }
    for (c, d) in dst.chunks_exact_mut(plane).enumerate() {
        fold_plane(&cols[c * taps * len..][..taps * len], g, d);
    }
}

/// Adds the `kh·kw` column rows of one channel into its plane.
fn fold_plane<T: Float>(cols: &[T], g: &Conv2dGeometry, dst: &mut [T]) {
    let (len, taps) = (g.col_len(), g.h.kernel * g.w.kernel);
    let ow = g.w.output().unwrap_or(0);
    for tap in 0..taps {
        let (ki, kj) = (tap / g.w.kernel, tap % g.w.kernel);
        let col = &cols[tap * len..][..len];
        let (lo, hi, first) = g.w.valid(kj, ow);
        for (oi, s) in col.chunks_exact(ow).enumerate() {
            let Some(ih) = g.h.source(oi, ki) else { continue };
            if hi == lo {
                continue;
            }
            let line = &mut dst[ih * g.w.input..][..g.w.input];
            if g.w.stride == 1 {
                for (a, &v) in line[first..first + (hi - lo)].iter_mut().zip(&s[lo..hi]) {
                    *a += v;
                }
            } else {
                for (a, &v) in line[first..].iter_mut().step_by(g.w.stride).zip(&s[lo..hi]) {
                    *a += v;
                }
            }
        }
    }
}

/// Pooling windows along one axis: for each output index, the input indices it reads and the
/// divisor it counts for averaging (the nominal window size when padding counts, else the number
/// of real elements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolAxis {
    pub input: usize,
    pub windows: Vec<Vec<usize>>,
    pub divisors: Vec<usize>,
    /// `windows` as `start..end` ranges when every window is contiguous (no dilation), which
    /// lets the kernels run tight loops without index lists.
    pub ranges: Option<Vec<(usize, usize)>>,
}

fn as_ranges(windows: &[Vec<usize>]) -> Option<Vec<(usize, usize)>> {
    windows
        .iter()
        .map(|w| {
            let (&a, &b) = (w.first()?, w.last()?);
            (b + 1 - a == w.len()).then_some((a, b + 1))
        })
        .collect()
}

impl PoolAxis {
    /// Windows of a strided, padded, dilated kernel (`count_pad`: padding counts in the divisor,
    /// PyTorch's `count_include_pad`). `None` when the geometry gives no output.
    pub fn sliding(a: ConvAxis, count_pad: bool) -> Option<PoolAxis> {
        let out = a.output()?;
        let mut windows = Vec::with_capacity(out);
        let mut divisors = Vec::with_capacity(out);
        for o in 0..out {
            let w: Vec<usize> = (0..a.kernel).filter_map(|k| a.source(o, k)).collect();
            // The nominal window clipped to the padded extent, as PyTorch's avg_pool computes it.
            let start = o * a.stride;
            let end = (start + a.dilation * (a.kernel - 1) + 1).min(a.input + 2 * a.padding);
            divisors.push(if count_pad { end - start } else { w.len() });
            windows.push(w);
        }
        Some(PoolAxis {
            input: a.input,
            ranges: as_ranges(&windows),
            windows,
            divisors,
        })
    }

    /// Adaptive windows: output `i` of `out` reads `[⌊i·n/out⌋, ⌈(i+1)·n/out⌉)`.
    pub fn adaptive(input: usize, out: usize) -> PoolAxis {
        let windows: Vec<Vec<usize>> = (0..out)
            .map(|i| ((i * input) / out..((i + 1) * input).div_ceil(out)).collect())
            .collect();
        let divisors = windows.iter().map(Vec::len).collect();
        PoolAxis {
            input,
            ranges: as_ranges(&windows),
            windows,
            divisors,
        }
    }

    pub fn output(&self) -> usize {
        self.windows.len()
    }

    /// True when output `o` reads exactly `[2o, 2o + 2)`: a 2-wide window at stride 2 with no
    /// padding or dilation (the trailing input element may go unread, as PyTorch's floor mode).
    fn is_2x2_stride_2(&self) -> bool {
        self.ranges
            .as_ref()
            .is_some_and(|r| r.iter().enumerate().all(|(o, &(a, b))| a == 2 * o && b == 2 * o + 2))
    }
}

fn per_plane<T: Float>(
    planes: usize,
    out_plane: usize,
    total_work: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) -> Vec<T> {
    threads::zeroed_chunks(
        planes * out_plane,
        out_plane,
        threads::should_parallelize(total_work),
        f,
    )
}

/// Max pooling of `planes` contiguous `[H, W]` planes; NaN propagates (as PyTorch).
pub fn max_pool2d<T: Float>(src: &[T], planes: usize, h: &PoolAxis, w: &PoolAxis) -> Vec<T> {
    let plane = h.input * w.input;
    per_plane(planes, h.output() * w.output(), src.len(), |p, dst| {
        let s = &src[p * plane..][..plane];
        for_each_argmax(s, h, w, |o, _, v| dst[o] = v);
    })
}

/// Calls `f(output index, input index, value)` with the winner of every window: the first
/// maximum, or the last NaN (PyTorch's rule: a later element wins if greater or NaN).
#[inline]
fn for_each_argmax<T: Float>(s: &[T], h: &PoolAxis, w: &PoolAxis, mut f: impl FnMut(usize, usize, T)) {
    let width = w.input;
    let ow = w.output();
    if h.is_2x2_stride_2() && w.is_2x2_stride_2() {
        // The common case (every CNN's 2×2 pooling), without per-window loops or index lists.
        for i in 0..h.output() {
            let top = &s[2 * i * width..][..2 * ow];
            let bottom = &s[(2 * i + 1) * width..][..2 * ow];
            for (j, (t, b)) in top.chunks_exact(2).zip(bottom.chunks_exact(2)).enumerate() {
                let (r, c) = (2 * i * width, 2 * j);
                let (mut bi, mut bv) = (r + c, t[0]);
                for (at, v) in [(r + c + 1, t[1]), (r + width + c, b[0]), (r + width + c + 1, b[1])] {
                    if v > bv || v.is_nan() {
                        (bi, bv) = (at, v);
                    }
                }
                f(i * ow + j, bi, bv);
            }
        }
        return;
    }
    let whole_2x2 = |r: &Option<Vec<(usize, usize)>>| r.as_ref().is_some_and(|r| r.iter().all(|&(a, b)| b == a + 2));
    if let (true, true, Some(hr), Some(wr)) = (whole_2x2(&h.ranges), whole_2x2(&w.ranges), &h.ranges, &w.ranges) {
        // Every window 2×2 whole (no padding cut), any stride (Opacus's 2×2 stride-1 pools):
        // the four taps unrolled, in the scan order the rule above needs.
        for (i, &(r, _)) in hr.iter().enumerate() {
            for (j, &(c, _)) in wr.iter().enumerate() {
                let at = r * width + c;
                let (mut bi, mut bv) = (at, s[at]);
                for k in [at + 1, at + width, at + width + 1] {
                    let v = s[k];
                    if v > bv || v.is_nan() {
                        (bi, bv) = (k, v);
                    }
                }
                f(i * ow + j, bi, bv);
            }
        }
        return;
    }
    if let (Some(hr), Some(wr)) = (&h.ranges, &w.ranges) {
        for (i, &(r0, r1)) in hr.iter().enumerate() {
            for (j, &(c0, c1)) in wr.iter().enumerate() {
                let (mut bi, mut bv) = (r0 * width + c0, s[r0 * width + c0]);
                for r in r0..r1 {
                    let line = &s[r * width..][..c1];
                    for (c, &v) in line.iter().enumerate().skip(c0) {
                        if v > bv || v.is_nan() {
                            (bi, bv) = (r * width + c, v);
                        }
                    }
                }
                f(i * ow + j, bi, bv);
            }
        }
        return;
    }
    for (i, rows) in h.windows.iter().enumerate() {
        for (j, cols) in w.windows.iter().enumerate() {
            let (mut bi, mut bv) = (usize::MAX, T::NEG_INFINITY);
            for &r in rows {
                for &c in cols {
                    let v = s[r * width + c];
                    if bi == usize::MAX || v > bv || v.is_nan() {
                        (bi, bv) = (r * width + c, v);
                    }
                }
            }
            if bi != usize::MAX {
                f(i * ow + j, bi, bv);
            }
        }
    }
}

/// Backward of [`max_pool2d`]: each output's gradient goes to the position that won its window.
pub fn max_pool2d_backward<T: Float>(src: &[T], grad: &[T], planes: usize, h: &PoolAxis, w: &PoolAxis) -> Vec<T> {
    let plane = h.input * w.input;
    let out_plane = h.output() * w.output();
    per_plane(planes, plane, src.len(), |p, dst| {
        let s = &src[p * plane..][..plane];
        let g = &grad[p * out_plane..][..out_plane];
        for_each_argmax(s, h, w, |o, at, _| dst[at] += g[o]);
    })
}

/// Average pooling of `planes` contiguous `[H, W]` planes, each output divided by its windows'
/// divisors (`h.divisors[i] · w.divisors[j]`).
pub fn avg_pool2d<T: Float>(src: &[T], planes: usize, h: &PoolAxis, w: &PoolAxis) -> Vec<T> {
    let plane = h.input * w.input;
    per_plane(planes, h.output() * w.output(), src.len(), |p, dst| {
        let s = &src[p * plane..][..plane];
        for (i, rows) in h.windows.iter().enumerate() {
            for (j, cols) in w.windows.iter().enumerate() {
                let mut acc = T::ZERO;
                for &r in rows {
                    let line = &s[r * w.input..];
                    for &c in cols {
                        acc += line[c];
                    }
                }
                dst[i * w.output() + j] = acc / T::from_usize(h.divisors[i] * w.divisors[j]);
            }
        }
    })
}

/// Backward of [`avg_pool2d`]: spreads each output's gradient over its window.
pub fn avg_pool2d_backward<T: Float>(grad: &[T], planes: usize, h: &PoolAxis, w: &PoolAxis) -> Vec<T> {
    let plane = h.input * w.input;
    let out_plane = h.output() * w.output();
    per_plane(planes, plane, grad.len(), |p, dst| {
        let g = &grad[p * out_plane..][..out_plane];
        for (i, rows) in h.windows.iter().enumerate() {
            for (j, cols) in w.windows.iter().enumerate() {
                let v = g[i * w.output() + j] / T::from_usize(h.divisors[i] * w.divisors[j]);
                for &r in rows {
                    let line = &mut dst[r * w.input..];
                    for &c in cols {
                        line[c] += v;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn axis(input: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> ConvAxis {
        ConvAxis {
            input,
            kernel,
            stride,
            padding,
            dilation,
        }
    }

    #[test]
    fn output_sizes_follow_pytorch_formula() {
        assert_eq!(axis(28, 3, 1, 1, 1).output(), Some(28));
        assert_eq!(axis(7, 3, 2, 1, 1).output(), Some(4));
        assert_eq!(axis(7, 3, 1, 0, 3).output(), Some(1));
        assert_eq!(axis(2, 3, 1, 0, 1).output(), None);
        assert_eq!(axis(5, 3, 0, 0, 1).output(), None);
    }

    #[test]
    fn fold_is_the_adjoint_of_unfold() {
        // <unfold(x), y> == <x, fold(y)> for any x, y: the property backward relies on.
        let g = Conv2dGeometry {
            batch: 2,
            channels: 3,
            h: axis(5, 3, 2, 1, 1),
            w: axis(6, 2, 1, 1, 2),
        };
        let x: Vec<f64> = (0..2 * 3 * 5 * 6).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
        let u = unfold(&x, &g);
        let y: Vec<f64> = (0..u.len()).map(|i| ((i * 13 % 7) as f64) - 3.0).collect();
        let f = fold(&y, &g);
        let lhs: f64 = u.iter().zip(&y).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&f).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-9, "{lhs} vs {rhs}");
    }

    #[test]
    fn taps_that_only_see_padding_are_zero() {
        // Width 2 with padding 3 and a 7-wide kernel: the outer taps never reach the input.
        let g = Conv2dGeometry {
            batch: 1,
            channels: 1,
            h: axis(1, 1, 1, 0, 1),
            w: axis(2, 7, 1, 3, 1),
        };
        let u = unfold(&[1.0f32, 2.0], &g);
        assert_eq!(u.len(), 7 * 2);
        assert_eq!(&u[..2], &[0.0, 0.0]);
        assert_eq!(fold(&[1.0f32; 14], &g), vec![2.0, 2.0]);
    }

    #[test]
    fn adaptive_windows_cover_the_input() {
        let a = PoolAxis::adaptive(7, 3);
        assert_eq!(a.windows, vec![vec![0, 1, 2], vec![2, 3, 4], vec![4, 5, 6]]);
        let b = PoolAxis::adaptive(5, 1);
        assert_eq!(b.divisors, vec![5]);
    }

    #[test]
    fn max_pool_picks_the_first_maximum_and_routes_its_gradient() {
        let x = [1.0f32, 3.0, 3.0, 0.0];
        let a = PoolAxis::sliding(axis(2, 2, 2, 0, 1), true).unwrap_or_else(|| unreachable!());
        assert_eq!(max_pool2d(&x, 1, &a, &a), vec![3.0]);
        assert_eq!(max_pool2d_backward(&x, &[2.0], 1, &a, &a), vec![0.0, 2.0, 0.0, 0.0]);
    }

    #[test]
    fn the_2x2_path_agrees_with_the_general_windows() {
        // 3 planes of 5×7 (odd sizes: the last row and column go unread), values with ties and NaNs.
        let x: Vec<f32> = (0..105)
            .map(|i| match (i * 7919) % 23 {
                0 => f32::NAN,
                v => (v % 5) as f32,
            })
            .collect();
        let (h, w) = (axis(5, 2, 2, 0, 1), axis(7, 2, 2, 0, 1));
        let fast = |a: ConvAxis| PoolAxis::sliding(a, true).unwrap_or_else(|| unreachable!());
        let general = |a: ConvAxis| PoolAxis {
            ranges: None,
            ..fast(a)
        };
        assert!(fast(h).is_2x2_stride_2() && !general(h).is_2x2_stride_2());
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| p == q || p.is_nan() && q.is_nan());
        let (y_fast, y_general) = (
            max_pool2d(&x, 3, &fast(h), &fast(w)),
            max_pool2d(&x, 3, &general(h), &general(w)),
        );
        assert_eq!(y_fast.len(), 3 * 2 * 3);
        assert!(same(&y_fast, &y_general) && y_fast.iter().any(|v| v.is_nan()));
        let g: Vec<f32> = (0..18).map(|i| i as f32 + 1.0).collect();
        let (d_fast, d_general) = (
            max_pool2d_backward(&x, &g, 3, &fast(h), &fast(w)),
            max_pool2d_backward(&x, &g, 3, &general(h), &general(w)),
        );
        assert_eq!(d_fast, d_general);
        // 2×2 windows at stride 1 (overlapping: the unrolled path) against the general windows.
        let (h1, w1) = (axis(5, 2, 1, 0, 1), axis(7, 2, 1, 0, 1));
        let (y1, y1_general) = (
            max_pool2d(&x, 3, &fast(h1), &fast(w1)),
            max_pool2d(&x, 3, &general(h1), &general(w1)),
        );
        assert_eq!(y1.len(), 3 * 4 * 6);
        assert!(same(&y1, &y1_general) && y1.iter().any(|v| v.is_nan()));
        let g1: Vec<f32> = (0..72).map(|i| i as f32 + 1.0).collect();
        assert_eq!(
            max_pool2d_backward(&x, &g1, 3, &fast(h1), &fast(w1)),
            max_pool2d_backward(&x, &g1, 3, &general(h1), &general(w1))
        );
    }
}
