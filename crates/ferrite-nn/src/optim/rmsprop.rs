//! RMSprop (Hinton 2012) as PyTorch implements it: v ← αv + (1−α)g², w ← w − lr·g/(√v + ε),
//! optional momentum. PyTorch defaults α=0.99, ε=1e-8, lr=0.01; Keras defaults ρ=0.9, ε=1e-7,
//! lr=0.001 (`RmsProp::keras`).
//!
//! Layer: nn.

use super::{check_len, grad_values, OptimCore, Optimizer};
use ferrite_core::{GradStore, Result, Tensor};

/// RMSprop.
pub struct RmsProp {
    pub alpha: f64,
    pub eps: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    core: OptimCore,
}

impl RmsProp {
    /// PyTorch's `RMSprop(lr)`.
    pub fn new(lr: f64) -> Self {
        RmsProp {
            core: OptimCore::new(lr),
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            weight_decay: 0.0,
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
        self.core.t += 1;
        let (lr, a, eps, mu, wd) = (
            self.core.lr as f32,
            self.alpha as f32,
            self.eps as f32,
            self.momentum as f32,
            self.weight_decay as f32,
        );
        for (name, p) in params {
            let Some(g) = grad_values(grads, p)? else { continue };
            let st = self.core.slots.get(name, 2, g.len());
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
    fn slot_names(&self) -> &'static [&'static str] {
        &["square_avg", "momentum_buffer"]
    }
    fn core(&self) -> &OptimCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        &mut self.core
    }
    fn name(&self) -> &'static str {
        "rmsprop"
    }
}
