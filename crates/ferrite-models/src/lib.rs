//! ferrite-models: every architecture ferrite runs or trains, one file per model, and the one
//! decoding module they share.
//!
//! Layer: models, built only from `ferrite-nn` blocks (layers, attention, the KV cache) and
//! `ferrite-kernels` (the quantized products), with `ferrite-text` for tokenizers; below training
//! and the apps. In data-flow order:
//! - `formats/`: the files models come in — GGUF (`gguf.rs`) and its tokenizer
//!   (`gguf_tokenizer.rs`), CTranslate2 (`ct2.rs`), WAV audio (`wav.rs`); Hugging Face
//!   directories are `checkpoint.rs` (config + safetensors/shards, strict name/shape loading) and
//!   `config.rs` (BERT / RoBERTa / DistilBERT dialects → one [`EncoderConfig`]);
//! - models: `seq2seq.rs` (the encoder–decoder [`Transformer`]; its decoding in
//!   `seq2seq_decode.rs`), `vit.rs` (the Vision Transformer's patch embedding and class-token
//!   pooling), `bert.rs` (the BERT-family [`Encoder`]) with `pretrained.rs` (task heads, load and
//!   save) and `embed.rs` (sentence embeddings), `llama.rs` (GGUF decoders on block-quantized
//!   weights) with `language_model.rs` (model + tokenizer + chat template from one file, text
//!   generation), `whisper.rs` (speech recognition) with `whisper_mel.rs` (its log-mel features);
//! - `generation/`: one [`Sampler`], one [`argmax`], one beam search over the [`Decoder`] trait,
//!   and ChatML prompts.

#![forbid(unsafe_code)]

pub mod formats;
pub mod generation;

mod bert;
mod checkpoint;
mod config;
mod embed;
mod language_model;
mod llama;
mod pretrained;
mod seq2seq;
mod seq2seq_decode;
pub mod vit;
mod whisper;
mod whisper_mel;

pub use bert::{Encoder, EncoderInput, EncoderOutput};
pub use checkpoint::{load_weights_into, read_json, LoadReport, ModelDir};
pub use config::{EncoderConfig, Family};
pub use embed::{cosine, l2_normalize, pool, Pooling, SentenceEmbedder};
pub use generation::{argmax, check_beam, Decoder, Ranking, Sampler, SamplingOptions, Strategy, MAX_BEAM};
pub use language_model::{Generation, LanguageModel, TextStream};
pub use llama::{Llama, LlamaConfig, LlamaDecoder};
pub use pretrained::{PretrainedModel, Task};
pub use seq2seq::{
    pad_ids, Memory, Positional, Seq2SeqAttention, Seq2SeqBatch, Transformer, TransformerConfig, PAD_ID,
};
pub use seq2seq_decode::{generate, greedy_uncached, DecodeOptions, Seq2SeqDecoder, UncachedDecoder};
pub use vit::{ClassTokenPool, PatchEmbedding};
pub use whisper::{Transcript, Whisper, WhisperAttention};
pub use whisper_mel::SAMPLE_RATE;
