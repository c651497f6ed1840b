//! Fine-tuning runs for the CLI: `ferrite finetune` (data → splits → pretrained or from-scratch
//! model → training → best model saved as a Hugging Face directory → test metrics) and
//! `ferrite classify` (a saved run or model directory → labels and probabilities).
//!
//! Layer: train. A run directory holds `finetune.json` (what was asked), the splits as JSON
//! Lines, `labels.json`, `model/` (config.json + model.safetensors + tokenizer.json, loadable by
//! `transformers` too), `history.json` and `summary.json`.

use super::data::{load_splits, write_splits, ClassificationMetrics, DataOptions, LabelledText};
use super::trainer::{encode_examples, evaluate, finetune, predict_proba, Encoded, FinetuneOptions, FinetuneReport};
use crate::run::{read_json, write_json};
use ferrite_core::{Error, Result};
use ferrite_models::{EncoderConfig, ModelDir, PretrainedModel, Task};
use ferrite_text::PretrainedTokenizer;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything `ferrite finetune` takes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinetuneArgs {
    /// A Hugging Face model directory (config.json, model.safetensors, tokenizer.json).
    pub model: PathBuf,
    pub data: PathBuf,
    pub data_options: DataOptions,
    pub options: FinetuneOptions,
    /// Same architecture and tokenizer, random weights: the no-transfer baseline.
    pub from_scratch: bool,
}

/// The result of a fine-tuning run (`summary.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinetuneSummary {
    pub run_dir: PathBuf,
    pub mode: String,
    pub labels: Vec<String>,
    pub n_train: usize,
    pub n_valid: usize,
    pub n_test: usize,
    /// Texts cut to `max_len` tokens, over all splits.
    pub truncated: usize,
    pub best_epoch: usize,
    pub valid_accuracy: f64,
    pub valid_macro_f1: f64,
    pub test_accuracy: f64,
    pub test_macro_f1: f64,
    pub test: ClassificationMetrics,
    pub steps: usize,
    /// Training time without evaluation (see `FinetuneReport`).
    pub train_seconds: f64,
    pub examples_per_s: f64,
    pub trainable_params: usize,
    /// DP-SGD runs (`--target-epsilon` / `--noise`): the privacy spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<crate::privacy::dp_sgd::PrivacySpent>,
}

fn fresh_dir(data: &Path) -> PathBuf {
    let stem = data
        .file_stem()
        .map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
    crate::run::fresh_run_dir(Path::new(&format!("finetune-{stem}")))
}

fn tokenizer_for(model_dir: &Path, config: &EncoderConfig, max_len: usize) -> Result<PretrainedTokenizer> {
    let mut tok = PretrainedTokenizer::from_file(model_dir.join("tokenizer.json"))?;
    tok.set_max_len(max_len.min(config.max_input_len()))?;
    Ok(tok)
}

/// Runs `ferrite finetune`: writes the run directory `out` (or `runs/finetune-<data>-<time>`).
///
/// # Errors
/// Bad data (file, column, labels), a bad model directory, or a failing step — each naming what
/// is wrong.
pub fn finetune_run(args: &FinetuneArgs, out: Option<&Path>) -> Result<FinetuneSummary> {
    let dir = ModelDir::open(&args.model)?;
    let config = EncoderConfig::from_json(&dir.config, &dir.config_path())?;
    args.options.validate(config.max_input_len())?;
    let tok = tokenizer_for(&args.model, &config, args.options.max_len)?;
    let splits = load_splits(&args.data, &args.data_options)?;
    let run_dir = out.map_or_else(|| fresh_dir(&args.data), Path::to_path_buf);
    std::fs::create_dir_all(&run_dir).map_err(|e| Error::file(&run_dir, format!("cannot create: {e}")))?;
    // Temp files of a writer killed mid-checkpoint (`kill -9`) would otherwise pile up.
    ferrite_core::fs::remove_stale_temps(&run_dir);
    write_json(&run_dir.join("finetune.json"), args)?;
    write_splits(&run_dir, &splits)?;
    let classes = splits.labels.len();
    let task = Task::SequenceClassification(classes);
    let model = if args.from_scratch {
        PretrainedModel::new(&config, task, true, args.options.seed)?
    } else {
        let (m, report) = PretrainedModel::load_from(&dir, Some(task))?;
        if args.options.verbose && !report.initialized.is_empty() {
            eprintln!(
                "newly initialized (not in the checkpoint): {}",
                report.initialized.join(", ")
            );
        }
        m
    };
    let encode = |e: &[LabelledText]| encode_examples(&tok, e);
    let (train, cut_train) = encode(&splits.train)?;
    let (valid, cut_valid) = encode(&splits.valid)?;
    let (test, cut_test) = encode(&splits.test)?;
    let report: FinetuneReport = finetune(&model, &train, &valid, classes, tok.pad_id(), &args.options)?;
    write_json(&run_dir.join("history.json"), &report.history)?;
    // The model holds its best epoch's weights: saved once, then tested.
    model.save(
        run_dir.join("model"),
        &splits.labels,
        Some(&args.model.join("tokenizer.json")),
    )?;
    let test_metrics = evaluate(&model, &test, tok.pad_id(), classes)?;
    let best_log = &report.history[report.best_epoch.max(1) - 1];
    let mode = if args.from_scratch {
        "from-scratch"
    } else if args.options.freeze_encoder {
        "linear-probe"
    } else {
        "fine-tune"
    };
    let summary = FinetuneSummary {
        run_dir: run_dir.clone(),
        mode: mode.into(),
        labels: splits.labels.clone(),
        n_train: train.len(),
        n_valid: valid.len(),
        n_test: test.len(),
        truncated: cut_train + cut_valid + cut_test,
        best_epoch: report.best_epoch,
        valid_accuracy: best_log.valid.accuracy,
        valid_macro_f1: best_log.valid.macro_f1,
        test_accuracy: test_metrics.accuracy,
        test_macro_f1: test_metrics.macro_f1,
        test: test_metrics,
        steps: report.steps,
        train_seconds: report.train_seconds,
        examples_per_s: report.examples_per_s,
        trainable_params: report.trainable_params,
        privacy: report.privacy.clone(),
    };
    write_json(&run_dir.join("summary.json"), &summary)?;
    Ok(summary)
}

/// A text classifier loaded from a fine-tuning run directory or a model directory.
pub struct Classifier {
    pub model: PretrainedModel,
    pub tokenizer: PretrainedTokenizer,
    pub labels: Vec<String>,
}

/// One prediction: the label and every class's probability.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Prediction {
    pub text: String,
    pub label: String,
    pub probabilities: Vec<(String, f32)>,
}

impl Classifier {
    /// Opens `RUN_DIR` (its `model/`) or a Hugging Face sequence-classification directory.
    ///
    /// # Errors
    /// A directory without a classification model, or missing files (named).
    pub fn open(dir: &Path) -> Result<Self> {
        let model_dir = if dir.join("model/config.json").is_file() {
            dir.join("model")
        } else {
            dir.to_path_buf()
        };
        if !model_dir.join("config.json").is_file() && dir.join("config.toml").is_file() {
            // A `ferrite train` run, not a fine-tuned model: say which kind, and what uses it.
            let kind = crate::config::RunKind::of_run_dir(dir)?;
            return Err(Error::file(
                dir,
                format!(
                    "a {} run; classify needs a fine-tuned text classifier (ferrite finetune) or a Hugging Face \
                     sequence-classification directory (use {} for this one)",
                    kind.name(),
                    kind.command()
                ),
            ));
        }
        let (model, _) = PretrainedModel::load(&model_dir, None)?;
        let Task::SequenceClassification(n) = model.task else {
            return Err(Error::file(
                &model_dir,
                "not a sequence-classification model (config.json's architectures should end in ForSequenceClassification)",
            ));
        };
        let max_len = match read_json::<FinetuneArgs>(&dir.join("finetune.json")) {
            Ok(a) => a.options.max_len,
            Err(_) => model.encoder.config.max_input_len(),
        };
        let tokenizer = tokenizer_for(&model_dir, &model.encoder.config, max_len)?;
        let mut labels = model.encoder.config.labels.clone();
        if labels.len() != n {
            labels = (0..n).map(|i| format!("LABEL_{i}")).collect();
        }
        Ok(Classifier {
            model,
            tokenizer,
            labels,
        })
    }

    /// Classifies texts (truncated to the run's `max_len`).
    ///
    /// # Errors
    /// A tokenizer or model failure.
    pub fn classify(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        let examples: Vec<LabelledText> = texts
            .iter()
            .map(|t| LabelledText {
                text: t.to_string(),
                label: 0,
            })
            .collect();
        let (encoded, _): (Vec<Encoded>, usize) = encode_examples(&self.tokenizer, &examples)?;
        let probs = predict_proba(&self.model, &encoded, self.tokenizer.pad_id())?;
        Ok(texts
            .iter()
            .zip(probs)
            .map(|(t, p)| {
                let best = ferrite_models::argmax(&p) as usize;
                Prediction {
                    text: t.to_string(),
                    label: self.labels[best].clone(),
                    probabilities: self.labels.iter().cloned().zip(p).collect(),
                }
            })
            .collect())
    }
}
