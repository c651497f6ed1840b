//! Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), as PyTorch implements them.
//!
//! Defaults: PyTorch β=(0.9, 0.999), ε=1e-8, lr=1e-3. Keras' Adam differs only in ε=1e-7
//! (`Adam::keras`). `weight_decay` is L2 added to the gradient for Adam (PyTorch `Adam`) and
//! decoupled decay w ← w − lr·λ·w for AdamW (PyTorch default λ = 0.01).
//!
//! Layer: nn.

use super::{check_len, grad_values, OptimCore, Optimizer};
use ferrite_core::{GradStore, Result, Tensor};

/// Adam / AdamW.
pub struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW) instead of L2 in the gradient.
    pub decoupled: bool,
    core: OptimCore,
}

impl Adam {
    /// PyTorch's `Adam(lr)`.
    pub fn new(lr: f64) -> Self {
        Adam {
            core: OptimCore::new(lr),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
    /// Keras' `Adam(learning_rate)` (ε = 1e-7).
    pub fn keras(lr: f64) -> Self {
        Adam {
            eps: 1e-7,
            ..Adam::new(lr)
        }
    }
    /// PyTorch's `AdamW(lr, weight_decay)`.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Adam {
            weight_decay,
            decoupled: true,
            ..Adam::new(lr)
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[(String, Tensor)], grads: &GradStore) -> Result<()> {
        self.core.t += 1;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let bc1 = 1.0 - self.beta1.powi(self.core.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.core.t as i32);
        // w -= lr/bc1 · m / (√v/√bc2 + ε), PyTorch's formulation.
        let step_size = (self.core.lr / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let (eps, wd, lr) = (self.eps as f32, self.weight_decay as f32, self.core.lr as f32);
        let decoupled = self.decoupled;
        for (name, p) in params {
            let Some(mut g) = grad_values(grads, p)? else { continue };
            let st = self.core.slots.get(name, 2, g.len());
            check_len(name, &st[0], g.len())?;
            let (m, v) = st.split_at_mut(1);
            let (m, v) = (&mut m[0], &mut v[0]);
            p.update_::<f32>(|w| {
                // Branch-free inner loops over zipped slices, so the compiler vectorizes them.
                if wd != 0.0 && decoupled {
                    w.iter_mut().for_each(|wi| *wi -= lr * wd * *wi);
                } else if wd != 0.0 {
                    g.iter_mut().zip(w.iter()).for_each(|(gi, wi)| *gi += wd * wi);
                }
                for (((wi, gi), mi), vi) in w.iter_mut().zip(&g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *mi = b1 * *mi + (1.0 - b1) * gi;
                    *vi = b2 * *vi + (1.0 - b2) * gi * gi;
                    *wi -= step_size * *mi / (vi.sqrt() * inv_sqrt_bc2 + eps);
                }
            })?;
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }
    fn core(&self) -> &OptimCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut OptimCore {
        &mut self.core
    }
    fn name(&self) -> &'static str {
        if self.decoupled {
            "adamw"
        } else {
            "adam"
        }
    }
}
