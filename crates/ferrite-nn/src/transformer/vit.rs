//! Vision Transformer pieces (Dosovitskiy et al. 2021): patch embedding with a learned class
//! token and learned position embeddings, a stack of encoder layers, and class-token pooling.
//!
//! Layer: nn. The patch embedding is a convolution whose kernel and stride are the patch size, so
//! it reuses the conv kernels; the encoder layers are the same `EncoderLayer`s as the seq2seq
//! Transformer's (pre-LN by default here, as ViT uses).

use super::layers::{EncoderLayer, LayerConfig};
use crate::init::Init;
use crate::layers::{Conv2d, LinearInit};
use crate::module::Module;
use crate::var_map::VarBuilder;
use ferrite_core::{Conv2dOptions, Error, Result, Tensor};

/// `[N, C, H, W]` → `[N, 1 + (H/p)·(W/p), dim]`: patches projected to `dim`, a class token
/// prepended, position embeddings added.
pub struct PatchEmbedding {
    pub proj: Conv2d,
    pub class_token: Tensor,
    pub positions: Tensor,
    patch: usize,
}

impl PatchEmbedding {
    /// For `[channels, height, width]` images; height and width must be multiples of `patch`.
    ///
    /// # Errors
    /// A zero patch size or an image that patches do not tile (all sizes named).
    pub fn new(vb: &VarBuilder, image: [usize; 3], patch: usize, dim: usize, init: LinearInit) -> Result<Self> {
        let [c, h, w] = image;
        if patch == 0 || h % patch != 0 || w % patch != 0 {
            return Err(Error::Invalid {
                op: "PatchEmbedding",
                detail: format!("patch size {patch} must divide the image's height and width ({h}×{w})"),
            });
        }
        let opts = Conv2dOptions::default().stride(patch);
        let proj = Conv2d::new(&vb.pp("proj"), c, dim, [patch, patch], opts, true, init)?;
        let tokens = (h / patch) * (w / patch);
        let trunc = Init::Normal { mean: 0.0, std: 0.02 };
        Ok(PatchEmbedding {
            proj,
            class_token: vb.get(&[1, 1, dim], "class_token", trunc)?,
            positions: vb.get(&[1, tokens + 1, dim], "positions", trunc)?,
            patch,
        })
    }

    /// Tokens per image, class token included.
    pub fn tokens(&self) -> usize {
        self.positions.shape()[1]
    }
}

impl Module for PatchEmbedding {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let p = self.proj.forward(x, train)?; // [N, dim, h/p, w/p]
        let (n, dim) = (p.shape()[0], p.shape()[1]);
        let patches = p.flatten(2, -1)?.transpose(1, 2)?; // [N, T, dim]
        if patches.shape()[1] + 1 != self.tokens() {
            return Err(Error::ShapeMismatch {
                op: "PatchEmbedding",
                lhs: x.shape().to_vec(),
                rhs: vec![self.tokens() - 1],
                detail: format!(
                    "the image gives {} patches of {}×{}, the position table holds {}",
                    patches.shape()[1],
                    self.patch,
                    self.patch,
                    self.tokens() - 1
                ),
            });
        }
        let cls = self.class_token.expand([n, 1, dim])?;
        Tensor::cat(&[cls, patches], 1)?.add(&self.positions)
    }
}

/// `layers` encoder layers applied in turn to `[N, T, d]` (no masks: every patch sees every patch).
/// Its attention maps are available through `Module::forward_with_attention`.
pub struct EncoderStack {
    layers: Vec<EncoderLayer>,
}

impl EncoderStack {
    pub fn new(vb: &VarBuilder, c: &LayerConfig, layers: usize) -> Result<Self> {
        let layers = (0..layers)
            .map(|i| EncoderLayer::new(&vb.pp(i.to_string()), c))
            .collect::<Result<_>>()?;
        Ok(EncoderStack { layers })
    }
}

impl Module for EncoderStack {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h, None, None, train)?;
        }
        Ok(h)
    }

    fn forward_with_attention(&self, x: &Tensor, attentions: &mut Vec<Tensor>) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            let (y, w) = l.forward_weights(&h, None, None, super::mha::NeedWeights::PerHead, false)?;
            attentions.extend(w);
            h = y;
        }
        Ok(h)
    }
}

/// `[N, T, d]` → `[N, d]`: the class token's final state.
pub struct ClassTokenPool;

impl Module for ClassTokenPool {
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        if x.ndim() != 3 {
            return Err(Error::Invalid {
                op: "ClassTokenPool",
                detail: format!("expected [batch, tokens, dim], got {:?}", x.shape()),
            });
        }
        x.narrow(1, 0, 1)?.squeeze(1)
    }
}
