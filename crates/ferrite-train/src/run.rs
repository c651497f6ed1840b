//! A training run driven by a `TrainConfig`: data preparation, the run directory (config copy,
//! scalers, checkpoints, metrics.jsonl, loss curve), resuming, evaluation and prediction.
//! This is what `ferrite train`, `ferrite eval` and `ferrite predict` call.
//!
//! Layer: train.

use crate::augment::{Augment, AugmentConfig};
use crate::callbacks::{Callback, EarlyStopping, EpochLogger, ModelCheckpoint, ReduceLrOnPlateau};
use crate::config::{DataFormat, RunKind, Task, TrainConfig};
use crate::csv::Table;
use crate::data::{train_test_indices, Dataset, Standardizer};
use crate::history::{History, Logs};
use crate::keras::FitOptions;
use crate::metrics::Metric;
use crate::model::Sequential;
use crate::plot::plot_loss_curve;
use crate::tensorboard::TensorBoard;
use ferrite_core::fs::write_atomic;
use ferrite_core::{set_num_threads, Error, Result, Tensor};
use ferrite_nn::Loss;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Column names and the standardizers fitted on the training split (`scaler.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scalers {
    pub features: Vec<String>,
    pub target: String,
    pub task: Task,
    pub x: Option<Standardizer>,
    pub y: Option<Standardizer>,
    /// Per-sample `[C, H, W]` of image data (absent for tabular runs).
    #[serde(default)]
    pub image_shape: Option<Vec<usize>>,
    /// Names of the classes (from the config, or an image folder's class directories).
    #[serde(default)]
    pub class_names: Option<Vec<String>>,
}

impl Scalers {
    /// Reads a run's `scaler.json` and [checks](Self::check) it against the run's `task`.
    ///
    /// # Errors
    /// An unreadable or damaged file, named.
    pub fn read(path: &Path, task: Task) -> Result<Self> {
        let scalers: Scalers = read_json(path)?;
        scalers.check(task, path)?;
        Ok(scalers)
    }

    /// Checks a saved `scaler.json` against itself and the run's config, so a damaged or
    /// mismatched file is named when the run opens, not met as a shape error at predict time.
    ///
    /// # Errors
    /// Vectors of the wrong length, a non-finite or zero scale, or a task other than the config's.
    fn check(&self, task: Task, path: &Path) -> Result<()> {
        let bad = |detail: String| Err(Error::file(path, detail));
        if self.task != task {
            return bad(format!(
                "was written for a {} run, but the run's config.toml says {}",
                format!("{:?}", self.task).to_lowercase(),
                format!("{task:?}").to_lowercase()
            ));
        }
        let inputs: usize = self.input_shape().iter().product();
        for (name, s, n) in [("x", &self.x, inputs), ("y", &self.y, 1)] {
            let Some(s) = s else { continue };
            if s.mean.len() != n || s.std.len() != n {
                return bad(format!(
                    "{name} has {} means and {} scales, but the run has {n} {}",
                    s.mean.len(),
                    s.std.len(),
                    if name == "x" { "inputs" } else { "target" }
                ));
            }
            if s.mean.iter().chain(&s.std).any(|v| !v.is_finite()) || s.std.iter().any(|&v| v <= 0.0) {
                return bad(format!("{name} holds a non-finite mean or a scale that is not above 0"));
            }
        }
        if self.y.is_some() && task == Task::Classification {
            return bad("standardizes the target of a classification run (class ids are not scaled)".into());
        }
        Ok(())
    }

    /// The model's per-sample input shape.
    pub fn input_shape(&self) -> Vec<usize> {
        self.image_shape.clone().unwrap_or_else(|| vec![self.features.len()])
    }

    /// Standardizes `[N, F]` feature rows and shapes them as the model's input.
    pub fn prepare_x(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.x {
            Some(s) => s.transform(x)?,
            None => x.clone(),
        };
        match &self.image_shape {
            Some(shape) => {
                let mut full = vec![x.shape()[0]];
                full.extend(shape);
                x.reshape(full)
            }
            None => Ok(x),
        }
    }
}

/// Train and test data, standardized.
pub struct Prepared {
    pub train: Dataset,
    pub test: Dataset,
    pub scalers: Scalers,
}

fn targets(table: &Table, cfg: &TrainConfig) -> Result<Tensor> {
    let y = table.select(std::slice::from_ref(&cfg.data.target))?;
    match cfg.task {
        Task::Regression => Ok(y),
        Task::Classification => {
            let col = table.column_index(&cfg.data.target)?;
            let ids = table
                .rows
                .iter()
                .zip(&table.lines)
                .map(|(row, line)| {
                    class_id(row[col]).map_err(|why| {
                        Error::file(
                            &table.path,
                            format!(
                                "line {line}, column '{}': class label {} {why}",
                                cfg.data.target, row[col]
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<i64>>>()?;
            Tensor::from_vec(ids, [table.rows.len()])
        }
    }
}

/// A class label as a class id: a whole number from 0 (the CSV holds it as a number).
fn class_id(v: f64) -> std::result::Result<i64, &'static str> {
    if v.fract() != 0.0 {
        Err("is not a whole number (classes are numbered 0, 1, 2, …)")
    } else if v < 0.0 {
        Err("is negative (classes are numbered 0, 1, 2, …)")
    } else if v > (1u64 << 31) as f64 {
        Err("is too large for a class id")
    } else {
        Ok(v as i64)
    }
}

/// Features `[N, F]`, targets, their names, the train/test row split and the image shape.
struct RawData {
    features: Vec<String>,
    x: Tensor,
    y: Tensor,
    train: Vec<usize>,
    test: Vec<usize>,
    image_shape: Option<Vec<usize>>,
    class_names: Option<Vec<String>>,
}

fn read_csv_data(cfg: &TrainConfig) -> Result<RawData> {
    if cfg.data.target.is_empty() {
        return Err(Error::file(
            &cfg.data.path,
            "the config's [data] section needs target = \"COLUMN\"",
        ));
    }
    let table = Table::read_with(&cfg.data.path, cfg.data.missing)?;
    let features = if cfg.data.features.is_empty() {
        table.other_columns(std::slice::from_ref(&cfg.data.target))
    } else {
        cfg.data.features.clone()
    };
    if features.is_empty() {
        return Err(Error::file(
            &cfg.data.path,
            format!(
                "has no feature columns besides the target '{}': there is nothing to predict it from",
                cfg.data.target
            ),
        ));
    }
    if features.contains(&cfg.data.target) {
        return Err(Error::file(
            &cfg.data.path,
            format!(
                "[data] features lists the target column '{}': a model given its own answer learns nothing",
                cfg.data.target
            ),
        ));
    }
    if let Some(dup) = features
        .iter()
        .enumerate()
        .find_map(|(i, f)| features[..i].contains(f).then_some(f))
    {
        return Err(Error::file(
            &cfg.data.path,
            format!("[data] features lists column '{dup}' twice"),
        ));
    }
    if table.rows.is_empty() {
        return Err(Error::file(&cfg.data.path, "has a header but no data rows"));
    }
    if let Some(shape) = &cfg.data.image_shape {
        let n: usize = shape.iter().product();
        if shape.len() != 3 || n != features.len() {
            return Err(Error::file(
                &cfg.data.path,
                format!(
                    "image_shape {shape:?} must be [channels, height, width] holding the {} feature columns",
                    features.len()
                ),
            ));
        }
    }
    let x = table.select(&features)?;
    let y = targets(&table, cfg)?;
    let (train, test) = train_test_indices(table.rows.len(), cfg.data.test_split, cfg.seed)?;
    Ok(RawData {
        features,
        x,
        y,
        train,
        test,
        image_shape: cfg.data.image_shape.clone(),
        class_names: None,
    })
}

/// Reads an MNIST-layout IDX directory: the train files, then the t10k (test) files.
fn read_idx_data(cfg: &TrainConfig) -> Result<RawData> {
    let dir = &cfg.data.path;
    let (tr_img, tr_lab) = crate::idx::read_idx_split(dir, "train")?;
    let (te_img, te_lab) = crate::idx::read_idx_split(dir, "t10k")?;
    if tr_img.dims[1..] != te_img.dims[1..] {
        return Err(Error::file(
            dir,
            format!(
                "train images are {:?} but test images {:?}",
                &tr_img.dims[1..],
                &te_img.dims[1..]
            ),
        ));
    }
    if let Some(shape) = &cfg.data.image_shape
        && shape[..] != [1, tr_img.dims[1], tr_img.dims[2]]
    {
        return Err(Error::file(
            dir,
            format!(
                "image_shape {shape:?} differs from the files' [1, {}, {}]",
                tr_img.dims[1], tr_img.dims[2]
            ),
        ));
    }
    let (n_tr, n_te) = (tr_img.dims[0], te_img.dims[0]);
    let pixels = tr_img.dims[1] * tr_img.dims[2];
    let x: Vec<f32> = tr_img.data.iter().chain(&te_img.data).map(|&b| b as f32).collect();
    let y: Vec<i64> = tr_lab.data.iter().chain(&te_lab.data).map(|&b| b as i64).collect();
    Ok(RawData {
        features: (0..pixels).map(|i| format!("pixel{i}")).collect(),
        x: Tensor::from_vec(x, [n_tr + n_te, pixels])?,
        y: Tensor::from_vec(y, [n_tr + n_te])?,
        train: (0..n_tr).collect(),
        test: (n_tr..n_tr + n_te).collect(),
        image_shape: Some(vec![1, tr_img.dims[1], tr_img.dims[2]]),
        class_names: None,
    })
}

/// Reads an image folder: `train/` and `test/` sub-directories when present, else one folder
/// split by seed. Classes are the (sorted) class directories of the training folder.
fn read_image_folder_data(cfg: &TrainConfig) -> Result<RawData> {
    use crate::image_folder::{folder_classes, read_image_folder, ImageOptions};
    let dir = &cfg.data.path;
    let opts = ImageOptions {
        channels: cfg.data.image_shape.as_ref().and_then(|s| s.first().copied()),
        resize: cfg.data.resize,
    };
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    let split = train_dir.is_dir() && test_dir.is_dir();
    let classes = folder_classes(if split { &train_dir } else { dir })?;
    let (set, train, test) = if split {
        let mut set = read_image_folder(&train_dir, &classes, opts)?;
        let opts = ImageOptions {
            channels: Some(set.shape[0]),
            ..opts
        };
        let test_set = read_image_folder(&test_dir, &classes, opts)?;
        if test_set.shape != set.shape {
            return Err(Error::file(
                &test_dir,
                format!(
                    "test images are {:?} but training images {:?} ([C, H, W]); set resize = [H, W]",
                    test_set.shape, set.shape
                ),
            ));
        }
        let (n_tr, n_te) = (set.len(), test_set.len());
        set.pixels.extend(test_set.pixels);
        set.labels.extend(test_set.labels);
        (set, (0..n_tr).collect(), (n_tr..n_tr + n_te).collect())
    } else {
        let set = read_image_folder(dir, &classes, opts)?;
        let (train, test) = train_test_indices(set.len(), cfg.data.test_split, cfg.seed)?;
        (set, train, test)
    };
    if let Some(shape) = &cfg.data.image_shape
        && shape[..] != set.shape
    {
        return Err(Error::file(
            dir,
            format!("image_shape {shape:?} differs from the images' {:?}", set.shape),
        ));
    }
    let n = set.labels.len();
    let per: usize = set.shape.iter().product();
    Ok(RawData {
        features: (0..per).map(|i| format!("pixel{i}")).collect(),
        x: Tensor::from_vec(set.pixels, [n, per])?,
        y: Tensor::from_vec(set.labels, [n])?,
        train,
        test,
        image_shape: Some(set.shape.to_vec()),
        class_names: Some(classes),
    })
}

/// Loads the data (CSV or IDX), splits it (by seed for CSV; the files' own split for IDX), and
/// standardizes with statistics of the training rows (or with `saved` scalers from an earlier
/// run). Image data ends up `[N, C, H, W]`.
pub fn prepare_data(cfg: &TrainConfig, saved: Option<&Scalers>) -> Result<Prepared> {
    let raw = match cfg.data.format {
        DataFormat::Csv => read_csv_data(cfg)?,
        DataFormat::Idx => read_idx_data(cfg)?,
        DataFormat::ImageFolder => read_image_folder_data(cfg)?,
    };
    if cfg.task == Task::Regression && cfg.data.format != DataFormat::Csv {
        return Err(Error::file(
            &cfg.data.path,
            "IDX files and image folders hold class labels: set task = \"classification\"",
        ));
    }
    let all = Dataset::new(raw.x, raw.y)?;
    let (mut train, mut test) = (all.subset(&raw.train)?, all.subset(&raw.test)?);
    let scalers = match saved {
        Some(s) => s.clone(),
        None => Scalers {
            features: raw.features.clone(),
            target: cfg.data.target.clone(),
            task: cfg.task,
            x: match (&raw.image_shape, cfg.data.standardize_x) {
                (_, false) => None,
                (Some(shape), true) => Some(Standardizer::fit_channels(&train.x, shape[0])?),
                (None, true) => Some(Standardizer::fit(&train.x)?),
            },
            y: if cfg.data.standardize_y && cfg.task == Task::Regression {
                Some(Standardizer::fit(&train.y)?)
            } else {
                None
            },
            image_shape: raw.image_shape.clone(),
            class_names: cfg.data.class_names.clone().or(raw.class_names),
        },
    };
    for ds in [&mut train, &mut test] {
        ds.x = scalers.prepare_x(&ds.x)?;
        if let Some(s) = &scalers.y {
            ds.y = s.transform(&ds.y)?;
        }
    }
    Ok(Prepared { train, test, scalers })
}

/// A resumed run continues the run it started as: only `epochs` (to train longer) and
/// `training.threads` may differ from the run directory's `config.toml`; any other change would
/// silently be ignored (the scalers, weights and optimizer state are the old run's), so it is an
/// error naming the keys.
fn refuse_changed_config(cfg: &TrainConfig, dir: &Path) -> Result<()> {
    let saved_path = dir.join("config.toml");
    let saved = TrainConfig::from_file(&saved_path)?;
    let mut now = cfg.clone();
    now.epochs = saved.epochs;
    now.training.threads = saved.training.threads;
    now.data.path = std::fs::canonicalize(&cfg.data.path).unwrap_or(cfg.data.path.clone());
    let flat = |c: &TrainConfig| -> Result<BTreeMap<String, String>> {
        let value = toml::Value::try_from(c).map_err(|e| Error::file(&saved_path, e.to_string()))?;
        let mut out = BTreeMap::new();
        flatten_toml("", &value, &mut out);
        Ok(out)
    };
    let (before, after) = (flat(&saved)?, flat(&now)?);
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
            format!("{k}: {} → {}", show(before.get(k)), show(after.get(k)))
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Error::file(
        &saved_path,
        format!(
            "--resume continues this run, but the config differs from the one it started with ({}); \
             only epochs and training.threads may change — start a new run for the rest",
            changed.join(", ")
        ),
    ))
}

/// `a.b[2].c = value` lines of a TOML value, for naming what differs.
fn flatten_toml(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out);
            }
        }
        toml::Value::Array(a) if a.iter().any(|x| x.is_table()) => {
            for (i, v) in a.iter().enumerate() {
                flatten_toml(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Class labels must name one of the model's outputs: `0..units` for a softmax layer, 0 or 1 for a
/// single logit. Checked before training so the error names the data file and the layer, not a
/// loss deep inside the first step.
/// The model's output against the targets: one value per target column for regression (named
/// in the config), a unit per class for classification (labels named in the data file).
fn check_output_fits(cfg: &TrainConfig, config_path: &Path, model: &Sequential, data: &Prepared) -> Result<()> {
    if cfg.task != Task::Classification {
        let want = &data.train.y.shape()[1..];
        if model.output_shape() != want {
            return Err(Error::file(
                config_path,
                format!(
                    "the model's output has shape {:?} but the regression target has {want:?}: \
                     end the model with a dense layer of {} unit(s)",
                    model.output_shape(),
                    want.iter().product::<usize>()
                ),
            ));
        }
        return Ok(());
    }
    let units = model.output_shape().last().copied().unwrap_or(0);
    let classes = if units == 1 { 2 } else { units };
    for ds in [&data.train, &data.test] {
        if let Some(&label) = ds.y.to_vec::<i64>()?.iter().find(|&&l| l < 0 || l as usize >= classes) {
            return Err(Error::file(
                &cfg.data.path,
                format!(
                    "class label {label} is out of range: the model's last layer has {units} unit{} \
                     (classes 0 to {}); give it one unit per class",
                    if units == 1 { "" } else { "s" },
                    classes.saturating_sub(1)
                ),
            ));
        }
    }
    Ok(())
}

/// Builds and compiles the configured model (optimizer, clipping and schedule on its training
/// step).
///
/// # Errors
/// Layers that do not fit together, an unknown loss, metric or optimizer (named).
pub fn build_model(cfg: &TrainConfig, input_shape: &[usize]) -> Result<Sequential> {
    let mut model = Sequential::with_options(input_shape, cfg.seed, cfg.model.init);
    for l in &cfg.model.layers {
        model = model.add(l.clone())?;
    }
    let loss = Loss::parse(&cfg.training.loss)?;
    let metrics = cfg
        .training
        .metrics
        .iter()
        .map(|m| Metric::parse(m))
        .collect::<Result<Vec<_>>>()?;
    model.compile_boxed(cfg.optimizer.build()?, loss, &metrics);
    let step = model.trainer_mut()?;
    step.clip_norm = cfg.optimizer.clip_norm;
    step.clip_value = cfg.optimizer.clip_value;
    step.schedule = cfg.training.schedule.clone().map(|s| (s, cfg.training.schedule_unit));
    step.seed = cfg.seed;
    Ok(model)
}

/// Options of `ferrite train` beyond the config file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run directory (default: a fresh one under `runs/`).
    pub out: Option<PathBuf>,
    /// Override the configured epoch count (total, counting resumed epochs).
    pub epochs: Option<usize>,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Stop training after this many minutes (the epoch in progress is evaluated).
    pub max_minutes: Option<f64>,
    /// Override the configured seed.
    pub seed: Option<u64>,
    /// Override the configured kernel threads.
    pub threads: Option<usize>,
    pub verbose: bool,
}

/// What a finished run reports (the `--json` line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_dir: String,
    pub epochs: usize,
    pub best_epoch: Option<usize>,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    /// Test metrics, e.g. `test_mse`, `test_mae` or `test_accuracy`.
    #[serde(flatten)]
    pub test: BTreeMap<String, f64>,
    /// Training wall time in seconds (this invocation).
    pub seconds: f64,
    /// DP-SGD runs: the privacy spent and the settings that spent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<crate::privacy::dp_sgd::PrivacySpent>,
}

pub(crate) fn fresh_run_dir(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut dir = PathBuf::from("runs").join(format!("{stem}-{secs}"));
    let mut i = 1;
    while dir.exists() {
        dir = PathBuf::from("runs").join(format!("{stem}-{secs}-{i}"));
        i += 1;
    }
    dir
}

pub(crate) fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::file(path, e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("invalid JSON: {e}")))
}

/// Test metrics for a trained model: loss-appropriate names (`test_mse`, `test_mae` or
/// `test_accuracy`, plus `test_loss`).
pub fn test_metrics(model: &Sequential, test: &Dataset, task: Task) -> Result<BTreeMap<String, f64>> {
    test_metrics_for(model, test, task, &model.predict(&test.x, 1024)?)
}

/// [`test_metrics`] for predictions `pred` already made on `test.x`.
fn test_metrics_for(model: &Sequential, test: &Dataset, task: Task, pred: &Tensor) -> Result<BTreeMap<String, f64>> {
    let metrics: &[Metric] = match task {
        Task::Regression => &[Metric::Mse, Metric::Mae],
        Task::Classification => &[Metric::Accuracy, Metric::F1],
    };
    let mut out = BTreeMap::new();
    for m in metrics {
        out.insert(format!("test_{}", m.name()), m.compute(pred, &test.y)?);
    }
    out.insert("test_loss".into(), model.evaluate(test, 1024)?["loss"]);
    Ok(out)
}

/// Trains the model a config describes and writes the run directory.
///
/// # Errors
/// A bad config, data or run directory (each named), or a failing step.
pub fn train_from_config(config_path: &Path, opts: &RunOptions) -> Result<RunSummary> {
    let mut cfg = TrainConfig::from_file(config_path)?;
    if let Some(e) = opts.epochs {
        cfg.epochs = e;
    }
    if let Some(s) = opts.seed {
        cfg.seed = s;
    }
    if let Some(t) = opts.threads {
        cfg.training.threads = Some(t);
    }
    // The overrides are checked as the file's own values are (`--epochs 0`, `--threads 100000`).
    cfg.validate(config_path)?;
    if let Some(m) = opts.max_minutes {
        let mut c = crate::checks::Checks::new();
        c.positive("max_minutes", m);
        c.finish_options("train")?;
    }
    // What goes wrong from here on either names its own file or comes from the config (a split
    // that rounds to no rows, a model that does not fit the data, a learning rate that diverges):
    // those name the config, so the user knows which file to edit.
    run_config(cfg, config_path, opts).map_err(|e| e.attributed_to(config_path, None))
}

/// [`train_from_config`] once the config is read, overridden and valid.
fn run_config(cfg: TrainConfig, config_path: &Path, opts: &RunOptions) -> Result<RunSummary> {
    if let Some(t) = cfg.training.threads {
        set_num_threads(t);
    }
    let dir = opts.out.clone().unwrap_or_else(|| fresh_run_dir(config_path));
    std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, format!("cannot create run directory: {e}")))?;
    // Temp files of a writer killed mid-checkpoint (`kill -9`) would otherwise pile up.
    ferrite_core::fs::remove_stale_temps(&dir);
    let saved = if opts.resume {
        refuse_changed_config(&cfg, &dir)?;
        Some(Scalers::read(&dir.join("scaler.json"), cfg.task)?)
    } else {
        None
    };
    let data = prepare_data(&cfg, saved.as_ref())?;
    let mut model = build_model(&cfg, &data.scalers.input_shape())?;
    check_output_fits(&cfg, config_path, &model, &data)?;
    let checkpoint = dir.join("checkpoint.safetensors");
    if opts.resume {
        model.resume_from(&checkpoint)?;
    } else {
        let mut saved_cfg = cfg.clone();
        saved_cfg.data.path = std::fs::canonicalize(&cfg.data.path).unwrap_or(cfg.data.path.clone());
        let text = toml::to_string(&saved_cfg).map_err(|e| Error::file(&dir, e.to_string()))?;
        write_atomic(dir.join("config.toml"), text.as_bytes())?;
        write_json(&dir.join("scaler.json"), &data.scalers)?;
        let _ = std::fs::remove_file(dir.join("metrics.jsonl"));
    }
    let fit = FitOptions {
        epochs: cfg.epochs,
        batch_size: cfg.training.batch_size,
        shuffle: cfg.training.shuffle,
        validation_split: cfg.data.validation_split,
        class_weight: cfg.data.class_weight.clone(),
        seed: cfg.seed,
        augment: cfg.augment.as_ref().map(|a| augmenter(a, &data.scalers)).transpose()?,
        max_seconds: opts.max_minutes.map_or(0.0, |m| m * 60.0),
        verbose: opts.verbose,
        privacy: cfg.privacy.clone(),
        ..FitOptions::default()
    };
    let mut logger = EpochLogger::jsonl(dir.join("metrics.jsonl"));
    let mut tensorboard = TensorBoard::new(&dir);
    let mut plateau = cfg
        .reduce_lr_on_plateau
        .as_ref()
        .map(|p| ReduceLrOnPlateau::new(&p.monitor, p.factor, p.patience, p.min_lr));
    let mut early = cfg.early_stopping.as_ref().map(|e| {
        let mut es = EarlyStopping::new(&e.monitor, e.patience, e.restore_best_weights);
        es.min_delta = e.min_delta;
        es.best_weights_file = Some(dir.join("best.safetensors"));
        es
    });
    // Last, so it saves what early stopping and the plateau decided this epoch.
    let mut ckpt = ModelCheckpoint::new(&checkpoint, None).with_metadata(model.checkpoint_metadata()?);
    let mut cbs: Vec<&mut dyn Callback> = vec![&mut logger, &mut tensorboard];
    if let Some(p) = &mut plateau {
        cbs.push(p);
    }
    if let Some(es) = &mut early {
        cbs.push(es);
    }
    cbs.push(&mut ckpt);
    let started = Instant::now();
    model.fit(&data.train, &fit, &mut cbs)?;
    let seconds = started.elapsed().as_secs_f64();
    model.save(dir.join("model.safetensors"))?;
    let history = read_history(&dir.join("metrics.jsonl"))?;
    plot_loss_curve(&history, &dir.join("loss_curve.png"))?;
    let test_pred = model.predict(&data.test.x, 1024)?;
    if cfg.task == Task::Classification {
        plot_test_classes(&model, &data, &test_pred, &dir)?;
    }
    let summary = RunSummary {
        run_dir: dir.display().to_string(),
        epochs: history.epochs.len(),
        best_epoch: early.as_ref().and_then(|e| e.state.best_epoch),
        train_loss: history.last("loss").unwrap_or(f64::NAN),
        val_loss: history.last("val_loss"),
        test: test_metrics_for(&model, &data.test, cfg.task, &test_pred)?,
        seconds,
        privacy: privacy_spent(&mut model)?,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    Ok(summary)
}

/// ε spent by a DP-SGD run so far (its step count is the training state's).
fn privacy_spent(model: &mut Sequential) -> Result<Option<crate::privacy::dp_sgd::PrivacySpent>> {
    let step = model.trainer_mut()?;
    step.privacy.as_ref().map(|dp| dp.spent(step.state.step)).transpose()
}

/// The configured augmentation for this run's images; padded pixels get each channel's
/// standardized value of a raw 0.
fn augmenter(cfg: &AugmentConfig, scalers: &Scalers) -> Result<Augment> {
    let shape = scalers.image_shape.as_ref().ok_or_else(|| Error::Invalid {
        op: "augment",
        detail: "[augment] needs image data (image_shape, an IDX directory or an image folder)".into(),
    })?;
    let per: usize = shape[1..].iter().product();
    let fill = (0..shape[0])
        .map(|c| match &scalers.x {
            Some(s) => (-s.mean[c * per] / s.std[c * per]) as f32,
            None => 0.0,
        })
        .collect();
    Ok(Augment::new(cfg, fill))
}

/// Writes `confusion_matrix.png` for a classification run, and `misclassified.png` (the first 24
/// misclassified test images) when the inputs are images.
fn plot_test_classes(model: &Sequential, data: &Prepared, pred: &Tensor, dir: &Path) -> Result<()> {
    use crate::plot_classes::{confusion_counts, plot_confusion_matrix, plot_image_grid, Example};
    let classes = model.output_shape().last().copied().unwrap_or(0);
    let labels: Vec<String> = match &data.scalers.class_names {
        Some(names) if names.len() != classes => {
            return Err(Error::Invalid {
                op: "train",
                detail: format!(
                    "class_names has {} names but the model has {classes} classes",
                    names.len()
                ),
            });
        }
        Some(names) => names.clone(),
        None => (0..classes).map(|i| i.to_string()).collect(),
    };
    let pred: Vec<usize> = pred
        .argmax(-1, false)?
        .to_f64_vec()
        .iter()
        .map(|&v| v as usize)
        .collect();
    let truth: Vec<usize> = data.test.y.to_f64_vec().iter().map(|&v| v.max(0.0) as usize).collect();
    plot_confusion_matrix(
        &confusion_counts(&truth, &pred, classes),
        &labels,
        &dir.join("confusion_matrix.png"),
    )?;
    if let Some(shape) = &data.scalers.image_shape {
        let x = data.test.x.contiguous()?.to_vec::<f32>()?;
        let per: usize = shape.iter().product();
        let errors = (0..truth.len()).filter(|&i| truth[i] != pred[i]).count();
        let wrong: Vec<Example> = (0..truth.len())
            .filter(|&i| truth[i] != pred[i])
            .take(24)
            .map(|i| Example {
                pixels: &x[i * per..(i + 1) * per],
                truth: truth[i],
                predicted: pred[i],
            })
            .collect();
        let title = format!(
            "Misclassified test images (true → predicted): {} shown of {errors}",
            wrong.len()
        );
        plot_image_grid(&wrong, shape, &labels, &title, &dir.join("misclassified.png"))?;
    }
    Ok(())
}

/// Images of `input` (a file or a directory) as `[N, C·H·W]` raw pixel rows of the run's shape.
pub fn read_image_rows(input: &Path, shape: &[usize], resize: Option<[usize; 2]>) -> Result<Tensor> {
    use crate::image_folder::{image_files, read_images, ImageOptions};
    let files = image_files(input)?;
    let opts = ImageOptions {
        channels: shape.first().copied(),
        resize,
    };
    let set = read_images(&files, vec![0; files.len()], opts).map_err(|e| {
        if files.is_empty() {
            Error::file(input, "no image files")
        } else {
            e
        }
    })?;
    if set.shape[..] != shape[..] {
        return Err(Error::file(
            input,
            format!(
                "images are {:?} but the model was trained on {shape:?} ([C, H, W])",
                set.shape
            ),
        ));
    }
    let (n, per) = (set.len(), set.pixels.len() / set.len());
    Tensor::from_vec(set.pixels, [n, per])
}

/// Reads a run's `metrics.jsonl` back into a `History`.
pub fn read_history(path: &Path) -> Result<History> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let epochs = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str::<Logs>(l).map_err(|e| Error::file(path, format!("line {}: {e}", i + 1))))
        .collect::<Result<Vec<_>>>()?;
    Ok(History { epochs })
}

/// A saved run: its config, scalers and trained model.
pub struct SavedRun {
    pub config: TrainConfig,
    pub scalers: Scalers,
    pub model: Sequential,
}

/// Opens a run directory written by [`train_from_config`].
pub fn open_run(dir: &Path) -> Result<SavedRun> {
    RunKind::expect(
        dir,
        &[RunKind::Regression, RunKind::Classification],
        "ferrite predict, eval or explain",
    )?;
    let config = TrainConfig::from_file(dir.join("config.toml"))?;
    let scalers = Scalers::read(&dir.join("scaler.json"), config.task)?;
    let model = build_model(&config, &scalers.input_shape())?;
    let weights = dir.join("model.safetensors");
    if !weights.is_file() && dir.join("checkpoint.safetensors").is_file() {
        // Killed or still running: the checkpoint holds the last finished epoch.
        return Err(Error::file(
            dir,
            "training has not finished (no model.safetensors yet, only its checkpoint); continue it with \
             `ferrite train CONFIG --out DIR --resume`",
        ));
    }
    let loaded = Sequential::load(&weights)?;
    model.vars.load(
        &loaded.vars.state().into_iter().collect(),
        &weights.display().to_string(),
    )?;
    Ok(SavedRun { config, scalers, model })
}

/// Test-split metrics of a saved run (`ferrite eval`).
pub fn eval_run(dir: &Path) -> Result<BTreeMap<String, f64>> {
    let run = open_run(dir)?;
    let data = prepare_data(&run.config, Some(&run.scalers))?;
    test_metrics(&run.model, &data.test, run.config.task)
}

/// Predictions for the rows of a CSV that has the run's feature columns (`ferrite predict`),
/// in the target's original units (or class ids). For image runs `input` may also be an image
/// file or a directory of images (predicted in sorted file-name order).
pub fn predict_run(dir: &Path, input: &Path) -> Result<Vec<f64>> {
    let run = open_run(dir)?;
    let raw = match &run.scalers.image_shape {
        Some(shape) if input.is_dir() || crate::image_folder::is_image_file(input) => {
            read_image_rows(input, shape, run.config.data.resize)?
        }
        _ => Table::read(input)?.select(&run.scalers.features)?,
    };
    Ok(run.predict_rows(&raw)?.values)
}

/// What a saved run predicts for a batch of rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RowPredictions {
    /// One value per row: the target in its original units, or the class id.
    pub values: Vec<f64>,
    /// Classification: each row's class probabilities (softmax of the outputs), `[N][classes]`.
    pub probabilities: Option<Vec<Vec<f32>>>,
}

impl SavedRun {
    /// Predictions for raw (unstandardized) rows: `[N, features]` for tables, `[N, C·H·W]` for
    /// images. `ferrite predict` and `ferrite serve` both answer through here.
    ///
    /// # Errors
    /// Rows of the wrong width (the shapes are named).
    ///
    /// # Shapes
    /// `raw [N, F]` → `N` values (and `[N, classes]` probabilities for classification).
    pub fn predict_rows(&self, raw: &Tensor) -> Result<RowPredictions> {
        let x = self.scalers.prepare_x(raw)?;
        let mut pred = self.model.predict(&x, 1024)?;
        if self.scalers.task == Task::Classification {
            let classes = pred.shape().last().copied().unwrap_or(0).max(1);
            let probs = pred.softmax(-1)?.to_dtype(ferrite_core::DType::F32)?.to_vec::<f32>()?;
            return Ok(RowPredictions {
                values: pred.argmax(-1, false)?.to_f64_vec(),
                probabilities: Some(probs.chunks(classes).map(<[f32]>::to_vec).collect()),
            });
        }
        if let Some(s) = &self.scalers.y {
            pred = s.inverse_transform(&pred)?;
        }
        Ok(RowPredictions {
            values: pred.to_f64_vec(),
            probabilities: None,
        })
    }
}
