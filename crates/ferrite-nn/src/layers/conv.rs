//! `Conv2d` and `Conv1d`: weights stored `[out, in/groups, k…]` under PyTorch's names, so
//! torchvision-style checkpoints load as they are.
//!
//! Layer: nn.

use crate::init::Init;
use crate::layers::LinearInit;
use crate::module::{Activation, Module};
use crate::per_example::{Tap, TapKind};
use crate::var_map::VarBuilder;
use ferrite_core::{Conv1dOptions, Conv2dOptions, Error, Result, Tensor};

fn inits(init: LinearInit, fan_in: usize) -> (Init, Init) {
    match init {
        LinearInit::Keras => (Init::GlorotUniform, Init::Zeros),
        LinearInit::Pytorch => (Init::KaimingUniform, Init::BiasUniform { fan_in }),
    }
}

fn check_groups(op: &'static str, in_c: usize, out_c: usize, groups: usize) -> Result<()> {
    if groups == 0 || !in_c.is_multiple_of(groups) || !out_c.is_multiple_of(groups) {
        return Err(Error::Invalid {
            op,
            detail: format!("groups = {groups} must divide in_channels = {in_c} and out_channels = {out_c}"),
        });
    }
    Ok(())
}

/// A 2-D convolution layer with an optional fused activation.
///
/// ```
/// use ferrite_core::{Conv2dOptions, Tensor};
/// use ferrite_nn::{Conv2d, LinearInit, Module, VarBuilder, VarMap};
/// let vb = VarBuilder::new(&VarMap::new(), 0);
/// let conv = Conv2d::new(&vb, 3, 8, [3, 3], Conv2dOptions::default().padding(1), true, LinearInit::Pytorch)?;
/// assert_eq!(conv.forward(&Tensor::zeros([2, 3, 16, 16])?, false)?.shape(), &[2, 8, 16, 16]);
/// # Ok::<(), ferrite_core::Error>(())
/// ```
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub options: Conv2dOptions,
    pub activation: Activation,
}

impl Conv2d {
    /// Creates (or loads, through `vb`) a `[out, in/groups, kh, kw]` weight and an `[out]` bias.
    ///
    /// # Errors
    /// Channels not divisible by the groups, or a zero kernel size.
    pub fn new(
        vb: &VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        options: Conv2dOptions,
        bias: bool,
        init: LinearInit,
    ) -> Result<Self> {
        check_groups("Conv2d", in_channels, out_channels, options.groups)?;
        if kernel.contains(&0) {
            return Err(Error::Invalid {
                op: "Conv2d",
                detail: format!("kernel size must be positive, got {kernel:?}"),
            });
        }
        let shape = [out_channels, in_channels / options.groups, kernel[0], kernel[1]];
        let (w_init, b_init) = inits(init, shape[1] * kernel[0] * kernel[1]);
        let weight = vb.get(&shape, "weight", w_init)?;
        let bias = if bias {
            Some(vb.get(&[out_channels], "bias", b_init)?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            options,
            activation: Activation::Linear,
        })
    }

    pub fn with_activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// Output `[channels, height, width]` for one input sample of `[c, h, w]`, or `None` if the
    /// channels differ or the kernel does not fit.
    pub fn output_shape(&self, input: &[usize]) -> Option<Vec<usize>> {
        let (w, o) = (self.weight.shape(), &self.options);
        if input.len() != 3 || input[0] != w[1] * o.groups {
            return None;
        }
        // ⌊(in + 2·pad − dil·(k−1) − 1) / stride⌋ + 1, when the dilated kernel fits.
        let size = |i: usize| {
            let span = o.dilation[i] * (w[2 + i] - 1) + 1;
            let padded = input[1 + i] + 2 * o.padding[i];
            (padded >= span && o.stride[i] > 0).then(|| (padded - span) / o.stride[i] + 1)
        };
        Some(vec![w[0], size(0)?, size(1)?])
    }
}

impl Module for Conv2d {
    /// # Shapes
    /// `[N, C, H, W] → [N, O, OH, OW]` (`OH = (H + 2·pad − dil·(kh − 1) − 1) / stride + 1`).
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        self.activation
            .apply(&x.conv2d(&self.weight, self.bias.as_ref(), self.options)?)
    }

    /// Taps the pre-activation output (computed on detached parameters: their gradients come
    /// from the tap, as per-example weight gradients of the input and the probe's gradient).
    fn forward_tapped(&self, x: &Tensor, _train: bool, taps: &mut Vec<Tap>) -> Result<Tensor> {
        let z = x.conv2d(
            &self.weight.detach(),
            self.bias.as_ref().map(Tensor::detach).as_ref(),
            self.options,
        )?;
        let probe = Tap::probe_for(&z)?;
        taps.push(Tap {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            input: x.detach(),
            probe: probe.clone(),
            kind: TapKind::Conv2d(self.options),
        });
        self.activation.apply(&z.add(&probe)?)
    }
}

/// A 1-D convolution layer over `[N, C, L]`.
pub struct Conv1d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub options: Conv1dOptions,
}

impl Conv1d {
    /// Creates (or loads, through `vb`) a `[out, in/groups, k]` weight and an `[out]` bias.
    ///
    /// # Errors
    /// Channels not divisible by the groups, or a zero kernel size.
    pub fn new(
        vb: &VarBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv1dOptions,
        bias: bool,
        init: LinearInit,
    ) -> Result<Self> {
        check_groups("Conv1d", in_channels, out_channels, options.groups)?;
        if kernel == 0 {
            return Err(Error::Invalid {
                op: "Conv1d",
                detail: "kernel size must be positive".into(),
            });
        }
        let shape = [out_channels, in_channels / options.groups, kernel];
        let (w_init, b_init) = inits(init, shape[1] * kernel);
        let weight = vb.get(&shape, "weight", w_init)?;
        let bias = if bias {
            Some(vb.get(&[out_channels], "bias", b_init)?)
        } else {
            None
        };
        Ok(Conv1d { weight, bias, options })
    }
}

impl Module for Conv1d {
    /// # Shapes
    /// `[N, C, L] → [N, O, OL]`.
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        x.conv1d(&self.weight, self.bias.as_ref(), self.options)
    }
}
