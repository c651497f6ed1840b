//! # ferrite
//!
//! A deep-learning framework in Rust: tensors with reverse-mode autodiff on fast CPU kernels,
//! layers and models, one training step and loop for all of them, pretrained models (BERT
//! family, GGUF language models, Whisper) and their decoding.
//!
//! This facade re-exports the layers below it, one module each ([`core`], [`nn`], [`models`],
//! [`train`], [`text`], [`explain`]); most programs only need the [`prelude`]. Internals — the
//! numeric kernels and the test helpers — stay in their crates (`ferrite_kernels`,
//! `ferrite_core::testing`).
//!
//! ```
//! use ferrite::prelude::*;
//! let w = Tensor::randn(&[3, 2])?.requires_grad_(true);
//! let x = Tensor::ones(&[4, 3])?;
//! let loss = x.matmul(&w)?.relu()?.mean_all()?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&w).unwrap().shape(), &[3, 2]);
//! # Ok::<(), ferrite::Error>(())
//! ```
//!
//! A custom model needs nothing beyond the prelude:
//!
//! ```
//! use ferrite::prelude::*;
//!
//! /// A two-layer perceptron with dropout.
//! struct Mlp {
//!     hidden: Linear,
//!     out: Linear,
//!     dropout: Dropout,
//! }
//!
//! impl Module for Mlp {
//!     /// `[N, 4] → [N, 2]`
//!     fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
//!         let h = self.hidden.forward(x, train)?.relu()?;
//!         self.out.forward(&self.dropout.forward(&h, train)?, train)
//!     }
//! }
//!
//! let vars = VarMap::new();
//! let vb = VarBuilder::new(&vars, 0);
//! let mlp = Mlp {
//!     hidden: Linear::new(&vb.pp("hidden"), 4, 8, true, LinearInit::Pytorch)?,
//!     out: Linear::new(&vb.pp("out"), 8, 2, true, LinearInit::Pytorch)?,
//!     dropout: Dropout::new(0.1)?,
//! };
//! let mut opt = Adam::new(1e-2);
//! let (x, y) = (Tensor::randn(&[16, 4])?, Tensor::zeros(&[16])?.to_dtype(DType::I64)?);
//! for _ in 0..3 {
//!     let loss = Loss::parse("sparse_categorical_crossentropy")?.compute(&mlp.forward(&x, true)?, &y, None)?;
//!     let mut grads = loss.backward()?;
//!     clip_grad_norm(&mut grads, &vars.vars(), 1.0)?;
//!     opt.step(&vars.vars(), &grads)?;
//! }
//! # Ok::<(), ferrite::Error>(())
//! ```

#![forbid(unsafe_code)]

pub use ferrite_core as core;
pub use ferrite_core::{
    manual_seed, no_grad, num_threads, set_num_threads, with_no_grad, BatchNormOptions, Conv1dOptions, Conv2dOptions,
    CrossEntropyOptions, DType, Error, GradStore, Pool2dOptions, Result, Rng, Tensor, MAX_THREADS,
};
pub use ferrite_explain as explain;
pub use ferrite_models as models;
pub use ferrite_nn as nn;
pub use ferrite_text as text;
pub use ferrite_train as train;

/// The names most programs need: tensors, layers and `Module`, named parameters, losses,
/// optimizers and clipping, schedules, and the Keras-style training API.
pub mod prelude {
    pub use ferrite_core::{
        manual_seed, no_grad, set_num_threads, with_no_grad, Conv2dOptions, CrossEntropyOptions, DType, Error,
        GradStore, Pool2dOptions, Result, Tensor,
    };
    pub use ferrite_nn::{
        clip_grad_norm, clip_grad_value, Activation, Adam, BatchNorm, Conv1d, Conv2d, Dropout, Embedding, Flatten,
        Init, KvCache, LayerNorm, Linear, LinearInit, Loss, LrSchedule, Module, Optimizer, Pool2d, RmsProp, Sgd,
        VarBuilder, VarMap,
    };
    pub use ferrite_train::{
        fit, Callback, Dataset, Dense, EarlyStopping, FitOptions, History, LoopOptions, Metric, ModelCheckpoint,
        Sequential, TensorBoard, TrainData, TrainStep, Trainable,
    };
}
