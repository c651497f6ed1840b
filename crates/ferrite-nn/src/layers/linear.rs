//! `Linear` (Keras `Dense`): y = x·Wᵀ + b, with W stored `[out, in]` as PyTorch does, so PyTorch and
//! Hugging Face checkpoints load without transposes.
//!
//! Layer: nn.

use crate::init::Init;
use crate::module::{Activation, Module};
use crate::per_example::{Tap, TapKind};
use crate::var_map::VarBuilder;
use ferrite_core::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Which framework's default initialization to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearInit {
    /// Keras: Glorot-uniform weight, zero bias.
    #[default]
    Keras,
    /// PyTorch: kaiming_uniform(a=√5) weight, U(±1/√in) bias.
    Pytorch,
}

/// A fully connected layer with an optional fused activation.
///
/// ```
/// use ferrite_core::Tensor;
/// use ferrite_nn::{Activation, Linear, LinearInit, Module, VarBuilder, VarMap};
/// let vars = VarMap::new();
/// let dense = Linear::new(&VarBuilder::new(&vars, 0), 4, 3, true, LinearInit::Keras)?.with_activation(Activation::Relu);
/// let y = dense.forward(&Tensor::ones([2, 4])?, false)?;
/// assert_eq!(y.shape(), &[2, 3]);
/// assert!(y.to_vec::<f32>()?.iter().all(|&v| v >= 0.0));
/// // PyTorch's names: "weight" [out, in] and "bias" [out].
/// assert_eq!(vars.vars().iter().map(|(n, t)| (n.as_str(), t.shape().to_vec())).collect::<Vec<_>>(),
///            vec![("weight", vec![3, 4]), ("bias", vec![3])]);
/// // A wrong input width names both shapes.
/// assert!(dense.forward(&Tensor::ones([2, 5])?, false).unwrap_err().to_string().contains("[2, 5]"));
/// # Ok::<(), ferrite_core::Error>(())
/// ```
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub activation: Activation,
    in_features: usize,
}

impl Linear {
    /// Creates (or loads, through `vb`) a `[out, in]` weight and an `[out]` bias.
    pub fn new(vb: &VarBuilder, in_features: usize, out_features: usize, bias: bool, init: LinearInit) -> Result<Self> {
        let (w_init, b_init) = match init {
            LinearInit::Keras => (Init::GlorotUniform, Init::Zeros),
            LinearInit::Pytorch => (Init::KaimingUniform, Init::BiasUniform { fan_in: in_features }),
        };
        let weight = vb.get(&[out_features, in_features], "weight", w_init)?;
        let bias = if bias {
            Some(vb.get(&[out_features], "bias", b_init)?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            activation: Activation::Linear,
            in_features,
        })
    }

    /// A layer from existing tensors: `weight` `[out, in]`, `bias` `[out]` (pretrained weights,
    /// or parameters created with another initializer).
    ///
    /// # Errors
    /// A weight that is not 2-D, or a bias whose length is not `out`.
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if weight.ndim() != 2 || bias.as_ref().is_some_and(|b| b.shape() != [weight.shape()[0]]) {
            return Err(Error::ShapeMismatch {
                op: "Linear::from_parts",
                lhs: weight.shape().to_vec(),
                rhs: bias.as_ref().map_or(vec![], |b| b.shape().to_vec()),
                detail: "weight must be [out, in] and bias [out]".into(),
            });
        }
        let in_features = weight.shape()[1];
        Ok(Linear {
            weight,
            bias,
            activation: Activation::Linear,
            in_features,
        })
    }

    /// Sets the activation applied after the affine map (Keras `Dense(..., activation=...)`).
    pub fn with_activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Linear {
    /// # Shapes
    /// `[..., in] -> [..., out]`
    ///
    /// # Errors
    /// An input whose last dimension is not `in`: the message names both shapes.
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.check_input(x)?;
        self.activation.apply(&x.linear(&self.weight, self.bias.as_ref())?)
    }

    /// Taps the pre-activation output (computed on detached parameters: their gradients come
    /// from the tap); the input rows are `[B, T, in]` (T = the dims between).
    fn forward_tapped(&self, x: &Tensor, _train: bool, taps: &mut Vec<Tap>) -> Result<Tensor> {
        self.check_input(x)?;
        let z = x.linear(&self.weight.detach(), self.bias.as_ref().map(Tensor::detach).as_ref())?;
        let probe = Tap::probe_for(&z)?;
        let batch = x.shape().first().copied().unwrap_or(0);
        let rows = x.numel() / (batch * self.in_features).max(1);
        taps.push(Tap {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            input: x.detach().reshape([batch, rows, self.in_features])?,
            probe: probe.clone(),
            kind: TapKind::Dense,
        });
        self.activation.apply(&z.add(&probe)?)
    }
}

impl Linear {
    fn check_input(&self, x: &Tensor) -> Result<()> {
        if x.shape().last() != Some(&self.in_features) {
            return Err(Error::ShapeMismatch {
                op: "linear",
                lhs: x.shape().to_vec(),
                rhs: self.weight.shape().to_vec(),
                detail: format!("input's last dimension must be in_features = {}", self.in_features),
            });
        }
        Ok(())
    }
}
