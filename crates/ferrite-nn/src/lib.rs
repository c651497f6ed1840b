//! ferrite-nn: modules, named parameters, initializers, layers, losses, optimizers, schedules and
//! checkpoints.
//!
//! Layer: nn (`train → nn → core`). Nothing here runs a training loop or reads datasets; that is
//! `ferrite-train`.

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod init;
pub mod kv_cache;
pub mod layers;
pub mod loss;
pub mod module;
pub mod optim;
pub mod transformer;
pub mod var_map;

pub use init::Init;
pub use kv_cache::KvCache;
pub use layers::{BatchNorm, Conv1d, Conv2d, Dropout, Embedding, Flatten, LayerNorm, Linear, LinearInit, Pool2d};
pub use loss::Loss;
pub use module::{Activation, Module};
pub use optim::{clip_grad_norm, clip_grad_value, Adam, LrSchedule, Optimizer, RmsProp, Sgd};
pub use var_map::{VarBuilder, VarMap};
