//! SGD with momentum, dampening-free, optional Nesterov, L2 weight decay — PyTorch's `SGD`.
//! Keras' SGD(momentum, nesterov) computes the same iterates for a constant learning rate.
//!
//! Layer: nn.

use super::{check_len, grad_values, OptimCore, Optimizer};
use ferrite_core::{GradStore, Result, Tensor};

/// Stochastic gradient descent.
pub struct Sgd {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    core: OptimCore,
}

impl Sgd {
    /// Plain SGD (PyTorch default momentum 0). Keras' default lr is 0.01.
    pub fn new(lr: f64) -> Self {
        Sgd {
            core: OptimCore::new(lr),
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
    /// SGD with (optionally Nesterov) momentum.
    pub fn momentum(lr: f64, momentum: f64, nesterov: bool) -> Self {
        Sgd {
            momentum,
            nesterov,
            ..Sgd::new(lr)
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[(String, Tensor)], grads: &GradStore) -> Result<()> {
        self.core.t += 1;
        let (lr, mu, wd) = (self.core.lr as f32, self.momentum as f32, self.weight_decay as f32);
        let (nesterov, first) = (self.nesterov, self.core.t == 1);
        for (name, p) in params {
            let Some(g) = grad_values(grads, p)? else { continue };
            let buf = if mu != 0.0 {
                let st = self.core.slots.get(name, 1, g.len());
                check_len(name, &st[0], g.len())?;
                Some(&mut st[0])
            } else {
                None
            };
            let mut buf = buf;
            p.update_::<f32>(|w| {
                for i in 0..w.len() {
                    let mut d = g[i] + wd * w[i];
                    if let Some(b) = buf.as_deref_mut() {
                        // PyTorch initializes the buffer with the first gradient.
                        b[i] = if first { d } else { mu * b[i] + d };
                        d = if nesterov { d + mu * b[i] } else { b[i] };
                    }
                    w[i] -= lr * d;
                }
            })?;
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["momentum_buffer"]
    }
    fn core(&self) -> &OptimCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        &mut self.core
    }
    fn name(&self) -> &'static str {
        "sgd"
    }
}
