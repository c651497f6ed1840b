//! ferrite-core: the `Tensor`, its ops, and reverse-mode autodiff.
//!
//! Layer: core (`nn → core → kernels`; depends on `ferrite-kernels`, `half`, `rayon` and
//! `serde_json` for reference files). Data flow: a `Tensor` is a layout over shared
//! [`storage::Storage`]; an op checks its shapes (in [`shape`] or inline, naming the op), matches
//! on the dtype — in a `Storage` method for elementwise, affine, comparison, `where` and
//! conversion ops, with the `map_float!` macros in its `ops/*.rs` file for the others — calls a
//! kernel in `ferrite-kernels`, and, when gradients are being recorded, stores an [`op::Op`]
//! naming its inputs. [`Tensor::backward`] walks those ops in reverse, one arm per `Op` in
//! `backward.rs` (fused ops call their backward kernels from there), and returns a
//! [`GradStore`].

// The three `unsafe` blocks here only mark buffers a kernel filled (`set_len`); each states why.
#![deny(clippy::undocumented_unsafe_blocks)]

mod backprop;
mod backward;
pub mod dtype;
pub mod error;
pub mod fs;
pub mod fuzz;
mod grad_mode;
pub mod layout;
pub mod op;
mod ops;
pub mod rng;
pub mod shape;
pub mod storage;
mod tensor;
pub mod testing;

pub use backprop::GradStore;
pub use dtype::{DType, WithDType};
pub use error::{Error, Result};
pub use grad_mode::{is_grad_enabled, no_grad, set_grad_enabled, with_no_grad, GradModeGuard};
pub use ops::{BatchNormOptions, Conv1dOptions, Conv2dOptions, CrossEntropyOptions, Pool2dOptions};
pub use rng::{manual_seed, Rng};
pub use tensor::{Tensor, TensorId};

/// Kernel thread count control (also settable with `FERRITE_NUM_THREADS`).
pub use ferrite_kernels::threads::{num_threads, set_num_threads, MAX_THREADS};
