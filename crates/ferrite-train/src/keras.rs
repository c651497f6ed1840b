//! Keras' training API on a `Sequential` — `compile`, `train_step`, `fit`, `evaluate`,
//! `predict` — as thin wrappers over the one training step ([`TrainStep`]) and the one loop
//! ([`crate::fit::fit`]).
//!
//! Layer: train. Shuffle orders and augmentations of epoch e come from generators seeded by
//! (seed, e), dropout masks of step t by (seed, t), so a run resumed from a checkpoint continues
//! exactly as the uninterrupted run would.

use crate::augment::Augment;
use crate::callbacks::Callback;
use crate::data::{splitmix64, DataLoader, Dataset};
use crate::fit::{fit, EvalEvery, LoopOptions, TrainData};
use crate::history::{History, Logs};
use crate::metrics::Metric;
use crate::model::{Compiled, Sequential};
use crate::privacy::dp_sgd::{poisson_epoch, DpSgd, PrivacyConfig, Sampling};
use crate::step::{stream_seed, ScheduleUnit, TrainStep, Trainable, AUGMENT_STREAM};
use ferrite_core::{no_grad, DType, Error, Result, Rng, Tensor};
use ferrite_nn::{Loss, LrSchedule, Optimizer};

/// Options for [`Sequential::fit`] (Keras `fit` arguments).
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Epochs in all (a resumed run counts those already done).
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    /// Fraction of the training rows (the last ones, before shuffling) held out for validation.
    pub validation_split: f64,
    /// Explicit validation data (takes precedence over `validation_split`).
    pub validation_data: Option<Dataset>,
    /// Per-class loss weights (`class_weight[c]` multiplies the loss of samples of class c).
    pub class_weight: Option<Vec<f64>>,
    /// Seed for shuffling, augmentation and dropout.
    pub seed: u64,
    /// Learning-rate schedule and what it counts.
    pub schedule: Option<(LrSchedule, ScheduleUnit)>,
    /// Random crops/flips applied to each training batch (never to validation data).
    pub augment: Option<Augment>,
    /// Stop after this many seconds (0 = no limit); the epoch in progress is evaluated.
    pub max_seconds: f64,
    /// Print progress (a bar on a terminal, one line per epoch otherwise).
    pub verbose: bool,
    /// Train with DP-SGD (per-example clipping, noise, Poisson sampling; ε in the logs).
    pub privacy: Option<PrivacyConfig>,
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
            schedule: None,
            augment: None,
            max_seconds: 0.0,
            verbose: false,
            privacy: None,
        }
    }
}

/// One batch for a `Sequential`: inputs, targets and optional per-sample loss weights.
pub struct SequentialBatch {
    pub x: Tensor,
    pub y: Tensor,
    pub sample_weight: Option<Tensor>,
}

impl Trainable for Sequential {
    type Batch = SequentialBatch;

    fn loss(&self, b: &SequentialBatch, train: bool) -> Result<Tensor> {
        let pred = self.forward(&b.x, train)?;
        self.compiled_ref()?.loss.compute(&pred, &b.y, b.sample_weight.as_ref())
    }

    fn batch_weight(&self, b: &SequentialBatch) -> usize {
        b.x.shape().first().copied().unwrap_or(0)
    }

    fn summed_loss_tapped(&self, b: &SequentialBatch, taps: &mut Vec<ferrite_nn::Tap>) -> Result<Tensor> {
        let pred = self.forward_tapped(&b.x, taps)?;
        let per_example = self.compiled_ref()?.loss.per_sample(&pred, &b.y)?;
        match &b.sample_weight {
            Some(w) => per_example.mul(&w.to_dtype(per_example.dtype())?)?.sum_all(),
            None => per_example.sum_all(),
        }
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.params.clone()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.vars.state()
    }
}

/// A dataset served in mini-batches: shuffled per epoch, augmented, weighted by class.
pub struct DatasetBatches<'a> {
    pub data: &'a Dataset,
    pub batch_size: usize,
    pub shuffle: bool,
    pub augment: Option<&'a Augment>,
    pub class_weight: Option<&'a [f64]>,
    /// DP-SGD's Poisson sampling: each batch takes each example with this probability (the
    /// epoch has as many batches as fixed-size batching would).
    pub poisson: Option<f64>,
}

impl DatasetBatches<'_> {
    /// A batch as training sees it: augmented (when it has rows) and weighted by class.
    fn finish(&self, x: Tensor, y: Tensor, augment_rng: &mut Rng) -> Result<SequentialBatch> {
        let x = match self.augment {
            Some(a) if x.shape().first().is_some_and(|&n| n > 0) => a.apply(&x, augment_rng)?,
            _ => x,
        };
        Ok(SequentialBatch {
            sample_weight: self.sample_weights(&y)?,
            x,
            y,
        })
    }

    fn sample_weights(&self, y: &Tensor) -> Result<Option<Tensor>> {
        let Some(cw) = self.class_weight else { return Ok(None) };
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
}

impl TrainData for DatasetBatches<'_> {
    type Batch = SequentialBatch;

    fn epoch(&self, epoch: usize, seed: u64) -> Result<Box<dyn Iterator<Item = Result<SequentialBatch>> + '_>> {
        let mut order_rng = Rng::new(splitmix64(seed.wrapping_add(epoch as u64)));
        let mut augment_rng = Rng::new(stream_seed(seed, AUGMENT_STREAM, epoch as u64));
        if let Some(q) = self.poisson {
            let steps = self.batches_per_epoch().unwrap_or(1);
            let batches = poisson_epoch(seed, epoch, self.data.len(), q, steps);
            return Ok(Box::new(batches.into_iter().map(move |idx| {
                let b = self.data.subset(&idx)?;
                self.finish(b.x, b.y, &mut augment_rng)
            })));
        }
        let loader = DataLoader::new(
            self.data,
            self.batch_size,
            self.shuffle.then_some(&mut order_rng),
            false,
        )?;
        Ok(Box::new(loader.map(move |b| {
            let b = b?;
            self.finish(b.x, b.y, &mut augment_rng)
        })))
    }

    fn batches_per_epoch(&self) -> Option<usize> {
        Some(self.data.len().div_ceil(self.batch_size.max(1)))
    }
}

fn check_targets(loss: Loss, ds: &Dataset) -> Result<()> {
    if loss.wants_class_ids() && ds.y.dtype().is_float() {
        return Err(Error::Invalid {
            op: "fit",
            detail: format!("loss {} needs integer class ids as targets", loss.name()),
        });
    }
    Ok(())
}

impl Sequential {
    /// Attaches the optimizer, loss and metrics used by `fit` and `evaluate`: the model's
    /// [`TrainStep`] is built here (clipping and schedules are set on it, see
    /// [`trainer_mut`](Self::trainer_mut)).
    pub fn compile(&mut self, optimizer: impl Optimizer + 'static, loss: Loss, metrics: &[Metric]) {
        self.compile_boxed(Box::new(optimizer), loss, metrics);
    }

    /// [`compile`](Self::compile) with an optimizer chosen at run time.
    pub fn compile_boxed(&mut self, optimizer: Box<dyn Optimizer>, loss: Loss, metrics: &[Metric]) {
        self.trainer = Some(TrainStep::new(self.params.clone(), optimizer));
        self.compiled = Some(Compiled {
            loss,
            metrics: metrics.to_vec(),
        });
    }

    /// The training step (optimizer, clipping, schedule, run position).
    ///
    /// # Errors
    /// A model that is not compiled.
    pub fn trainer_mut(&mut self) -> Result<&mut TrainStep> {
        self.trainer.as_mut().ok_or_else(|| Error::Invalid {
            op: "Sequential",
            detail: "call compile() before training".into(),
        })
    }

    /// One optimization step on a batch: forward → loss → backward → clip → optimizer step.
    /// Returns the batch loss. `fit` only loops over this.
    ///
    /// # Errors
    /// A model that is not compiled, bad shapes, or a non-finite loss.
    pub fn train_step(&mut self, x: &Tensor, y: &Tensor, sample_weight: Option<&Tensor>) -> Result<f64> {
        let mut step = self.trainer.take().ok_or_else(|| Error::Invalid {
            op: "train_step",
            detail: "call compile() first".into(),
        })?;
        let batch = SequentialBatch {
            x: x.clone(),
            y: y.clone(),
            sample_weight: sample_weight.cloned(),
        };
        let result = step.run(&*self, &batch);
        self.trainer = Some(step);
        result
    }

    /// Trains for `opts.epochs` epochs in all (a resumed model continues from its
    /// [`TrainState`](crate::step::TrainState)), evaluating and calling `callbacks` after each.
    ///
    /// # Errors
    /// A model that is not compiled, targets the loss cannot use, an empty training split, or a
    /// failing step.
    pub fn fit(&mut self, train: &Dataset, opts: &FitOptions, callbacks: &mut [&mut dyn Callback]) -> Result<History> {
        let (train, val) = match (&opts.validation_data, opts.validation_split) {
            (Some(v), _) => (train.clone(), Some(v.clone())),
            (None, s) if s > 0.0 => {
                let (t, v) = train.split_last(s)?;
                (t, Some(v))
            }
            _ => (train.clone(), None),
        };
        check_targets(self.compiled_ref()?.loss, &train)?;
        if train.is_empty() {
            return Err(Error::Invalid {
                op: "fit",
                detail: "the training split has no rows".into(),
            });
        }
        if val.as_ref().is_some_and(Dataset::is_empty) {
            return Err(Error::Invalid {
                op: "fit",
                detail: format!(
                    "the validation split has no rows (validation_split {} of {} rows)",
                    opts.validation_split,
                    train.len()
                ),
            });
        }
        let privacy = match &opts.privacy {
            Some(cfg) => Some(self.private_training(cfg, &train, opts)?),
            None => None,
        };
        let poisson = privacy
            .as_ref()
            .filter(|dp| dp.sampling == Sampling::Poisson)
            .map(|dp| dp.sample_rate);
        let mut step = self.trainer.take().ok_or_else(|| Error::Invalid {
            op: "fit",
            detail: "call compile() first".into(),
        })?;
        step.seed = opts.seed;
        step.state.noise_multiplier = privacy.as_ref().map(|dp| dp.noise_multiplier);
        step.privacy = privacy;
        if opts.schedule.is_some() {
            step.schedule = opts.schedule.clone();
        }
        let data = DatasetBatches {
            data: &train,
            batch_size: opts.batch_size,
            shuffle: opts.shuffle,
            augment: opts.augment.as_ref(),
            class_weight: opts.class_weight.as_deref(),
            poisson,
        };
        let eval_batch = opts.batch_size.max(256);
        let mut validate = |m: &Sequential| -> Result<Logs> {
            let mut logs = Logs::new();
            if !m.compiled_ref()?.metrics.is_empty() {
                logs.extend(m.evaluate(&train, eval_batch)?.into_iter().filter(|(k, _)| k != "loss"));
            }
            if let Some(v) = &val {
                logs.extend(
                    m.evaluate(v, eval_batch)?
                        .into_iter()
                        .map(|(k, v)| (format!("val_{k}"), v)),
                );
            }
            Ok(logs)
        };
        let loop_opts = LoopOptions {
            epochs: opts.epochs,
            max_steps: 0,
            max_seconds: opts.max_seconds,
            eval_every: EvalEvery::Epoch,
            verbose: opts.verbose,
        };
        let result = fit(&*self, &mut step, &data, &mut validate, &loop_opts, callbacks);
        self.trainer = Some(step);
        result
    }

    /// Checks that this model and these options can train with DP-SGD and resolves its
    /// settings (σ solved for a target ε over all the epochs asked for).
    fn private_training(&self, cfg: &PrivacyConfig, train: &Dataset, opts: &FitOptions) -> Result<DpSgd> {
        self.check_per_example_gradients()?;
        let step = self.trainer.as_ref().ok_or_else(|| Error::Invalid {
            op: "fit",
            detail: "call compile() first".into(),
        })?;
        if step.clip_norm.is_some() || step.clip_value.is_some() {
            return Err(Error::Invalid {
                op: "DP-SGD",
                detail: "DP-SGD clips each example's gradient to privacy.max_grad_norm; remove the optimizer's clip_norm / clip_value".into(),
            });
        }
        let per_epoch = train.len().div_ceil(opts.batch_size.max(1)) as u64;
        let mut dp = DpSgd::resolve(cfg, train.len(), opts.batch_size, per_epoch * opts.epochs as u64)?;
        // A resumed run goes on at the σ of its first steps: the accountant assumes one σ.
        if let Some(sigma) = step.state.noise_multiplier {
            dp.noise_multiplier = sigma;
        }
        if dp.sampling == Sampling::Shuffle && opts.verbose {
            eprintln!(
                "warning: privacy.sampling = \"shuffle\": the accountants assume Poisson sampling, so the ε reported is not a guarantee"
            );
        }
        Ok(dp)
    }

    /// Predictions for `x`, in batches, without gradient recording.
    ///
    /// # Shapes
    /// `[N, ..input_shape]` → `[N, ..output_shape]`.
    ///
    /// # Errors
    /// An input of the wrong shape (both shapes named).
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
    ///
    /// # Errors
    /// A model that is not compiled, or data of the wrong shape.
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
