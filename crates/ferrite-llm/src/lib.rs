//! ferrite-llm: running pretrained large language models on a CPU, in pure Rust. GGUF files
//! (`gguf.rs`), their tokenizers (`tokenizer.rs`), and Llama-family decoders over block-quantized
//! weights (`llama.rs`, kernels in `ferrite_kernels::quant`).
//!
//! Layer: llm (`cli → llm → core/kernels`), beside the training stack: inference only.

pub mod gguf;
pub mod llama;
pub mod tokenizer;

pub use gguf::{GgmlType, Gguf, TensorInfo, Value};
pub use llama::{KvCache, Llama, LlamaConfig};
pub use tokenizer::tokenizer_from_gguf;
