//! The files pretrained models come in, parsed with every length and offset checked against the
//! bytes that are there; errors name the file and what is wrong.
//!
//! Layer: models (formats). No model code here: loaders in the model files read these.

pub mod ct2;
pub mod gguf;
pub mod gguf_tokenizer;
pub mod wav;

pub use gguf::{GgmlType, Gguf, TensorInfo, Value};
pub use gguf_tokenizer::tokenizer_from_gguf;
