//! Differential privacy accounting: how much privacy (ε at a given δ) a run of DP-SGD spends.
//!
//! DP-SGD's steps are Poisson-subsampled Gaussian mechanisms — each example joins a batch with
//! probability `q` (the sample rate), each per-example gradient is clipped to norm C and
//! Gaussian noise of standard deviation `σ·C` is added to their sum (σ is the noise
//! multiplier). An [`Accountant`] records the steps and answers ε:
//! - [`AccountantKind::Rdp`]: Rényi DP at Opacus's default orders (`rdp.rs`), converted with
//!   Balle et al. 2020 Thm. 21 as Opacus does; [`Accountant::epsilon_rdp_classic`] gives the
//!   classic conversion TF-Privacy's tutorials report.
//! - [`AccountantKind::Prv`]: the numerical composition of privacy loss random variables
//!   (Gopi, Lee, Wutschitz 2021; `prv.rs`), tighter, returned as an upper bound within
//!   `eps_error` = 0.01 as Opacus's `PRVAccountant`.
//!
//! [`noise_multiplier`] solves for the σ that reaches a target ε in a number of steps, as
//! Opacus's `get_noise_multiplier`.
//!
//! `dp_sgd.rs` is the DP-SGD option of the one training step: per-example clipping, noise and
//! Poisson sampling, accounted by the above.
//!
//! Layer: train.

pub mod dp_sgd;
mod fft;
pub mod prv;
pub mod rdp;
mod special;

use ferrite_core::{Error, Result};

/// `steps` steps at one sampling rate and noise multiplier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub noise_multiplier: f64,
    pub sample_rate: f64,
    pub steps: u64,
}

/// Which accountant answers ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountantKind {
    /// Rényi DP (Opacus's default).
    #[default]
    Rdp,
    /// Privacy loss random variables (tighter; Opacus's `accountant="prv"`).
    Prv,
}

impl AccountantKind {
    pub fn name(self) -> &'static str {
        match self {
            AccountantKind::Rdp => "rdp",
            AccountantKind::Prv => "prv",
        }
    }
}

impl std::str::FromStr for AccountantKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rdp" => Ok(AccountantKind::Rdp),
            "prv" => Ok(AccountantKind::Prv),
            other => Err(invalid(format!("unknown accountant {other:?}: expected rdp or prv"))),
        }
    }
}

/// The PRV accountant's ε precision (Opacus's default).
pub const PRV_EPS_ERROR: f64 = 0.01;

/// The noise multiplier above which [`noise_multiplier`] gives up (Opacus's `MAX_SIGMA`).
const MAX_SIGMA: f64 = 1e6;

fn invalid(detail: String) -> Error {
    Error::Invalid { op: "privacy", detail }
}

/// Checks a sampling rate and noise multiplier (the errors a user can cause).
pub fn check_step(sample_rate: f64, noise_multiplier: f64) -> Result<()> {
    if !(sample_rate > 0.0 && sample_rate <= 1.0) {
        return Err(invalid(format!(
            "sample rate q = {sample_rate} must be in (0, 1] (q = batch size / dataset size)"
        )));
    }
    if !(noise_multiplier > 0.0 && noise_multiplier.is_finite()) {
        return Err(invalid(format!(
            "noise multiplier σ = {noise_multiplier} must be a positive number"
        )));
    }
    Ok(())
}

/// Checks δ.
pub fn check_delta(delta: f64) -> Result<()> {
    if !(delta > 0.0 && delta < 1.0) {
        return Err(invalid(format!(
            "δ = {delta} must be in (0, 1); use δ < 1/n for n training examples"
        )));
    }
    Ok(())
}

/// A privacy ledger: the steps taken so far, and the ε they spent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accountant {
    pub kind: AccountantKind,
    history: Vec<Step>,
}

impl Accountant {
    pub fn new(kind: AccountantKind) -> Self {
        Accountant {
            kind,
            history: Vec::new(),
        }
    }

    /// A ledger that has already taken `steps` identical steps.
    pub fn with_steps(kind: AccountantKind, sample_rate: f64, noise_multiplier: f64, steps: u64) -> Result<Self> {
        let mut accountant = Accountant::new(kind);
        accountant.add(sample_rate, noise_multiplier, steps)?;
        Ok(accountant)
    }

    /// Records `steps` steps (consecutive identical steps share one entry, as in Opacus).
    pub fn add(&mut self, sample_rate: f64, noise_multiplier: f64, steps: u64) -> Result<()> {
        check_step(sample_rate, noise_multiplier)?;
        if steps == 0 {
            return Ok(());
        }
        match self.history.last_mut() {
            Some(last) if last.sample_rate == sample_rate && last.noise_multiplier == noise_multiplier => {
                last.steps += steps
            }
            _ => self.history.push(Step {
                noise_multiplier,
                sample_rate,
                steps,
            }),
        }
        Ok(())
    }

    /// The steps recorded so far.
    pub fn history(&self) -> &[Step] {
        &self.history
    }

    /// The total number of steps recorded.
    pub fn steps(&self) -> u64 {
        self.history.iter().map(|s| s.steps).sum()
    }

    /// ε spent at `delta` (the guarantee: for PRV, the upper bound).
    pub fn epsilon(&self, delta: f64) -> Result<f64> {
        check_delta(delta)?;
        match self.kind {
            AccountantKind::Rdp => Ok(self.rdp_epsilon(delta, rdp::Conversion::Balle2020).0),
            AccountantKind::Prv => Ok(prv::epsilon(&self.history, delta, PRV_EPS_ERROR, delta / 1000.0)?.upper),
        }
    }

    /// RDP ε and the best order, with the classic conversion (Mironov 2017) — the figure
    /// TF-Privacy's tutorials report; looser than [`Accountant::epsilon`].
    pub fn epsilon_rdp_classic(&self, delta: f64) -> Result<(f64, f64)> {
        check_delta(delta)?;
        Ok(self.rdp_epsilon(delta, rdp::Conversion::Classic))
    }

    /// RDP ε and the order that gives it, with Balle et al.'s conversion.
    pub fn epsilon_rdp(&self, delta: f64) -> Result<(f64, f64)> {
        check_delta(delta)?;
        Ok(self.rdp_epsilon(delta, rdp::Conversion::Balle2020))
    }

    fn rdp_epsilon(&self, delta: f64, conversion: rdp::Conversion) -> (f64, f64) {
        if self.history.is_empty() {
            return (0.0, f64::NAN);
        }
        let orders = rdp::default_orders();
        let mut curve = vec![0.0; orders.len()];
        for step in &self.history {
            for (c, r) in curve
                .iter_mut()
                .zip(rdp::rdp(step.sample_rate, step.noise_multiplier, step.steps, &orders))
            {
                *c += r;
            }
        }
        rdp::epsilon(&orders, &curve, delta, conversion)
    }
}

/// The noise multiplier σ that spends at most `target_epsilon` at `delta` in `steps` steps at
/// sampling rate `sample_rate`, found as Opacus's `get_noise_multiplier` finds it: doubling
/// from σ = 20 until ε ≤ target, then bisecting until ε is within `tolerance` below the target.
/// Returns σ and the ε it spends. Errors when the target is below what any σ reaches (the
/// message gives the smallest reachable ε).
pub fn noise_multiplier(
    kind: AccountantKind,
    target_epsilon: f64,
    delta: f64,
    sample_rate: f64,
    steps: u64,
    tolerance: f64,
) -> Result<(f64, f64)> {
    check_delta(delta)?;
    check_step(sample_rate, 1.0)?;
    if !(target_epsilon > 0.0 && target_epsilon.is_finite()) {
        return Err(invalid(format!(
            "target ε = {target_epsilon} must be a positive number"
        )));
    }
    if steps == 0 {
        return Err(invalid(
            "steps must be at least 1 to solve for a noise multiplier".into(),
        ));
    }
    let eps_at = |sigma: f64| Accountant::with_steps(kind, sample_rate, sigma, steps)?.epsilon(delta);
    let (mut sigma_low, mut sigma_high) = (0.0_f64, 10.0_f64);
    let mut eps_high = f64::INFINITY;
    while eps_high > target_epsilon {
        sigma_high *= 2.0;
        if sigma_high > MAX_SIGMA {
            let floor = eps_at(MAX_SIGMA)?;
            return Err(invalid(format!(
                "ε = {target_epsilon} at δ = {delta:e} cannot be reached in {steps} steps at q = {sample_rate}: \
                 the smallest reachable ε is {floor:.4} ({} accountant at σ = {MAX_SIGMA:e}); raise the target ε or δ",
                kind.name()
            )));
        }
        eps_high = eps_at(sigma_high)?;
    }
    while target_epsilon - eps_high > tolerance {
        let sigma = 0.5 * (sigma_low + sigma_high);
        let eps = eps_at(sigma)?;
        if eps < target_epsilon {
            sigma_high = sigma;
            eps_high = eps;
        } else {
            sigma_low = sigma;
        }
    }
    Ok((sigma_high, eps_high))
}
