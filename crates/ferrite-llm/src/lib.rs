//! ferrite-llm: running pretrained large language models on a CPU, in pure Rust. GGUF files
//! (`gguf.rs`), their tokenizers (`tokenizer.rs`), and Llama-family decoders over block-quantized
//! weights (`llama.rs`, kernels in `ferrite_kernels::quant`).
//!
//! Layer: llm (`cli → llm → core/kernels`), beside the training stack: inference only.

pub mod audio;
pub mod ct2;
pub mod generate;
pub mod gguf;
pub mod llama;
pub mod session;
pub mod tokenizer;
pub mod whisper;

pub use generate::{chatml_default_system, chatml_prompt, generate, Generation, Message, Sampler, SamplingOptions};
pub use gguf::{GgmlType, Gguf, TensorInfo, Value};
pub use llama::{KvCache, Llama, LlamaConfig};
pub use session::LanguageModel;
pub use tokenizer::tokenizer_from_gguf;
pub use whisper::{Transcript, Whisper, WhisperAttention};
