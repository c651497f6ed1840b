//! Keras-style `Sequential`: a stack of layers built from small config values, with named
//! parameters (`"0.weight"`, `"0.bias"`, … as in a PyTorch `nn.Sequential` state dict).
//!
//! Layer: train. `compile` attaches an optimizer, loss and metrics; `fit`/`evaluate`/`predict`
//! are in `keras.rs`, on the one training loop; saving and loading in `checkpoint.rs`.

use crate::metrics::Metric;
use crate::step::TrainStep;
use ferrite_core::{Conv2dOptions, Pool2dOptions};
use ferrite_core::{Error, Result, Tensor};
use ferrite_models::vit::{ClassTokenPool, PatchEmbedding};
use ferrite_nn::transformer::{EncoderStack, TransformerLayerConfig};
use ferrite_nn::{
    Activation, BatchNorm, Conv2d, Dropout, Embedding, Flatten, LayerNorm, Linear, LinearInit, Loss, Module, Pool2d,
    VarBuilder, VarMap,
};
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}
fn ln_eps() -> f64 {
    1e-5
}
fn bn_momentum() -> f64 {
    0.1
}
fn one() -> usize {
    1
}
fn gelu() -> Activation {
    Activation::Gelu
}
fn one2() -> Size2 {
    Size2::One(1)
}

/// A window size, stride, padding or dilation: one number for both spatial axes, or `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    One(usize),
    Two([usize; 2]),
}

impl Size2 {
    pub fn pair(self) -> [usize; 2] {
        match self {
            Size2::One(v) => [v, v],
            Size2::Two(v) => v,
        }
    }
}

/// Convolution padding: explicit sizes, or Keras' `"valid"` (none) / `"same"` (output size equals
/// input size at stride 1; needs an odd dilated kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Padding {
    Size(Size2),
    Named(PaddingName),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingName {
    Valid,
    Same,
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Size(Size2::One(0))
    }
}

impl Padding {
    fn resolve(self, kernel: [usize; 2], dilation: [usize; 2]) -> std::result::Result<[usize; 2], String> {
        match self {
            Padding::Size(s) => Ok(s.pair()),
            Padding::Named(PaddingName::Valid) => Ok([0, 0]),
            Padding::Named(PaddingName::Same) => {
                let mut p = [0; 2];
                for i in 0..2 {
                    let span = dilation[i] * kernel[i].saturating_sub(1);
                    if span % 2 == 1 {
                        return Err(format!("padding \"same\" needs an odd kernel, got {kernel:?}"));
                    }
                    p[i] = span / 2;
                }
                Ok(p)
            }
        }
    }
}

/// One layer of a `Sequential`, as written in a config file (`{type = "dense", units = 64, activation = "relu"}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        use_bias: bool,
    },
    Dropout {
        rate: f64,
    },
    LayerNorm {
        #[serde(default = "ln_eps")]
        eps: f64,
    },
    Activation {
        activation: Activation,
    },
    Flatten,
    Embedding {
        vocab: usize,
        dim: usize,
    },
    /// 2-D convolution over `[channels, height, width]` samples (PyTorch's layout).
    Conv2d {
        filters: usize,
        kernel_size: Size2,
        #[serde(default = "one2")]
        stride: Size2,
        #[serde(default)]
        padding: Padding,
        #[serde(default = "one2")]
        dilation: Size2,
        #[serde(default = "one")]
        groups: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default = "yes")]
        use_bias: bool,
    },
    MaxPool2d {
        pool_size: Size2,
        /// Default: the pool size.
        stride: Option<Size2>,
        #[serde(default)]
        padding: Option<Size2>,
    },
    AvgPool2d {
        pool_size: Size2,
        stride: Option<Size2>,
        #[serde(default)]
        padding: Option<Size2>,
        #[serde(default = "yes")]
        count_include_pad: bool,
    },
    /// Average over height and width: `[C, H, W]` → `[C]` (Keras' GlobalAveragePooling2D).
    GlobalAvgPool2d,
    /// Vision Transformer input: `[C, H, W]` → `[1 + patches, dim]` (patch projection, a learned
    /// class token, learned position embeddings).
    PatchEmbed {
        patch: usize,
        dim: usize,
    },
    /// `layers` Transformer encoder layers over `[tokens, dim]` samples (pre-LN unless
    /// `norm_first = false`; GELU unless `activation` says otherwise).
    TransformerEncoder {
        heads: usize,
        ffn: usize,
        #[serde(default = "one")]
        layers: usize,
        #[serde(default)]
        dropout: f64,
        #[serde(default = "gelu")]
        activation: Activation,
        #[serde(default = "yes")]
        norm_first: bool,
    },
    /// `[tokens, dim]` → `[dim]`: the class token's final state.
    ClassToken,
    /// Batch normalization over the channel dim (features of a dense output, channels of a conv).
    BatchNorm {
        #[serde(default = "bn_momentum")]
        momentum: f64,
        #[serde(default = "ln_eps")]
        eps: f64,
    },
}

fn pool_options(pool_size: Size2, stride: Option<Size2>, padding: Option<Size2>) -> Pool2dOptions {
    let kernel = pool_size.pair();
    Pool2dOptions {
        kernel,
        stride: stride.map_or(kernel, Size2::pair),
        padding: padding.map_or([0, 0], Size2::pair),
        dilation: [1, 1],
    }
}

/// Global average pooling followed by dropping the 1×1 spatial dims.
struct GlobalAvgPool;

impl Module for GlobalAvgPool {
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        x.adaptive_avg_pool2d([1, 1])?.flatten(1, -1)
    }
}

/// Builder for a dense layer: `Dense::new(64).activation(Activation::Relu)`.
#[derive(Clone, Copy, Debug)]
pub struct Dense {
    units: usize,
    activation: Activation,
    use_bias: bool,
}

impl Dense {
    pub fn new(units: usize) -> Self {
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
        }
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn use_bias(mut self, on: bool) -> Self {
        self.use_bias = on;
        self
    }
}

impl From<Dense> for LayerConfig {
    fn from(d: Dense) -> Self {
        LayerConfig::Dense {
            units: d.units,
            activation: d.activation,
            use_bias: d.use_bias,
        }
    }
}

/// Loss and metrics attached by `compile` (the optimizer lives in the model's [`TrainStep`]).
pub(crate) struct Compiled {
    pub(crate) loss: Loss,
    pub(crate) metrics: Vec<Metric>,
}

/// A linear stack of layers (Keras `Sequential`).
pub struct Sequential {
    pub(crate) input_shape: Vec<usize>,
    pub(crate) configs: Vec<LayerConfig>,
    layers: Vec<Box<dyn Module>>,
    pub(crate) vars: VarMap,
    vb: VarBuilder,
    pub(crate) init: LinearInit,
    pub(crate) seed: u64,
    out_shape: Vec<usize>,
    pub(crate) params: Vec<(String, Tensor)>,
    pub(crate) compiled: Option<Compiled>,
    /// The training step `compile` set up (optimizer, clipping, schedule).
    pub(crate) trainer: Option<TrainStep>,
}

impl Sequential {
    /// An empty model for samples of `input_shape` (without the batch dim), Keras initializers,
    /// parameters drawn from a generator seeded with 0 (see [`Sequential::with_seed`]).
    pub fn new(input_shape: &[usize]) -> Self {
        Sequential::with_options(input_shape, 0, LinearInit::Keras)
    }

    /// An empty model with an explicit init seed and initializer family.
    pub fn with_options(input_shape: &[usize], seed: u64, init: LinearInit) -> Self {
        let vars = VarMap::new();
        let vb = VarBuilder::new(&vars, seed);
        Sequential {
            input_shape: input_shape.to_vec(),
            configs: Vec::new(),
            layers: Vec::new(),
            vars,
            vb,
            init,
            seed,
            out_shape: input_shape.to_vec(),
            params: Vec::new(),
            compiled: None,
            trainer: None,
        }
    }

    /// Appends a layer, creating its parameters now (their shapes follow from the previous output).
    ///
    /// # Errors
    /// A layer that cannot follow the current output shape (e.g. `Dense` after a 0-d output).
    // Keras' name (`model.add(Dense(64))`); a model is not summed with anything.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Into<LayerConfig>) -> Result<Self> {
        let cfg = layer.into();
        let i = self.layers.len();
        let vb = self.vb.pp(i.to_string());
        let shape = self.out_shape.clone();
        let bad = |what: &str| Error::Invalid {
            op: "Sequential::add",
            detail: format!("layer {i} ({what}) cannot follow output shape {shape:?}"),
        };
        let (module, out): (Box<dyn Module>, Vec<usize>) = match &cfg {
            LayerConfig::Dense {
                units,
                activation,
                use_bias,
            } => {
                let inp = *shape.last().ok_or_else(|| bad("dense"))?;
                let l = Linear::new(&vb, inp, *units, *use_bias, self.init)?.with_activation(*activation);
                let mut out = shape.clone();
                *out.last_mut().expect("checked non-empty") = *units;
                (Box::new(l), out)
            }
            LayerConfig::Dropout { rate } => (Box::new(Dropout::new(*rate)?), shape.clone()),
            LayerConfig::LayerNorm { eps } => {
                let d = *shape.last().ok_or_else(|| bad("layer_norm"))?;
                (Box::new(LayerNorm::new(&vb, d, *eps)?), shape.clone())
            }
            LayerConfig::Activation { activation } => (Box::new(*activation), shape.clone()),
            LayerConfig::Flatten => (Box::new(Flatten), vec![shape.iter().product()]),
            LayerConfig::Embedding { vocab, dim } => {
                let mut out = shape.clone();
                out.push(*dim);
                (Box::new(Embedding::new(&vb, *vocab, *dim)?), out)
            }
            LayerConfig::Conv2d {
                filters,
                kernel_size,
                stride,
                padding,
                dilation,
                groups,
                activation,
                use_bias,
            } => {
                if shape.len() != 3 {
                    return Err(bad("conv2d needs [channels, height, width] samples"));
                }
                let (kernel, dilation) = (kernel_size.pair(), dilation.pair());
                let padding = padding
                    .resolve(kernel, dilation)
                    .map_err(|e| bad(&format!("conv2d: {e}")))?;
                let opts = Conv2dOptions {
                    stride: stride.pair(),
                    padding,
                    dilation,
                    groups: *groups,
                };
                let conv = Conv2d::new(&vb, shape[0], *filters, kernel, opts, *use_bias, self.init)
                    .map_err(|e| bad(&format!("conv2d: {e}")))?
                    .with_activation(*activation);
                let out = conv
                    .output_shape(&shape)
                    .ok_or_else(|| bad(&format!("conv2d with kernel {kernel:?}, padding {padding:?}")))?;
                (Box::new(conv), out)
            }
            LayerConfig::MaxPool2d {
                pool_size,
                stride,
                padding,
            } => {
                let p = Pool2d::Max(pool_options(*pool_size, *stride, *padding));
                let out = p.output_shape(&shape).ok_or_else(|| bad("max_pool2d"))?;
                (Box::new(p), out)
            }
            LayerConfig::AvgPool2d {
                pool_size,
                stride,
                padding,
                count_include_pad,
            } => {
                let p = Pool2d::Avg {
                    options: pool_options(*pool_size, *stride, *padding),
                    count_include_pad: *count_include_pad,
                };
                let out = p.output_shape(&shape).ok_or_else(|| bad("avg_pool2d"))?;
                (Box::new(p), out)
            }
            LayerConfig::GlobalAvgPool2d => {
                if shape.len() != 3 {
                    return Err(bad("global_avg_pool2d needs [channels, height, width] samples"));
                }
                (Box::new(GlobalAvgPool), vec![shape[0]])
            }
            LayerConfig::PatchEmbed { patch, dim } => {
                let [c, h, w] = shape[..] else {
                    return Err(bad("patch_embed needs [channels, height, width] samples"));
                };
                let pe = PatchEmbedding::new(&vb, [c, h, w], *patch, *dim, self.init)
                    .map_err(|e| bad(&format!("patch_embed: {e}")))?;
                let out = vec![pe.tokens(), *dim];
                (Box::new(pe), out)
            }
            LayerConfig::TransformerEncoder {
                heads,
                ffn,
                layers,
                dropout,
                activation,
                norm_first,
            } => {
                let [_, d] = shape[..] else {
                    return Err(bad("transformer_encoder needs [tokens, dim] samples"));
                };
                if *heads == 0 || d % heads != 0 {
                    return Err(bad(&format!("transformer_encoder: {heads} heads must divide dim {d}")));
                }
                let c = TransformerLayerConfig {
                    d_model: d,
                    heads: *heads,
                    ffn: *ffn,
                    dropout: *dropout,
                    activation: *activation,
                    norm_first: *norm_first,
                    eps: 1e-5,
                };
                (Box::new(EncoderStack::new(&vb, &c, *layers)?), shape.clone())
            }
            LayerConfig::ClassToken => {
                let [_, d] = shape[..] else {
                    return Err(bad("class_token needs [tokens, dim] samples"));
                };
                (Box::new(ClassTokenPool), vec![d])
            }
            LayerConfig::BatchNorm { momentum, eps } => {
                let c = *shape.first().ok_or_else(|| bad("batch_norm"))?;
                (Box::new(BatchNorm::new(&vb, c, *momentum, *eps)?), shape.clone())
            }
        };
        self.layers.push(module);
        self.configs.push(cfg);
        self.out_shape = out;
        self.params = self.vars.vars();
        Ok(self)
    }

    /// Runs the layers. `train` enables dropout.
    ///
    /// # Errors
    /// An input whose per-sample shape is not the model's input shape (both shapes are named).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.check_input(x)?;
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h, train)?;
        }
        Ok(h)
    }

    /// Training forward for DP-SGD: also records a tap per dense and conv2d layer, from which
    /// per-example gradients follow (`ferrite_nn::per_example`).
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    pub fn forward_tapped(&self, x: &Tensor, taps: &mut Vec<ferrite_nn::Tap>) -> Result<Tensor> {
        self.check_input(x)?;
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward_tapped(&h, true, taps)?;
        }
        Ok(h)
    }

    /// Refuses DP-SGD for a model with a layer that has parameters but no per-example gradient,
    /// naming the layer (batch norm mixes the examples of a batch, as Opacus refuses it too).
    ///
    /// # Errors
    /// The first such layer.
    pub fn check_per_example_gradients(&self) -> Result<()> {
        for (i, cfg) in self.configs.iter().enumerate() {
            let why = match cfg {
                LayerConfig::BatchNorm { .. } => {
                    "batch norm mixes the examples of a batch, so an example's gradient is not its own; use layer_norm"
                }
                LayerConfig::Conv2d { groups, .. } if *groups != 1 => {
                    "grouped convolutions have no per-example gradient rule yet"
                }
                LayerConfig::LayerNorm { .. }
                | LayerConfig::Embedding { .. }
                | LayerConfig::PatchEmbed { .. }
                | LayerConfig::TransformerEncoder { .. } => "this layer has no per-example gradient rule yet",
                _ => continue,
            };
            let kind = serde_json::to_value(cfg)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_string)))
                .unwrap_or_default();
            return Err(Error::Invalid {
                op: "DP-SGD",
                detail: format!("layer {i} ({kind}) has parameters but no per-example gradients: {why}"),
            });
        }
        Ok(())
    }

    /// Inference-mode forward that also returns the attention weights of every attention layer
    /// (`[N, heads, T, T]` each, in order; empty for models without attention), for explanations.
    ///
    /// # Errors
    /// As [`forward`](Self::forward).
    pub fn forward_with_attention(&self, x: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
        self.check_input(x)?;
        let mut attentions = Vec::new();
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward_with_attention(&h, &mut attentions)?;
        }
        Ok((h, attentions))
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        if x.ndim() != self.input_shape.len() + 1 || x.shape()[1..] != self.input_shape[..] {
            let mut want = vec![x.shape().first().copied().unwrap_or(0)];
            want.extend(&self.input_shape);
            return Err(Error::ShapeMismatch {
                op: "Sequential::forward",
                lhs: x.shape().to_vec(),
                rhs: want,
                detail: format!("the model's input shape is {:?} per sample", self.input_shape),
            });
        }
        Ok(())
    }

    /// Named parameters in creation order.
    pub fn parameters(&self) -> &[(String, Tensor)] {
        &self.params
    }
    /// The parameter map (for loading and saving).
    pub fn var_map(&self) -> &VarMap {
        &self.vars
    }
    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.vars.num_params()
    }
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }
    pub fn output_shape(&self) -> &[usize] {
        &self.out_shape
    }
    pub fn layer_configs(&self) -> &[LayerConfig] {
        &self.configs
    }

    pub(crate) fn compiled_ref(&self) -> Result<&Compiled> {
        self.compiled.as_ref().ok_or_else(|| Error::Invalid {
            op: "Sequential",
            detail: "call compile() before fit/evaluate".into(),
        })
    }

    /// A one-line-per-layer summary with output shapes and parameter counts (Keras `summary()`).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "Sequential: input {:?}, {} parameters\n",
            self.input_shape,
            self.num_params()
        );
        for (i, c) in self.configs.iter().enumerate() {
            let n: usize = self
                .params
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{i}.")))
                .map(|(_, t)| t.numel())
                .sum();
            s.push_str(&format!("  {i}: {c:?} — {n} params\n"));
        }
        s
    }
}
