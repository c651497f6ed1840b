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

use ferrite_core::{no_grad, Conv2dOptions, DType, Error, GradStore, Result, Tensor};

/// Which op a tap recorded, and so how its per-example gradients are formed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TapKind {
    /// `z = x·Wᵀ + b`; the input is kept as rows `[B, T, in]`, the probe is `[B, …, out]`.
    Dense,
    /// A convolution; the input is kept as given (`[B, C, H, W]`), the probe is `[B, O, OH, OW]`.
    Conv2d(Conv2dOptions),
}

/// What one parameterized op recorded in a tapped forward pass. The op itself ran on detached
/// parameters, so backward never forms their batch gradient: DP-SGD builds it from the
/// per-example ones.
#[derive(Debug, Clone)]
pub struct Tap {
    /// `[out, …]` (its trailing dims flatten to `in`).
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
    /// The op's input, detached (rows `[B, T, in]` for a dense layer).
    pub input: Tensor,
    /// The zero tensor added to the op's output (requires grad).
    pub probe: Tensor,
    pub kind: TapKind,
}

/// Per-example gradients of one op, from its probe's gradient: the weight's `[B, out·in]`
/// materialized (convolutions, or dense layers over sequences where that is cheaper than Gram
/// matrices) or implied by the rows (dense layers), and the bias's `[B, out]`.
pub struct PerExample<'a> {
    tap: &'a Tap,
    /// Dense: the output gradient rows `[B, T, out]`.
    rows: Option<Tensor>,
    /// `[B, out·in]` when materialized.
    weight: Option<Tensor>,
    /// `[B, out]`.
    bias: Tensor,
}

impl Tap {
    /// A probe for `output` (zeros, requires grad): add it to the output and keep the tap.
    pub fn probe_for(output: &Tensor) -> Result<Tensor> {
        Ok(Tensor::zeros(output.shape())?
            .to_dtype(output.dtype())?
            .requires_grad_(true))
    }

    /// This op's per-example gradients, from the backward pass `grads` of the summed loss;
    /// `None` if backward never reached the op.
    ///
    /// # Errors
    /// Shape errors (a ferrite bug).
    pub fn per_example<'a>(&'a self, grads: &GradStore) -> Result<Option<PerExample<'a>>> {
        let _guard = no_grad();
        let Some(g) = grads.get(&self.probe) else {
            return Ok(None);
        };
        let (b, out) = (g.shape()[0], self.weight.shape()[0]);
        Ok(Some(match self.kind {
            TapKind::Dense => {
                let [_, t, input] = self.input.shape()[..] else {
                    return Err(Error::Invalid {
                        op: "per-example gradients",
                        detail: format!("input {:?} is not [B, T, in]", self.input.shape()),
                    });
                };
                let rows = g.reshape([b, t, out])?;
                let bias = rows.sum(&[1], false)?;
                // Gram matrices cost B·T²·(in + out); the gradients themselves B·out·in·T.
                let weight = if t > 1 && t * t > out * input {
                    Some(rows.transpose(1, 2)?.matmul(&self.input)?.reshape([b, out * input])?)
                } else {
                    None
                };
                PerExample {
                    tap: self,
                    rows: Some(rows),
                    weight,
                    bias,
                }
            }
            TapKind::Conv2d(opts) => {
                let weight = self
                    .input
                    .conv2d_per_example_weight_grads(g, self.weight.shape(), opts)?
                    .reshape([b, self.weight.numel()])?;
                let bias = g.sum(&[2, 3], false)?;
                PerExample {
                    tap: self,
                    rows: None,
                    weight: Some(weight),
                    bias,
                }
            }
        }))
    }
}

impl PerExample<'_> {
    /// `‖∇W_n‖² + ‖∇b_n‖²` for each example n (`[B]`).
    ///
    /// # Errors
    /// Shape errors (a ferrite bug).
    pub fn squared_norms(&self) -> Result<Vec<f64>> {
        let _guard = no_grad();
        let weight = match (&self.weight, &self.rows) {
            (Some(w), _) => w.mul(w)?.sum(&[1], false)?,
            (None, Some(g)) => {
                let x = &self.tap.input;
                if x.shape()[1] == 1 {
                    // ‖g_n xᵀ_n‖² = ‖g_n‖²·‖x_n‖²
                    g.mul(g)?.sum(&[1, 2], false)?.mul(&x.mul(x)?.sum(&[1, 2], false)?)?
                } else {
                    let gg = g.matmul(&g.transpose(1, 2)?)?;
                    let xx = x.matmul(&x.transpose(1, 2)?)?;
                    gg.mul(&xx)?.sum(&[1, 2], false)?
                }
            }
            (None, None) => {
                return Err(Error::Invalid {
                    op: "per-example gradients",
                    detail: "nothing recorded".into(),
                })
            }
        };
        let mut norms: Vec<f64> = weight.to_dtype(DType::F64)?.to_vec::<f64>()?;
        if self.tap.bias.is_some() {
            let b2 = self
                .bias
                .mul(&self.bias)?
                .sum(&[1], false)?
                .to_dtype(DType::F64)?
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
        let b = self.bias.shape()[0];
        if scale.len() != b {
            return Err(Error::Invalid {
                op: "per-example gradients",
                detail: format!("{} scales for {b} examples", scale.len()),
            });
        }
        let c = Tensor::from_vec(scale.to_vec(), [b, 1])?.to_dtype(self.bias.dtype())?;
        // Σ_n c_n·row_n as one [1, B]·[B, ·] product: a GEMV over contiguous rows, threaded,
        // instead of a broadcast multiply and a strided reduction over the batch.
        let c_row = c.reshape([1, b])?;
        let weight = match (&self.weight, &self.rows) {
            (Some(w), _) => c_row.matmul(w)?,
            (None, Some(g)) => {
                let [_, t, out] = g.shape()[..] else {
                    return Err(Error::Invalid {
                        op: "per-example gradients",
                        detail: "output gradient rows are not [B, T, out]".into(),
                    });
                };
                let input = self.tap.input.shape()[2];
                let scaled = g.mul(&c.reshape([b, 1, 1])?)?.reshape([b * t, out])?;
                scaled
                    .transpose(0, 1)?
                    .matmul(&self.tap.input.reshape([b * t, input])?)?
            }
            (None, None) => {
                return Err(Error::Invalid {
                    op: "per-example gradients",
                    detail: "nothing recorded".into(),
                })
            }
        };
        let bias = match &self.tap.bias {
            Some(b) => Some(c_row.matmul(&self.bias)?.reshape(b.shape())?),
            None => None,
        };
        Ok((weight.reshape(self.tap.weight.shape())?, bias))
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
