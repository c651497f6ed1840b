//! Fine-tuning a pretrained encoder for text classification on the one training step and loop:
//! full fine-tuning with layer-wise learning-rate decay (one parameter group per rate), or a
//! frozen encoder with a trained head (linear probe); AdamW with linear warmup and decay (Hugging
//! Face's `get_linear_schedule_with_warmup`, as an [`LrSchedule`]), evaluation every epoch.
//!
//! Layer: train. A frozen encoder runs in inference mode once per text and its pooled features
//! are cached, so a probe's epochs cost only the head — the same result as running the frozen
//! encoder every epoch (dropout is off inside a frozen encoder), far cheaper.

use super::data::{ClassificationMetrics, LabelledText};
use crate::callbacks::{Callback, Context};
use crate::data::splitmix64;
use crate::fit::{fit, EvalEvery, LoopOptions, TrainData};
use crate::history::Logs;
use crate::privacy::dp_sgd::{poisson_epoch, DpSgd, PrivacyConfig, PrivacySpent, Sampling};
use crate::step::{ParamGroup, ScheduleUnit, TrainStep, Trainable};
use ferrite_core::{no_grad, CrossEntropyOptions, Error, Result, Rng, Tensor};
use ferrite_models::{argmax, EncoderInput, EncoderOutput, PretrainedModel};
use ferrite_nn::{Adam, LrSchedule};
use ferrite_text::PretrainedTokenizer;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

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
    /// Train the head with DP-SGD (needs `freeze_encoder`: the encoder's embeddings and layer
    /// norms have no per-example gradients yet); replaces `clip_norm`.
    pub privacy: Option<PrivacyConfig>,
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
            privacy: None,
            verbose: false,
        }
    }
}

impl FinetuneOptions {
    /// Checks the ranges before any work starts, every problem at once: `max_input_len` is the
    /// longest input the model's position table holds.
    ///
    /// # Errors
    /// A value out of range, named with the allowed range (`lr: -1 must be a number above 0`).
    pub fn validate(&self, max_input_len: usize) -> Result<()> {
        let mut c = crate::checks::Checks::new();
        c.at_least("epochs", self.epochs, 1);
        c.at_least("batch_size", self.batch_size, 1);
        c.positive("lr", self.lr);
        c.non_negative("weight_decay", self.weight_decay);
        c.within("warmup_frac", self.warmup_frac, 0.0, 1.0, false);
        if !(self.layer_lr_decay > 0.0 && self.layer_lr_decay <= 1.0) {
            c.problem(
                "layer_lr_decay",
                format!("{} must be in (0, 1] (1 = off)", self.layer_lr_decay),
            );
        }
        // [CLS] and [SEP] take two tokens; the position table bounds the rest.
        if !(3..=max_input_len).contains(&self.max_len) {
            c.problem(
                "max_len",
                format!(
                    "{} must be between 3 and the model's {max_input_len} positions",
                    self.max_len
                ),
            );
        }
        c.non_negative("clip_norm", self.clip_norm);
        c.non_negative("max_seconds", self.max_seconds);
        c.finish_options("finetune")
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
    let pred: Vec<usize> = predict_proba(model, data, pad_id)?
        .iter()
        .map(|p| argmax(p) as usize)
        .collect();
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
    /// DP-SGD runs: the privacy spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacySpent>,
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

/// One AdamW group per (learning-rate multiplier, weight decay on or off): no decay on biases
/// and LayerNorm weights, as the BERT recipe does; only the head when the encoder is frozen.
fn param_groups(model: &PretrainedModel, opts: &FinetuneOptions) -> Vec<ParamGroup> {
    let mut by_key: BTreeMap<(u64, bool), Vec<(String, Tensor)>> = BTreeMap::new();
    for (name, t) in model.vars.vars() {
        if opts.freeze_encoder && !model.is_head_param(&name) {
            continue;
        }
        let mult = lr_multiplier(model, &name, opts.layer_lr_decay);
        let decay = !(name.ends_with(".bias") || name.contains("LayerNorm") || name.contains("layer_norm"));
        by_key.entry((mult.to_bits(), decay)).or_default().push((name, t));
    }
    by_key
        .into_iter()
        .map(|((mult, decay), params)| ParamGroup {
            params,
            optimizer: Box::new(Adam::adamw(opts.lr, if decay { opts.weight_decay } else { 0.0 })),
            lr_scale: f64::from_bits(mult),
        })
        .collect()
}

/// Linear warmup from 0 over `warmup` steps, then linear decay to 0 at step `total`
/// (`get_linear_schedule_with_warmup`).
fn warmup_linear(warmup: usize, total: usize) -> LrSchedule {
    LrSchedule::Warmup {
        warmup,
        then: Box::new(LrSchedule::LinearDecay {
            total: total.saturating_sub(warmup),
        }),
    }
}

/// What a classifier's batch holds: token ids, or (frozen encoder) its cached features.
pub enum ClassifierInput {
    Texts(EncoderInput),
    Features(EncoderOutput),
}

/// One batch of labelled texts.
pub struct ClassifierBatch {
    pub input: ClassifierInput,
    /// `[B]` i64 class ids.
    pub labels: Tensor,
}

/// A sequence classifier as the training step sees it: cross-entropy of its logits.
pub struct ClassifierTraining<'a> {
    pub model: &'a PretrainedModel,
}

impl Trainable for ClassifierTraining<'_> {
    type Batch = ClassifierBatch;

    fn loss(&self, b: &ClassifierBatch, train: bool) -> Result<Tensor> {
        let logits = match &b.input {
            ClassifierInput::Texts(x) => self.model.logits(x, train)?,
            ClassifierInput::Features(f) => self.model.head_logits(f, train)?,
        };
        logits.cross_entropy(&b.labels, CrossEntropyOptions::default())
    }

    fn summed_loss_tapped(&self, b: &ClassifierBatch, taps: &mut Vec<ferrite_nn::Tap>) -> Result<Tensor> {
        let ClassifierInput::Features(f) = &b.input else {
            return Err(Error::Invalid {
                op: "DP-SGD",
                detail: "private fine-tuning trains the head on a frozen encoder (freeze_encoder): the encoder's \
                         embeddings and layer norms have no per-example gradients yet"
                    .into(),
            });
        };
        let logits = self.model.head_logits_tapped(f, taps)?;
        logits
            .cross_entropy(&b.labels, CrossEntropyOptions::default())?
            .mul_scalar(b.labels.numel() as f64)
    }

    fn batch_weight(&self, b: &ClassifierBatch) -> usize {
        b.labels.numel()
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.vars.vars()
    }
}

/// Tokenized texts in length-grouped batches, reshuffled every epoch; from cached features when
/// the encoder is frozen.
struct TextBatches<'a> {
    data: &'a [Encoded],
    batch_size: usize,
    pad_id: u32,
    features: Option<&'a Features>,
    /// DP-SGD's Poisson sampling: each batch takes each example with this probability.
    poisson: Option<f64>,
    /// Examples served so far.
    served: std::cell::Cell<usize>,
}

impl TrainData for TextBatches<'_> {
    type Batch = ClassifierBatch;

    fn epoch(&self, epoch: usize, seed: u64) -> Result<Box<dyn Iterator<Item = Result<ClassifierBatch>> + '_>> {
        let mut rng = Rng::new(splitmix64(seed.wrapping_add(epoch as u64)));
        let order = match self.poisson {
            Some(q) => poisson_epoch(seed, epoch, self.data.len(), q, self.batches_per_epoch().unwrap_or(1)),
            None => batches(self.data, self.batch_size, &mut rng),
        };
        Ok(Box::new(order.into_iter().map(move |idx| {
            self.served.set(self.served.get() + idx.len());
            let labels: Vec<i64> = idx.iter().map(|&i| self.data[i].label as i64).collect();
            let input = match self.features {
                Some(f) => ClassifierInput::Features(f.output(&idx)?),
                None => {
                    let rows: Vec<&[u32]> = idx.iter().map(|&i| self.data[i].ids.as_slice()).collect();
                    ClassifierInput::Texts(batch_input(&rows, self.pad_id)?)
                }
            };
            Ok(ClassifierBatch {
                input,
                labels: Tensor::from_vec(labels, [idx.len()])?,
            })
        })))
    }

    fn batches_per_epoch(&self) -> Option<usize> {
        Some(self.data.len().div_ceil(self.batch_size.max(1)))
    }
}

/// Keeps a copy of the trained parameters whenever validation macro-F1 improves, and puts the
/// best copy back when training ends (the model then holds its best epoch, ready to save once).
struct KeepBest {
    best: f64,
    best_epoch: usize,
    weights: Vec<(Tensor, Tensor)>,
}

impl Callback for KeepBest {
    fn on_epoch_end(&mut self, logs: &Logs, ctx: &mut Context) -> Result<bool> {
        let f1 = logs.get("val_macro_f1").copied().unwrap_or(f64::NEG_INFINITY);
        if f1 > self.best {
            self.best = f1;
            self.best_epoch = logs.get("epoch").map_or(0, |&e| e as usize);
            self.weights = ctx.step.parameters().into_iter().map(|(_, p)| (p.copy(), p)).collect();
        }
        Ok(false)
    }

    fn on_train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        for (best, p) in &self.weights {
            p.assign_(best)?;
        }
        Ok(())
    }
}

/// Fine-tunes `model` (which must have a sequence-classification head) on `train`, evaluating on
/// `valid` after every epoch; the model ends with the weights of its best epoch by validation
/// macro-F1 (see [`FinetuneReport::best_epoch`]).
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
) -> Result<FinetuneReport> {
    if train.is_empty() || valid.is_empty() || opts.epochs == 0 || opts.batch_size == 0 {
        return Err(Error::Invalid {
            op: "finetune",
            detail: "needs training and validation examples, epochs ≥ 1 and batch_size ≥ 1".into(),
        });
    }
    let started = std::time::Instant::now();
    let features = if opts.freeze_encoder {
        Some((
            Features::compute(model, train, pad_id)?,
            Features::compute(model, valid, pad_id)?,
        ))
    } else {
        None
    };
    let total = train.len().div_ceil(opts.batch_size) * opts.epochs;
    let warmup = (opts.warmup_frac * total as f64).round() as usize;
    let privacy = match &opts.privacy {
        Some(_) if !opts.freeze_encoder => {
            return Err(Error::Invalid {
                op: "finetune",
                detail: "private fine-tuning (DP-SGD) trains the head on a frozen encoder: add freeze_encoder \
                         (the encoder's embeddings and layer norms have no per-example gradients yet)"
                    .into(),
            })
        }
        Some(cfg) => Some(DpSgd::resolve(cfg, train.len(), opts.batch_size, total as u64)?),
        None => None,
    };
    let mut step = TrainStep::with_groups(param_groups(model, opts), opts.lr);
    step.schedule = Some((warmup_linear(warmup, total), ScheduleUnit::Step));
    // DP-SGD clips each example's gradient instead.
    step.clip_norm = (opts.clip_norm > 0.0 && privacy.is_none()).then_some(opts.clip_norm);
    step.seed = opts.seed;
    let poisson = privacy
        .as_ref()
        .filter(|dp| dp.sampling == Sampling::Poisson)
        .map(|dp| dp.sample_rate);
    step.privacy = privacy;
    let trainee = ClassifierTraining { model };
    let data = TextBatches {
        data: train,
        batch_size: opts.batch_size,
        pad_id,
        features: features.as_ref().map(|f| &f.0),
        poisson,
        served: std::cell::Cell::new(0),
    };
    let history: RefCell<Vec<(ClassificationMetrics, f64)>> = RefCell::new(Vec::new());
    let mut validate = |t: &ClassifierTraining| -> Result<Logs> {
        let eval_start = std::time::Instant::now();
        let metrics = match &features {
            Some((_, fv)) => {
                let _g = no_grad();
                let all: Vec<usize> = (0..valid.len()).collect();
                let logits = t.model.head_logits(&fv.output(&all)?, false)?;
                let c = logits.shape()[1];
                let pred: Vec<usize> = logits.to_vec::<f32>()?.chunks(c).map(|r| argmax(r) as usize).collect();
                let truth: Vec<usize> = valid.iter().map(|e| e.label).collect();
                ClassificationMetrics::compute(&pred, &truth, classes)
            }
            None => evaluate(t.model, valid, pad_id, classes)?,
        };
        let logs = Logs::from([
            ("val_accuracy".to_string(), metrics.accuracy),
            ("val_macro_f1".to_string(), metrics.macro_f1),
        ]);
        history.borrow_mut().push((metrics, eval_start.elapsed().as_secs_f64()));
        Ok(logs)
    };
    let mut best = KeepBest {
        best: f64::NEG_INFINITY,
        best_epoch: 0,
        weights: Vec::new(),
    };
    let loop_opts = LoopOptions {
        epochs: opts.epochs,
        max_steps: 0,
        max_seconds: opts.max_seconds,
        eval_every: EvalEvery::Epoch,
        verbose: opts.verbose,
    };
    let logs = fit(&trainee, &mut step, &data, &mut validate, &loop_opts, &mut [&mut best])?;
    let evals = history.into_inner();
    let eval_seconds: f64 = evals.iter().map(|(_, s)| s).sum();
    let train_seconds = started.elapsed().as_secs_f64() - eval_seconds;
    let seen = data.served.get();
    Ok(FinetuneReport {
        history: logs
            .epochs
            .iter()
            .zip(evals)
            .map(|(l, (valid, _))| EpochLog {
                epoch: l.get("epoch").map_or(0, |&e| e as usize),
                train_loss: l.get("loss").copied().unwrap_or(f64::NAN),
                valid,
                seconds: l.get("seconds").copied().unwrap_or(0.0),
            })
            .collect(),
        best_epoch: best.best_epoch,
        steps: step.state.step as usize,
        train_seconds,
        eval_seconds,
        examples_per_s: seen as f64 / train_seconds.max(1e-9),
        trainable_params: step.num_params(),
        privacy: step.privacy.as_ref().map(|dp| dp.spent(step.state.step)).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_out_of_range_are_named_all_at_once() {
        assert!(FinetuneOptions::default().validate(512).is_ok());
        let o = FinetuneOptions {
            lr: -1.0,
            warmup_frac: f64::NAN,
            layer_lr_decay: 0.0,
            max_len: 100_000,
            ..FinetuneOptions::default()
        };
        let e = o.validate(512).unwrap_err().to_string();
        for part in [
            "4 invalid values",
            "lr: -1 must be a number above 0",
            "warmup_frac: NaN must be in [0, 1)",
            "layer_lr_decay: 0 must be in (0, 1]",
            "max_len: 100000 must be between 3 and the model's 512 positions",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
    }

    #[test]
    fn warmup_then_linear_decay() {
        let s = |t, warmup, total| warmup_linear(warmup, total).lr(1.0, t);
        assert_eq!(s(0, 4, 10), 0.25);
        assert_eq!(s(3, 4, 10), 1.0);
        assert_eq!(s(4, 4, 10), 1.0);
        assert_eq!(s(7, 4, 10), 0.5);
        assert_eq!(s(10, 4, 10), 0.0);
        assert_eq!(s(0, 0, 10), 1.0);
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
}
