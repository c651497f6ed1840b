//! Transformer building blocks: attention, multi-head attention, encoder/decoder layers,
//! positional encodings. Layer: nn.

pub mod attention;
pub mod layers;
pub mod mha;
pub mod positional;

pub use attention::{causal_mask, padding_mask, scaled_dot_product_attention};
pub use layers::{DecoderLayer, DecoderMasks, EncoderLayer, LayerConfig as TransformerLayerConfig};
pub use mha::{MultiHeadAttention, NeedWeights};
pub use positional::{sinusoidal_table, PositionalEncoding};
