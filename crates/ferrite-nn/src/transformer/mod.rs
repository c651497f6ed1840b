//! Transformer building blocks: attention, multi-head attention, encoder/decoder layers and
//! stacks, positional encodings. The models built from them (the seq2seq Transformer, ViT, BERT,
//! Whisper) live in `ferrite-models`. Layer: nn.

pub mod attention;
pub mod layers;
pub mod mha;
pub mod positional;

pub use attention::{causal_mask, padding_mask, scaled_dot_product_attention};
pub use layers::{
    DecoderLayer, DecoderMasks, EncoderLayer, EncoderStack, FeedForward, LayerConfig as TransformerLayerConfig,
};
pub use mha::{MultiHeadAttention, NeedWeights};
pub use positional::{sinusoidal_table, PositionalEncoding};
