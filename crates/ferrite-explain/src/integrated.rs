//! Integrated gradients (Sundararajan et al. 2017): attributions `(x − b) ⊙ ∫₀¹ ∇f(b + α(x − b)) dα`
//! along the straight path from a baseline `b`, approximated by a quadrature rule as Captum does.
//!
//! Layer: explain. The path points of several steps go through the model as one batch
//! (`batch_rows` rows at a time). Completeness — the attributions of a sample sum to
//! `f(x) − f(b)` — holds up to the quadrature error, reported per sample as `delta` (Captum's
//! convergence delta) and as the relative gap `|delta| / |f(x) − f(b)|`.

use crate::target::{gradients, target_values, Forward, Target};
use ferrite_core::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// How the path integral is approximated (Captum's `method` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quadrature {
    /// Gauss–Legendre nodes on [0, 1] (Captum's default): exact for polynomials of degree 2n−1.
    #[default]
    GaussLegendre,
    RiemannLeft,
    RiemannRight,
    RiemannMiddle,
    /// Captum's trapezoid: `n` equally spaced points from 0 to 1, weights `1/n` with the two end
    /// points halved (so the weights sum to (n−1)/n, as in Captum).
    RiemannTrapezoid,
    /// ferrite's extension: the midpoint rule on `n` cells, then cells whose forward values show
    /// a kink are halved until the attributions add up (see `adaptive.rs`). More gradient
    /// evaluations where needed (at most 16·n per sample); exact cells are never revisited.
    Adaptive,
}

impl Quadrature {
    /// Parses Captum's names (`gausslegendre`, `riemann_left`, …).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "gausslegendre" | "gauss_legendre" => Quadrature::GaussLegendre,
            "riemann_left" => Quadrature::RiemannLeft,
            "riemann_right" => Quadrature::RiemannRight,
            "riemann_middle" => Quadrature::RiemannMiddle,
            "riemann_trapezoid" => Quadrature::RiemannTrapezoid,
            "adaptive" => Quadrature::Adaptive,
            other => {
                return Err(Error::Invalid {
                    op: "integrated_gradients",
                    detail: format!(
                        "unknown quadrature '{other}' (gausslegendre, riemann_left, riemann_right, riemann_middle, riemann_trapezoid, adaptive)"
                    ),
                });
            }
        })
    }

    /// The path points α ∈ [0, 1] and their weights for `n` steps (for `Adaptive`, its starting
    /// midpoint rule).
    pub fn points(self, n: usize) -> (Vec<f64>, Vec<f64>) {
        let nf = n as f64;
        let lin = |a: f64, b: f64| -> Vec<f64> {
            if n == 1 {
                return vec![a];
            }
            (0..n).map(|i| a + (b - a) * i as f64 / (nf - 1.0)).collect()
        };
        match self {
            Quadrature::GaussLegendre => {
                let (x, w) = gauss_legendre(n);
                (
                    x.iter().map(|v| 0.5 * (v + 1.0)).collect(),
                    w.iter().map(|v| 0.5 * v).collect(),
                )
            }
            Quadrature::RiemannLeft => (lin(0.0, 1.0 - 1.0 / nf), vec![1.0 / nf; n]),
            Quadrature::RiemannRight => (lin(1.0 / nf, 1.0), vec![1.0 / nf; n]),
            Quadrature::RiemannMiddle | Quadrature::Adaptive => (lin(0.5 / nf, 1.0 - 0.5 / nf), vec![1.0 / nf; n]),
            Quadrature::RiemannTrapezoid => {
                let mut w = vec![1.0 / nf; n];
                w[0] /= 2.0;
                w[n - 1] /= 2.0;
                (lin(0.0, 1.0), w)
            }
        }
    }
}

/// Gauss–Legendre nodes (ascending) and weights on [−1, 1]: Newton's method on the Legendre
/// polynomial from the Chebyshev-like first guess, in f64.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            // P_n(z) and P_n'(z) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * z * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 0 { 1.0 } else { p1 };
            let pn_1 = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (z * pn - pn_1) / (z * z - 1.0);
            let dz = pn / dp;
            z -= dz;
            if dz.abs() < 1e-15 {
                break;
            }
        }
        let wi = 2.0 / ((1.0 - z * z) * dp * dp);
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = wi;
        w[n - 1 - i] = wi;
    }
    (x, w)
}

/// The most integration steps: Captum's default is 50 and a completeness gap under 0.5% rarely
/// needs more than a few hundred; 10⁹ steps would first allocate 8 GB of quadrature points.
pub const MAX_STEPS: usize = 10_000;

/// Integrated-gradients settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IgOptions {
    pub steps: usize,
    pub quadrature: Quadrature,
    /// Rows (path points × samples) sent through the model at once.
    pub batch_rows: usize,
}

impl Default for IgOptions {
    fn default() -> Self {
        IgOptions {
            steps: 64,
            quadrature: Quadrature::GaussLegendre,
            batch_rows: 512,
        }
    }
}

/// Attributions and the completeness check of each sample.
#[derive(Clone, Debug)]
pub struct IgResult {
    /// Shaped like the input.
    pub attributions: Tensor,
    /// f(x) and f(b) of the explained output.
    pub f_x: Vec<f64>,
    pub f_baseline: Vec<f64>,
    /// Σ attributions − (f(x) − f(b)) (Captum's convergence delta).
    pub delta: Vec<f64>,
    /// Gradient evaluations per sample: the steps, or what the adaptive rule took.
    pub gradient_evaluations: Vec<usize>,
}

impl IgResult {
    /// |delta| / |f(x) − f(b)| per sample (0 when both are 0, infinite when only f differs not).
    pub fn completeness_gap(&self) -> Vec<f64> {
        self.delta
            .iter()
            .zip(self.f_x.iter().zip(&self.f_baseline))
            .map(|(d, (fx, fb))| {
                let df = (fx - fb).abs();
                if df > 0.0 {
                    d.abs() / df
                } else if *d == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            })
            .collect()
    }
}

/// Integrated gradients of the `target` output of each sample of `x` `[N, ...]` from `baseline`
/// (same shape as `x`, or one sample's shape, shared).
///
/// # Errors
/// Zero steps, a baseline of another shape (both shapes named), and the model's own errors.
pub fn integrated_gradients(
    model: &Forward,
    x: &Tensor,
    baseline: &Tensor,
    target: &Target,
    opts: &IgOptions,
) -> Result<IgResult> {
    if !(1..=MAX_STEPS).contains(&opts.steps) {
        return Err(Error::Invalid {
            op: "integrated_gradients",
            detail: format!("steps {} must be between 1 and {MAX_STEPS}", opts.steps),
        });
    }
    let x = x.detach().contiguous()?;
    let n = x.shape().first().copied().unwrap_or(0);
    let baseline = if baseline.shape() == &x.shape()[1..] {
        baseline.unsqueeze(0)?.broadcast_to(x.shape())?.contiguous()?
    } else if baseline.shape() == x.shape() {
        baseline.detach().contiguous()?
    } else {
        return Err(Error::ShapeMismatch {
            op: "integrated_gradients",
            lhs: x.shape().to_vec(),
            rhs: baseline.shape().to_vec(),
            detail: "the baseline must have the input's shape or one sample's shape".into(),
        });
    };
    let per = x.numel() / n.max(1);
    let (alphas, weights) = opts.quadrature.points(opts.steps);
    let xv = x.to_vec::<f32>()?;
    let bv = baseline.to_vec::<f32>()?;
    let mut total = vec![0.0f64; xv.len()];
    let steps_per_batch = (opts.batch_rows / n.max(1)).max(1);
    let ids = target.ids(n);
    let mut gradient_evaluations = vec![opts.steps; n];
    if opts.quadrature == Quadrature::Adaptive {
        (total, gradient_evaluations) =
            crate::adaptive::integrate(model, &xv, &bv, x.shape(), &ids, opts.steps, opts.batch_rows)?;
    }
    let fixed = if opts.quadrature == Quadrature::Adaptive {
        0
    } else {
        opts.steps
    };
    for chunk in (0..fixed).collect::<Vec<_>>().chunks(steps_per_batch) {
        // Path points of these steps, step-major: rows s·N + i.
        let mut pts = Vec::with_capacity(chunk.len() * xv.len());
        for &s in chunk {
            let a = alphas[s] as f32;
            pts.extend(bv.iter().zip(&xv).map(|(&b, &xi)| b + a * (xi - b)));
        }
        let mut shape = x.shape().to_vec();
        shape[0] = chunk.len() * n;
        let pts = Tensor::from_vec(pts, shape)?;
        let rep: Vec<usize> = chunk.iter().flat_map(|_| ids.iter().copied()).collect();
        let g = gradients(model, &pts, &Target::PerSample(rep))?.to_f64_vec();
        for (j, &s) in chunk.iter().enumerate() {
            let w = weights[s];
            let gs = &g[j * xv.len()..(j + 1) * xv.len()];
            total.iter_mut().zip(gs).for_each(|(t, &v)| *t += w * v);
        }
    }
    let attr: Vec<f32> = total
        .iter()
        .zip(xv.iter().zip(&bv))
        .map(|(t, (&xi, &b))| (t * (xi - b) as f64) as f32)
        .collect();
    let f_x = target_values(model, &x, target)?;
    let f_baseline = target_values(model, &baseline, target)?;
    let delta = (0..n)
        .map(|i| {
            let s: f64 = attr[i * per..(i + 1) * per].iter().map(|&v| v as f64).sum();
            s - (f_x[i] - f_baseline[i])
        })
        .collect();
    Ok(IgResult {
        attributions: Tensor::from_vec(attr, x.shape())?,
        f_x,
        f_baseline,
        delta,
        gradient_evaluations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        for n in [1, 2, 5, 64] {
            let (a, w) = Quadrature::GaussLegendre.points(n);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{n}");
            // ∫₀¹ α^(2n−1) dα = 1/(2n)
            let deg = 2 * n - 1;
            let q: f64 = a.iter().zip(&w).map(|(x, w)| w * x.powi(deg as i32)).sum();
            assert!((q - 1.0 / (deg as f64 + 1.0)).abs() < 1e-12, "{n}: {q}");
        }
        let (x, w) = gauss_legendre(3);
        let r = (0.6f64).sqrt();
        assert!((x[0] + r).abs() < 1e-14 && x[1].abs() < 1e-14 && (x[2] - r).abs() < 1e-14);
        assert!((w[1] - 8.0 / 9.0).abs() < 1e-14 && (w[0] - 5.0 / 9.0).abs() < 1e-14);
    }

    #[test]
    fn step_counts_beyond_the_bound_are_refused_before_allocating() {
        // 10⁹ steps used to allocate 8 GB of quadrature points and abort.
        let model = |x: &Tensor| x.sum(&[1], false);
        let x = Tensor::ones([1, 3]).unwrap();
        for steps in [0, MAX_STEPS + 1, 1_000_000_000] {
            let opts = IgOptions {
                steps,
                ..IgOptions::default()
            };
            let e = integrated_gradients(&model, &x, &Tensor::zeros([3]).unwrap(), &Target::All(0), &opts)
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains(&format!("steps {steps} must be between 1 and {MAX_STEPS}")),
                "{e}"
            );
        }
    }

    #[test]
    fn completeness_on_a_smooth_function() {
        // f(x) = Σ tanh(x_j)·x_j per sample: IG attributions sum to f(x) − f(0).
        let model = |x: &Tensor| x.tanh()?.mul(x)?.sum(&[1], false);
        let x = Tensor::from_vec(vec![0.3f32, -1.2, 2.0, 0.7, 1.5, -0.4], [2, 3]).unwrap();
        let r = integrated_gradients(
            &model,
            &x,
            &Tensor::zeros([3]).unwrap(),
            &Target::All(0),
            &IgOptions::default(),
        )
        .unwrap();
        assert!(
            r.completeness_gap().iter().all(|g| *g < 1e-5),
            "{:?}",
            r.completeness_gap()
        );
        // Separable f: each attribution is exactly its own term tanh(x_j)·x_j.
        let a = r.attributions.to_vec::<f32>().unwrap();
        for (ai, xi) in a.iter().zip(x.to_vec::<f32>().unwrap()) {
            assert!((ai - xi.tanh() * xi).abs() < 1e-5);
        }
        let e = integrated_gradients(
            &model,
            &x,
            &Tensor::zeros([2]).unwrap(),
            &Target::All(0),
            &IgOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[2, 3]") && e.contains("[2]"), "{e}");
    }
}
