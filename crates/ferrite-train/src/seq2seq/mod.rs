//! Sequence-to-sequence training and translation runs for the encoder–decoder Transformer.
//!
//! Layer: train. `trainer` is the loop over tokenized examples; `run` turns a TOML config into a
//! run directory (data split, tokenizer.json, checkpoints) and serves `translate` / `eval`.

pub mod config;
pub mod run;
pub mod trainer;

pub use config::TranslateConfig;
pub use run::{eval_translation, train_translation, TranslateRunOptions, TranslationModel};
pub use trainer::{
    evaluate_loss, train_seq2seq, Example, Seq2SeqOptions, Seq2SeqReport, Seq2SeqTraining, TokenBatches,
};
