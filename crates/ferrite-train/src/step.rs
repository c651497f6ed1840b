//! The one training step every model trains with: [`Trainable`] says how a model turns a batch
//! into a loss, and [`TrainStep`] runs schedule → dropout seed → forward → loss → backward → clip →
//! optimizer step on it. `fit` (Keras-style `Sequential`), the seq2seq Transformer and
//! fine-tuning all call this; so will differentially private, data-parallel and federated
//! training, as options of the same step.
//!
//! Layer: train. Reproducibility: dropout masks of step `t` come from a generator seeded by
//! (seed, t) alone, and the step count travels in checkpoints ([`TrainState`]), so a resumed run
//! continues exactly as the uninterrupted one (same thread count → same numbers).

use crate::data::splitmix64;
use crate::privacy::dp_sgd::{DpSgd, NOISE_STREAM};
use ferrite_core::{manual_seed, Error, GradStore, Result, Tensor};
use ferrite_nn::{clip_grad_norm, clip_grad_value, LrSchedule, Optimizer, Tap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Mixed into the run's seed so dropout masks, shuffle orders and augmentations come from
/// unrelated streams.
pub const DROPOUT_STREAM: u64 = 0xD0D0_5EED_0000_0000;
pub const AUGMENT_STREAM: u64 = 0xA060_5EED_0000_0000;

/// The seed of draw `index` (a step or an epoch) of `stream` in a run seeded with `seed`.
pub fn stream_seed(seed: u64, stream: u64, index: u64) -> u64 {
    splitmix64(seed ^ stream ^ index)
}

/// A model the training step can train.
pub trait Trainable {
    /// One batch of training data.
    type Batch;

    /// The scalar loss of `batch` (a mean over what [`batch_weight`](Self::batch_weight)
    /// counts); `train` turns dropout on.
    ///
    /// # Errors
    /// Bad batches (shapes, ids) and model failures.
    fn loss(&self, batch: &Self::Batch, train: bool) -> Result<Tensor>;

    /// What the batch's loss averages over (examples, or target tokens): its weight in an
    /// epoch's mean loss.
    fn batch_weight(&self, batch: &Self::Batch) -> usize;

    /// The parameters training may update, by name.
    fn parameters(&self) -> Vec<(String, Tensor)>;

    /// DP-SGD's forward: the batch's loss *summed* over examples (each example's gradient is
    /// then its own, unscaled), with a [`Tap`] per parameterized op for per-example gradients.
    ///
    /// # Errors
    /// Models without per-example gradients (the default), and what [`loss`](Self::loss) fails on.
    fn summed_loss_tapped(&self, batch: &Self::Batch, taps: &mut Vec<Tap>) -> Result<Tensor> {
        let _ = (batch, taps);
        Err(Error::Invalid {
            op: "DP-SGD",
            detail: "this model has no per-example gradients; DP-SGD trains Sequential models".into(),
        })
    }

    /// Everything a checkpoint holds — parameters and buffers (batch-norm statistics) — by name.
    fn state(&self) -> Vec<(String, Tensor)> {
        self.parameters()
    }
}

/// When a learning-rate schedule advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleUnit {
    /// Once per epoch (Keras' `LearningRateScheduler`).
    #[default]
    Epoch,
    /// Once per optimizer step (PyTorch's per-step schedulers, Hugging Face's warmup).
    Step,
}

/// Parameters sharing an optimizer: one group for most models; fine-tuning gives each
/// learning-rate multiplier and weight-decay choice its own (layer-wise decay, no decay on
/// biases and norms), as PyTorch's parameter groups do.
pub struct ParamGroup {
    pub params: Vec<(String, Tensor)>,
    pub optimizer: Box<dyn Optimizer>,
    /// This group's learning rate is `lr_scale` times the scheduled one.
    pub lr_scale: f64,
}

/// Where a run is, saved with every checkpoint so a resumed run continues exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Multiplier left by reduce-on-plateau (1 = none).
    pub lr_factor: f64,
    /// A callback ended training (early stopping): a resumed run does not continue.
    #[serde(default)]
    pub stopped: bool,
    /// State of callbacks that have one (early stopping, reduce-on-plateau), by callback name.
    #[serde(default)]
    pub callbacks: BTreeMap<String, serde_json::Value>,
    /// DP-SGD: the noise multiplier every step so far used. A resumed run keeps it (the ε spent
    /// is accounted as all steps at this σ), rather than solving a new one for its new length.
    #[serde(default)]
    pub noise_multiplier: Option<f64>,
}

/// The training step: optimizers (by parameter group), the learning-rate schedule, gradient
/// clipping and the dropout seed, applied in that order around a model's loss.
pub struct TrainStep {
    groups: Vec<ParamGroup>,
    /// The peak learning rate the schedule scales.
    pub base_lr: f64,
    pub schedule: Option<(LrSchedule, ScheduleUnit)>,
    /// Clip the global gradient norm to this (PyTorch `clip_grad_norm_`).
    pub clip_norm: Option<f64>,
    /// Clamp every gradient element into ±this (`clip_grad_value_`).
    pub clip_value: Option<f64>,
    /// Seeds the dropout stream (and DP-SGD's noise).
    pub seed: u64,
    /// DP-SGD: per-example clipping and noise instead of plain gradients (`privacy/dp_sgd.rs`).
    pub privacy: Option<DpSgd>,
    /// Epochs completed, steps taken, plateau factor, callback state.
    pub state: TrainState,
}

impl TrainStep {
    /// One optimizer for every parameter of `params`, at the optimizer's learning rate.
    pub fn new(params: Vec<(String, Tensor)>, optimizer: Box<dyn Optimizer>) -> Self {
        let base_lr = optimizer.lr();
        Self::with_groups(
            vec![ParamGroup {
                params,
                optimizer,
                lr_scale: 1.0,
            }],
            base_lr,
        )
    }

    /// Several parameter groups around a peak learning rate `base_lr`.
    pub fn with_groups(groups: Vec<ParamGroup>, base_lr: f64) -> Self {
        TrainStep {
            groups,
            base_lr,
            schedule: None,
            clip_norm: None,
            clip_value: None,
            seed: 0,
            privacy: None,
            state: TrainState {
                lr_factor: 1.0,
                ..TrainState::default()
            },
        }
    }

    /// Every parameter the step updates.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        self.groups.iter().flat_map(|g| g.params.clone()).collect()
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.groups.iter().flat_map(|g| &g.params).map(|(_, t)| t.numel()).sum()
    }

    /// The learning rate at `(epoch, step)`, before group scales: schedule × plateau factor.
    pub fn lr_at(&self, epoch: usize, step: u64) -> f64 {
        let lr = match &self.schedule {
            None => self.base_lr,
            Some((s, ScheduleUnit::Epoch)) => s.lr(self.base_lr, epoch),
            Some((s, ScheduleUnit::Step)) => s.lr(self.base_lr, step as usize),
        };
        lr * self.state.lr_factor
    }

    /// The learning rate the next step uses (of the first group).
    pub fn lr(&self) -> f64 {
        self.lr_at(self.state.epoch, self.state.step) * self.groups.first().map_or(1.0, |g| g.lr_scale)
    }

    /// Multiplies every future learning rate by `factor` (reduce-on-plateau), never below
    /// `min_lr` (nor above the current rate).
    pub fn scale_lr(&mut self, factor: f64, min_lr: f64) {
        let now = self.lr_at(self.state.epoch, self.state.step);
        if now > 0.0 {
            let target = (now * factor).max(min_lr).min(now);
            self.state.lr_factor *= target / now;
        }
    }

    /// One optimization step on `batch`: schedule → dropout seed → forward → loss → backward →
    /// clip → optimizer step. Returns the batch loss.
    ///
    /// # Errors
    /// A failing forward pass, or a loss that is not finite (named with the step; the
    /// parameters are left as they were before this step's update).
    pub fn run<M: Trainable + ?Sized>(&mut self, model: &M, batch: &M::Batch) -> Result<f64> {
        let lr = self.lr_at(self.state.epoch, self.state.step);
        for g in &mut self.groups {
            g.optimizer.set_lr(lr * g.lr_scale);
        }
        manual_seed(stream_seed(self.seed, DROPOUT_STREAM, self.state.step));
        if let Some(dp) = &self.privacy {
            return self.run_private(dp.clone(), model, batch);
        }
        let loss = model.loss(batch, true)?;
        let value = loss.item()?;
        self.check_finite(value)?;
        let grads = loss.backward()?;
        self.apply(grads)?;
        Ok(value)
    }

    /// DP-SGD's step: the summed loss with taps → backward → per-example clip, sum, noise
    /// (`DpSgd::privatize`) → optimizer. An empty batch (Poisson sampling) is noise alone.
    /// Returns the batch's mean loss (NaN for an empty batch, which weighs nothing in the epoch's
    /// mean).
    fn run_private<M: Trainable + ?Sized>(&mut self, dp: DpSgd, model: &M, batch: &M::Batch) -> Result<f64> {
        let examples = model.batch_weight(batch);
        let mut taps = Vec::new();
        let noise_seed = stream_seed(self.seed, NOISE_STREAM, self.state.step);
        let (value, grads) = if examples == 0 {
            (f64::NAN, GradStore::new())
        } else {
            let loss = model.summed_loss_tapped(batch, &mut taps)?;
            let value = loss.item()? / examples as f64;
            self.check_finite(value)?;
            (value, loss.backward()?)
        };
        let private = dp.privatize(&taps, &grads, &self.parameters(), noise_seed)?;
        self.apply(private)?;
        Ok(value)
    }

    fn check_finite(&self, value: f64) -> Result<()> {
        if value.is_finite() {
            return Ok(());
        }
        Err(Error::Invalid {
            op: "train step",
            detail: format!(
                "loss became {value} at step {} (epoch {}); lower the learning rate",
                self.state.step + 1,
                self.state.epoch + 1
            ),
        })
    }

    /// Clips `grads` and applies them: the part of [`run`](Self::run) after backward, for
    /// callers that compute gradients their own way.
    ///
    /// # Errors
    /// Optimizer failures.
    pub fn apply(&mut self, mut grads: GradStore) -> Result<()> {
        let all = self.parameters();
        if let Some(n) = self.clip_norm {
            clip_grad_norm(&mut grads, &all, n)?;
        }
        if let Some(v) = self.clip_value {
            clip_grad_value(&mut grads, &all, v)?;
        }
        for g in &mut self.groups {
            g.optimizer.step(&g.params, &grads)?;
        }
        self.state.step += 1;
        Ok(())
    }

    /// Optimizer state as named tensors (`{slot}.{param}`, every group), for checkpoints.
    ///
    /// # Errors
    /// Never for ferrite's optimizers.
    pub fn optimizer_state(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for g in &self.groups {
            out.extend(g.optimizer.state()?);
        }
        Ok(out)
    }

    /// Restores optimizer state written by [`optimizer_state`](Self::optimizer_state) and the
    /// run's position.
    ///
    /// # Errors
    /// State that does not fit the parameters (named).
    pub fn restore(&mut self, optimizer: &BTreeMap<String, Tensor>, state: TrainState) -> Result<()> {
        for g in &mut self.groups {
            let names: Vec<&str> = g.params.iter().map(|(n, _)| n.as_str()).collect();
            let mine: BTreeMap<String, Tensor> = optimizer
                .iter()
                .filter(|(k, _)| k.split_once('.').is_some_and(|(_, p)| names.contains(&p)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            g.optimizer.load_state(&mine, state.step)?;
        }
        self.state = state;
        Ok(())
    }

    /// The optimizer's short name (of the first group).
    pub fn optimizer_name(&self) -> &'static str {
        self.groups.first().map_or("none", |g| g.optimizer.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_nn::{Adam, Sgd};

    /// Fits w in y = w·x with MSE.
    struct Line {
        w: Tensor,
    }

    impl Trainable for Line {
        type Batch = (Tensor, Tensor);
        fn loss(&self, (x, y): &Self::Batch, _train: bool) -> Result<Tensor> {
            x.mul(&self.w)?.mse_loss(y)
        }
        fn batch_weight(&self, (x, _): &Self::Batch) -> usize {
            x.shape()[0]
        }
        fn parameters(&self) -> Vec<(String, Tensor)> {
            vec![("w".into(), self.w.clone())]
        }
    }

    fn line() -> Line {
        Line {
            w: Tensor::zeros([1]).unwrap().requires_grad_(true),
        }
    }

    fn batch() -> (Tensor, Tensor) {
        let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]).unwrap();
        (x.clone(), x.mul_scalar(2.0).unwrap())
    }

    #[test]
    fn steps_learn_and_count_and_a_non_finite_loss_is_named() {
        let m = line();
        let mut step = TrainStep::new(m.parameters(), Box::new(Sgd::new(0.05)));
        let first = step.run(&m, &batch()).unwrap();
        for _ in 0..50 {
            step.run(&m, &batch()).unwrap();
        }
        assert!(step.run(&m, &batch()).unwrap() < first * 1e-3);
        assert_eq!(step.state.step, 52);
        let inf = (batch().0, Tensor::full([3], f32::INFINITY).unwrap());
        let e = step.run(&m, &inf).unwrap_err().to_string();
        assert!(e.contains("step 53"), "{e}");
    }

    #[test]
    fn schedules_groups_clipping_and_plateau_scale_the_rate() {
        let m = line();
        let mut step = TrainStep::new(m.parameters(), Box::new(Adam::new(1.0)));
        step.schedule = Some((LrSchedule::Exponential { gamma: 0.5 }, ScheduleUnit::Step));
        assert_eq!(step.lr(), 1.0);
        step.run(&m, &batch()).unwrap();
        assert_eq!(step.lr(), 0.5);
        step.scale_lr(0.1, 0.0);
        assert!((step.lr() - 0.05).abs() < 1e-12);
        // The floor keeps the rate at min_lr.
        step.scale_lr(1e-6, 0.01);
        assert!((step.lr() - 0.01).abs() < 1e-12, "{}", step.lr());
        // Clipping by value bounds the update of plain SGD: |Δw| ≤ lr · clip.
        let m = line();
        let mut step = TrainStep::new(m.parameters(), Box::new(Sgd::new(1.0)));
        step.clip_value = Some(0.25);
        step.run(&m, &batch()).unwrap();
        assert_eq!(m.w.to_vec::<f32>().unwrap(), vec![0.25]);
    }

    #[test]
    fn optimizer_state_round_trips() {
        let m = line();
        let mut a = TrainStep::new(m.parameters(), Box::new(Adam::new(0.1)));
        a.run(&m, &batch()).unwrap();
        let (opt, state) = (a.optimizer_state().unwrap(), a.state.clone());
        let mut b = TrainStep::new(m.parameters(), Box::new(Adam::new(0.1)));
        b.restore(&opt, state).unwrap();
        assert_eq!(b.state.step, 1);
        assert_eq!(
            b.optimizer_state().unwrap().keys().collect::<Vec<_>>(),
            opt.keys().collect::<Vec<_>>()
        );
    }
}
