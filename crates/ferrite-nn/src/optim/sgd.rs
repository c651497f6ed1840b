//! SGD with momentum, dampening-free, optional Nesterov, L2 weight decay — PyTorch's `SGD`.
//! Keras' SGD(momentum, nesterov) computes the same iterates for a constant learning rate.
//!
//! Layer: nn.

use super::{check_len, grad_values, Optimizer, Slots};
use ferrite_core::{GradStore, Result, Tensor};
use std::collections::BTreeMap;

/// Stochastic gradient descent.
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    t: u64,
    slots: Slots,
}

impl Sgd {
    /// Plain SGD (PyTorch default momentum 0). Keras' default lr is 0.01.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            t: 0,
            slots: Slots::default(),
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
        self.t += 1;
        let (lr, mu, wd) = (self.lr as f32, self.momentum as f32, self.weight_decay as f32);
        let (nesterov, first) = (self.nesterov, self.t == 1);
        for (name, p) in params {
            let Some(g) = grad_values(grads, p)? else { continue };
            let buf = if mu != 0.0 {
                let st = self.slots.get(name, 1, g.len());
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
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn steps(&self) -> u64 {
        self.t
    }
    fn state(&self) -> Result<BTreeMap<String, Tensor>> {
        self.slots.to_tensors(&["momentum_buffer"])
    }
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        self.slots = Slots::from_tensors(state, &["momentum_buffer"])?;
        self.t = steps;
        Ok(())
    }
    fn name(&self) -> &'static str {
        "sgd"
    }
}
