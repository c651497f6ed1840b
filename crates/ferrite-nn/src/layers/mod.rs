//! Layers. Layer: nn. Parameter names follow PyTorch (`weight`, `bias`) so checkpoints interoperate.

mod dropout;
mod embedding;
mod flatten;
mod layer_norm;
mod linear;

pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use layer_norm::LayerNorm;
pub use linear::{Linear, LinearInit};
