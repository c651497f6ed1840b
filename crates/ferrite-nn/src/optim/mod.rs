//! Optimizers, gradient clipping and learning-rate schedules.
//!
//! Layer: nn. An optimizer takes the `(name, parameter)` list and the `GradStore` from `backward()`
//! and updates parameters in place. Its state is keyed by parameter name, so it can be saved to a
//! checkpoint and restored into a freshly built model.

mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use clip::{clip_grad_norm, clip_grad_value};
pub use rmsprop::RmsProp;
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use ferrite_core::{Error, GradStore, Result, Tensor};
use std::collections::BTreeMap;

/// What every optimizer keeps besides its hyper-parameters: learning rate, step count, and the
/// per-parameter state buffers (keyed by parameter name).
#[derive(Default)]
pub struct OptimCore {
    pub lr: f64,
    pub(crate) t: u64,
    pub(crate) slots: Slots,
}

impl OptimCore {
    pub(crate) fn new(lr: f64) -> Self {
        OptimCore {
            lr,
            t: 0,
            slots: Slots::default(),
        }
    }
}

/// Something that updates parameters from gradients.
///
/// ```
/// use ferrite_core::Tensor;
/// use ferrite_nn::{clip_grad_norm, Adam, Optimizer};
/// let w = Tensor::from_vec(vec![3.0f32], [1])?.requires_grad_(true);
/// let params = vec![("w".to_string(), w.clone())];
/// let mut opt = Adam::new(0.1);
/// for _ in 0..100 {
///     let mut grads = w.sqr()?.sum_all()?.backward()?; // minimize w²
///     clip_grad_norm(&mut grads, &params, 1.0)?;
///     opt.step(&params, &grads)?;
/// }
/// assert!(w.item()?.abs() < 0.1 && opt.steps() == 100);
/// # Ok::<(), ferrite_core::Error>(())
/// ```
pub trait Optimizer: Send + Sync {
    /// One update of every parameter that has a gradient in `grads`.
    fn step(&mut self, params: &[(String, Tensor)], grads: &GradStore) -> Result<()>;
    /// A short name (`"adam"`).
    fn name(&self) -> &'static str;
    /// Names of the per-parameter state buffers (PyTorch's state-dict names, e.g. `exp_avg`).
    fn slot_names(&self) -> &'static [&'static str];
    fn core(&self) -> &OptimCore;
    fn core_mut(&mut self) -> &mut OptimCore;

    /// The current learning rate.
    fn lr(&self) -> f64 {
        self.core().lr
    }
    /// Sets the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f64) {
        self.core_mut().lr = lr;
    }
    /// Number of `step` calls so far.
    fn steps(&self) -> u64 {
        self.core().t
    }
    /// State tensors named `"{slot}.{param}"` (for checkpoints).
    fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        self.core().slots.to_tensors(self.slot_names())
    }
    /// Restores state written by [`Optimizer::state`] and the step count.
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        let slots = Slots::from_tensors(state, self.slot_names())?;
        let core = self.core_mut();
        core.slots = slots;
        core.t = steps;
        Ok(())
    }
}

/// Per-parameter f32 buffers keyed by parameter name, shared by the optimizers.
#[derive(Default)]
pub(crate) struct Slots {
    pub(crate) bufs: BTreeMap<String, Vec<Vec<f32>>>,
}

impl Slots {
    /// The `n` state buffers of `name`, created as zeros of `len` on first use.
    pub(crate) fn get(&mut self, name: &str, n: usize, len: usize) -> &mut Vec<Vec<f32>> {
        self.bufs
            .entry(name.to_string())
            .or_insert_with(|| vec![vec![0.0; len]; n])
    }

    /// Flattens to `"{slot}.{param}"` tensors.
    pub(crate) fn to_tensors(&self, slot_names: &[&str]) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (param, bufs) in &self.bufs {
            for (slot, buf) in slot_names.iter().zip(bufs) {
                out.insert(format!("{slot}.{param}"), Tensor::from_vec(buf.clone(), [buf.len()])?);
            }
        }
        Ok(out)
    }

    /// Inverse of [`Slots::to_tensors`].
    pub(crate) fn from_tensors(state: &BTreeMap<String, Tensor>, slot_names: &[&str]) -> Result<Slots> {
        let mut bufs: BTreeMap<String, Vec<Vec<f32>>> = BTreeMap::new();
        for (key, t) in state {
            let Some((slot, param)) = key.split_once('.') else {
                return Err(Error::Invalid {
                    op: "optimizer state",
                    detail: format!("malformed key '{key}'"),
                });
            };
            let Some(i) = slot_names.iter().position(|s| *s == slot) else {
                return Err(Error::Invalid {
                    op: "optimizer state",
                    detail: format!("unknown state slot '{slot}' in '{key}'"),
                });
            };
            let entry = bufs
                .entry(param.to_string())
                .or_insert_with(|| vec![Vec::new(); slot_names.len()]);
            entry[i] = t.to_vec::<f32>()?;
        }
        Ok(Slots { bufs })
    }
}

/// The gradient of `p` as f32 values, or `None` when `p` received no gradient.
pub(crate) fn grad_values(grads: &GradStore, p: &Tensor) -> Result<Option<Vec<f32>>> {
    grads.get(p).map(|g| g.to_vec::<f32>()).transpose()
}

/// Checks that a state buffer matches its parameter (after loading a checkpoint).
pub(crate) fn check_len(name: &str, buf: &[f32], len: usize) -> Result<()> {
    if !buf.is_empty() && buf.len() != len {
        return Err(Error::Invalid {
            op: "optimizer state",
            detail: format!("state for {name} has {} values but the parameter has {len}", buf.len()),
        });
    }
    Ok(())
}
