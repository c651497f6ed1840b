//! Training callbacks (Keras names): EarlyStopping, ReduceLrOnPlateau, ModelCheckpoint,
//! LrScheduler, and CSV / JSON-lines loggers.
//!
//! Layer: train. A callback sees each epoch's logs and may change the model (restore weights,
//! lower the learning rate) or stop training by returning `true` from `on_epoch_end`.

use crate::history::{History, Logs};
use crate::model::Sequential;
use ferrite_core::{Error, Result, Tensor};
use ferrite_nn::LrSchedule;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Hooks called by `fit`.
pub trait Callback {
    fn on_train_begin(&mut self, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut Sequential) -> Result<()> {
        Ok(())
    }
    /// Returns `true` to stop training.
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential, history: &History) -> Result<bool>;
    fn on_train_end(&mut self, _model: &mut Sequential) -> Result<()> {
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

/// Whether larger or smaller monitored values are better (accuracy-like metrics: larger).
fn higher_is_better(key: &str) -> bool {
    ["accuracy", "precision", "recall", "f1"]
        .iter()
        .any(|m| key.ends_with(m))
}

fn snapshot(model: &Sequential) -> Result<BTreeMap<String, Tensor>> {
    model
        .vars
        .state()
        .iter()
        .map(|(n, p)| Ok((n.clone(), p.copy())))
        .collect()
}

/// Stops when `monitor` has not improved by `min_delta` for `patience` epochs; optionally
/// restores the best weights at the end (Keras `EarlyStopping`).
pub struct EarlyStopping {
    pub monitor: String,
    pub patience: usize,
    pub min_delta: f64,
    pub restore_best_weights: bool,
    pub best: Option<f64>,
    pub best_epoch: Option<usize>,
    pub wait: usize,
    best_weights: Option<BTreeMap<String, Tensor>>,
}

impl EarlyStopping {
    pub fn new(monitor: &str, patience: usize, restore_best_weights: bool) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            patience,
            min_delta: 0.0,
            restore_best_weights,
            best: None,
            best_epoch: None,
            wait: 0,
            best_weights: None,
        }
    }

    /// The best weights seen so far (for checkpointing a resumable run).
    pub fn best_weights(&self) -> Option<&BTreeMap<String, Tensor>> {
        self.best_weights.as_ref()
    }

    /// Restores state saved from an earlier run segment.
    pub fn restore_state(
        &mut self,
        best: Option<f64>,
        best_epoch: Option<usize>,
        wait: usize,
        weights: Option<BTreeMap<String, Tensor>>,
    ) {
        self.best = best;
        self.best_epoch = best_epoch;
        self.wait = wait;
        self.best_weights = weights;
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential, _h: &History) -> Result<bool> {
        let v = monitored(logs, &self.monitor)?;
        let sign = if higher_is_better(&self.monitor) { -1.0 } else { 1.0 };
        let improved = match self.best {
            None => true,
            Some(b) => sign * v < sign * b - self.min_delta,
        };
        if improved {
            self.best = Some(v);
            self.best_epoch = Some(epoch);
            self.wait = 0;
            if self.restore_best_weights {
                self.best_weights = Some(snapshot(model)?);
            }
            return Ok(false);
        }
        self.wait += 1;
        Ok(self.wait >= self.patience)
    }

    fn on_train_end(&mut self, model: &mut Sequential) -> Result<()> {
        if let (true, Some(w)) = (self.restore_best_weights, &self.best_weights) {
            model.vars.load(w, "EarlyStopping best weights")?;
        }
        Ok(())
    }
}

/// Multiplies the learning rate by `factor` when `monitor` stalls for `patience` epochs.
pub struct ReduceLrOnPlateau {
    pub monitor: String,
    pub factor: f64,
    pub patience: usize,
    pub min_lr: f64,
    best: Option<f64>,
    wait: usize,
}

impl ReduceLrOnPlateau {
    pub fn new(monitor: &str, factor: f64, patience: usize, min_lr: f64) -> Self {
        ReduceLrOnPlateau {
            monitor: monitor.into(),
            factor,
            patience,
            min_lr,
            best: None,
            wait: 0,
        }
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs, model: &mut Sequential, _h: &History) -> Result<bool> {
        let v = monitored(logs, &self.monitor)?;
        let sign = if higher_is_better(&self.monitor) { -1.0 } else { 1.0 };
        if self.best.is_none_or(|b| sign * v < sign * b) {
            self.best = Some(v);
            self.wait = 0;
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                let opt = model.optimizer_mut()?;
                opt.set_lr((opt.lr() * self.factor).max(self.min_lr));
                self.wait = 0;
            }
        }
        Ok(false)
    }
}

/// Sets the learning rate at the start of every epoch from a schedule (Keras `LearningRateScheduler`).
pub struct LrScheduler {
    pub schedule: LrSchedule,
    pub base_lr: f64,
}

impl Callback for LrScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Sequential) -> Result<()> {
        model.optimizer_mut()?.set_lr(self.schedule.lr(self.base_lr, epoch));
        Ok(())
    }
    fn on_epoch_end(&mut self, _: usize, _: &Logs, _: &mut Sequential, _: &History) -> Result<bool> {
        Ok(false)
    }
}

/// Saves a resumable checkpoint (parameters + optimizer state) after every epoch, or only when
/// `monitor` improves (Keras `ModelCheckpoint(save_best_only=True)`).
pub struct ModelCheckpoint {
    pub path: PathBuf,
    pub monitor: Option<String>,
    best: Option<f64>,
}

impl ModelCheckpoint {
    pub fn new(path: impl Into<PathBuf>, monitor_best_only: Option<&str>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: monitor_best_only.map(String::from),
            best: None,
        }
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut Sequential, _h: &History) -> Result<bool> {
        if let Some(m) = &self.monitor {
            let v = monitored(logs, m)?;
            let sign = if higher_is_better(m) { -1.0 } else { 1.0 };
            if self.best.is_some_and(|b| sign * v >= sign * b) {
                return Ok(false);
            }
            self.best = Some(v);
        }
        let meta = BTreeMap::from([("epoch".to_string(), (epoch + 1).to_string())]);
        model.save_checkpoint(&self.path, &meta)?;
        Ok(false)
    }
}

/// Appends each epoch's logs to a file: one JSON object per line, or CSV with a header.
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
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _m: &mut Sequential, _h: &History) -> Result<bool> {
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
                s.push_str(&format!(
                    "epoch,{}\n",
                    logs.keys().cloned().collect::<Vec<_>>().join(",")
                ));
            }
            s.push_str(&format!(
                "{},{}\n",
                epoch + 1,
                logs.values().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
            ));
            s
        } else {
            let mut obj = serde_json::Map::new();
            obj.insert("epoch".into(), (epoch + 1).into());
            for (k, v) in logs {
                obj.insert(k.clone(), serde_json::json!(v));
            }
            format!("{}\n", serde_json::Value::Object(obj))
        };
        f.write_all(line.as_bytes()).map_err(io)?;
        Ok(false)
    }
}
