//! Transformer building blocks: attention, multi-head attention, encoder/decoder layers,
//! positional encodings. Layer: nn.

pub mod attention;
pub mod generate;
pub mod layers;
pub mod mha;
pub mod model;
pub mod positional;
pub mod vit;

pub use attention::{causal_mask, padding_mask, scaled_dot_product_attention};
pub use generate::{generate, greedy_uncached, DecodeOptions, Strategy};
pub use layers::{DecoderLayer, DecoderMasks, EncoderLayer, LayerCache, LayerConfig as TransformerLayerConfig};
pub use mha::{MultiHeadAttention, NeedWeights};
pub use model::{KvCache, Memory, Positional, Seq2SeqAttention, Seq2SeqBatch, Transformer, TransformerConfig, PAD_ID};
pub use positional::{sinusoidal_table, PositionalEncoding};
pub use vit::{ClassTokenPool, EncoderStack, PatchEmbedding};
