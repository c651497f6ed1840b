//! Attributions read off the gradient at (or near) the input: saliency (Simonyan et al. 2013),
//! gradient × input, and SmoothGrad (Smilkov et al. 2017), with Captum's semantics.
//!
//! Layer: explain. Each returns a tensor shaped like `x`: one attribution per input feature.

use crate::target::{gradients, Forward, Target};
use ferrite_core::{Error, Result, Rng, Tensor};

/// |∂f/∂x| (`abs`, Captum's `Saliency` default) or the signed gradient.
pub fn saliency(model: &Forward, x: &Tensor, target: &Target, abs: bool) -> Result<Tensor> {
    let g = gradients(model, x, target)?;
    if abs {
        g.abs()
    } else {
        Ok(g)
    }
}

/// x ⊙ ∂f/∂x (Captum's `InputXGradient`).
pub fn input_x_gradient(model: &Forward, x: &Tensor, target: &Target) -> Result<Tensor> {
    gradients(model, x, target)?.mul(&x.detach())
}

/// The most noisy samples (SmoothGrad's paper uses 50; each is one forward and backward pass).
pub const MAX_SAMPLES: usize = 10_000;

/// SmoothGrad settings (Captum's `NoiseTunnel(Saliency)` with `nt_type="smoothgrad"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmoothGradOptions {
    /// Noisy copies averaged.
    pub samples: usize,
    /// Standard deviation of the Gaussian noise, in input units (the paper suggests 10–20% of
    /// the input's range).
    pub stdev: f64,
    /// Average |gradient| instead of the signed gradient.
    pub abs: bool,
    pub seed: u64,
}

impl Default for SmoothGradOptions {
    fn default() -> Self {
        SmoothGradOptions {
            samples: 25,
            stdev: 0.15,
            abs: true,
            seed: 0,
        }
    }
}

/// The mean saliency over `opts.samples` copies of `x` with Gaussian noise added.
pub fn smooth_grad(model: &Forward, x: &Tensor, target: &Target, opts: &SmoothGradOptions) -> Result<Tensor> {
    if !(1..=MAX_SAMPLES).contains(&opts.samples) {
        return Err(Error::Invalid {
            op: "smooth_grad",
            detail: format!("samples {} must be between 1 and {MAX_SAMPLES}", opts.samples),
        });
    }
    if !(opts.stdev >= 0.0 && opts.stdev.is_finite()) {
        return Err(Error::Invalid {
            op: "smooth_grad",
            detail: format!("stdev must be ≥ 0 and finite, got {}", opts.stdev),
        });
    }
    let x = x.detach().contiguous()?;
    let mut rng = Rng::new(opts.seed);
    let mut sum = vec![0.0f64; x.numel()];
    for _ in 0..opts.samples {
        let noisy = x.add(&Tensor::randn_with(&mut rng, x.shape())?.mul_scalar(opts.stdev)?)?;
        let g = saliency(model, &noisy, target, opts.abs)?.to_f64_vec();
        sum.iter_mut().zip(g).for_each(|(s, v)| *s += v);
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / opts.samples as f64) as f32).collect();
    Tensor::from_vec(mean, x.shape())
}
