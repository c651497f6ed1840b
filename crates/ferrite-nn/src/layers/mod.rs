//! Layers. Layer: nn. Parameter names follow PyTorch (`weight`, `bias`) so checkpoints interoperate.

mod batch_norm;
mod conv;
mod dropout;
mod embedding;
mod flatten;
mod layer_norm;
mod linear;
mod pool;

pub use batch_norm::BatchNorm;
pub use conv::{Conv1d, Conv2d};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use layer_norm::LayerNorm;
pub use linear::{Linear, LinearInit};
pub use pool::Pool2d;
