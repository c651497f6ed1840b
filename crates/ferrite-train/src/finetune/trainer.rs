//! Fine-tuning a pretrained encoder for text classification: full fine-tuning with layer-wise
//! learning-rate decay, or a frozen encoder with a trained head (linear probe); AdamW with linear
//! warmup and decay (Hugging Face's `get_linear_schedule_with_warmup`), evaluation every epoch.
//!
//! Layer: train. A frozen encoder runs in inference mode once per text and its pooled features
//! are cached, so a probe's epochs cost only the head — the same result as running the frozen
//! encoder every epoch (dropout is off inside a frozen encoder), far cheaper.

use super::data::{ClassificationMetrics, LabelledText};
use crate::progress::Progress;
use ferrite_core::{manual_seed, no_grad, CrossEntropyOptions, Error, Result, Rng, Tensor};
use ferrite_models::{EncoderInput, EncoderOutput, PretrainedModel};
use ferrite_nn::{clip_grad_norm, Adam, Optimizer};
use ferrite_text::PretrainedTokenizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Hyper-parameters of a fine-tuning run (defaults: BERT paper / HF `Trainer` conventions).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinetuneOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Fraction of all steps spent warming the learning rate up linearly from 0.
    pub warmup_frac: f64,
    /// Layer-wise decay: the head gets `lr`, the top encoder layer `lr·d`, the one below `lr·d²`,
    /// …, the embeddings the smallest. 1 = one learning rate for everything.
    pub layer_lr_decay: f64,
    /// Train only the head on frozen encoder features (linear probe).
    pub freeze_encoder: bool,
    /// Tokens per text, special tokens included; longer texts are truncated.
    pub max_len: usize,
    pub clip_norm: f64,
    pub seed: u64,
    /// Stop after this many seconds of training (0 = no limit); the current epoch is evaluated.
    pub max_seconds: f64,
    pub verbose: bool,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        FinetuneOptions {
            epochs: 3,
            batch_size: 32,
            lr: 5e-5,
            weight_decay: 0.01,
            warmup_frac: 0.1,
            layer_lr_decay: 1.0,
            freeze_encoder: false,
            max_len: 128,
            clip_norm: 1.0,
            seed: 0,
            max_seconds: 0.0,
            verbose: false,
        }
    }
}

/// One tokenized example.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub label: usize,
}

/// Tokenizes examples (the tokenizer's `max_len` applies); returns them and how many were cut.
///
/// # Errors
/// A tokenizer failure.
pub fn encode_examples(tok: &PretrainedTokenizer, examples: &[LabelledText]) -> Result<(Vec<Encoded>, usize)> {
    let mut cut = 0;
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        let enc = tok.encode_batch(&texts, None)?;
        for (i, e) in chunk.iter().enumerate() {
            cut += usize::from(enc.truncated[i]);
            out.push(Encoded {
                ids: enc.ids[i][..enc.lengths[i]].to_vec(),
                label: e.label,
            });
        }
    }
    Ok((out, cut))
}

/// Pads id rows into an encoder input.
pub fn batch_input(rows: &[&[u32]], pad_id: u32) -> Result<EncoderInput> {
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let ids: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| r.iter().copied().chain(std::iter::repeat(pad_id)).take(t).collect())
        .collect();
    let mask: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| (0..t).map(|j| u32::from(j < r.len())).collect())
        .collect();
    let types: Vec<Vec<u32>> = vec![vec![0; t]; rows.len()];
    EncoderInput::from_rows(&ids, &mask, Some(&types))
}

/// Index batches: shuffled, then grouped so each batch holds texts of similar length (less
/// padding), then the batch order shuffled again.
fn batches(data: &[Encoded], batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..data.len()).collect();
    rng.shuffle(&mut idx);
    let window = batch_size * 50;
    let mut out = Vec::new();
    for w in idx.chunks_mut(window.max(1)) {
        w.sort_by_key(|&i| data[i].ids.len());
        out.extend(w.chunks(batch_size.max(1)).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut out);
    out
}

/// Head inputs of a frozen encoder, one row per example: the first token's hidden state and,
/// for BERT, the pooler output.
struct Features {
    first: Vec<f32>,
    pooled: Option<Vec<f32>>,
    dim: usize,
}

impl Features {
    fn compute(model: &PretrainedModel, data: &[Encoded], pad_id: u32) -> Result<Self> {
        let _g = no_grad();
        let dim = model.encoder.config.hidden_size;
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| data[i].ids.len());
        let mut first = vec![0.0f32; data.len() * dim];
        let mut pooled = model.encoder.has_pooler().then(|| vec![0.0f32; data.len() * dim]);
        for chunk in order.chunks(64) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| data[i].ids.as_slice()).collect();
            let out = model.encode(&batch_input(&rows, pad_id)?, false, false)?;
            let f = out.last_hidden_state.narrow(1, 0, 1)?.to_vec::<f32>()?;
            let p = out.pooler_output.map(|p| p.to_vec::<f32>()).transpose()?;
            for (j, &i) in chunk.iter().enumerate() {
                first[i * dim..(i + 1) * dim].copy_from_slice(&f[j * dim..(j + 1) * dim]);
                if let (Some(dst), Some(src)) = (pooled.as_mut(), p.as_ref()) {
                    dst[i * dim..(i + 1) * dim].copy_from_slice(&src[j * dim..(j + 1) * dim]);
                }
            }
        }
        Ok(Features { first, pooled, dim })
    }

    fn output(&self, idx: &[usize]) -> Result<EncoderOutput> {
        let d = self.dim;
        let gather = |v: &[f32]| -> Vec<f32> {
            idx.iter()
                .flat_map(|&i| v[i * d..(i + 1) * d].iter().copied())
                .collect()
        };
        Ok(EncoderOutput {
            last_hidden_state: Tensor::from_vec(gather(&self.first), [idx.len(), 1, d])?,
            pooler_output: self
                .pooled
                .as_ref()
                .map(|p| Tensor::from_vec(gather(p), [idx.len(), d]))
                .transpose()?,
            attentions: Vec::new(),
        })
    }
}

/// Class probabilities `[n][classes]` for tokenized texts, in input order.
///
/// # Errors
/// A model without a classification head, or bad inputs.
pub fn predict_proba(model: &PretrainedModel, data: &[Encoded], pad_id: u32) -> Result<Vec<Vec<f32>>> {
    let _g = no_grad();
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| data[i].ids.len());
    let mut out = vec![Vec::new(); data.len()];
    for chunk in order.chunks(64) {
        let rows: Vec<&[u32]> = chunk.iter().map(|&i| data[i].ids.as_slice()).collect();
        let probs = model.logits(&batch_input(&rows, pad_id)?, false)?.softmax(-1)?;
        let c = probs.shape()[1];
        let v = probs.to_vec::<f32>()?;
        for (j, &i) in chunk.iter().enumerate() {
            out[i] = v[j * c..(j + 1) * c].to_vec();
        }
    }
    Ok(out)
}

/// The index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) },
        )
        .0
}

/// Metrics of the model on tokenized, labelled texts.
///
/// # Errors
/// See [`predict_proba`].
pub fn evaluate(
    model: &PretrainedModel,
    data: &[Encoded],
    pad_id: u32,
    classes: usize,
) -> Result<ClassificationMetrics> {
    let pred: Vec<usize> = predict_proba(model, data, pad_id)?.iter().map(|p| argmax(p)).collect();
    let truth: Vec<usize> = data.iter().map(|e| e.label).collect();
    Ok(ClassificationMetrics::compute(&pred, &truth, classes))
}

/// One epoch's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid: ClassificationMetrics,
    pub seconds: f64,
}

/// What a fine-tuning run did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FinetuneReport {
    pub history: Vec<EpochLog>,
    /// 1-based epoch with the best validation macro-F1.
    pub best_epoch: usize,
    pub steps: usize,
    /// Time spent training (for a linear probe, including the one pass of feature extraction),
    /// without the per-epoch evaluations.
    pub train_seconds: f64,
    /// Time spent evaluating on the validation set and saving the best model.
    pub eval_seconds: f64,
    /// Training examples per second of `train_seconds`.
    pub examples_per_s: f64,
    pub trainable_params: usize,
}

/// A set of parameters sharing a learning-rate multiplier and weight decay.
struct Group {
    mult: f64,
    params: Vec<(String, Tensor)>,
    optim: Adam,
}

/// Learning-rate multiplier of a parameter under layer-wise decay.
fn lr_multiplier(model: &PretrainedModel, name: &str, decay: f64) -> f64 {
    if model.is_head_param(name) || name.contains("pooler.") {
        return 1.0;
    }
    let layers = model.encoder.config.num_layers;
    let layer = name
        .split(".layer.")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .and_then(|i| i.parse::<usize>().ok());
    match layer {
        Some(i) => decay.powi(layers.saturating_sub(i).max(1) as i32),
        None => decay.powi(layers as i32 + 1), // embeddings
    }
}

fn param_groups(model: &PretrainedModel, opts: &FinetuneOptions) -> Vec<Group> {
    let mut by_key: BTreeMap<(u64, bool), Vec<(String, Tensor)>> = BTreeMap::new();
    for (name, t) in model.vars.vars() {
        if opts.freeze_encoder && !model.is_head_param(&name) {
            continue;
        }
        let mult = lr_multiplier(model, &name, opts.layer_lr_decay);
        // No decay on biases and LayerNorm weights, as the BERT recipe does.
        let decay = !(name.ends_with(".bias") || name.contains("LayerNorm") || name.contains("layer_norm"));
        by_key.entry((mult.to_bits(), decay)).or_default().push((name, t));
    }
    by_key
        .into_iter()
        .map(|((mult, decay), params)| Group {
            mult: f64::from_bits(mult),
            params,
            optim: Adam::adamw(opts.lr, if decay { opts.weight_decay } else { 0.0 }),
        })
        .collect()
}

/// Linear warmup from 0 then linear decay to 0 (`get_linear_schedule_with_warmup`), as a factor.
fn schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        (step + 1) as f64 / warmup as f64
    } else {
        ((total - step.min(total)) as f64 / (total - warmup).max(1) as f64).max(0.0)
    }
}

/// Fine-tunes `model` (which must have a sequence-classification head) on `train`, evaluating on
/// `valid` after every epoch and calling `on_best` whenever validation macro-F1 improves (save
/// the model there).
///
/// # Errors
/// Empty data, a loss that becomes non-finite, or a failing step.
pub fn finetune(
    model: &PretrainedModel,
    train: &[Encoded],
    valid: &[Encoded],
    classes: usize,
    pad_id: u32,
    opts: &FinetuneOptions,
    on_best: &mut dyn FnMut(usize, &ClassificationMetrics) -> Result<()>,
) -> Result<FinetuneReport> {
    if train.is_empty() || valid.is_empty() || opts.epochs == 0 || opts.batch_size == 0 {
        return Err(Error::Invalid {
            op: "finetune",
            detail: "needs training and validation examples, epochs ≥ 1 and batch_size ≥ 1".into(),
        });
    }
    let started = Instant::now();
    let features = if opts.freeze_encoder {
        Some((
            Features::compute(model, train, pad_id)?,
            Features::compute(model, valid, pad_id)?,
        ))
    } else {
        None
    };
    let mut groups = param_groups(model, opts);
    let all_params: Vec<(String, Tensor)> = groups.iter().flat_map(|g| g.params.clone()).collect();
    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let total = steps_per_epoch * opts.epochs;
    let warmup = (opts.warmup_frac * total as f64).round() as usize;
    let mut rng = Rng::new(opts.seed);
    let mut report = FinetuneReport {
        trainable_params: all_params.iter().map(|(_, t)| t.numel()).sum(),
        ..FinetuneReport::default()
    };
    let mut progress = Progress::new(opts.verbose, opts.epochs);
    let mut best = f64::NEG_INFINITY;
    let mut seen = 0usize;
    let mut eval_seconds = 0.0;
    for epoch in 0..opts.epochs {
        let epoch_start = Instant::now();
        let order = batches(train, opts.batch_size, &mut rng);
        progress.start_epoch(epoch, order.len());
        let (mut loss_sum, mut n) = (0.0, 0usize);
        let mut out_of_time = false;
        for idx in &order {
            manual_seed(opts.seed.wrapping_mul(1_000_003).wrapping_add(report.steps as u64));
            let factor = schedule(report.steps, warmup, total);
            for g in &mut groups {
                g.optim.set_lr(opts.lr * g.mult * factor);
            }
            let logits = match &features {
                Some((f, _)) => model.head_logits(&f.output(idx)?, true)?,
                None => {
                    let rows: Vec<&[u32]> = idx.iter().map(|&i| train[i].ids.as_slice()).collect();
                    model.logits(&batch_input(&rows, pad_id)?, true)?
                }
            };
            let labels: Vec<i64> = idx.iter().map(|&i| train[i].label as i64).collect();
            let target = Tensor::from_vec(labels, [idx.len()])?;
            let loss = logits.cross_entropy(&target, CrossEntropyOptions::default())?;
            let mut grads = loss.backward()?;
            if opts.clip_norm > 0.0 {
                clip_grad_norm(&mut grads, &all_params, opts.clip_norm)?;
            }
            for g in &mut groups {
                g.optim.step(&g.params, &grads)?;
            }
            let l = loss.item()?;
            if !l.is_finite() {
                return Err(Error::Invalid {
                    op: "finetune",
                    detail: format!("loss became {l} at step {}; lower the learning rate", report.steps),
                });
            }
            report.steps += 1;
            seen += idx.len();
            loss_sum += l * idx.len() as f64;
            n += idx.len();
            progress.batch(loss_sum / n as f64);
            if opts.max_seconds > 0.0 && started.elapsed().as_secs_f64() - eval_seconds >= opts.max_seconds {
                out_of_time = true;
                break;
            }
        }
        let eval_start = Instant::now();
        let valid_metrics = match &features {
            Some((_, fv)) => {
                let _g = no_grad();
                let all: Vec<usize> = (0..valid.len()).collect();
                let logits = model.head_logits(&fv.output(&all)?, false)?;
                let c = logits.shape()[1];
                let v = logits.to_vec::<f32>()?;
                let pred: Vec<usize> = v.chunks(c).map(argmax).collect();
                let truth: Vec<usize> = valid.iter().map(|e| e.label).collect();
                ClassificationMetrics::compute(&pred, &truth, classes)
            }
            None => evaluate(model, valid, pad_id, classes)?,
        };
        let log = EpochLog {
            epoch: epoch + 1,
            train_loss: loss_sum / n.max(1) as f64,
            valid: valid_metrics,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        let logs = BTreeMap::from([
            ("loss".to_string(), log.train_loss),
            ("val_accuracy".to_string(), log.valid.accuracy),
            ("val_macro_f1".to_string(), log.valid.macro_f1),
            ("seconds".to_string(), log.seconds),
        ]);
        progress.end_epoch(epoch, &logs);
        if log.valid.macro_f1 > best {
            best = log.valid.macro_f1;
            report.best_epoch = epoch + 1;
            on_best(epoch + 1, &log.valid)?;
        }
        eval_seconds += eval_start.elapsed().as_secs_f64();
        report.history.push(log);
        if out_of_time {
            break;
        }
    }
    report.eval_seconds = eval_seconds;
    report.train_seconds = started.elapsed().as_secs_f64() - eval_seconds;
    report.examples_per_s = seen as f64 / report.train_seconds.max(1e-9);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay() {
        assert_eq!(schedule(0, 4, 10), 0.25);
        assert_eq!(schedule(3, 4, 10), 1.0);
        assert_eq!(schedule(4, 4, 10), 1.0);
        assert_eq!(schedule(7, 4, 10), 0.5);
        assert_eq!(schedule(10, 4, 10), 0.0);
        assert_eq!(schedule(0, 0, 10), 1.0);
    }

    #[test]
    fn layerwise_decay_shrinks_toward_the_embeddings() {
        let cfg = serde_json::json!({"model_type": "bert", "vocab_size": 10, "hidden_size": 8,
            "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
            "max_position_embeddings": 16, "type_vocab_size": 2});
        let cfg = ferrite_models::EncoderConfig::from_json(&cfg, std::path::Path::new("c.json")).unwrap();
        let m = PretrainedModel::new(&cfg, ferrite_models::Task::SequenceClassification(2), true, 0).unwrap();
        let lr = |n: &str| lr_multiplier(&m, n, 0.5);
        assert_eq!(lr("classifier.weight"), 1.0);
        assert_eq!(lr("bert.pooler.dense.weight"), 1.0);
        assert_eq!(lr("bert.encoder.layer.1.output.dense.weight"), 0.5);
        assert_eq!(lr("bert.encoder.layer.0.output.dense.weight"), 0.25);
        assert_eq!(lr("bert.embeddings.word_embeddings.weight"), 0.125);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
    }
}
