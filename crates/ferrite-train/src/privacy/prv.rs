//! The PRV accountant (Gopi, Lee, Wutschitz 2021): the privacy loss of each step is a random
//! variable; composing steps sums them, so the density of the total is the convolution power of
//! one step's density, computed by FFT on a grid fine enough that ε is known to within
//! `eps_error`. Follows Opacus's `PRVAccountant` (domain size from an RDP bound, mesh from the
//! step count, mean-corrected discretization, `+eps_error` on the returned ε) except that the
//! grid is zero-padded to a power of two for the FFT, which only widens the circular buffer.

use super::fft::{circular_power, convolve};
use super::rdp::{self, Conversion};
use super::special::erfc;
use super::Step;
use ferrite_core::{Error, Result};
use std::f64::consts::SQRT_2;

/// The largest grid this accountant builds (2²⁶ points, 1 GiB of spectrum).
const MAX_GRID: usize = 1 << 26;

/// ε bounds for a target δ: the true ε of the composed mechanism lies in `[lower, upper]`;
/// `upper` is the guarantee to report.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PrvEpsilon {
    pub lower: f64,
    pub estimate: f64,
    pub upper: f64,
}

/// The privacy loss random variable of one Poisson-subsampled Gaussian step (Gopi et al.,
/// propositions B1 and B4), truncated to `[t_min, t_max]`.
struct TruncatedGaussianPrv {
    q: f64,
    sigma: f64,
    t_min: f64,
    t_max: f64,
    cdf_at_min: f64,
    mass: f64,
}

impl TruncatedGaussianPrv {
    fn new(q: f64, sigma: f64, t_min: f64, t_max: f64) -> Self {
        let mut prv = TruncatedGaussianPrv {
            q,
            sigma,
            t_min,
            t_max,
            cdf_at_min: 0.0,
            mass: 1.0,
        };
        prv.cdf_at_min = prv.full_cdf(t_min);
        prv.mass = prv.full_cdf(t_max) - prv.cdf_at_min;
        prv
    }

    /// The untruncated CDF.
    fn full_cdf(&self, t: f64) -> f64 {
        let (q, sigma) = (self.q, self.sigma);
        if t <= (1.0 - q).ln() {
            return 0.0;
        }
        let z = ((t.exp() + q - 1.0) / q).ln();
        let two_s2z = 2.0 * z * sigma * sigma;
        let scale = 2.0 * SQRT_2 * sigma;
        -q * erfc((two_s2z - 1.0) / scale) / 2.0 - (1.0 - q) * erfc((two_s2z + 1.0) / scale) / 2.0 + 1.0
    }

    fn cdf(&self, t: f64) -> f64 {
        if t < self.t_min {
            0.0
        } else if t < self.t_max {
            (self.full_cdf(t) - self.cdf_at_min) / self.mass
        } else {
            1.0
        }
    }

    /// `E[t] = Σ [t·F(t)] − ∫F` over the pieces Opacus uses: log-spaced towards 0 from both
    /// ends, where the density changes fastest.
    fn mean(&self) -> f64 {
        let lower_exp = self.t_min.abs().log10().trunc();
        let upper_exp = self.t_max.log10().trunc();
        let logspace =
            |start: f64, stop: f64| (0..10).map(move |k| 10f64.powf(start + (stop - start) * f64::from(k) / 9.0));
        let mut points = vec![self.t_min];
        points.extend(logspace(lower_exp, -5.0).map(|x| -x));
        points.push(0.0);
        points.extend(logspace(-5.0, upper_exp));
        points.push(self.t_max);
        let f = |t: f64| self.cdf(t);
        points
            .windows(2)
            .map(|w| {
                let (l, r) = (w[0], w[1]);
                r * f(r) - l * f(l) - integrate(&f, l, r)
            })
            .sum()
    }
}

/// Adaptive Simpson integration of `f` over `[a, b]` to ~1e-13 absolute.
fn integrate(f: &dyn Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    /// `[a, b]` with `f` at both ends and the middle, and Simpson's estimate over it.
    struct Piece {
        a: f64,
        b: f64,
        fa: f64,
        fm: f64,
        fb: f64,
        whole: f64,
    }
    fn refine(f: &dyn Fn(f64) -> f64, p: Piece, tol: f64, depth: u32) -> f64 {
        let m = 0.5 * (p.a + p.b);
        let (flm, frm) = (f(0.5 * (p.a + m)), f(0.5 * (m + p.b)));
        let left = (m - p.a) / 6.0 * (p.fa + 4.0 * flm + p.fm);
        let right = (p.b - m) / 6.0 * (p.fm + 4.0 * frm + p.fb);
        let diff = left + right - p.whole;
        if depth == 0 || diff.abs() <= 15.0 * tol {
            return left + right + diff / 15.0;
        }
        let lower = Piece {
            a: p.a,
            b: m,
            fa: p.fa,
            fm: flm,
            fb: p.fm,
            whole: left,
        };
        let upper = Piece {
            a: m,
            b: p.b,
            fa: p.fm,
            fm: frm,
            fb: p.fb,
            whole: right,
        };
        refine(f, lower, tol / 2.0, depth - 1) + refine(f, upper, tol / 2.0, depth - 1)
    }
    if b <= a {
        return 0.0;
    }
    let (fa, fm, fb) = (f(a), f(0.5 * (a + b)), f(b));
    let whole = (b - a) / 6.0 * (fa + 4.0 * fm + fb);
    refine(
        f,
        Piece {
            a,
            b,
            fa,
            fm,
            fb,
            whole,
        },
        1e-13,
        40,
    )
}

/// A density on the grid `t_i = t_min + i·dt` (`t_min` includes the mean corrections applied so
/// far); `offset` is `−t_min/dt` of the uncorrected grid, the index of t = 0, which composition
/// needs to line sums back up with the grid.
struct DiscretePrv {
    pmf: Vec<f64>,
    t_min: f64,
    dt: f64,
    offset: usize,
}

impl DiscretePrv {
    /// The `n`-fold composition with itself: a circular convolution power; index `j` of the result
    /// is the sum whose uncorrected value is `t_min + j·dt`, found at `j + (n − 1)·offset`.
    fn self_compose(&self, n: u64) -> DiscretePrv {
        let len = self.pmf.len();
        let circ = circular_power(&self.pmf, n);
        let shift = ((n - 1) as u128 * self.offset as u128 % len as u128) as usize;
        let pmf = (0..len).map(|j| circ[(j + shift) % len]).collect();
        let base = -(self.offset as f64) * self.dt;
        let correction = self.t_min - base;
        DiscretePrv {
            pmf,
            t_min: base + correction * n as f64,
            dt: self.dt,
            offset: self.offset,
        }
    }

    /// Composition with a different PRV on the same grid (linear convolution, then the window
    /// that lines up with the grid — numpy's `convolve(mode="same")` on Opacus's grid).
    fn compose(&self, other: &DiscretePrv) -> DiscretePrv {
        let full = convolve(&self.pmf, &other.pmf);
        let pmf = (0..self.pmf.len())
            .map(|j| full.get(j + self.offset).copied().unwrap_or(0.0))
            .collect();
        let base = -(self.offset as f64) * self.dt;
        let t_min = self.t_min + (other.t_min - base);
        DiscretePrv {
            pmf,
            t_min,
            dt: self.dt,
            offset: self.offset,
        }
    }

    /// ε at δ from the composed density: `δ(ε) = Σ_{t ≥ ε} p(t)(1 − e^{ε−t})`, inverted on the grid.
    fn epsilon(&self, delta: f64, delta_error: f64, eps_error: f64) -> Result<PrvEpsilon> {
        let n = self.pmf.len();
        if f64::EPSILON * n as f64 > delta - delta_error {
            return Err(Error::Invalid {
                op: "privacy accountant (prv)",
                detail: format!(
                    "δ = {delta:e} is too small for a {n}-point grid: rounding errors would dominate; raise δ or eps_error"
                ),
            });
        }
        let ts: Vec<f64> = (0..n).map(|i| self.t_min + i as f64 * self.dt).collect();
        let (mut d1, mut d2) = (vec![0.0; n], vec![0.0; n]);
        let (mut s1, mut s2) = (0.0, 0.0);
        for i in (0..n).rev() {
            s1 += self.pmf[i];
            s2 += self.pmf[i] * (-ts[i]).exp();
            d1[i] = s1;
            d2[i] = s2;
        }
        let ndelta: Vec<f64> = (0..n).map(|i| ts[i].exp() * d2[i] - d1[i]).collect();
        let find = |target: f64| -> Result<f64> {
            let i = ndelta.partition_point(|&v| v < -target);
            if i == 0 || i >= n {
                return Err(Error::Invalid {
                    op: "privacy accountant (prv)",
                    detail: format!("cannot compute ε at δ = {target:e}: it lies outside the grid"),
                });
            }
            Ok(((d1[i] - target) / d2[i]).ln())
        };
        Ok(PrvEpsilon {
            upper: find(delta - delta_error)? + eps_error,
            lower: find(delta + delta_error)? - eps_error,
            estimate: find(delta)?,
        })
    }
}

/// ε at `delta` for a history of steps, to within `eps_error` (Opacus's default 0.01), with
/// `delta_error` (Opacus's default δ/1000).
pub fn epsilon(history: &[Step], delta: f64, eps_error: f64, delta_error: f64) -> Result<PrvEpsilon> {
    let total: u64 = history.iter().map(|s| s.steps).sum();
    if total == 0 {
        return Ok(PrvEpsilon {
            lower: 0.0,
            estimate: 0.0,
            upper: 0.0,
        });
    }
    let half_width = safe_domain_half_width(history, eps_error, delta_error);
    let dt = eps_error / (total as f64 * (12.0 / delta_error).ln() / 2.0).sqrt();
    if !(half_width / dt).is_finite() || half_width / dt > MAX_GRID as f64 {
        return Err(Error::Invalid {
            op: "privacy accountant (prv)",
            detail: format!(
                "the privacy loss of {total} steps spans more than a {MAX_GRID}-point grid can hold at eps_error {eps_error} \
                 (too little noise for PRV); use the RDP accountant"
            ),
        });
    }
    // Opacus's aligned domain: [floor(−L/dt)·dt, ceil(L/dt)·dt], an even number of points.
    let offset = (half_width / dt).ceil() as usize;
    let mut size = (half_width / dt).ceil() as usize + offset + 1;
    if size % 2 == 1 {
        size += 1;
    }
    let t_min = -(offset as f64) * dt;
    let t_max = t_min + (size - 1) as f64 * dt;
    let grid = size.next_power_of_two();
    if grid > MAX_GRID {
        return Err(Error::Invalid {
            op: "privacy accountant (prv)",
            detail: format!(
                "{total} steps at eps_error {eps_error} need a {size}-point grid (at most {MAX_GRID}); raise eps_error or use the RDP accountant"
            ),
        });
    }
    let mut composed: Option<DiscretePrv> = None;
    for step in history.iter().filter(|s| s.steps > 0) {
        let prv = TruncatedGaussianPrv::new(step.sample_rate, step.noise_multiplier, t_min, t_max);
        let discrete = discretize(&prv, t_min, dt, size, grid, offset)?;
        let powered = discrete.self_compose(step.steps);
        composed = Some(match composed {
            None => powered,
            Some(left) => left.compose(&powered),
        });
    }
    match composed {
        Some(c) => c.epsilon(delta, delta_error, eps_error),
        None => Ok(PrvEpsilon {
            lower: 0.0,
            estimate: 0.0,
            upper: 0.0,
        }),
    }
}

/// The grid's half-width L (Gopi et al., remark 5.6, as their code and Opacus compute it): an
/// RDP bound on the composed loss at δ_err/4 and on each step's at δ_err/(8·steps), plus 3.
fn safe_domain_half_width(history: &[Step], eps_error: f64, delta_error: f64) -> f64 {
    let orders = rdp::default_orders();
    let total: u64 = history.iter().map(|s| s.steps).sum();
    let mut curve = vec![0.0; orders.len()];
    for step in history {
        for (c, r) in curve
            .iter_mut()
            .zip(rdp::rdp(step.sample_rate, step.noise_multiplier, step.steps, &orders))
        {
            *c += r;
        }
    }
    let mut l_max = rdp::epsilon(&orders, &curve, delta_error / 4.0, Conversion::Balle2020).0;
    for step in history {
        let one = rdp::rdp(step.sample_rate, step.noise_multiplier, 1, &orders);
        l_max = l_max.max(rdp::epsilon(&orders, &one, delta_error / (8.0 * total as f64), Conversion::Balle2020).0);
    }
    l_max.max(eps_error) + 3.0
}

/// The truncated PRV's mass in each grid cell `[t_i − dt/2, t_i + dt/2)`, zero-padded to `grid`
/// points, with the grid shifted so the discrete mean equals the continuous one.
fn discretize(
    prv: &TruncatedGaussianPrv,
    t_min: f64,
    dt: f64,
    size: usize,
    grid: usize,
    offset: usize,
) -> Result<DiscretePrv> {
    let mut pmf = vec![0.0; grid];
    let mut mean_discrete = 0.0;
    for (i, p) in pmf.iter_mut().take(size).enumerate() {
        let t = t_min + i as f64 * dt;
        *p = prv.cdf(t + dt / 2.0) - prv.cdf(t - dt / 2.0);
        mean_discrete += t * *p;
    }
    let shift = prv.mean() - mean_discrete;
    if shift.abs() >= dt / 2.0 {
        return Err(Error::Invalid {
            op: "privacy accountant (prv)",
            detail: format!("the discretized loss's mean is off by {shift:e}, more than half a grid step ({dt:e})"),
        });
    }
    Ok(DiscretePrv {
        pmf,
        t_min: t_min + shift,
        dt,
        offset,
    })
}
