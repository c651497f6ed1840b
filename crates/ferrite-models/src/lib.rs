//! ferrite-models: pretrained model families loaded from Hugging Face model directories.
//!
//! Layer: models, above `ferrite-nn` (layers, attention) and `ferrite-text` (tokenizers), below
//! training and the apps. Data flow, in file order:
//! 1. `checkpoint.rs`: a model directory — `config.json`, `model.safetensors` or shards — read into
//!    named tensors, and loaded into a model with strict name/shape checks and HF prefix rules;
//! 2. `config.rs`: BERT / RoBERTa / DistilBERT `config.json` dialects parsed into one
//!    [`EncoderConfig`];
//! 3. `encoder.rs`: the post-LN encoder under the checkpoint's own parameter names;
//! 4. `model.rs`: [`PretrainedModel`] = encoder + optional task head (sequence or token
//!    classification), load and save;
//! 5. `embed.rs`: sentence embeddings (pooling + normalization) as sentence-transformers does.

mod checkpoint;
mod config;
mod embed;
mod encoder;
mod model;

pub use checkpoint::{load_weights_into, read_json, LoadReport, ModelDir};
pub use config::{EncoderConfig, Family};
pub use embed::{cosine, l2_normalize, pool, Pooling, SentenceEmbedder};
pub use encoder::{Encoder, EncoderInput, EncoderOutput};
pub use model::{PretrainedModel, Task};
