//! Fine-tuning pretrained encoders for text classification (transfer learning).
//!
//! Layer: train. `data.rs` reads and splits labelled texts and computes accuracy / macro-F1,
//! `trainer.rs` is the training loop (full fine-tuning with layer-wise LR decay, or a linear probe
//! on cached frozen features), `run.rs` the run directories behind `ferrite finetune` and
//! `ferrite classify`.

pub mod data;
pub mod run;
pub mod trainer;

pub use data::{load_splits, ClassificationMetrics, DataOptions, LabelledText, Splits};
pub use run::{finetune_run, Classifier, FinetuneArgs, FinetuneSummary, Prediction};
pub use trainer::{encode_examples, evaluate, finetune, predict_proba, Encoded, FinetuneOptions, FinetuneReport};
