//! RMSprop (Hinton 2012) as PyTorch implements it: v ← αv + (1−α)g², w ← w − lr·g/(√v + ε),
//! optional momentum. PyTorch defaults α=0.99, ε=1e-8, lr=0.01; Keras defaults ρ=0.9, ε=1e-7,
//! lr=0.001 (`RmsProp::keras`).
//!
//! Layer: nn.

use super::{check_len, grad_values, Optimizer, Slots};
use ferrite_core::{GradStore, Result, Tensor};
use std::collections::BTreeMap;

/// RMSprop.
pub struct RmsProp {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    t: u64,
    slots: Slots,
}

impl RmsProp {
    /// PyTorch's `RMSprop(lr)`.
    pub fn new(lr: f64) -> Self {
        RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            weight_decay: 0.0,
            t: 0,
            slots: Slots::default(),
        }
    }
    /// Keras' `RMSprop(learning_rate)`.
    pub fn keras(lr: f64) -> Self {
        RmsProp {
            alpha: 0.9,
            eps: 1e-7,
            ..RmsProp::new(lr)
        }
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, params: &[(String, Tensor)], grads: &GradStore) -> Result<()> {
        self.t += 1;
        let (lr, a, eps, mu, wd) = (
            self.lr as f32,
            self.alpha as f32,
            self.eps as f32,
            self.momentum as f32,
            self.weight_decay as f32,
        );
        for (name, p) in params {
            let Some(g) = grad_values(grads, p)? else { continue };
            let st = self.slots.get(name, 2, g.len());
            check_len(name, &st[0], g.len())?;
            let (v, b) = st.split_at_mut(1);
            let (v, b) = (&mut v[0], &mut b[0]);
            if b.len() != g.len() {
                b.resize(g.len(), 0.0);
            }
            p.update_::<f32>(|w| {
                for i in 0..w.len() {
                    let gi = g[i] + wd * w[i];
                    v[i] = a * v[i] + (1.0 - a) * gi * gi;
                    let d = gi / (v[i].sqrt() + eps);
                    if mu != 0.0 {
                        b[i] = mu * b[i] + d;
                        w[i] -= lr * b[i];
                    } else {
                        w[i] -= lr * d;
                    }
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
        self.slots.to_tensors(&["square_avg", "momentum_buffer"])
    }
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        self.slots = Slots::from_tensors(state, &["square_avg", "momentum_buffer"])?;
        self.t = steps;
        Ok(())
    }
    fn name(&self) -> &'static str {
        "rmsprop"
    }
}
