//! Gradient recording on/off (PyTorch's `torch.no_grad()`): with recording off, ops build no graph,
//! so inference pays nothing for autodiff.
//!
//! Layer: core.

use std::cell::Cell;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True when ops on tracked tensors record the graph (the default).
#[inline]
pub fn is_grad_enabled() -> bool {
    ENABLED.with(|e| e.get())
}

/// Restores the previous recording state when dropped.
#[must_use = "gradient recording is re-enabled as soon as the guard is dropped"]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(self.previous));
    }
}

/// Turns recording off until the returned guard is dropped.
///
/// ```
/// use ferrite_core::{no_grad, Tensor};
/// let w = Tensor::ones(&[2]).unwrap().requires_grad_(true);
/// let y = {
///     let _g = no_grad();
///     w.exp().unwrap()
/// };
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad() -> GradModeGuard {
    set_grad_enabled(false)
}

/// Sets recording on or off until the returned guard is dropped.
pub fn set_grad_enabled(on: bool) -> GradModeGuard {
    let previous = ENABLED.with(|e| e.replace(on));
    GradModeGuard { previous }
}

/// Runs `f` with recording off.
pub fn with_no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = no_grad();
    f()
}
