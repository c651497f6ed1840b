//! The Vision Transformer (Dosovitskiy et al. 2021): patch embedding with a learned class token
//! and learned position embeddings, then `ferrite-nn`'s [`EncoderStack`] (pre-LN by default, as
//! ViT uses), then class-token pooling and a classifier. A ViT is a Keras-style `Sequential` of
//! `patch_embed`, `transformer_encoder`, `class_token` and `dense` layers (see
//! `examples/fashion-vit.toml`), so these two pieces are what it needs beyond the nn blocks.
//!
//! Layer: models. The patch embedding is a convolution whose kernel and stride are the patch
//! size, so it reuses the conv kernels.
//!
//! [`EncoderStack`]: ferrite_nn::transformer::EncoderStack

use ferrite_core::{Conv2dOptions, Error, Result, Tensor};
use ferrite_nn::{Conv2d, Init, LinearInit, Module, VarBuilder};

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
    /// # Shapes
    /// `[N, C, H, W]` → `[N, 1 + (H/p)·(W/p), dim]`.
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

/// `[N, T, d]` → `[N, d]`: the class token's final state.
pub struct ClassTokenPool;

impl Module for ClassTokenPool {
    /// # Shapes
    /// `[N, T, d]` → `[N, d]`.
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
