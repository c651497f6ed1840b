//! Per-epoch logs and the `History` that `fit` returns (Keras `History.history`).
//!
//! Layer: train.

use std::collections::BTreeMap;

/// Named values of one epoch: `loss`, metrics, `val_*`, `lr`, `seconds`.
pub type Logs = BTreeMap<String, f64>;

/// Logs of every epoch run by `fit`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct History {
    pub epochs: Vec<Logs>,
}

impl History {
    /// The series of `key` across epochs (missing values skipped).
    pub fn get(&self, key: &str) -> Vec<f64> {
        self.epochs.iter().filter_map(|l| l.get(key).copied()).collect()
    }
    /// The last epoch's value of `key`.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.epochs.last().and_then(|l| l.get(key).copied())
    }
}
