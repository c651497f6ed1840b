//! Training callbacks (Keras names): EarlyStopping, ReduceLrOnPlateau, LrScheduler,
//! ModelCheckpoint, CSV / JSON-lines loggers; the TensorBoard logger is in `tensorboard.rs`.
//!
//! Layer: train. A callback sees each evaluation's logs and the training state through a
//! [`Context`] — the model's tensors by name, the [`TrainStep`] (learning rate, optimizer state,
//! run position) and the history — so the same callbacks serve every model. A callback with
//! state ([`Callback::save_state`]) has it saved in checkpoints and restored on resume; put
//! `ModelCheckpoint` last so it saves what the others decided this evaluation.

use crate::checkpoint::{save_checkpoint, CheckpointContent};
use crate::history::{History, Logs};
use crate::step::{ScheduleUnit, TrainStep};
use ferrite_core::{Error, Result, Tensor};
use ferrite_nn::checkpoint::{load_safetensors, save_safetensors};
use ferrite_nn::LrSchedule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// What a callback sees.
pub struct Context<'a> {
    /// The model's tensors (parameters and buffers) by name. They are handles: assigning to one
    /// changes the model.
    pub tensors: &'a [(String, Tensor)],
    pub step: &'a mut TrainStep,
    pub history: &'a History,
}

impl<'a> Context<'a> {
    pub(crate) fn new(tensors: &'a [(String, Tensor)], step: &'a mut TrainStep, history: &'a History) -> Self {
        Context { tensors, step, history }
    }
}

/// Hooks called by [`fit`](crate::fit::fit).
pub trait Callback {
    /// The key of this callback's state in checkpoints.
    fn name(&self) -> &str {
        "callback"
    }
    /// Restores state saved by an earlier run segment (called before training starts).
    fn on_train_begin(&mut self, ctx: &mut Context) -> Result<()> {
        if let Some(v) = ctx.step.state.callbacks.get(self.name()).cloned() {
            self.load_state(&v)?;
        }
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// After every optimizer step, with its loss.
    fn on_batch_end(&mut self, _loss: f64, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// After each evaluation — the end of an epoch, or every n steps (see
    /// [`EvalEvery`](crate::fit::EvalEvery)). Returns `true` to stop training.
    fn on_epoch_end(&mut self, logs: &Logs, ctx: &mut Context) -> Result<bool>;
    fn on_train_end(&mut self, _ctx: &mut Context) -> Result<()> {
        Ok(())
    }
    /// State to keep in checkpoints.
    fn save_state(&self) -> Option<serde_json::Value> {
        None
    }
    /// Restores what [`save_state`](Self::save_state) returned.
    fn load_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

fn monitored(logs: &Logs, key: &str) -> Result<f64> {
    logs.get(key).copied().ok_or_else(|| Error::Invalid {
        op: "callback",
        detail: format!(
            "monitored value '{key}' is not in the logs (available: {})",
            logs.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    })
}

/// Whether larger monitored values are better (accuracy-like metrics), else smaller.
fn higher_is_better(key: &str) -> bool {
    ["accuracy", "precision", "recall", "f1", "bleu", "chrf"]
        .iter()
        .any(|m| key.ends_with(m))
}

/// Whether `v` improves on `best` by more than `min_delta` for `key`.
fn improves(key: &str, v: f64, best: Option<f64>, min_delta: f64) -> bool {
    let sign = if higher_is_better(key) { -1.0 } else { 1.0 };
    best.is_none_or(|b| sign * v < sign * b - min_delta)
}

fn state_error(name: &str, e: serde_json::Error) -> Error {
    Error::Invalid {
        op: "callback state",
        detail: format!("{name}: {e}"),
    }
}

/// What [`EarlyStopping`] remembers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EarlyStoppingState {
    pub best: Option<f64>,
    /// 1-based epoch of the best value.
    pub best_epoch: Option<usize>,
    pub wait: usize,
}

/// Stops when `monitor` has not improved by `min_delta` for `patience` evaluations; optionally
/// restores the best weights at the end (Keras `EarlyStopping`).
pub struct EarlyStopping {
    pub monitor: String,
    pub patience: usize,
    pub min_delta: f64,
    pub restore_best_weights: bool,
    /// Where the best weights are also written, so a resumed run can still restore them.
    pub best_weights_file: Option<PathBuf>,
    pub state: EarlyStoppingState,
    best_weights: Option<BTreeMap<String, Tensor>>,
}

impl EarlyStopping {
    pub fn new(monitor: &str, patience: usize, restore_best_weights: bool) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            patience,
            min_delta: 0.0,
            restore_best_weights,
            best_weights_file: None,
            state: EarlyStoppingState::default(),
            best_weights: None,
        }
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &str {
        "early_stopping"
    }

    fn on_epoch_end(&mut self, logs: &Logs, ctx: &mut Context) -> Result<bool> {
        let v = monitored(logs, &self.monitor)?;
        if improves(&self.monitor, v, self.state.best, self.min_delta) {
            self.state.best = Some(v);
            self.state.best_epoch = logs.get("epoch").map(|&e| e as usize);
            self.state.wait = 0;
            if self.restore_best_weights {
                let snapshot: BTreeMap<String, Tensor> =
                    ctx.tensors.iter().map(|(n, t)| (n.clone(), t.copy())).collect();
                if let Some(path) = &self.best_weights_file {
                    save_safetensors(path, &snapshot, None)?;
                }
                self.best_weights = Some(snapshot);
            }
            return Ok(false);
        }
        self.state.wait += 1;
        Ok(self.state.wait >= self.patience)
    }

    fn on_train_end(&mut self, ctx: &mut Context) -> Result<()> {
        if let (true, Some(w)) = (self.restore_best_weights, &self.best_weights) {
            for (name, t) in ctx.tensors {
                if let Some(best) = w.get(name) {
                    t.assign_(best)?;
                }
            }
        }
        Ok(())
    }

    fn save_state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.state).ok()
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| state_error("early_stopping", e))?;
        if let (true, Some(path)) = (self.restore_best_weights, &self.best_weights_file)
            && path.is_file()
        {
            self.best_weights = Some(load_safetensors(path)?.0);
        }
        Ok(())
    }
}

/// What [`ReduceLrOnPlateau`] remembers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    pub best: Option<f64>,
    pub wait: usize,
}

/// Multiplies the learning rate by `factor` when `monitor` stalls for `patience` evaluations,
/// never below `min_lr` (Keras `ReduceLROnPlateau`).
pub struct ReduceLrOnPlateau {
    pub monitor: String,
    pub factor: f64,
    pub patience: usize,
    pub min_lr: f64,
    pub state: PlateauState,
}

impl ReduceLrOnPlateau {
    pub fn new(monitor: &str, factor: f64, patience: usize, min_lr: f64) -> Self {
        ReduceLrOnPlateau {
            monitor: monitor.into(),
            factor,
            patience,
            min_lr,
            state: PlateauState::default(),
        }
    }
}

impl Callback for ReduceLrOnPlateau {
    fn name(&self) -> &str {
        "reduce_lr_on_plateau"
    }

    fn on_epoch_end(&mut self, logs: &Logs, ctx: &mut Context) -> Result<bool> {
        let v = monitored(logs, &self.monitor)?;
        if improves(&self.monitor, v, self.state.best, 0.0) {
            self.state.best = Some(v);
            self.state.wait = 0;
        } else {
            self.state.wait += 1;
            if self.state.wait >= self.patience {
                ctx.step.scale_lr(self.factor, self.min_lr);
                self.state.wait = 0;
            }
        }
        Ok(false)
    }

    fn save_state(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.state).ok()
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.state = serde_json::from_value(state.clone()).map_err(|e| state_error("reduce_lr_on_plateau", e))?;
        Ok(())
    }
}

/// Puts a learning-rate schedule on the training step (Keras `LearningRateScheduler`): the rate
/// follows `schedule` of the epoch or of the optimizer step, from the optimizer's own rate.
pub struct LrScheduler {
    pub schedule: LrSchedule,
    pub unit: ScheduleUnit,
}

impl Callback for LrScheduler {
    fn on_train_begin(&mut self, ctx: &mut Context) -> Result<()> {
        ctx.step.schedule = Some((self.schedule.clone(), self.unit));
        Ok(())
    }
    fn on_epoch_end(&mut self, _: &Logs, _: &mut Context) -> Result<bool> {
        Ok(false)
    }
}

/// Saves a checkpoint after every evaluation, or only when `monitor` improves (Keras
/// `ModelCheckpoint(save_best_only=True)`): the model's tensors, and unless `weights_only` the
/// optimizer state and the run's [`TrainState`](crate::step::TrainState), so training can
/// resume exactly. Written atomically.
pub struct ModelCheckpoint {
    pub path: PathBuf,
    pub monitor: Option<String>,
    pub weights_only: bool,
    /// Extra metadata stored with every save (e.g. the model's architecture).
    pub metadata: BTreeMap<String, String>,
    best: Option<f64>,
}

impl ModelCheckpoint {
    /// A resumable checkpoint at `path`, every evaluation or (with `monitor_best_only`) when the
    /// monitored value improves.
    pub fn new(path: impl Into<PathBuf>, monitor_best_only: Option<&str>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: monitor_best_only.map(String::from),
            weights_only: false,
            metadata: BTreeMap::new(),
            best: None,
        }
    }

    /// Only the model's tensors (no optimizer or run state): a model file.
    pub fn weights_only(mut self) -> Self {
        self.weights_only = true;
        self
    }

    /// Metadata stored with every save.
    pub fn with_metadata(mut self, metadata: BTreeMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }
}

impl Callback for ModelCheckpoint {
    fn name(&self) -> &str {
        "model_checkpoint"
    }

    fn on_epoch_end(&mut self, logs: &Logs, ctx: &mut Context) -> Result<bool> {
        if let Some(m) = &self.monitor {
            let v = monitored(logs, m)?;
            if !improves(m, v, self.best, 0.0) {
                return Ok(false);
            }
            self.best = Some(v);
        }
        let content = if self.weights_only {
            CheckpointContent::Weights
        } else {
            CheckpointContent::Resumable
        };
        save_checkpoint(&self.path, ctx.tensors, ctx.step, content, &self.metadata)?;
        Ok(false)
    }

    fn save_state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "best": self.best }))
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.best = state["best"].as_f64();
        Ok(())
    }
}

/// Appends each evaluation's logs to a file: one JSON object per line, or CSV with a header.
pub struct EpochLogger {
    pub path: PathBuf,
    pub csv: bool,
}

impl EpochLogger {
    pub fn jsonl(path: impl Into<PathBuf>) -> Self {
        EpochLogger {
            path: path.into(),
            csv: false,
        }
    }
    pub fn csv(path: impl Into<PathBuf>) -> Self {
        EpochLogger {
            path: path.into(),
            csv: true,
        }
    }
}

impl Callback for EpochLogger {
    fn on_epoch_end(&mut self, logs: &Logs, _ctx: &mut Context) -> Result<bool> {
        let io = |e: std::io::Error| Error::file(&self.path, format!("cannot write log: {e}"));
        let new = !self.path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let line = if self.csv {
            let mut s = String::new();
            if new {
                s.push_str(&format!("{}\n", logs.keys().cloned().collect::<Vec<_>>().join(",")));
            }
            s.push_str(&format!(
                "{}\n",
                logs.values().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
            ));
            s
        } else {
            let obj: serde_json::Map<String, serde_json::Value> = logs
                .iter()
                .map(|(k, v)| {
                    // Counters as integers, so `"epoch": 3`, not `3.0`.
                    let v = if matches!(k.as_str(), "epoch" | "step") {
                        serde_json::json!(*v as u64)
                    } else {
                        serde_json::json!(v)
                    };
                    (k.clone(), v)
                })
                .collect();
            format!("{}\n", serde_json::Value::Object(obj))
        };
        f.write_all(line.as_bytes()).map_err(io)?;
        Ok(false)
    }

    fn name(&self) -> &str {
        if self.csv {
            "csv_logger"
        } else {
            "epoch_logger"
        }
    }

    /// The log's length when the checkpoint is written: the logger runs before the checkpoint, so
    /// a kill between the two leaves lines the checkpoint never saw.
    fn save_state(&self) -> Option<serde_json::Value> {
        let bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Some(serde_json::json!({ "bytes": bytes }))
    }

    /// Cuts the log back to what the checkpoint saw, so a resumed run logs each epoch once.
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let Some(bytes) = state.get("bytes").and_then(serde_json::Value::as_u64) else {
            return Err(Error::Invalid {
                op: "epoch_logger",
                detail: format!("the checkpoint's logger state lacks the log length: {state}"),
            });
        };
        let io = |e: std::io::Error| Error::file(&self.path, format!("cannot cut the log back to the checkpoint: {e}"));
        match std::fs::OpenOptions::new().write(true).open(&self.path) {
            Ok(f) => {
                if f.metadata().map_err(io)?.len() > bytes {
                    f.set_len(bytes).map_err(io)?;
                    f.sync_all().map_err(io)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}
