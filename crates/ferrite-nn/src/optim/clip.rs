//! Gradient clipping (PyTorch `clip_grad_norm_` / `clip_grad_value_`, Keras `clipnorm` / `clipvalue`).
//!
//! Layer: nn. Returns a new `GradStore`; gradients are small next to activations, so the copy is cheap.

use ferrite_core::{GradStore, Result, Tensor};

/// Scales all gradients of `params` so their global L2 norm is at most `max_norm`.
/// Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, params: &[(String, Tensor)], max_norm: f64) -> Result<f64> {
    let mut sq = 0.0f64;
    for (_, p) in params {
        if let Some(g) = grads.get(p) {
            sq += g.to_vec::<f32>()?.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
        }
    }
    let norm = sq.sqrt();
    // PyTorch: clip_coef = max_norm / (norm + 1e-6), applied only when < 1.
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for (_, p) in params {
            if let Some(g) = grads.get(p) {
                let scaled = g.mul_scalar(coef)?;
                grads.insert(p, scaled);
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient element into [−clip, clip].
pub fn clip_grad_value(grads: &mut GradStore, params: &[(String, Tensor)], clip: f64) -> Result<()> {
    for (_, p) in params {
        if let Some(g) = grads.get(p) {
            let c = g.clamp(-clip, clip)?;
            grads.insert(p, c);
        }
    }
    Ok(())
}
