//! ferrite-train: training, once for every model — the one training step (`step.rs`: a
//! [`Trainable`] model, its loss, and [`TrainStep`]'s schedule → forward → backward → clip →
//! optimizer), the one loop (`fit.rs`: epochs, evaluation, budgets, callbacks), callbacks
//! (early stopping, checkpoints, LR schedules, CSV/JSONL and TensorBoard logs) — and what feeds
//! it: the Keras-style `Sequential` with `compile`/`fit`/`evaluate`/`predict` (`model.rs`,
//! `keras.rs`), data loading (CSV, IDX, image folders, splits, standardization, batching),
//! metrics, typed run configs and run directories for the CLI, seq2seq training and
//! fine-tuning.
//!
//! Layer: train (`cli → train → models → nn → core`).

#![forbid(unsafe_code)]

pub mod augment;
pub mod callbacks;
pub mod checkpoint;
pub mod checks;
pub mod config;
pub mod csv;
pub mod data;
pub mod fairness;
pub mod finetune;
pub mod fit;
pub mod history;
pub mod idx;
pub mod image_folder;
pub mod keras;
pub mod metrics;
pub mod model;
mod plot;
pub mod plot_classes;
pub mod privacy;
mod progress;
pub mod run;
pub mod seq2seq;
pub mod step;
pub mod tensorboard;

pub use augment::{Augment, AugmentConfig};
pub use callbacks::{Callback, Context, EarlyStopping, EpochLogger, LrScheduler, ModelCheckpoint, ReduceLrOnPlateau};
pub use config::TrainConfig;
pub use data::{DataLoader, Dataset, Standardizer};
pub use fit::{fit, EvalEvery, LoopOptions, TrainData};
pub use history::{History, Logs};
pub use keras::{DatasetBatches, FitOptions, SequentialBatch};
pub use metrics::Metric;
pub use model::{Dense, LayerConfig, Sequential};
pub use plot::{ensure_font, plot_loss_curve, plot_privacy_utility, UtilityCurve};
pub use step::{ParamGroup, ScheduleUnit, TrainState, TrainStep, Trainable};
pub use tensorboard::TensorBoard;
