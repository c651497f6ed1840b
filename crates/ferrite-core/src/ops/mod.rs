//! Tensor ops, grouped by kind. Each op runs its pure shape rule first (errors name the op and the
//! shapes), then one storage call, then records its [`crate::op::Op`] when gradients are on.
//!
//! Layer: core.

mod attention;
mod batch_norm;
mod conv;
mod elementwise;
mod index;
mod matmul;
mod nn;
mod operators;
mod pool;
mod reduce;
mod view;

pub use batch_norm::BatchNormOptions;
pub(crate) use batch_norm::{batch_norm_backward, BatchNormSaved};
pub(crate) use conv::conv2d_backward;
pub use conv::{Conv1dOptions, Conv2dOptions};
pub(crate) use index::index_add_zeros;
pub use nn::CrossEntropyOptions;
pub(crate) use pool::pool2d_backward;
pub use pool::Pool2dOptions;
pub(crate) use view::pad_into_zeros;

/// Backward kernels of the fused ops, for `backward.rs`.
pub(crate) mod nn_backward {
    pub(crate) use super::nn::{cross_entropy_backward, layer_norm_backward, rms_norm_backward, softmax_backward};
}

use crate::storage::Storage;
use crate::tensor::Tensor;

/// Runs `f` with read access to two tensors' storages, taking one lock when they share a buffer
/// (a second read lock on the same `RwLock` from one thread could deadlock behind a writer).
pub(crate) fn read2<R>(a: &Tensor, b: &Tensor, f: impl FnOnce(&Storage, &Storage) -> R) -> R {
    if a.same_storage(b) {
        let s = a.read();
        f(&s, &s)
    } else {
        let (sa, sb) = (a.read(), b.read());
        f(&sa, &sb)
    }
}
