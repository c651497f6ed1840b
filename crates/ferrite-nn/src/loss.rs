//! Loss functions (Keras names), each reducing to a scalar mean over the batch, optionally
//! weighted per sample (Keras `sample_weight` / `class_weight`: Σ wᵢ·lᵢ / N).
//!
//! Layer: nn. All are compositions of core ops except sparse categorical cross-entropy without
//! weights, which uses the fused kernel.

use ferrite_core::{CrossEntropyOptions, DType, Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// A training objective.
///
/// ```
/// use ferrite_core::Tensor;
/// use ferrite_nn::Loss;
/// let pred = Tensor::from_vec(vec![1.0f32, 3.0], [2, 1])?;
/// let y = Tensor::from_vec(vec![0.0f32, 1.0], [2, 1])?;
/// assert_eq!(Loss::Mse.compute(&pred, &y, None)?.item()?, 2.5); // (1 + 4) / 2
/// let logits = Tensor::from_vec(vec![0.0f32, 0.0], [1, 2])?;
/// let ce = Loss::parse("sparse_categorical_crossentropy")?;
/// let l = ce.compute(&logits, &Tensor::from_vec(vec![1i64], [1])?, None)?.item()?;
/// assert!((l - 2f64.ln()).abs() < 1e-6);
/// # Ok::<(), ferrite_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Loss {
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    Mae,
    /// Huber loss: ½d² for |d| ≤ δ, δ(|d| − ½δ) beyond (Keras default δ = 1).
    Huber { delta: f64 },
    /// Binary cross-entropy on logits (numerically stable; targets in [0, 1]).
    BinaryCrossentropy,
    /// Cross-entropy of `[N, C]` logits against i64 class ids `[N]`.
    SparseCategoricalCrossentropy { ignore_index: i64, label_smoothing: f64 },
}

impl Loss {
    /// Parses a Keras-style name: `mse`, `mae`, `huber`, `binary_crossentropy`,
    /// `sparse_categorical_crossentropy`.
    pub fn parse(name: &str) -> Result<Loss> {
        Ok(match name {
            "mse" | "mean_squared_error" => Loss::Mse,
            "mae" | "mean_absolute_error" => Loss::Mae,
            "huber" => Loss::Huber { delta: 1.0 },
            "binary_crossentropy" | "bce" => Loss::BinaryCrossentropy,
            "sparse_categorical_crossentropy" | "cross_entropy" => Loss::SparseCategoricalCrossentropy {
                ignore_index: -100,
                label_smoothing: 0.0,
            },
            other => {
                return Err(Error::Invalid {
                    op: "loss",
                    detail: format!(
                        "unknown loss '{other}' (expected mse, mae, huber, binary_crossentropy, sparse_categorical_crossentropy)"
                    ),
                });
            }
        })
    }

    /// True when targets are class ids (i64) rather than values.
    pub fn wants_class_ids(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }

    /// Per-sample losses `[N]`.
    pub fn per_sample(&self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        let name = self.name();
        if let Loss::SparseCategoricalCrossentropy {
            ignore_index,
            label_smoothing,
        } = *self
        {
            return sparse_ce_per_sample(pred, target, ignore_index, label_smoothing);
        }
        if pred.shape() != target.shape() {
            return Err(Error::ShapeMismatch {
                op: name,
                lhs: pred.shape().to_vec(),
                rhs: target.shape().to_vec(),
                detail: "prediction and target must have the same shape".into(),
            });
        }
        let per_elem = match *self {
            Loss::Mse => pred.sub(target)?.sqr()?,
            Loss::Mae => pred.sub(target)?.abs()?,
            Loss::Huber { delta } => {
                let d = pred.sub(target)?.abs()?;
                let quad = d.sqr()?.mul_scalar(0.5)?;
                let lin = d.add_scalar(-0.5 * delta)?.mul_scalar(delta)?;
                Tensor::where_cond(&d.le_scalar(delta)?, &quad, &lin)?
            }
            Loss::BinaryCrossentropy => {
                // max(x, 0) − x·t + log(1 + e^(−|x|))
                let softplus = pred.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?;
                pred.relu()?.sub(&pred.mul(target)?)?.add(&softplus)?
            }
            Loss::SparseCategoricalCrossentropy { .. } => unreachable!("handled above"),
        };
        if per_elem.ndim() <= 1 {
            return Ok(per_elem);
        }
        let dims: Vec<isize> = (1..per_elem.ndim() as isize).collect();
        per_elem.mean(&dims, false)
    }

    /// The mean loss, optionally weighted per sample (`weights` `[N]`).
    pub fn compute(&self, pred: &Tensor, target: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        match (self, weights) {
            (Loss::Mse, None) if pred.shape() == target.shape() => pred.mse_loss(target),
            (
                Loss::SparseCategoricalCrossentropy {
                    ignore_index,
                    label_smoothing,
                },
                None,
            ) => pred.cross_entropy(
                &target.to_dtype(DType::I64)?,
                CrossEntropyOptions {
                    ignore_index: *ignore_index,
                    label_smoothing: *label_smoothing,
                },
            ),
            (_, None) => self.per_sample(pred, target)?.mean_all(),
            (_, Some(w)) => {
                let l = self.per_sample(pred, target)?;
                if w.shape() != l.shape() {
                    return Err(Error::ShapeMismatch {
                        op: self.name(),
                        lhs: l.shape().to_vec(),
                        rhs: w.shape().to_vec(),
                        detail: "sample weights must have one entry per sample".into(),
                    });
                }
                l.mul(&w.to_dtype(l.dtype())?)?.mean_all()
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber { .. } => "huber",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }
}

fn sparse_ce_per_sample(logits: &Tensor, target: &Tensor, ignore_index: i64, smoothing: f64) -> Result<Tensor> {
    let t = target.to_dtype(DType::I64)?;
    if logits.ndim() != 2 || t.shape() != [logits.shape()[0]] {
        return Err(Error::ShapeMismatch {
            op: "sparse_categorical_crossentropy",
            lhs: logits.shape().to_vec(),
            rhs: target.shape().to_vec(),
            detail: "logits must be [N, C] and targets [N]".into(),
        });
    }
    let c = logits.shape()[1];
    let keep = t.ne(&Tensor::from_vec(vec![ignore_index], [0usize; 0])?)?;
    let safe = Tensor::where_cond(&keep, &t, &Tensor::from_vec(vec![0i64], [0usize; 0])?)?;
    if let Some(&bad) = safe.to_vec::<i64>()?.iter().find(|&&v| v < 0 || v as usize >= c) {
        return Err(Error::IndexOutOfRange {
            op: "sparse_categorical_crossentropy",
            index: bad,
            size: c,
            dim: 1,
            shape: logits.shape().to_vec(),
        });
    }
    let logp = logits.log_softmax(-1)?;
    let nll = logp.gather(1, &safe.unsqueeze(1)?)?.squeeze(1)?.neg()?;
    let loss = if smoothing > 0.0 {
        let smooth = logp.mean(&[1], false)?.neg()?;
        nll.mul_scalar(1.0 - smoothing)?.add(&smooth.mul_scalar(smoothing)?)?
    } else {
        nll
    };
    loss.mul(&keep.to_dtype(loss.dtype())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_core::testing::gradcheck;

    #[test]
    fn losses_have_correct_gradients() {
        let p = Tensor::from_vec(vec![0.3f32, -1.2, 2.5, 0.7, -0.4, 1.9], [3, 2]).unwrap();
        let t = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0, 1.0, 0.5], [3, 2]).unwrap();
        for loss in [
            Loss::Mse,
            Loss::Mae,
            Loss::Huber { delta: 1.0 },
            Loss::BinaryCrossentropy,
        ] {
            gradcheck(|x| loss.compute(&x[0], &x[1], None), &[p.clone(), t.clone()]).unwrap();
            let w = Tensor::new(&[1.0f32, 2.0, 0.5]);
            gradcheck(|x| loss.compute(&x[0], &x[1], Some(&x[2])), &[p.clone(), t.clone(), w]).unwrap();
        }
        let ids = Tensor::from_vec(vec![1i64, 0, -100], [3]).unwrap();
        let ce = Loss::SparseCategoricalCrossentropy {
            ignore_index: -100,
            label_smoothing: 0.1,
        };
        let w = Tensor::new(&[1.0f32, 3.0, 1.0]);
        gradcheck(|x| ce.compute(&x[0], &x[1], Some(&x[2])), &[p.clone(), ids.clone(), w]).unwrap();
    }

    #[test]
    fn weighted_and_fused_cross_entropy_agree_with_unit_weights() {
        let p = Tensor::from_vec(vec![0.3f32, -1.2, 2.5, 0.7, -0.4, 1.9], [3, 2]).unwrap();
        let ids = Tensor::from_vec(vec![1i64, 0, 1], [3]).unwrap();
        let ce = Loss::SparseCategoricalCrossentropy {
            ignore_index: -100,
            label_smoothing: 0.2,
        };
        let fused = ce.compute(&p, &ids, None).unwrap().item().unwrap();
        let ones = Tensor::ones([3]).unwrap();
        let composed = ce.compute(&p, &ids, Some(&ones)).unwrap().item().unwrap();
        assert!((fused - composed).abs() < 1e-6, "{fused} vs {composed}");
    }

    #[test]
    fn huber_matches_hand_values() {
        let p = Tensor::new(&[0.5f32, 3.0]);
        let t = Tensor::new(&[0.0f32, 0.0]);
        let l = Loss::Huber { delta: 1.0 }
            .compute(&p, &t, None)
            .unwrap()
            .item()
            .unwrap();
        assert!((l - (0.125 + 2.5) / 2.0).abs() < 1e-6);
    }
}
