//! # ferrite
//!
//! A deep-learning framework in Rust: tensors with reverse-mode autodiff on fast CPU kernels.
//! This facade re-exports the layers below it; most programs only need the [`prelude`].
//!
//! ```
//! use ferrite::prelude::*;
//! let w = Tensor::randn(&[3, 2]).unwrap().requires_grad_(true);
//! let x = Tensor::ones(&[4, 3]).unwrap();
//! let loss = x.matmul(&w).unwrap().relu().unwrap().mean_all().unwrap();
//! let grads = loss.backward().unwrap();
//! assert_eq!(grads.get(&w).unwrap().shape(), &[3, 2]);
//! ```

pub use ferrite_core as core;
pub use ferrite_core::{
    manual_seed, no_grad, num_threads, set_num_threads, testing, with_no_grad, BatchNormOptions, Conv1dOptions,
    Conv2dOptions, CrossEntropyOptions, DType, Error, GradStore, Pool2dOptions, Result, Rng, Tensor,
};
pub use ferrite_explain as explain;
pub use ferrite_kernels as kernels;
pub use ferrite_models as models;
pub use ferrite_nn as nn;
pub use ferrite_text as text;
pub use ferrite_train as train;

/// The names most programs need.
pub mod prelude {
    pub use ferrite_core::{
        manual_seed, no_grad, set_num_threads, with_no_grad, Conv2dOptions, CrossEntropyOptions, DType, Error,
        GradStore, Pool2dOptions, Result, Tensor,
    };
    pub use ferrite_nn::{
        Activation, Adam, BatchNorm, Conv2d, LinearInit, Loss, LrSchedule, Module, Optimizer, Pool2d, RmsProp, Sgd,
        VarBuilder, VarMap,
    };
    pub use ferrite_train::{Callback, Dataset, Dense, EarlyStopping, FitOptions, History, Metric, Sequential};
}
