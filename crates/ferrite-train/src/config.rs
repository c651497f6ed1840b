//! The TOML description of a training run (`ferrite train CONFIG.toml`). Its top-level `task`
//! says what kind of run it is ([`RunKind`]); unknown keys are errors that name the key, so a typo
//! never silently falls back to a default.
//!
//! Layer: train. Relative data paths are resolved against the config file's directory.

use crate::augment::AugmentConfig;
use crate::checks::Checks;
use crate::model::LayerConfig;
use crate::step::ScheduleUnit;
use ferrite_core::{Error, Result};
use ferrite_nn::{Adam, LinearInit, LrSchedule, Optimizer, RmsProp, Sgd};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The kinds of run `ferrite train` knows, named by a config's top-level `task`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A `Sequential` model predicting numbers (MSE-style losses).
    Regression,
    /// A `Sequential` model predicting classes (tables or images).
    Classification,
    /// The encoder–decoder Transformer on sentence pairs.
    Translate,
}

impl RunKind {
    pub const ALL: [RunKind; 3] = [RunKind::Regression, RunKind::Classification, RunKind::Translate];

    pub fn name(self) -> &'static str {
        match self {
            RunKind::Regression => "regression",
            RunKind::Classification => "classification",
            RunKind::Translate => "translate",
        }
    }

    fn valid() -> String {
        Self::ALL.map(|k| format!("\"{}\"", k.name())).join(", ")
    }

    /// The kind a TOML config's top-level `task` names.
    ///
    /// # Errors
    /// Unreadable or invalid TOML, or a missing or unknown `task` — the message lists the kinds.
    pub fn of_config(path: &Path) -> Result<RunKind> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::file(path, e.to_string().trim_end().to_string()))?;
        match table.get("task") {
            None => Err(Error::file(
                path,
                format!(
                    "the config does not say what kind of run it is: add task = one of {} at the top",
                    Self::valid()
                ),
            )),
            Some(v) => {
                let name = v.as_str().unwrap_or_default();
                Self::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
                    Error::file(
                        path,
                        format!(
                            "task = {v} is not a kind of run ferrite trains (one of {})",
                            Self::valid()
                        ),
                    )
                })
            }
        }
    }

    /// The kind of the run saved in `dir` (its `config.toml`).
    ///
    /// # Errors
    /// A directory without a run config, or one of an unknown kind.
    pub fn of_run_dir(dir: &Path) -> Result<RunKind> {
        let path = dir.join("config.toml");
        if !path.is_file() {
            return Err(Error::file(
                dir,
                "not a run directory (no config.toml from `ferrite train`)",
            ));
        }
        Self::of_config(&path)
    }

    /// The command that uses a run of this kind.
    pub fn command(self) -> &'static str {
        match self {
            RunKind::Regression | RunKind::Classification => "ferrite predict / eval",
            RunKind::Translate => "ferrite translate",
        }
    }

    /// The kind of the run in `dir`, which `command` can only use when it is one of `wanted`.
    ///
    /// # Errors
    /// Not a run directory, or a run of another kind: the message names the kind and the
    /// command that uses it (a regression run handed to `ferrite translate` must not surface
    /// as a TOML error about fields translation configs do not have).
    pub fn expect(dir: &Path, wanted: &[RunKind], command: &str) -> Result<RunKind> {
        let kind = Self::of_run_dir(dir)?;
        if wanted.contains(&kind) {
            return Ok(kind);
        }
        let names: Vec<&str> = wanted.iter().map(|k| k.name()).collect();
        Err(Error::file(
            dir,
            format!(
                "a {} run; {command} needs a {} run (use {} for this one)",
                kind.name(),
                names.join(" or "),
                kind.command()
            ),
        ))
    }
}

/// A whole training run of a `Sequential` model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// `regression` or `classification` (what kind of run this is; see [`RunKind`]).
    pub task: Task,
    /// Seed for the split, initialization, shuffling and dropout.
    #[serde(default)]
    pub seed: u64,
    pub epochs: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    pub early_stopping: Option<EarlyStoppingConfig>,
    pub reduce_lr_on_plateau: Option<PlateauConfig>,
    /// Random crops and flips of training images (image data only).
    pub augment: Option<AugmentConfig>,
    /// Train with DP-SGD: `target_epsilon` or `noise_multiplier`, `max_grad_norm`, `delta`,
    /// `accountant`, `sampling` (`privacy/dp_sgd.rs`).
    pub privacy: Option<crate::privacy::dp_sgd::PrivacyConfig>,
}

/// Regression (float targets) or classification (integer class ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    #[default]
    Regression,
    Classification,
}

fn default_test_split() -> f64 {
    0.2
}
fn yes() -> bool {
    true
}

/// How `data.path` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// A numeric CSV with a header row; `target` names the label column.
    #[default]
    Csv,
    /// A directory of IDX files in the MNIST layout (`train-images-idx3-ubyte[.gz]`,
    /// `train-labels-idx1-ubyte[.gz]`, `t10k-…`): the t10k files are the test split.
    Idx,
    /// A directory of image files (PNG, JPEG, BMP) in torchvision's `ImageFolder` layout, one
    /// sub-directory per class. With `train/` and `test/` sub-directories those are the splits;
    /// otherwise the test split is drawn by seed like a CSV's.
    ImageFolder,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// CSV file with a header row, the IDX directory, or the image folder.
    pub path: PathBuf,
    #[serde(default)]
    pub format: DataFormat,
    /// Target column (CSV).
    #[serde(default)]
    pub target: String,
    /// Per-sample `[channels, height, width]` for image models: CSV feature columns are read in
    /// row-major order into this shape (IDX files carry their own). Images are standardized
    /// per channel (one mean and std per channel over all training pixels), not per pixel.
    pub image_shape: Option<Vec<usize>>,
    /// Image folders: resize every image to `[height, width]` (bilinear) instead of requiring
    /// all images to share the first one's size.
    pub resize: Option<[usize; 2]>,
    /// Names of the classes 0, 1, … (classification), used in the confusion-matrix and
    /// misclassified-image pictures.
    pub class_names: Option<Vec<String>>,
    /// Feature columns (default: every other column).
    #[serde(default)]
    pub features: Vec<String>,
    /// Fraction of rows held out for the final test (deterministic split by seed).
    #[serde(default = "default_test_split")]
    pub test_split: f64,
    /// Fraction of the training rows used for validation (the last ones, as Keras does).
    #[serde(default)]
    pub validation_split: f64,
    /// Standardize features with mean/std fitted on the training split.
    #[serde(default = "yes")]
    pub standardize_x: bool,
    /// Standardize regression targets the same way (metrics are then in standard units).
    #[serde(default = "yes")]
    pub standardize_y: bool,
    /// Per-class loss weights for classification.
    pub class_weight: Option<Vec<f64>>,
    /// CSV rows with a missing value or an infinity: `"error"` (default, names the cell) or
    /// `"drop"` (skip the row).
    #[serde(default)]
    pub missing: crate::csv::Missing,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub layers: Vec<LayerConfig>,
    /// `keras` (Glorot-uniform, zero bias) or `pytorch` (Kaiming-uniform).
    #[serde(default)]
    pub init: LinearInit,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// `adam`, `adamw`, `sgd`, `rmsprop`.
    pub name: String,
    pub lr: f64,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub nesterov: bool,
    pub weight_decay: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub clip_norm: Option<f64>,
    pub clip_value: Option<f64>,
}

impl OptimizerConfig {
    /// Builds the optimizer (PyTorch defaults for anything not given).
    pub fn build(&self) -> Result<Box<dyn Optimizer>> {
        let wd = self.weight_decay;
        Ok(match self.name.as_str() {
            "adam" | "adamw" => {
                let mut a = if self.name == "adamw" {
                    Adam::adamw(self.lr, wd.unwrap_or(0.01))
                } else {
                    Adam::new(self.lr)
                };
                if self.name == "adam" {
                    a.weight_decay = wd.unwrap_or(0.0);
                }
                a.beta1 = self.beta1.unwrap_or(a.beta1);
                a.beta2 = self.beta2.unwrap_or(a.beta2);
                a.eps = self.eps.unwrap_or(a.eps);
                Box::new(a)
            }
            "sgd" => {
                let mut s = Sgd::momentum(self.lr, self.momentum, self.nesterov);
                s.weight_decay = wd.unwrap_or(0.0);
                Box::new(s)
            }
            "rmsprop" => {
                let mut r = RmsProp::new(self.lr);
                r.momentum = self.momentum;
                r.weight_decay = wd.unwrap_or(0.0);
                r.eps = self.eps.unwrap_or(r.eps);
                Box::new(r)
            }
            other => {
                return Err(Error::Invalid {
                    op: "optimizer",
                    detail: format!("unknown optimizer '{other}' (expected adam, adamw, sgd, rmsprop)"),
                });
            }
        })
    }
}

fn default_batch() -> usize {
    32
}
fn default_loss() -> String {
    "mse".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_loss")]
    pub loss: String,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Kernel threads (default: `FERRITE_NUM_THREADS` or all cores).
    pub threads: Option<usize>,
    pub schedule: Option<LrSchedule>,
    #[serde(default)]
    pub schedule_unit: ScheduleUnit,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            batch_size: default_batch(),
            loss: default_loss(),
            metrics: Vec::new(),
            shuffle: true,
            threads: None,
            schedule: None,
            schedule_unit: ScheduleUnit::Epoch,
        }
    }
}

fn default_monitor() -> String {
    "val_loss".into()
}
fn default_patience() -> usize {
    10
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    #[serde(default = "default_monitor")]
    pub monitor: String,
    #[serde(default = "default_patience")]
    pub patience: usize,
    #[serde(default)]
    pub min_delta: f64,
    #[serde(default = "yes")]
    pub restore_best_weights: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateauConfig {
    #[serde(default = "default_monitor")]
    pub monitor: String,
    pub factor: f64,
    #[serde(default = "default_patience")]
    pub patience: usize,
    #[serde(default)]
    pub min_lr: f64,
}

impl TrainConfig {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// Unreadable file, invalid TOML, unknown keys (named), or missing required keys.
    pub fn from_file(path: impl AsRef<Path>) -> Result<TrainConfig> {
        let path = path.as_ref();
        if RunKind::of_config(path)? == RunKind::Translate {
            return Err(Error::file(
                path,
                "is a translation config (task = \"translate\"), not a Sequential model's",
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let mut cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| Error::file(path, e.to_string().trim_end().to_string()))?;
        if cfg.data.path.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            cfg.data.path = base.join(&cfg.data.path);
        }
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks every value's range (serde checks only the types), naming `path`, each key and its
    /// allowed range.
    ///
    /// # Errors
    /// All out-of-range values at once.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let mut c = Checks::new();
        c.at_least("epochs", self.epochs, 1);
        let d = &self.data;
        if !(d.test_split > 0.0 && d.test_split < 1.0) {
            c.problem(
                "data.test_split",
                format!(
                    "{} must be in (0, 1): the run reports its metrics on the test rows",
                    d.test_split
                ),
            );
        }
        c.within("data.validation_split", d.validation_split, 0.0, 1.0, false);
        if let Some(shape) = &d.image_shape
            && (shape.len() != 3 || shape.contains(&0))
        {
            c.problem(
                "data.image_shape",
                format!("{shape:?} must be [channels, height, width], none 0"),
            );
        }
        if let Some([h, w]) = d.resize
            && (h == 0 || w == 0)
        {
            c.problem("data.resize", format!("[{h}, {w}] must be [height, width], neither 0"));
        }
        for (i, w) in d.class_weight.iter().flatten().enumerate() {
            c.non_negative(&format!("data.class_weight[{i}]"), *w);
        }
        let o = &self.optimizer;
        c.positive("optimizer.lr", o.lr);
        c.within("optimizer.momentum", o.momentum, 0.0, 1.0, false);
        if let Some(v) = o.weight_decay {
            c.non_negative("optimizer.weight_decay", v);
        }
        for (key, v) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if let Some(v) = v {
                c.within(key, v, 0.0, 1.0, false);
            }
        }
        for (key, v) in [
            ("optimizer.eps", o.eps),
            ("optimizer.clip_norm", o.clip_norm),
            ("optimizer.clip_value", o.clip_value),
        ] {
            if let Some(v) = v {
                c.positive(key, v);
            }
        }
        if let Some(p) = &self.privacy {
            c.positive("privacy.max_grad_norm", p.max_grad_norm);
            if !(p.delta > 0.0 && p.delta < 1.0) {
                c.problem(
                    "privacy.delta",
                    format!("{} must be in (0, 1); use δ below 1/n for n training examples", p.delta),
                );
            }
            match (p.target_epsilon, p.noise_multiplier) {
                (Some(e), None) => c.positive("privacy.target_epsilon", e),
                (None, Some(s)) => c.positive("privacy.noise_multiplier", s),
                _ => c.problem("privacy", "give exactly one of target_epsilon and noise_multiplier"),
            }
            if o.clip_norm.is_some() || o.clip_value.is_some() {
                c.problem(
                    "optimizer.clip_norm",
                    "DP-SGD clips each example's gradient to privacy.max_grad_norm; remove the optimizer's clip_norm / clip_value",
                );
            }
        }
        let t = &self.training;
        c.at_least("training.batch_size", t.batch_size, 1);
        c.threads("training.threads", t.threads);
        c.seed("seed", self.seed);
        if let Some(s) = &t.schedule {
            check_schedule(&mut c, "training.schedule", s);
        }
        // What a monitor may watch: the losses and the configured metrics, on training or
        // validation rows (unknown metric names are reported by the model build).
        let mut logged = vec!["loss".to_string()];
        logged.extend(
            t.metrics
                .iter()
                .filter_map(|m| crate::Metric::parse(m).ok())
                .map(|m| m.name()),
        );
        let logged: Vec<String> = logged.iter().flat_map(|k| [k.clone(), format!("val_{k}")]).collect();
        let validates = self.data.validation_split > 0.0;
        let mut monitor = |key: &str, m: &str| {
            if !logged.iter().any(|k| k == m) {
                c.problem(
                    key,
                    format!("'{m}' is not a logged value (one of {})", logged.join(", ")),
                );
            } else if m.starts_with("val_") && !validates {
                // Keras would warn once and then never stop; a run that silently ignores its
                // early stopping is worse than one that does not start.
                c.problem(
                    key,
                    format!("'{m}' is only logged with a data.validation_split above 0"),
                );
            }
        };
        if let Some(e) = &self.early_stopping {
            monitor("early_stopping.monitor", &e.monitor);
        }
        if let Some(p) = &self.reduce_lr_on_plateau {
            monitor("reduce_lr_on_plateau.monitor", &p.monitor);
        }
        if let Some(e) = &self.early_stopping {
            c.non_negative("early_stopping.min_delta", e.min_delta);
        }
        if let Some(p) = &self.reduce_lr_on_plateau {
            c.within("reduce_lr_on_plateau.factor", p.factor, 0.0, 1.0, false);
            if p.factor == 0.0 {
                c.problem(
                    "reduce_lr_on_plateau.factor",
                    "0 would stop learning; it must be in (0, 1)",
                );
            }
            c.non_negative("reduce_lr_on_plateau.min_lr", p.min_lr);
        }
        if self.model.layers.is_empty() {
            c.problem("model.layers", "the model needs at least one layer");
        }
        for (i, layer) in self.model.layers.iter().enumerate() {
            check_layer(&mut c, &format!("model.layers[{i}]"), layer);
        }
        c.finish(path)
    }
}

fn check_schedule(c: &mut Checks, key: &str, s: &LrSchedule) {
    match s {
        LrSchedule::Constant => {}
        LrSchedule::Step { step_size, gamma } => {
            c.at_least(&format!("{key}.step_size"), *step_size, 1);
            c.positive(&format!("{key}.gamma"), *gamma);
        }
        LrSchedule::Exponential { gamma } => c.positive(&format!("{key}.gamma"), *gamma),
        LrSchedule::Cosine { t_max, eta_min } => {
            c.at_least(&format!("{key}.t_max"), *t_max, 1);
            c.non_negative(&format!("{key}.eta_min"), *eta_min);
        }
        LrSchedule::Warmup { warmup, then } => {
            c.at_least(&format!("{key}.warmup"), *warmup, 1);
            check_schedule(c, &format!("{key}.then"), then);
        }
        LrSchedule::LinearDecay { total } => c.at_least(&format!("{key}.total"), *total, 1),
        LrSchedule::InverseSqrt { warmup } => c.at_least(&format!("{key}.warmup"), *warmup, 1),
    }
}

/// Sizes of at least 1, probabilities in [0, 1), epsilons above 0: what every layer needs to be a
/// layer (PyTorch accepts some zero sizes in code; in a config they are always a mistake).
fn check_layer(c: &mut Checks, key: &str, layer: &LayerConfig) {
    fn size(c: &mut Checks, key: &str, name: &str, v: usize) {
        c.at_least(&format!("{key}.{name}"), v, 1);
    }
    match layer {
        LayerConfig::Dense { units, .. } => size(c, key, "units", *units),
        LayerConfig::Embedding { vocab, dim } => {
            size(c, key, "vocab", *vocab);
            size(c, key, "dim", *dim);
        }
        LayerConfig::Conv2d {
            filters,
            kernel_size,
            stride,
            dilation,
            groups,
            ..
        } => {
            size(c, key, "filters", *filters);
            size(c, key, "groups", *groups);
            for (name, v) in [("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)] {
                v.pair().iter().for_each(|&x| size(c, key, name, x));
            }
        }
        LayerConfig::MaxPool2d { pool_size, stride, .. } | LayerConfig::AvgPool2d { pool_size, stride, .. } => {
            pool_size.pair().iter().for_each(|&x| size(c, key, "pool_size", x));
            stride
                .iter()
                .flat_map(|s| s.pair())
                .for_each(|x| size(c, key, "stride", x));
        }
        LayerConfig::PatchEmbed { patch, dim } => {
            size(c, key, "patch", *patch);
            size(c, key, "dim", *dim);
        }
        LayerConfig::TransformerEncoder {
            heads,
            ffn,
            layers,
            dropout,
            ..
        } => {
            size(c, key, "heads", *heads);
            size(c, key, "ffn", *ffn);
            size(c, key, "layers", *layers);
            c.within(&format!("{key}.dropout"), *dropout, 0.0, 1.0, false);
        }
        LayerConfig::Dropout { rate } => c.within(&format!("{key}.rate"), *rate, 0.0, 1.0, false),
        LayerConfig::LayerNorm { eps } => c.positive(&format!("{key}.eps"), *eps),
        LayerConfig::BatchNorm { momentum, eps } => {
            c.within(&format!("{key}.momentum"), *momentum, 0.0, 1.0, true);
            c.positive(&format!("{key}.eps"), *eps);
        }
        LayerConfig::Activation { .. }
        | LayerConfig::Flatten
        | LayerConfig::GlobalAvgPool2d
        | LayerConfig::ClassToken => {}
    }
}
