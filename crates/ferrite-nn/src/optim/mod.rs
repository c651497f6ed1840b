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

/// Something that updates parameters from gradients.
pub trait Optimizer: Send {
    /// One update of every parameter that has a gradient in `grads`.
    fn step(&mut self, params: &[(String, Tensor)], grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f64);
    /// Number of `step` calls so far.
    fn steps(&self) -> u64;
    /// State tensors by name (for checkpoints), plus the step count.
    fn state(&self) -> Result<BTreeMap<String, Tensor>>;
    /// Restores state written by [`Optimizer::state`].
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>, steps: u64) -> Result<()>;
    /// A short name (`"adam"`).
    fn name(&self) -> &'static str;
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
