//! The sequence-to-sequence training loop: token-count batches with length bucketing, teacher
//! forcing, label-smoothed cross-entropy over non-padding tokens, AdamW with warmup, gradient
//! clipping, periodic validation, a wall-clock or step budget, and a progress bar with loss and
//! tokens/s.
//!
//! Layer: train. Works on already tokenized [`Example`]s, so the synthetic tasks in the tests and
//! the translation runs in `seq2seq::run` share it.

use crate::data::splitmix64;
use ferrite_core::{manual_seed, no_grad, Error, Result};
use ferrite_models::{Seq2SeqBatch, Transformer};
use ferrite_nn::{clip_grad_norm, Adam, LrSchedule, Optimizer, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

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

/// Called after each validation with the step and validation loss; return `Ok(false)` to stop.
pub type OnValid<'a> = dyn FnMut(usize, Option<f64>) -> Result<bool> + 'a;

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

fn bar(verbose: bool, opts: &Seq2SeqOptions) -> Option<ProgressBar> {
    if !verbose || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = if opts.max_steps > 0 {
        ProgressBar::new(opts.max_steps as u64)
    } else {
        ProgressBar::new_spinner()
    };
    let style = ProgressStyle::with_template("step {pos} [{bar:30}] {elapsed_precise} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    b.set_style(style);
    Some(b)
}

/// Trains `model` (whose parameters live in `vars`) on `train`, validating on `valid`.
///
/// Each step: forward with dropout → label-smoothed loss → backward → clip → AdamW. Dropout
/// masks and batch order are seeded from `opts.seed`, so a run is reproducible at a fixed
/// thread count.
///
/// # Errors
/// An empty training set, or a step that fails (shape or id errors name the op).
pub fn train_seq2seq(
    model: &Transformer,
    vars: &VarMap,
    train: &[Example],
    valid: &[Example],
    opts: &Seq2SeqOptions,
    on_valid: &mut OnValid<'_>,
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
    let params = vars.vars();
    let mut optim = Adam::adamw(opts.lr, opts.weight_decay);
    optim.beta1 = opts.betas.0;
    optim.beta2 = opts.betas.1;
    optim.eps = opts.eps;
    let started = Instant::now();
    let progress = bar(opts.verbose, opts);
    let mut report = Seq2SeqReport::default();
    let (mut interval_loss, mut interval_steps, mut tokens) = (0.0, 0usize, 0usize);
    let mut epoch = 0u64;
    let mut step = 0usize;
    let train_tokens: usize = train.iter().map(|e| e.src.len() + e.tgt_out.len()).sum();
    'outer: loop {
        let order = batches(train, opts.batch_tokens, splitmix64(opts.seed ^ epoch), true);
        for idx in &order {
            manual_seed(splitmix64(opts.seed.wrapping_mul(31).wrapping_add(step as u64)));
            optim.set_lr(opts.schedule.lr(opts.lr, step));
            let batch = make_batch(train, idx)?;
            let loss = model.loss(&batch, opts.label_smoothing, true)?;
            let mut grads = loss.backward()?;
            if opts.clip_norm > 0.0 {
                clip_grad_norm(&mut grads, &params, opts.clip_norm)?;
            }
            optim.step(&params, &grads)?;
            let l = loss.item()?;
            if !l.is_finite() {
                return Err(Error::Invalid {
                    op: "train_seq2seq",
                    detail: format!("loss became {l} at step {step}; lower the learning rate"),
                });
            }
            step += 1;
            interval_loss += l;
            interval_steps += 1;
            tokens += batch.target_tokens() + batch.src_lens.iter().sum::<usize>();
            let secs = started.elapsed().as_secs_f64();
            if let Some(b) = &progress {
                b.set_position(step as u64);
                if step % 5 == 0 {
                    b.set_message(format!(
                        "loss {:.3} · {:.0} tok/s · lr {:.2e}",
                        interval_loss / interval_steps as f64,
                        tokens as f64 / secs,
                        optim.lr()
                    ));
                }
            }
            let out_of_budget =
                (opts.max_steps > 0 && step >= opts.max_steps) || (opts.max_seconds > 0.0 && secs >= opts.max_seconds);
            if (opts.valid_every > 0 && step % opts.valid_every == 0) || out_of_budget {
                let train_loss = interval_loss / interval_steps.max(1) as f64;
                let valid_loss = if valid.is_empty() {
                    None
                } else {
                    Some(evaluate_loss(model, valid, opts.batch_tokens, opts.label_smoothing)?)
                };
                report.history.push((step, train_loss, valid_loss));
                report.train_loss = train_loss;
                report.valid_loss = valid_loss;
                let msg = format!(
                    "step {step}: train loss {train_loss:.4}, valid loss {}, {:.0} tok/s, lr {:.2e}, {:.0} s",
                    valid_loss.map_or("-".into(), |v| format!("{v:.4}")),
                    tokens as f64 / secs,
                    optim.lr(),
                    secs
                );
                match &progress {
                    Some(b) => b.println(msg),
                    None if opts.verbose => eprintln!("{msg}"),
                    None => {}
                }
                (interval_loss, interval_steps) = (0.0, 0);
                let keep_going = on_valid(step, valid_loss)?;
                if out_of_budget || !keep_going {
                    break 'outer;
                }
            }
        }
        epoch += 1;
    }
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    report.steps = step;
    report.seconds = started.elapsed().as_secs_f64();
    report.tokens_per_s = tokens as f64 / report.seconds.max(1e-9);
    report.epochs = tokens as f64 / train_tokens.max(1) as f64;
    Ok(report)
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
