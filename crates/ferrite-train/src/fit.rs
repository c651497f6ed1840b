//! The training loop: `train_step` (the explicit step a user can copy), and `fit`, `evaluate`,
//! `predict` as thin wrappers around it.
//!
//! Layer: train. Reproducibility: each epoch's shuffle order and dropout masks come from
//! generators seeded by (seed, epoch) alone, so a run resumed from a checkpoint after epoch k
//! continues exactly as the uninterrupted run would (same thread count → same numbers).

use crate::augment::Augment;
use crate::callbacks::Callback;
use crate::data::{splitmix64, DataLoader, Dataset};
use crate::history::{History, Logs};
use crate::model::Sequential;
use crate::progress::Progress;
use ferrite_core::{manual_seed, no_grad, DType, Error, Result, Rng, Tensor};
use ferrite_nn::{clip_grad_norm, clip_grad_value, LrSchedule};
use std::time::Instant;

/// Mixed into the seed so dropout masks, shuffle orders and augmentations come from unrelated
/// streams.
const DROPOUT_STREAM: u64 = 0xD0D0_5EED_0000_0000;
const AUGMENT_STREAM: u64 = 0xA060_5EED_0000_0000;

/// Whether a schedule counts epochs or optimizer steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleUnit {
    #[default]
    Epoch,
    Step,
}

/// Options for [`Sequential::fit`] (Keras `fit` arguments).
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    /// Fraction of the training rows (the last ones, before shuffling) held out for validation.
    pub validation_split: f64,
    /// Explicit validation data (takes precedence over `validation_split`).
    pub validation_data: Option<Dataset>,
    /// Per-class loss weights (`class_weight[c]` multiplies the loss of samples of class c).
    pub class_weight: Option<Vec<f64>>,
    /// Seed for shuffling and dropout.
    pub seed: u64,
    /// Epoch to start from (after resuming from a checkpoint).
    pub initial_epoch: usize,
    /// Learning-rate schedule and what it counts.
    pub schedule: Option<(LrSchedule, ScheduleUnit)>,
    /// Random crops/flips applied to each training batch (never to validation data).
    pub augment: Option<Augment>,
    /// Print progress (a bar on a terminal, one line per epoch otherwise).
    pub verbose: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            class_weight: None,
            seed: 0,
            initial_epoch: 0,
            schedule: None,
            augment: None,
            verbose: false,
        }
    }
}

fn check_targets(model: &Sequential, ds: &Dataset) -> Result<()> {
    let loss = model.compiled_ref()?.loss;
    if loss.wants_class_ids() && ds.y.dtype().is_float() {
        return Err(Error::Invalid {
            op: "fit",
            detail: format!("loss {} needs integer class ids as targets", loss.name()),
        });
    }
    Ok(())
}

impl Sequential {
    /// One optimization step on a batch: forward → loss → backward → clip → optimizer step.
    /// Returns the batch loss. This is the whole of training; `fit` only loops over it.
    pub fn train_step(&mut self, x: &Tensor, y: &Tensor, sample_weight: Option<&Tensor>) -> Result<f64> {
        let pred = self.forward(x, true)?;
        let (clip_norm, clip_value) = (self.clip_norm, self.clip_value);
        let params = &self.params;
        let c = self.compiled.as_mut().ok_or_else(|| Error::Invalid {
            op: "train_step",
            detail: "call compile() first".into(),
        })?;
        let loss = c.loss.compute(&pred, y, sample_weight)?;
        let mut grads = loss.backward()?;
        if let Some(n) = clip_norm {
            clip_grad_norm(&mut grads, params, n)?;
        }
        if let Some(v) = clip_value {
            clip_grad_value(&mut grads, params, v)?;
        }
        c.optimizer.step(params, &grads)?;
        loss.item()
    }

    fn sample_weights(class_weight: &Option<Vec<f64>>, y: &Tensor) -> Result<Option<Tensor>> {
        let Some(cw) = class_weight else { return Ok(None) };
        let ids = y.to_dtype(DType::F64)?.to_vec::<f64>()?;
        let w = ids
            .iter()
            .map(|&c| {
                cw.get(c as usize).map(|&w| w as f32).ok_or_else(|| Error::Invalid {
                    op: "class_weight",
                    detail: format!("no weight for class {c} (class_weight has {} entries)", cw.len()),
                })
            })
            .collect::<Result<Vec<f32>>>()?;
        Ok(Some(Tensor::from_vec(w, [ids.len()])?))
    }

    /// Trains for `opts.epochs` epochs (from `opts.initial_epoch`), calling `callbacks` after each.
    pub fn fit(&mut self, train: &Dataset, opts: &FitOptions, callbacks: &mut [&mut dyn Callback]) -> Result<History> {
        let (train, val) = match (&opts.validation_data, opts.validation_split) {
            (Some(v), _) => (train.clone(), Some(v.clone())),
            (None, s) if s > 0.0 => {
                let (t, v) = train.split_last(s)?;
                (t, Some(v))
            }
            _ => (train.clone(), None),
        };
        check_targets(self, &train)?;
        let base_lr = self.compiled_ref()?.optimizer.lr();
        let mut history = History::default();
        let mut progress = Progress::new(opts.verbose, opts.epochs);
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(self)?;
        }
        for epoch in opts.initial_epoch..opts.epochs {
            let started = Instant::now();
            manual_seed(splitmix64(opts.seed ^ DROPOUT_STREAM ^ epoch as u64));
            let mut rng = Rng::new(splitmix64(opts.seed.wrapping_add(epoch as u64)));
            let mut augment_rng = Rng::new(splitmix64(opts.seed ^ AUGMENT_STREAM ^ epoch as u64));
            if let Some((s, ScheduleUnit::Epoch)) = &opts.schedule {
                self.optimizer_mut()?.set_lr(s.lr(base_lr, epoch));
            }
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(epoch, self)?;
            }
            let loader = DataLoader::new(&train, opts.batch_size, opts.shuffle.then_some(&mut rng), false)?;
            progress.start_epoch(epoch, loader.num_batches());
            let (mut sum, mut count) = (0.0, 0usize);
            for batch in loader {
                let b = batch?;
                if let Some((s, ScheduleUnit::Step)) = &opts.schedule {
                    let t = self.compiled_ref()?.optimizer.steps() as usize;
                    self.optimizer_mut()?.set_lr(s.lr(base_lr, t));
                }
                let w = Self::sample_weights(&opts.class_weight, &b.y)?;
                let x = match &opts.augment {
                    Some(a) => a.apply(&b.x, &mut augment_rng)?,
                    None => b.x.clone(),
                };
                let l = self.train_step(&x, &b.y, w.as_ref())?;
                if !l.is_finite() {
                    return Err(Error::Invalid {
                        op: "fit",
                        detail: format!("loss became {l} at epoch {}", epoch + 1),
                    });
                }
                sum += l * b.len() as f64;
                count += b.len();
                progress.batch(sum / count as f64);
            }
            let mut logs = Logs::new();
            logs.insert("loss".into(), sum / count.max(1) as f64);
            if !self.compiled_ref()?.metrics.is_empty() {
                for (k, v) in self.evaluate(&train, opts.batch_size.max(256))? {
                    if k != "loss" {
                        logs.insert(k, v);
                    }
                }
            }
            if let Some(v) = &val {
                for (k, v) in self.evaluate(v, opts.batch_size.max(256))? {
                    logs.insert(format!("val_{k}"), v);
                }
            }
            logs.insert("lr".into(), self.compiled_ref()?.optimizer.lr());
            logs.insert("seconds".into(), started.elapsed().as_secs_f64());
            progress.end_epoch(epoch, &logs);
            history.epochs.push(logs.clone());
            let mut stop = false;
            for cb in callbacks.iter_mut() {
                stop |= cb.on_epoch_end(epoch, &logs, self, &history)?;
            }
            if stop {
                break;
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_train_end(self)?;
        }
        Ok(history)
    }

    /// Predictions for `x`, in batches, without gradient recording.
    pub fn predict(&self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        let _g = no_grad();
        let n = x.shape().first().copied().unwrap_or(0);
        if n == 0 || batch_size >= n {
            return self.forward(x, false);
        }
        let parts = (0..n)
            .step_by(batch_size.max(1))
            .map(|s| self.forward(&x.narrow(0, s, batch_size.min(n - s))?, false))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0)
    }

    /// Loss and compiled metrics on a dataset.
    pub fn evaluate(&self, data: &Dataset, batch_size: usize) -> Result<Logs> {
        let c = self.compiled_ref()?;
        let pred = self.predict(&data.x, batch_size)?;
        let _g = no_grad();
        let mut logs = Logs::new();
        logs.insert("loss".into(), c.loss.compute(&pred, &data.y, None)?.item()?);
        for m in &c.metrics {
            logs.insert(m.name(), m.compute(&pred, &data.y)?);
        }
        Ok(logs)
    }
}
