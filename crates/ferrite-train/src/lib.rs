//! ferrite-train: the Keras-style training layer — `Sequential` with `compile`/`fit`/`evaluate`/
//! `predict`, data loading (CSV, splits, standardization, batching), metrics, callbacks, progress,
//! checkpoints, and config-driven runs for the CLI.
//!
//! Layer: train (`cli → train → nn → core`). `fit` is a thin loop over `Sequential::train_step`.

pub mod augment;
pub mod callbacks;
pub mod checkpoint;
pub mod config;
pub mod csv;
pub mod data;
pub mod finetune;
pub mod fit;
pub mod history;
pub mod idx;
pub mod image_folder;
pub mod metrics;
pub mod model;
mod plot;
pub mod plot_classes;
mod progress;
pub mod run;
pub mod seq2seq;

pub use augment::{Augment, AugmentConfig};
pub use callbacks::{Callback, EarlyStopping, EpochLogger, LrScheduler, ModelCheckpoint, ReduceLrOnPlateau};
pub use config::TrainConfig;
pub use data::{DataLoader, Dataset, Standardizer};
pub use fit::{FitOptions, ScheduleUnit};
pub use history::{History, Logs};
pub use metrics::Metric;
pub use model::{Dense, LayerConfig, Sequential};
pub use plot::{ensure_font, plot_loss_curve};
