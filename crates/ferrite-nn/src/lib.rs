//! ferrite-nn: the blocks models are built from — `Module`, named parameters (`VarMap` /
//! `VarBuilder`), initializers, layers, attention and Transformer encoder/decoder layers, the KV
//! cache of incremental decoding — and losses, optimizers, clipping, schedules, safetensors IO.
//!
//! Layer: nn (`models → nn → core`; depends on `ferrite-core`, `safetensors`, `half`, `serde`).
//! No architecture lives here (those are `ferrite-models`), no training loop and no datasets
//! (`ferrite-train`).

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod init;
pub mod kv_cache;
pub mod layers;
pub mod loss;
pub mod module;
pub mod optim;
pub mod per_example;
pub mod transformer;
pub mod var_map;

pub use init::Init;
pub use kv_cache::KvCache;
pub use layers::{BatchNorm, Conv1d, Conv2d, Dropout, Embedding, Flatten, LayerNorm, Linear, LinearInit, Pool2d};
pub use loss::Loss;
pub use module::{Activation, Module};
pub use optim::{clip_grad_norm, clip_grad_value, Adam, LrSchedule, Optimizer, RmsProp, Sgd};
pub use per_example::{Tap, TapKind};
pub use var_map::{VarBuilder, VarMap};
