//! Sequence-to-sequence training on the one training step and loop: the Transformer as a
//! [`Trainable`] (label-smoothed cross-entropy over non-padding tokens), token-count batches with
//! length bucketing as [`TrainData`], AdamW with a per-step schedule, gradient clipping,
//! validation every n steps, a wall-clock or step budget.
//!
//! Layer: train. Works on already tokenized [`Example`]s, so the synthetic tasks in the tests and
//! the translation runs in `seq2seq::run` share it.

use crate::callbacks::Callback;
use crate::data::splitmix64;
use crate::fit::{fit, EvalEvery, LoopOptions, TrainData};
use crate::history::Logs;
use crate::step::{ScheduleUnit, TrainStep, Trainable};
use ferrite_core::{no_grad, Error, Result, Tensor};
use ferrite_models::{Seq2SeqBatch, Transformer};
use ferrite_nn::{Adam, LrSchedule, VarMap};
use std::cell::Cell;

/// One tokenized training pair in teacher-forcing form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Source tokens + EOS.
    pub src: Vec<u32>,
    /// BOS + target tokens.
    pub tgt_in: Vec<u32>,
    /// Target tokens + EOS.
    pub tgt_out: Vec<u32>,
}

impl Example {
    /// Builds the three sequences from raw token ids, keeping each side within `max_tokens`
    /// (BOS/EOS included) by dropping tokens from the end. Returns whether anything was cut.
    pub fn new(src: &[u32], tgt: &[u32], bos: u32, eos: u32, max_tokens: usize) -> (Example, bool) {
        let keep = max_tokens.max(2) - 1;
        let cut = src.len() > keep || tgt.len() > keep;
        let (src, tgt) = (&src[..src.len().min(keep)], &tgt[..tgt.len().min(keep)]);
        let mut s = src.to_vec();
        s.push(eos);
        let mut tin = vec![bos];
        tin.extend_from_slice(tgt);
        let mut tout = tgt.to_vec();
        tout.push(eos);
        (
            Example {
                src: s,
                tgt_in: tin,
                tgt_out: tout,
            },
            cut,
        )
    }

    /// Padded length this example adds to a batch.
    pub fn len(&self) -> usize {
        self.src.len().max(self.tgt_in.len())
    }

    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }
}

/// Options of [`train_seq2seq`]. The schedule counts optimizer steps.
#[derive(Clone, Debug)]
pub struct Seq2SeqOptions {
    /// Stop after this many steps (0 = no limit).
    pub max_steps: usize,
    /// Stop after this many seconds of training (0 = no limit). Validation time counts.
    pub max_seconds: f64,
    /// Padded tokens per batch (per side).
    pub batch_tokens: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub schedule: LrSchedule,
    pub label_smoothing: f64,
    /// Clip the global gradient norm to this (0 = off).
    pub clip_norm: f64,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// Steps between validations (0 = only at the end).
    pub valid_every: usize,
    pub seed: u64,
    pub verbose: bool,
}

impl Default for Seq2SeqOptions {
    fn default() -> Self {
        Seq2SeqOptions {
            max_steps: 1000,
            max_seconds: 0.0,
            batch_tokens: 2048,
            lr: 1e-3,
            schedule: LrSchedule::InverseSqrt { warmup: 200 },
            label_smoothing: 0.1,
            clip_norm: 1.0,
            weight_decay: 1e-4,
            betas: (0.9, 0.98),
            eps: 1e-9,
            valid_every: 0,
            seed: 0,
            verbose: false,
        }
    }
}

/// What a training run did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Seq2SeqReport {
    pub steps: usize,
    pub epochs: f64,
    pub seconds: f64,
    /// Mean loss over the last validation interval (or the whole run).
    pub train_loss: f64,
    pub valid_loss: Option<f64>,
    /// Non-padding source + target tokens per second of training.
    pub tokens_per_s: f64,
    /// (step, train loss, valid loss) at each validation.
    pub history: Vec<(usize, f64, Option<f64>)>,
}

/// Mean per-token loss over `data` without dropout.
pub fn evaluate_loss(model: &Transformer, data: &[Example], batch_tokens: usize, label_smoothing: f64) -> Result<f64> {
    let _g = no_grad();
    let (mut sum, mut tokens) = (0.0, 0usize);
    for idx in batches(data, batch_tokens, 0, false) {
        let b = make_batch(data, &idx)?;
        let n = b.target_tokens();
        sum += model.loss(&b, label_smoothing, false)?.item()? * n as f64;
        tokens += n;
    }
    Ok(if tokens == 0 { f64::NAN } else { sum / tokens as f64 })
}

/// Index batches: length-bucketed, at most `batch_tokens` padded tokens each, shuffled by `seed`.
fn batches(data: &[Example], batch_tokens: usize, seed: u64, shuffle: bool) -> Vec<Vec<usize>> {
    let lengths: Vec<(usize, usize)> = data.iter().map(|e| (e.src.len(), e.tgt_in.len())).collect();
    if shuffle {
        ferrite_text::token_batches(&lengths, batch_tokens, seed)
    } else {
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| data[i].len());
        let mut out: Vec<Vec<usize>> = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        let mut longest = 0;
        for i in order {
            let l = data[i].len().max(longest);
            if !cur.is_empty() && (cur.len() + 1) * l > batch_tokens {
                out.push(std::mem::take(&mut cur));
                longest = 0;
            }
            longest = longest.max(data[i].len());
            cur.push(i);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}

fn make_batch(data: &[Example], idx: &[usize]) -> Result<Seq2SeqBatch> {
    let ex: Vec<(&[u32], &[u32], &[u32])> = idx
        .iter()
        .map(|&i| (&data[i].src[..], &data[i].tgt_in[..], &data[i].tgt_out[..]))
        .collect();
    Seq2SeqBatch::new(&ex)
}

/// The Transformer as the training step sees it: a batch's loss is the label-smoothed
/// cross-entropy over its non-padding target tokens.
pub struct Seq2SeqTraining<'a> {
    pub model: &'a Transformer,
    pub vars: &'a VarMap,
    pub label_smoothing: f64,
}

impl Trainable for Seq2SeqTraining<'_> {
    type Batch = Seq2SeqBatch;

    fn loss(&self, batch: &Seq2SeqBatch, train: bool) -> Result<Tensor> {
        self.model.loss(batch, self.label_smoothing, train)
    }

    fn batch_weight(&self, batch: &Seq2SeqBatch) -> usize {
        batch.target_tokens()
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.vars.vars()
    }
}

/// Examples in length-bucketed batches of at most `batch_tokens` padded tokens, reshuffled
/// every epoch; counts the source and target tokens it serves.
pub struct TokenBatches<'a> {
    pub data: &'a [Example],
    pub batch_tokens: usize,
    served: Cell<usize>,
}

impl<'a> TokenBatches<'a> {
    pub fn new(data: &'a [Example], batch_tokens: usize) -> Self {
        TokenBatches {
            data,
            batch_tokens,
            served: Cell::new(0),
        }
    }

    /// Source + target tokens served so far.
    pub fn served(&self) -> usize {
        self.served.get()
    }
}

impl TrainData for TokenBatches<'_> {
    type Batch = Seq2SeqBatch;

    fn epoch(&self, epoch: usize, seed: u64) -> Result<Box<dyn Iterator<Item = Result<Seq2SeqBatch>> + '_>> {
        let order = batches(self.data, self.batch_tokens, splitmix64(seed ^ epoch as u64), true);
        Ok(Box::new(order.into_iter().map(move |idx| {
            let b = make_batch(self.data, &idx)?;
            self.served
                .set(self.served.get() + b.target_tokens() + b.src_lens.iter().sum::<usize>());
            Ok(b)
        })))
    }

    fn unit(&self) -> &'static str {
        "tokens"
    }
}

/// Trains `model` (whose parameters live in `vars`) on `train`, validating on `valid` every
/// `opts.valid_every` steps and at the end; `callbacks` see each validation (`val_loss`).
///
/// Each step is the one [`TrainStep`]: dropout seeded by (seed, step) → label-smoothed loss →
/// backward → clip → AdamW with the step's learning rate. Batch order is seeded by (seed,
/// epoch), so a run is reproducible at a fixed thread count.
///
/// # Errors
/// An empty training set, no budget (it would never stop), or a step that fails (shape or id
/// errors name the op; a non-finite loss names the step).
pub fn train_seq2seq(
    model: &Transformer,
    vars: &VarMap,
    train: &[Example],
    valid: &[Example],
    opts: &Seq2SeqOptions,
    callbacks: &mut [&mut dyn Callback],
) -> Result<Seq2SeqReport> {
    if train.is_empty() {
        return Err(Error::Invalid {
            op: "train_seq2seq",
            detail: "no training examples".into(),
        });
    }
    if opts.max_steps == 0 && opts.max_seconds <= 0.0 {
        return Err(Error::Invalid {
            op: "train_seq2seq",
            detail: "set max_steps or max_seconds: training would never stop".into(),
        });
    }
    let mut optim = Adam::adamw(opts.lr, opts.weight_decay);
    optim.beta1 = opts.betas.0;
    optim.beta2 = opts.betas.1;
    optim.eps = opts.eps;
    let mut step = TrainStep::new(vars.vars(), Box::new(optim));
    step.schedule = Some((opts.schedule.clone(), ScheduleUnit::Step));
    step.clip_norm = (opts.clip_norm > 0.0).then_some(opts.clip_norm);
    step.seed = opts.seed;
    let trainee = Seq2SeqTraining {
        model,
        vars,
        label_smoothing: opts.label_smoothing,
    };
    let data = TokenBatches::new(train, opts.batch_tokens);
    let mut validate = |t: &Seq2SeqTraining| -> Result<Logs> {
        let mut logs = Logs::new();
        if !valid.is_empty() {
            logs.insert(
                "val_loss".into(),
                evaluate_loss(t.model, valid, opts.batch_tokens, opts.label_smoothing)?,
            );
        }
        Ok(logs)
    };
    let loop_opts = LoopOptions {
        epochs: usize::MAX,
        max_steps: opts.max_steps as u64,
        max_seconds: opts.max_seconds,
        eval_every: EvalEvery::Steps(opts.valid_every),
        verbose: opts.verbose,
    };
    let started = std::time::Instant::now();
    let history = fit(&trainee, &mut step, &data, &mut validate, &loop_opts, callbacks)?;
    let seconds = started.elapsed().as_secs_f64();
    let train_tokens: usize = train.iter().map(|e| e.src.len() + e.tgt_out.len()).sum();
    Ok(Seq2SeqReport {
        steps: step.state.step as usize,
        epochs: data.served() as f64 / train_tokens.max(1) as f64,
        seconds,
        train_loss: history.last("loss").unwrap_or(f64::NAN),
        valid_loss: history.last("val_loss"),
        tokens_per_s: data.served() as f64 / seconds.max(1e-9),
        history: history
            .epochs
            .iter()
            .map(|l| {
                (
                    l.get("step").map_or(0, |&s| s as usize),
                    l.get("loss").copied().unwrap_or(f64::NAN),
                    l.get("val_loss").copied(),
                )
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_get_bos_eos_and_are_cut_to_budget() {
        let (e, cut) = Example::new(&[5, 6, 7], &[8, 9], 1, 2, 8);
        assert!(!cut);
        assert_eq!(e.src, vec![5, 6, 7, 2]);
        assert_eq!(e.tgt_in, vec![1, 8, 9]);
        assert_eq!(e.tgt_out, vec![8, 9, 2]);
        let (e, cut) = Example::new(&[5, 6, 7, 8], &[9], 1, 2, 3);
        assert!(cut);
        assert_eq!(e.src, vec![5, 6, 2]);
    }

    #[test]
    fn evaluation_batches_cover_everything_once() {
        let data: Vec<Example> = (0..50)
            .map(|i| Example::new(&vec![5; 1 + i % 7], &vec![6; 1 + i % 5], 1, 2, 64).0)
            .collect();
        let mut seen: Vec<usize> = batches(&data, 20, 0, false).concat();
        seen.sort();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }
}
