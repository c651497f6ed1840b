//! The training loop, once for every model: epochs of batches through the one [`TrainStep`],
//! evaluation at the end of each epoch or every n steps, callbacks after each evaluation, and a
//! step or time budget. Keras' `Sequential::fit`, seq2seq training and fine-tuning are this loop
//! with their own data and evaluation.
//!
//! Layer: train. The loop is deliberately plain — for each epoch, for each batch: `step.run`;
//! then evaluate → callbacks — so a user can copy it and change it.

use crate::callbacks::{Callback, Context};
use crate::history::{History, Logs};
use crate::progress::Progress;
use crate::step::{TrainStep, Trainable};
use ferrite_core::Result;
use std::time::Instant;

/// Batches for training, epoch by epoch.
pub trait TrainData {
    type Batch;

    /// The batches of epoch `epoch` (0-based), in order; shuffling and augmentation draw from
    /// streams of `seed` and `epoch` only, so a resumed run sees the same batches.
    ///
    /// # Errors
    /// Data that cannot be batched.
    fn epoch(&self, epoch: usize, seed: u64) -> Result<Box<dyn Iterator<Item = Result<Self::Batch>> + '_>>;

    /// Batches per epoch, when known (for the progress bar).
    fn batches_per_epoch(&self) -> Option<usize> {
        None
    }

    /// What [`Trainable::batch_weight`] counts, for the progress bar's rate (`examples`,
    /// `tokens`).
    fn unit(&self) -> &'static str {
        "examples"
    }
}

/// When the loop evaluates and calls the callbacks' `on_epoch_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvalEvery {
    /// At the end of every epoch (Keras).
    #[default]
    Epoch,
    /// Every n optimizer steps (fairseq's `--validate-interval-updates`), and at the end.
    Steps(usize),
}

/// How long the loop runs and when it evaluates.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// Epochs in all, counting those a resumed run already did (`usize::MAX`: until a budget).
    pub epochs: usize,
    /// Stop after this many optimizer steps in all (0 = no limit).
    pub max_steps: u64,
    /// Stop after this many seconds of this invocation, evaluation included (0 = no limit); the
    /// interval in progress is evaluated.
    pub max_seconds: f64,
    pub eval_every: EvalEvery,
    /// Print progress (a bar on a terminal, a line per evaluation otherwise).
    pub verbose: bool,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            epochs: 1,
            max_steps: 0,
            max_seconds: 0.0,
            eval_every: EvalEvery::Epoch,
            verbose: false,
        }
    }
}

/// Trains `model` with `step` on `data`: the loop described in the module docs. `validate`
/// returns the held-out logs (`val_loss`, `val_accuracy`, …) merged into each evaluation's
/// logs, which also hold the interval's mean training `loss`, `lr`, `seconds`, `epoch` (1-based)
/// and `step`. Returns the logs of every evaluation.
///
/// # Errors
/// A failing step (a non-finite loss names its step), a failing evaluation or callback.
pub fn fit<M, D>(
    model: &M,
    step: &mut TrainStep,
    data: &D,
    validate: &mut dyn FnMut(&M) -> Result<Logs>,
    opts: &LoopOptions,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History>
where
    M: Trainable + ?Sized,
    D: TrainData<Batch = M::Batch> + ?Sized,
{
    let mut history = History::default();
    let tensors = model.state();
    let mut progress = Progress::new(opts.verbose, opts.epochs);
    {
        let mut ctx = Context::new(&tensors, step, &history);
        for cb in callbacks.iter_mut() {
            cb.on_train_begin(&mut ctx)?;
        }
    }
    let started = Instant::now();
    let out_of_budget = |step: &TrainStep| {
        (opts.max_steps > 0 && step.state.step >= opts.max_steps)
            || (opts.max_seconds > 0.0 && started.elapsed().as_secs_f64() >= opts.max_seconds)
    };
    let mut done = step.state.stopped || out_of_budget(step);
    while !done && step.state.epoch < opts.epochs {
        let epoch = step.state.epoch;
        {
            let mut ctx = Context::new(&tensors, step, &history);
            for cb in callbacks.iter_mut() {
                cb.on_epoch_begin(epoch, &mut ctx)?;
            }
        }
        if would_pass_privacy_target(step, data.batches_per_epoch(), opts.verbose)? {
            break;
        }
        progress.start_epoch(epoch, data.batches_per_epoch());
        let mut interval = Interval::new();
        for batch in data.epoch(epoch, step.seed)? {
            let batch = batch?;
            let loss = step.run(model, &batch)?;
            interval.add(loss, model.batch_weight(&batch));
            progress.batch(interval.mean(), step.lr(), interval.rate(), data.unit());
            {
                let mut ctx = Context::new(&tensors, step, &history);
                for cb in callbacks.iter_mut() {
                    cb.on_batch_end(loss, &mut ctx)?;
                }
            }
            done = out_of_budget(step);
            let due =
                matches!(opts.eval_every, EvalEvery::Steps(n) if n > 0 && step.state.step.is_multiple_of(n as u64));
            if done || due {
                if done && opts.eval_every == EvalEvery::Epoch {
                    break; // evaluated below, as the end of this (partial) epoch
                }
                let ctx = Evaluation {
                    tensors: &tensors,
                    history: &mut history,
                    progress: &mut progress,
                };
                done |= evaluate(model, step, validate, &mut interval, ctx, callbacks, false)?;
                if done {
                    break;
                }
            }
        }
        step.state.epoch += 1;
        if opts.eval_every == EvalEvery::Epoch {
            let ctx = Evaluation {
                tensors: &tensors,
                history: &mut history,
                progress: &mut progress,
            };
            done |= evaluate(model, step, validate, &mut interval, ctx, callbacks, true)?;
        }
    }
    progress.finish();
    let mut ctx = Context::new(&tensors, step, &history);
    for cb in callbacks.iter_mut() {
        cb.on_train_end(&mut ctx)?;
    }
    Ok(history)
}

/// DP-SGD with a target ε: whether the next epoch would spend more than the target (training
/// then stops before it, saying so — a resumed run asked for more epochs than σ was set for).
fn would_pass_privacy_target(step: &TrainStep, per_epoch: Option<usize>, verbose: bool) -> Result<bool> {
    let (Some(dp), Some(per_epoch)) = (&step.privacy, per_epoch) else {
        return Ok(false);
    };
    let Some(target) = dp.target_epsilon else {
        return Ok(false);
    };
    let after = dp.epsilon_after(step.state.step + per_epoch as u64)?;
    if after <= target {
        return Ok(false);
    }
    if verbose {
        eprintln!(
            "privacy: stopping before epoch {}: it would spend ε = {after:.3}, past the target ε = {target}",
            step.state.epoch + 1
        );
    }
    Ok(true)
}

/// Training losses since the last evaluation.
struct Interval {
    sum: f64,
    weight: usize,
    started: Instant,
}

impl Interval {
    fn new() -> Self {
        Interval {
            sum: 0.0,
            weight: 0,
            started: Instant::now(),
        }
    }
    fn add(&mut self, loss: f64, weight: usize) {
        if weight == 0 {
            return; // an empty batch (DP-SGD's Poisson sampling can draw one) has no loss
        }
        self.sum += loss * weight as f64;
        self.weight += weight;
    }
    fn mean(&self) -> f64 {
        if self.weight == 0 {
            f64::NAN
        } else {
            self.sum / self.weight as f64
        }
    }
    fn rate(&self) -> f64 {
        self.weight as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }
}

/// Where an evaluation's results go.
struct Evaluation<'a> {
    tensors: &'a [(String, ferrite_core::Tensor)],
    history: &'a mut History,
    progress: &'a mut Progress,
}

/// Validates, records and shows the logs, runs the callbacks (keeping their state in the step's
/// [`TrainState`](crate::step::TrainState) for checkpoints) and starts a new interval. Returns
/// whether a callback asked to stop.
fn evaluate<M: Trainable + ?Sized>(
    model: &M,
    step: &mut TrainStep,
    validate: &mut dyn FnMut(&M) -> Result<Logs>,
    interval: &mut Interval,
    out: Evaluation<'_>,
    callbacks: &mut [&mut dyn Callback],
    epoch_end: bool,
) -> Result<bool> {
    let Evaluation {
        tensors,
        history,
        progress,
    } = out;
    let mut logs = Logs::new();
    if interval.weight > 0 {
        logs.insert("loss".into(), interval.mean());
    }
    logs.extend(validate(model)?);
    logs.insert("lr".into(), step.lr());
    if let Some(dp) = &step.privacy {
        logs.insert("epsilon".into(), dp.epsilon_after(step.state.step)?);
    }
    logs.insert("seconds".into(), interval.started.elapsed().as_secs_f64());
    // Mid-epoch evaluations belong to the epoch in progress; epoch ends to the one just done.
    let epoch = if epoch_end {
        step.state.epoch
    } else {
        step.state.epoch + 1
    };
    logs.insert("epoch".into(), epoch as f64);
    logs.insert("step".into(), step.state.step as f64);
    progress.log(&logs, epoch_end);
    history.epochs.push(logs.clone());
    let mut stop = false;
    for cb in callbacks.iter_mut() {
        let mut ctx = Context::new(tensors, step, history);
        stop |= cb.on_epoch_end(&logs, &mut ctx)?;
        if let Some(state) = cb.save_state() {
            step.state.callbacks.insert(cb.name().to_string(), state);
        }
        step.state.stopped |= stop;
    }
    *interval = Interval::new();
    Ok(stop)
}
