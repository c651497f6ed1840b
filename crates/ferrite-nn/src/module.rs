//! The `Module` trait: anything with a forward pass.
//!
//! Layer: nn. `train` is passed explicitly (Keras' `training=` argument) rather than stored as
//! mutable module state, so a model can be shared across threads and used for inference while
//! training is paused without toggling anything.

use crate::per_example::Tap;
use ferrite_core::{Result, Tensor};

/// A layer or model.
pub trait Module: Send + Sync {
    /// Applies the module. `train` enables training-only behaviour such as dropout.
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor>;

    /// Inference-mode [`forward`](Self::forward) that also appends the attention weights of
    /// every attention layer inside (`[N, heads, T, T]` each) to `attentions`, for explaining a
    /// model. Modules without attention just run forward.
    fn forward_with_attention(&self, x: &Tensor, attentions: &mut Vec<Tensor>) -> Result<Tensor> {
        let _ = attentions;
        self.forward(x, false)
    }

    /// Training forward for DP-SGD that also records a [`Tap`] per parameterized op, from which
    /// the per-example gradients follow (`per_example.rs`). Modules without parameters just run
    /// forward; a module with parameters that records nothing leaves them uncovered, which the
    /// training step refuses by name.
    fn forward_tapped(&self, x: &Tensor, train: bool, taps: &mut Vec<Tap>) -> Result<Tensor> {
        let _ = taps;
        self.forward(x, train)
    }
}

/// Elementwise activation functions by name (Keras' `activation=` strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Identity (Keras' `activation=None` / `"linear"`).
    #[default]
    Linear,
    Relu,
    /// Exact (erf) GELU.
    Gelu,
    /// tanh-approximated GELU.
    GeluTanh,
    Silu,
    Sigmoid,
    Tanh,
    /// Softmax over the last dimension.
    Softmax,
}

impl Activation {
    /// Parses a Keras-style name (`"relu"`, `"linear"`, …).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" | "none" | "" => Activation::Linear,
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            "gelu_tanh" | "gelu_new" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            other => {
                return Err(ferrite_core::Error::Invalid {
                    op: "activation",
                    detail: format!(
                        "unknown activation '{other}' (expected linear, relu, gelu, gelu_tanh, silu, sigmoid, tanh, softmax)"
                    ),
                });
            }
        })
    }

    /// Applies the activation.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Linear => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Gelu => x.gelu(false),
            Activation::GeluTanh => x.gelu(true),
            Activation::Silu => x.silu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(-1),
        }
    }
}

impl Module for Activation {
    /// # Shapes
    /// `[..] → [..]` (elementwise; softmax over the last dim).
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.apply(x)
    }
}
