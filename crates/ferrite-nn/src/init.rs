//! Parameter initializers, with the defaults Keras and PyTorch use.
//!
//! Layer: nn. Fans follow PyTorch's convention for a weight of shape `[out, in, *kernel]`:
//! fan_in = in·∏kernel, fan_out = out·∏kernel.

use ferrite_core::{Error, Result, Rng, Tensor};
use serde::{Deserialize, Serialize};

/// How to fill a new parameter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Init {
    Zeros,
    Ones,
    Constant {
        value: f64,
    },
    Uniform {
        lo: f64,
        hi: f64,
    },
    Normal {
        mean: f64,
        std: f64,
    },
    /// Keras' default for Dense kernels: U(±√(6/(fan_in+fan_out))).
    GlorotUniform,
    /// PyTorch's default for Linear/Conv weights: kaiming_uniform(a=√5) = U(±1/√fan_in).
    KaimingUniform,
    /// PyTorch's default for Linear/Conv biases: U(±1/√fan_in) with the weight's fan_in.
    BiasUniform {
        fan_in: usize,
    },
}

/// (fan_in, fan_out) of a weight of `shape` (`[out, in, ...]`).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (shape[0], shape[0]),
        _ => {
            let receptive: usize = shape[2..].iter().product();
            (shape[1] * receptive, shape[0] * receptive)
        }
    }
}

impl Init {
    /// A new f32 tensor of `shape` filled by this rule.
    pub fn tensor(&self, shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
        let (fan_in, fan_out) = fans(shape);
        let uniform = |rng: &mut Rng, b: f64| Tensor::uniform_with(rng, shape, -b, b);
        match *self {
            Init::Zeros => Tensor::zeros(shape),
            Init::Ones => Tensor::ones(shape),
            Init::Constant { value } => Tensor::full(shape, value as f32),
            Init::Uniform { lo, hi } => Tensor::uniform_with(rng, shape, lo, hi),
            Init::Normal { mean, std } => Tensor::randn_with(rng, shape)?.affine(std, mean),
            Init::GlorotUniform => uniform(rng, (6.0 / (fan_in + fan_out).max(1) as f64).sqrt()),
            Init::KaimingUniform => uniform(rng, 1.0 / (fan_in.max(1) as f64).sqrt()),
            Init::BiasUniform { fan_in } => {
                if fan_in == 0 {
                    return Err(Error::Invalid {
                        op: "init",
                        detail: "bias fan_in must be positive".into(),
                    });
                }
                uniform(rng, 1.0 / (fan_in as f64).sqrt())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_fans() {
        let mut r = Rng::new(3);
        let w = Init::GlorotUniform
            .tensor(&[64, 10], &mut r)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let lim = (6.0f32 / 74.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= lim));
        assert!(w.iter().any(|v| v.abs() > 0.8 * lim));
        let k = Init::KaimingUniform
            .tensor(&[64, 16], &mut r)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert!(k.iter().all(|v| v.abs() <= 0.25));
    }
}
