//! Per-example gradients for DP-SGD, without one backward pass per example.
//!
//! A layer `z = x·Wᵀ + b` (a `Linear`, or a `Conv2d` seen through the unfold it computes with)
//! has per-example gradients `∇W_n = g_nᵀ·x_n` and `∇b_n = Σ_t g_n,t`, where `x_n` is example
//! n's input rows `[T, in]` (T = 1 for a dense layer on vectors, T = output positions for a
//! convolution) and `g_n` the loss's gradient at the layer's output `[T, out]`. So a forward pass
//! that records, per layer, its input and a *probe* — a zero tensor added to the output, whose
//! gradient after one ordinary backward pass is `g` — is all DP-SGD needs ([`Tap`]):
//! - the per-example gradient norms, without materializing the gradients when that is cheaper
//!   ("ghost" norms, Li et al. 2022): `‖g_nᵀx_n‖² = ⟨g_n g_nᵀ, x_n x_nᵀ⟩`, which for T = 1 is
//!   `‖g_n‖²·‖x_n‖²`; materialized `[B, out, in]` when `T² > out·in`;
//! - the clipped sum `Σ_n c_n·∇W_n = (c ⊙ g)ᵀ·x`: one ordinary matmul over all rows.
//!
//! Layers with parameters but no rule here (batch norm mixes examples; embeddings and layer
//! norms have no rule yet) record nothing: the training step checks that every parameter is
//! covered and names the ones that are not.
//!
//! Layer: nn.

use ferrite_core::{no_grad, Error, GradStore, Result, Tensor};

/// How a probe's gradient is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// `[B, …, out]` (a dense layer).
    ChannelsLast,
    /// `[B, out, …]` (a convolution).
    ChannelsFirst,
}

/// What one parameterized op recorded in a tapped forward pass.
#[derive(Debug, Clone)]
pub struct Tap {
    /// `[out, …]` (its trailing dims flatten to `in`).
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
    /// The op's input rows `[B, T, in]`, detached.
    pub input: Tensor,
    /// The zero tensor added to the op's output (requires grad).
    pub probe: Tensor,
    pub layout: OutputLayout,
}

/// Per-example gradient norms and clipped sums of one op, from the probe's gradient.
pub struct PerExample<'a> {
    tap: &'a Tap,
    /// `[B, T, out]`.
    grad: Tensor,
}

impl Tap {
    /// A probe for `output` (zeros, requires grad): add it to the output and keep the tap.
    pub fn probe_for(output: &Tensor) -> Result<Tensor> {
        Ok(Tensor::zeros(output.shape())?
            .to_dtype(output.dtype())?
            .requires_grad_(true))
    }

    /// The gradient at this op's output, as `[B, T, out]`; `None` if backward never reached it.
    ///
    /// # Errors
    /// Shape errors (a ferrite bug).
    pub fn per_example<'a>(&'a self, grads: &GradStore) -> Result<Option<PerExample<'a>>> {
        let Some(g) = grads.get(&self.probe) else {
            return Ok(None);
        };
        let shape = g.shape();
        let (b, out) = (shape[0], self.weight.shape()[0]);
        let grad = match self.layout {
            OutputLayout::ChannelsLast => g.reshape([b, g.numel() / (b * out).max(1), out])?,
            OutputLayout::ChannelsFirst => g
                .reshape([b, out, g.numel() / (b * out).max(1)])?
                .transpose(1, 2)?
                .contiguous()?,
        };
        Ok(Some(PerExample { tap: self, grad }))
    }
}

impl PerExample<'_> {
    /// `‖∇W_n‖² + ‖∇b_n‖²` for each example n (`[B]`).
    ///
    /// # Errors
    /// Shape errors (a ferrite bug).
    pub fn squared_norms(&self) -> Result<Vec<f64>> {
        let _guard = no_grad();
        let (x, g) = (&self.tap.input, &self.grad);
        let [_, t, input] = x.shape()[..] else {
            return Err(Error::Invalid {
                op: "per-example gradients",
                detail: format!("input {:?} is not [B, T, in]", x.shape()),
            });
        };
        let out = g.shape()[2];
        let weight = if t == 1 {
            g.mul(g)?.sum(&[1, 2], false)?.mul(&x.mul(x)?.sum(&[1, 2], false)?)?
        } else if t * t <= out * input {
            let gg = g.matmul(&g.transpose(1, 2)?)?;
            let xx = x.matmul(&x.transpose(1, 2)?)?;
            gg.mul(&xx)?.sum(&[1, 2], false)?
        } else {
            let full = g.transpose(1, 2)?.matmul(x)?;
            full.mul(&full)?.sum(&[1, 2], false)?
        };
        let mut norms: Vec<f64> = weight.to_dtype(ferrite_core::DType::F64)?.to_vec::<f64>()?;
        if self.tap.bias.is_some() {
            let per_bias = g.sum(&[1], false)?;
            let b2 = per_bias
                .mul(&per_bias)?
                .sum(&[1], false)?
                .to_dtype(ferrite_core::DType::F64)?
                .to_vec::<f64>()?;
            for (n, extra) in norms.iter_mut().zip(b2) {
                *n += extra;
            }
        }
        Ok(norms)
    }

    /// `Σ_n scale_n·∇W_n` shaped like the weight, and the same for the bias.
    ///
    /// # Errors
    /// `scale` not one per example.
    pub fn scaled_sum(&self, scale: &[f32]) -> Result<(Tensor, Option<Tensor>)> {
        let _guard = no_grad();
        let (x, g) = (&self.tap.input, &self.grad);
        let [b, t, input] = x.shape()[..] else {
            return Err(Error::Invalid {
                op: "per-example gradients",
                detail: format!("input {:?} is not [B, T, in]", x.shape()),
            });
        };
        if scale.len() != b {
            return Err(Error::Invalid {
                op: "per-example gradients",
                detail: format!("{} scales for {b} examples", scale.len()),
            });
        }
        let out = g.shape()[2];
        let c = Tensor::from_vec(scale.to_vec(), [b, 1, 1])?.to_dtype(g.dtype())?;
        let scaled = g.mul(&c)?;
        let rows = scaled.reshape([b * t, out])?;
        let weight = rows
            .transpose(0, 1)?
            .matmul(&x.reshape([b * t, input])?)?
            .reshape(self.tap.weight.shape())?;
        let bias = match &self.tap.bias {
            Some(_) => Some(rows.sum(&[0], false)?),
            None => None,
        };
        Ok((weight, bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, Conv2d, Linear, LinearInit, Module, VarBuilder, VarMap};
    use ferrite_core::{Conv2dOptions, Rng};

    /// A loss that is a sum over examples: `Σ tanh(out) ⊙ r` with a fixed random `r`.
    fn loss_of(out: &Tensor, r: &Tensor) -> Tensor {
        out.tanh().unwrap().mul(r).unwrap().sum_all().unwrap()
    }

    /// Checks per-example norms and a scaled sum against one backward pass per example.
    fn check(module: &dyn Module, params: &[(String, Tensor)], x: &Tensor) {
        let mut rng = Rng::new(7);
        let batch = x.shape()[0];
        let mut taps = Vec::new();
        let out = module.forward_tapped(x, true, &mut taps).unwrap();
        let r = Tensor::randn_with(&mut rng, out.shape()).unwrap();
        let grads = loss_of(&out, &r).backward().unwrap();
        assert_eq!(taps.len(), 1);
        let per = taps[0].per_example(&grads).unwrap().unwrap();
        let norms = per.squared_norms().unwrap();
        let scale: Vec<f32> = (0..batch).map(|n| 0.5 + n as f32 * 0.25).collect();
        let (w_sum, b_sum) = per.scaled_sum(&scale).unwrap();

        let mut want_w = vec![0.0f64; params[0].1.numel()];
        let mut want_b = vec![0.0f64; params.get(1).map_or(0, |p| p.1.numel())];
        for n in 0..batch {
            let xn = x.narrow(0, n, 1).unwrap();
            let rn = r.narrow(0, n, 1).unwrap();
            let g = loss_of(&module.forward(&xn, true).unwrap(), &rn).backward().unwrap();
            let mut norm = 0.0;
            for (i, (_, p)) in params.iter().enumerate() {
                let gp = g.get(p).unwrap().to_vec::<f32>().unwrap();
                norm += gp.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>();
                let acc = if i == 0 { &mut want_w } else { &mut want_b };
                for (a, v) in acc.iter_mut().zip(gp) {
                    *a += f64::from(scale[n]) * f64::from(v);
                }
            }
            assert!(
                (norms[n] - norm).abs() <= 1e-4 * norm.max(1e-3),
                "example {n}: norm² {} vs {norm}",
                norms[n]
            );
        }
        let close = |got: &Tensor, want: &[f64], what: &str| {
            for (g, w) in got.to_vec::<f32>().unwrap().iter().zip(want) {
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-4 * w.abs().max(1e-2),
                    "{what}: {g} vs {w}"
                );
            }
        };
        close(&w_sum, &want_w, "weight sum");
        if let Some(b) = b_sum {
            close(&b, &want_b, "bias sum");
        }
    }

    #[test]
    fn linear_on_vectors_matches_per_example_backward() {
        let vars = VarMap::new();
        let l = Linear::new(&VarBuilder::new(&vars, 1), 5, 3, true, LinearInit::Pytorch)
            .unwrap()
            .with_activation(Activation::Relu);
        let x = Tensor::randn_with(&mut Rng::new(2), [4, 5]).unwrap();
        check(&l, &vars.vars(), &x);
    }

    #[test]
    fn linear_on_sequences_matches_both_ways() {
        // T = 3 ≤ √(8·8): ghost norms from Gram matrices.
        let vars = VarMap::new();
        let l = Linear::new(&VarBuilder::new(&vars, 1), 8, 8, true, LinearInit::Pytorch).unwrap();
        check(
            &l,
            &vars.vars(),
            &Tensor::randn_with(&mut Rng::new(3), [3, 3, 8]).unwrap(),
        );
        // T = 6, out·in = 4: materialized per-example gradients.
        let vars = VarMap::new();
        let l = Linear::new(&VarBuilder::new(&vars, 1), 2, 2, false, LinearInit::Pytorch).unwrap();
        check(
            &l,
            &vars.vars(),
            &Tensor::randn_with(&mut Rng::new(4), [3, 6, 2]).unwrap(),
        );
    }

    #[test]
    fn conv2d_matches_per_example_backward() {
        let vars = VarMap::new();
        let opts = Conv2dOptions {
            stride: [2, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        };
        let c = Conv2d::new(
            &VarBuilder::new(&vars, 1),
            2,
            3,
            [3, 3],
            opts,
            true,
            LinearInit::Pytorch,
        )
        .unwrap();
        check(
            &c,
            &vars.vars(),
            &Tensor::randn_with(&mut Rng::new(5), [3, 2, 6, 5]).unwrap(),
        );
        // Many output positions: the materialized path.
        let vars = VarMap::new();
        let opts = Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        let c = Conv2d::new(
            &VarBuilder::new(&vars, 1),
            1,
            2,
            [2, 2],
            opts,
            true,
            LinearInit::Pytorch,
        )
        .unwrap();
        check(
            &c,
            &vars.vars(),
            &Tensor::randn_with(&mut Rng::new(6), [2, 1, 7, 7]).unwrap(),
        );
    }
}
