//! Occlusion (Zeiler & Fergus 2014): slide a window over each sample, replace what it covers with
//! a baseline value, and credit the drop of the explained output to the covered features.
//!
//! Layer: explain. Captum's `Occlusion` semantics: along each axis the window takes
//! `ceil((size − window) / stride) + 1` positions starting at multiples of the stride (a last
//! window that would run past the edge is cut off there), every feature gets the sum of
//! `f(x) − f(x occluded)` over the windows covering it divided by their number, and features
//! no window covers get 0. Occluded copies go through the model in batches.

use crate::target::{target_values, Forward, Target};
use ferrite_core::{Error, Result, Tensor};

/// Window, strides (one per per-sample axis) and the replacement values.
#[derive(Clone, Debug, PartialEq)]
pub struct OcclusionOptions {
    pub window: Vec<usize>,
    pub strides: Vec<usize>,
    /// One value for every occluded feature, or one per feature of a sample (flat, row-major).
    pub baseline: Vec<f32>,
    /// Occluded copies evaluated per model call.
    pub batch: usize,
}

impl OcclusionOptions {
    /// A `window` sliding with `strides`, replacing with 0.
    pub fn new(window: Vec<usize>, strides: Vec<usize>) -> Self {
        OcclusionOptions {
            window,
            strides,
            baseline: vec![0.0],
            batch: 256,
        }
    }
}

/// Start offsets of the window along one axis.
fn starts(size: usize, window: usize, stride: usize) -> Vec<usize> {
    let shifts = (size - window).div_ceil(stride) + 1;
    (0..shifts).map(|i| i * stride).collect()
}

/// Occlusion attributions for each sample of `x` `[N, ...]`, shaped like `x`.
///
/// # Errors
/// A window or stride list whose length differs from the per-sample rank, a zero stride or
/// window, or a window larger than the input (each naming the shapes).
pub fn occlusion(model: &Forward, x: &Tensor, target: &Target, opts: &OcclusionOptions) -> Result<Tensor> {
    let dims = &x.shape()[1.min(x.ndim())..];
    let bad = |detail: String| Error::Invalid {
        op: "occlusion",
        detail,
    };
    if opts.window.len() != dims.len() || opts.strides.len() != dims.len() {
        return Err(bad(format!(
            "window {:?} and strides {:?} need one entry per axis of a sample {dims:?}",
            opts.window, opts.strides
        )));
    }
    if opts.window.iter().chain(&opts.strides).any(|&v| v == 0) || opts.window.iter().zip(dims).any(|(w, d)| w > d) {
        return Err(bad(format!(
            "window {:?} / strides {:?} must be positive and fit in a sample {dims:?}",
            opts.window, opts.strides
        )));
    }
    let x = x.detach().contiguous()?;
    let n = x.shape()[0];
    let per: usize = dims.iter().product();
    if opts.baseline.len() != 1 && opts.baseline.len() != per {
        return Err(bad(format!(
            "the baseline has {} values; give one, or one per feature of a sample {dims:?} ({per})",
            opts.baseline.len()
        )));
    }
    let fill = |c: usize| opts.baseline[if opts.baseline.len() == 1 { 0 } else { c }];
    let xv = x.to_vec::<f32>()?;
    let ids = target.ids(n);
    let base = target_values(model, &x, target)?;
    // Every window position as a list of covered flat offsets within a sample.
    let axis_starts: Vec<Vec<usize>> = (0..dims.len())
        .map(|a| starts(dims[a], opts.window[a], opts.strides[a]))
        .collect();
    let mut windows: Vec<Vec<usize>> = vec![Vec::new()];
    for (a, st) in axis_starts.iter().enumerate() {
        let stride_a: usize = dims[a + 1..].iter().product();
        let mut next = Vec::with_capacity(windows.len() * st.len());
        for w in &windows {
            for &s in st {
                let end = (s + opts.window[a]).min(dims[a]);
                let mut cells = Vec::with_capacity(w.len().max(1) * (end - s));
                let prefix: &[usize] = if a == 0 { &[0] } else { w };
                for &p in prefix {
                    cells.extend((s..end).map(|i| p + i * stride_a));
                }
                next.push(cells);
            }
        }
        windows = next;
    }
    let mut sum = vec![0.0f64; xv.len()];
    let mut count = vec![0u32; per];
    for w in &windows {
        w.iter().for_each(|&c| count[c] += 1);
    }
    // (sample, window) pairs, evaluated in batches of occluded copies.
    let jobs: Vec<(usize, usize)> = (0..n).flat_map(|i| (0..windows.len()).map(move |w| (i, w))).collect();
    for chunk in jobs.chunks(opts.batch.max(1)) {
        let mut data = Vec::with_capacity(chunk.len() * per);
        for &(i, w) in chunk {
            let start = data.len();
            data.extend_from_slice(&xv[i * per..(i + 1) * per]);
            windows[w].iter().for_each(|&c| data[start + c] = fill(c));
        }
        let mut shape = x.shape().to_vec();
        shape[0] = chunk.len();
        let t = Target::PerSample(chunk.iter().map(|&(i, _)| ids[i]).collect());
        let vals = target_values(model, &Tensor::from_vec(data, shape)?, &t)?;
        for (&(i, w), v) in chunk.iter().zip(vals) {
            let drop = base[i] - v;
            windows[w].iter().for_each(|&c| sum[i * per + c] += drop);
        }
    }
    let attr: Vec<f32> = sum
        .iter()
        .enumerate()
        .map(|(j, s)| match count[j % per] {
            0 => 0.0,
            c => (s / c as f64) as f32,
        })
        .collect();
    Tensor::from_vec(attr, x.shape())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_positions_follow_captum() {
        assert_eq!(starts(6, 2, 2), [0, 2, 4]);
        assert_eq!(starts(5, 2, 2), [0, 2, 4]); // the last window is cut to one cell
        assert_eq!(starts(4, 4, 3), [0]);
    }

    #[test]
    fn linear_model_gets_weight_times_input() {
        // f(x) = Σ w_j x_j: occluding one feature at a time drops w_j x_j.
        let w = Tensor::from_vec(vec![1.0f32, -2.0, 0.5], [3, 1]).unwrap();
        let model = move |x: &Tensor| x.matmul(&w);
        let x = Tensor::from_vec(vec![3.0f32, 1.0, 4.0], [1, 3]).unwrap();
        let a = occlusion(&model, &x, &Target::All(0), &OcclusionOptions::new(vec![1], vec![1])).unwrap();
        assert_eq!(a.to_vec::<f32>().unwrap(), [3.0, -2.0, 2.0]);
        // Windows of two: each feature averages the windows covering it.
        let a = occlusion(&model, &x, &Target::All(0), &OcclusionOptions::new(vec![2], vec![1])).unwrap();
        assert_eq!(a.to_vec::<f32>().unwrap(), [1.0, 0.5, 0.0]);
        let e = occlusion(&model, &x, &Target::All(0), &OcclusionOptions::new(vec![4], vec![1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[4]") && e.contains("[3]"), "{e}");
    }
}
