//! DP-SGD (Abadi et al. 2016) as an option of the one training step: per-example gradients
//! (from the taps of a tapped forward pass, `ferrite_nn::per_example`), each clipped to norm C,
//! summed, plus Gaussian noise of standard deviation σ·C, divided by the expected batch size —
//! Opacus's `DPOptimizer` with `loss_reduction="mean"`. Batches are Poisson samples (each
//! example joins with probability q), which is what the accountants assume; shuffled
//! fixed-size batches are allowed but their ε is not covered by the analysis and says so.

use super::{check_delta, check_step, noise_multiplier, Accountant, AccountantKind};
use ferrite_core::{Error, GradStore, Result, Rng, Tensor};
use ferrite_nn::Tap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Mixed into the run's seed for the noise stream (one draw per step, so a resumed run adds the
/// same noise the uninterrupted one would have).
pub const NOISE_STREAM: u64 = 0x0015_E5EE_D000_0000;
/// Mixed into the run's seed for Poisson sampling.
pub const POISSON_STREAM: u64 = 0x9015_5EED_0000_0000;

/// How DP-SGD draws its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Each example joins each batch with probability q = batch_size / n (variable batch
    /// sizes, possibly empty): the accountants' assumption.
    #[default]
    Poisson,
    /// Shuffled fixed-size batches: ε is reported but NOT covered by the accountants' analysis.
    Shuffle,
}

/// The `[privacy]` section of a training config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// The ε to spend by the end of training: σ is solved for it (give this or `noise_multiplier`).
    pub target_epsilon: Option<f64>,
    /// σ: noise standard deviation over the clipping norm.
    pub noise_multiplier: Option<f64>,
    /// C: each example's gradient is clipped to this L2 norm.
    pub max_grad_norm: f64,
    /// δ of the (ε, δ) guarantee; should be below 1/n.
    pub delta: f64,
    #[serde(default)]
    pub accountant: AccountantKind,
    #[serde(default)]
    pub sampling: Sampling,
}

/// DP-SGD's settings for one run, resolved (σ known).
#[derive(Debug, Clone, PartialEq)]
pub struct DpSgd {
    pub noise_multiplier: f64,
    pub max_grad_norm: f64,
    /// q = batch size / training examples.
    pub sample_rate: f64,
    /// q·n: what the noisy sum is divided by (Opacus's `expected_batch_size`).
    pub expected_batch_size: f64,
    pub delta: f64,
    pub accountant: AccountantKind,
    pub sampling: Sampling,
    /// Training stops before an epoch that would spend more than this.
    pub target_epsilon: Option<f64>,
}

impl DpSgd {
    /// Resolves a config for `examples` training examples in batches of `batch_size` over
    /// `total_steps` steps: checks every value and solves σ for a target ε.
    ///
    /// # Errors
    /// Values out of range (named), both or neither of `target_epsilon` and `noise_multiplier`,
    /// or a target no noise reaches in those steps (the message gives the smallest reachable ε).
    pub fn resolve(cfg: &PrivacyConfig, examples: usize, batch_size: usize, total_steps: u64) -> Result<DpSgd> {
        let bad = |detail: String| Error::Invalid { op: "privacy", detail };
        if !(cfg.max_grad_norm > 0.0 && cfg.max_grad_norm.is_finite()) {
            return Err(bad(format!(
                "max_grad_norm = {} must be a positive number",
                cfg.max_grad_norm
            )));
        }
        check_delta(cfg.delta)?;
        if examples == 0 || batch_size == 0 {
            return Err(bad(format!(
                "{examples} training examples in batches of {batch_size}: nothing to sample"
            )));
        }
        let sample_rate = (batch_size as f64 / examples as f64).min(1.0);
        let sigma = match (cfg.noise_multiplier, cfg.target_epsilon) {
            (Some(sigma), None) => sigma,
            (None, Some(target)) => {
                noise_multiplier(cfg.accountant, target, cfg.delta, sample_rate, total_steps, 0.01)?.0
            }
            _ => return Err(bad("give exactly one of target_epsilon and noise_multiplier".into())),
        };
        check_step(sample_rate, sigma)?;
        Ok(DpSgd {
            noise_multiplier: sigma,
            max_grad_norm: cfg.max_grad_norm,
            sample_rate,
            expected_batch_size: sample_rate * examples as f64,
            delta: cfg.delta,
            accountant: cfg.accountant,
            sampling: cfg.sampling,
            target_epsilon: cfg.target_epsilon,
        })
    }

    /// ε spent after `steps` steps.
    ///
    /// # Errors
    /// Accountant failures (grids too large for PRV).
    pub fn epsilon_after(&self, steps: u64) -> Result<f64> {
        Accountant::with_steps(self.accountant, self.sample_rate, self.noise_multiplier, steps)?.epsilon(self.delta)
    }

    /// The private gradients of `params` for one step: per-example gradients from `taps` and
    /// `grads` (the backward pass of the batch's summed loss), clipped to `max_grad_norm`,
    /// summed, noised with seed `noise_seed`, divided by the expected batch size. An empty
    /// batch (Poisson sampling can draw one) gives noise alone.
    ///
    /// # Errors
    /// A parameter that no tap covers (it has no per-example gradient: named).
    pub fn privatize(
        &self,
        taps: &[Tap],
        grads: &GradStore,
        params: &[(String, Tensor)],
        noise_seed: u64,
    ) -> Result<GradStore> {
        let per_example: Vec<_> = taps.iter().map(|t| t.per_example(grads)).collect::<Result<_>>()?;
        let batch = taps.first().map_or(0, |t| t.input.shape()[0]);
        let mut norms = vec![0.0f64; batch];
        for p in per_example.iter().flatten() {
            for (n, v) in norms.iter_mut().zip(p.squared_norms()?) {
                *n += v;
            }
        }
        // Opacus's clip factor: min(1, C / (‖g‖ + 1e-6)).
        let scale: Vec<f32> = norms
            .iter()
            .map(|n| (self.max_grad_norm / (n.sqrt() + 1e-6)).min(1.0) as f32)
            .collect();
        let mut sums: HashMap<_, Tensor> = HashMap::new();
        let mut add = |t: &Tensor, g: Tensor| -> Result<()> {
            let acc = match sums.remove(&t.id()) {
                Some(prev) => prev.add(&g)?,
                None => g,
            };
            sums.insert(t.id(), acc);
            Ok(())
        };
        for (tap, p) in taps.iter().zip(&per_example) {
            match p {
                Some(p) => {
                    let (w, b) = p.scaled_sum(&scale)?;
                    add(&tap.weight, w)?;
                    if let (Some(bias), Some(b)) = (&tap.bias, b) {
                        add(bias, b)?;
                    }
                }
                None => {
                    add(&tap.weight, tap.weight.zeros_like())?;
                    if let Some(bias) = &tap.bias {
                        add(bias, bias.zeros_like())?;
                    }
                }
            }
        }
        let mut rng = Rng::new(noise_seed);
        let std = self.noise_multiplier * self.max_grad_norm;
        let mut out = GradStore::new();
        for (name, param) in params {
            let sum = match sums.remove(&param.id()) {
                Some(s) => s,
                None if batch == 0 => param.zeros_like(),
                None => {
                    return Err(Error::Invalid {
                        op: "DP-SGD",
                        detail: format!(
                            "parameter {name} has no per-example gradient: DP-SGD supports dense and conv2d (groups = 1) layers; \
                             batch norm mixes the examples of a batch (use layer norm), and embeddings, layer norms and \
                             Transformer blocks have no per-example rule yet"
                        ),
                    })
                }
            };
            let noise = Tensor::randn_with(&mut rng, param.shape())?.to_dtype(sum.dtype())?;
            let noisy = sum
                .add(&noise.mul_scalar(std)?)?
                .mul_scalar(1.0 / self.expected_batch_size)?;
            out.insert(param, noisy);
        }
        Ok(out)
    }
}

/// What a DP-SGD run reports: ε at δ after all its steps, and how it got there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivacySpent {
    pub epsilon: f64,
    pub delta: f64,
    pub noise_multiplier: f64,
    pub max_grad_norm: f64,
    pub sample_rate: f64,
    pub steps: u64,
    pub accountant: AccountantKind,
    /// False with shuffled batches: the accountants assume Poisson sampling, so ε is not a
    /// guarantee then.
    pub guaranteed: bool,
}

impl std::fmt::Display for PrivacySpent {
    /// `ε = 2.9941 at δ = 1e-4 after 180 steps (σ = 1.8311, C = 1, q = 0.08901; rdp accountant)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ε = {:.4} at δ = {:e} after {} steps (σ = {:.4}, C = {}, q = {:.5}; {} accountant{})",
            self.epsilon,
            self.delta,
            self.steps,
            self.noise_multiplier,
            self.max_grad_norm,
            self.sample_rate,
            self.accountant.name(),
            if self.guaranteed {
                ""
            } else {
                "; shuffled batches: not a guarantee"
            }
        )
    }
}

impl DpSgd {
    /// What a run reports after `steps` steps.
    ///
    /// # Errors
    /// Accountant failures.
    pub fn spent(&self, steps: u64) -> Result<PrivacySpent> {
        Ok(PrivacySpent {
            epsilon: self.epsilon_after(steps)?,
            delta: self.delta,
            noise_multiplier: self.noise_multiplier,
            max_grad_norm: self.max_grad_norm,
            sample_rate: self.sample_rate,
            steps,
            accountant: self.accountant,
            guaranteed: self.sampling == Sampling::Poisson,
        })
    }
}

/// The examples of one Poisson-sampled batch: each of `0..n` independently with probability `q`.
pub fn poisson_batch(rng: &mut Rng, n: usize, q: f64) -> Vec<usize> {
    (0..n).filter(|_| rng.uniform() < q).collect()
}

/// Epoch `epoch`'s `steps` Poisson-sampled batches of `0..n`, drawn from the run's Poisson
/// stream of `seed` (so a resumed run draws the same batches).
pub fn poisson_epoch(seed: u64, epoch: usize, n: usize, q: f64, steps: usize) -> Vec<Vec<usize>> {
    let mut rng = Rng::new(crate::step::stream_seed(seed, POISSON_STREAM, epoch as u64));
    (0..steps).map(|_| poisson_batch(&mut rng, n, q)).collect()
}
