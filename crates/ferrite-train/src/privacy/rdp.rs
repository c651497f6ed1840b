//! Rényi-DP accounting of the Poisson-subsampled Gaussian mechanism (Mironov 2017; Mironov,
//! Talwar, Zhang 2019 for the sampled case), as Opacus's and TF-Privacy's `compute_rdp` do it,
//! and the two conversions from RDP to (ε, δ)-DP: the classic one (Mironov 2017, Prop. 3; what
//! TF-Privacy's tutorials report) and Balle et al. 2020, Thm. 21 (Opacus's, tighter).

use super::special::{ln_binomial, log_add, log_erfc, log_sub};
use std::f64::consts::SQRT_2;

/// Opacus's `RDPAccountant.DEFAULT_ALPHAS`: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
pub fn default_orders() -> Vec<f64> {
    (1..100)
        .map(|x| 1.0 + f64::from(x) / 10.0)
        .chain((12..64).map(f64::from))
        .collect()
}

/// How RDP at a set of orders becomes ε at a given δ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// `ε = rdp(α) − log δ / (α − 1)` (Mironov 2017, Prop. 3).
    Classic,
    /// `ε = rdp(α) − (log δ + log α)/(α − 1) + log((α − 1)/α)` (Balle et al. 2020, Thm. 21).
    Balle2020,
}

/// RDP of one step of the sampled Gaussian mechanism at `order`: sampling rate `q ∈ (0, 1]`,
/// noise multiplier `sigma > 0`. `+inf` where it is unbounded; NaN if the series for a
/// fractional order did not settle (the conversion skips such orders, as Opacus's `nanargmin`).
pub fn rdp_step(q: f64, sigma: f64, order: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if q == 1.0 {
        return order / (2.0 * sigma * sigma);
    }
    if order.is_infinite() {
        return f64::INFINITY;
    }
    let log_a = if order.fract() == 0.0 {
        log_a_integer(q, sigma, order as u64)
    } else {
        log_a_fractional(q, sigma, order).unwrap_or(f64::NAN)
    };
    log_a / (order - 1.0)
}

/// RDP after `steps` steps at each of `orders` (RDP composes by addition).
pub fn rdp(q: f64, sigma: f64, steps: u64, orders: &[f64]) -> Vec<f64> {
    orders
        .iter()
        .map(|&order| rdp_step(q, sigma, order) * steps as f64)
        .collect()
}

/// The smallest ε over `orders` for the RDP curve `rdp`, and the order that gives it.
/// `(inf, NaN)` when no order gives a number.
pub fn epsilon(orders: &[f64], rdp: &[f64], delta: f64, conversion: Conversion) -> (f64, f64) {
    let mut best = (f64::INFINITY, f64::NAN);
    let mut any = false;
    for (&alpha, &r) in orders.iter().zip(rdp) {
        let eps = match conversion {
            Conversion::Classic => r - delta.ln() / (alpha - 1.0),
            Conversion::Balle2020 => r - (delta.ln() + alpha.ln()) / (alpha - 1.0) + ((alpha - 1.0) / alpha).ln(),
        };
        if eps.is_nan() {
            continue;
        }
        if !any || eps < best.0 {
            best = (eps, alpha);
            any = true;
        }
    }
    best
}

/// `log A_α` for an integer order: the binomial expansion (Mironov, Talwar, Zhang 2019, §3.3).
fn log_a_integer(q: f64, sigma: f64, alpha: u64) -> f64 {
    let (log_q, log_1mq) = (q.ln(), (1.0 - q).ln());
    let mut log_a = f64::NEG_INFINITY;
    for i in 0..=alpha {
        let (fi, fa) = (i as f64, alpha as f64);
        let log_coef = ln_binomial(alpha, i) + fi * log_q + (fa - fi) * log_1mq;
        log_a = log_add(log_a, log_coef + (fi * fi - fi) / (2.0 * sigma * sigma));
    }
    log_a
}

/// `log A_α` for a fractional order: the two half-line integrals as alternating series, summed
/// until their terms fall below e⁻³⁰. `None` if the series does not settle or goes negative.
fn log_a_fractional(q: f64, sigma: f64, alpha: f64) -> Option<f64> {
    let (log_q, log_1mq) = (q.ln(), (1.0 - q).ln());
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let two_var = 2.0 * sigma * sigma;
    // binom(α, i), built term by term: it alternates in sign once i > α.
    let mut coef = 1.0_f64;
    for i in 0..100_000u32 {
        let fi = f64::from(i);
        let j = alpha - fi;
        let log_coef = coef.abs().ln();
        let log_t0 = log_coef + fi * log_q + j * log_1mq;
        let log_t1 = log_coef + j * log_q + fi * log_1mq;
        let log_e0 = 0.5_f64.ln() + log_erfc((fi - z0) / (SQRT_2 * sigma));
        let log_e1 = 0.5_f64.ln() + log_erfc((z0 - j) / (SQRT_2 * sigma));
        let log_s0 = log_t0 + (fi * fi - fi) / two_var + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
        if coef > 0.0 {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0)?;
            log_a1 = log_sub(log_a1, log_s1)?;
        }
        if log_s0.max(log_s1) < -30.0 {
            return Some(log_add(log_a0, log_a1));
        }
        coef *= (alpha - fi) / (fi + 1.0);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_batch_is_the_gaussian_mechanism() {
        // q = 1: RDP of the Gaussian mechanism is α / (2σ²) at every order.
        let r = rdp(1.0, 2.0, 3, &[2.0, 4.5]);
        assert!((r[0] - 3.0 * 2.0 / 8.0).abs() < 1e-15);
        assert!((r[1] - 3.0 * 4.5 / 8.0).abs() < 1e-15);
    }

    #[test]
    fn fractional_orders_sit_between_their_integer_neighbours() {
        // RDP is non-decreasing in the order.
        let (q, sigma) = (0.01, 1.0);
        let (a, b, c) = (
            rdp_step(q, sigma, 3.0),
            rdp_step(q, sigma, 3.5),
            rdp_step(q, sigma, 4.0),
        );
        assert!(a <= b && b <= c, "{a} {b} {c}");
    }
}
