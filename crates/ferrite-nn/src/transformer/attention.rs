//! Scaled dot-product attention (Vaswani et al. 2017, eq. 1) with key-padding and causal masks,
//! and the masks themselves.
//!
//! Layer: nn. Composed from core ops (matmul, masked_fill, softmax, dropout), so its gradient is
//! exact and checked like any composite. Masks are u8 tensors where 1 means "may not attend",
//! matching PyTorch's boolean `attn_mask` / `key_padding_mask` convention.

use ferrite_core::{DType, Error, Result, Tensor};

/// `[t_q, t_k]` mask hiding future keys: query i may attend keys 0..=i + (t_k − t_q).
pub fn causal_mask(t_q: usize, t_k: usize) -> Result<Tensor> {
    let shift = t_k as i64 - t_q as i64;
    let v: Vec<u8> = (0..t_q)
        .flat_map(|i| (0..t_k).map(move |j| (j as i64 > i as i64 + shift) as u8))
        .collect();
    Tensor::from_vec(v, [t_q, t_k])
}

/// `[batch, t]` mask marking positions at or beyond each sequence's length as padding.
pub fn padding_mask(lengths: &[usize], t: usize) -> Result<Tensor> {
    if let Some(&l) = lengths.iter().find(|&&l| l > t) {
        return Err(Error::Invalid {
            op: "padding_mask",
            detail: format!("length {l} exceeds the padded length {t}"),
        });
    }
    let v: Vec<u8> = lengths
        .iter()
        .flat_map(|&l| (0..t).map(move |j| (j >= l) as u8))
        .collect();
    Tensor::from_vec(v, [lengths.len(), t])
}

/// softmax(q·kᵀ/√d + mask)·v.
///
/// ```
/// use ferrite_core::Tensor;
/// use ferrite_nn::transformer::{causal_mask, scaled_dot_product_attention};
/// let q = Tensor::ones([1, 3, 4])?;
/// let v = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [1, 3, 1])?;
/// let (out, w) = scaled_dot_product_attention(&q, &q, &v, Some(&causal_mask(3, 3)?), 0.0, false, true)?;
/// // Equal scores: query i averages values 0..=i.
/// assert_eq!(out.to_vec::<f32>()?, vec![1.0, 1.5, 2.0]);
/// assert_eq!(w.unwrap().to_vec::<f32>()?[..3], [1.0, 0.0, 0.0]);
/// # Ok::<(), ferrite_core::Error>(())
/// ```
///
/// # Shapes
/// q `[.., t_q, d]`, k `[.., t_k, d]`, v `[.., t_k, d_v]`; `mask` (u8, 1 = masked) broadcastable to
/// `[.., t_q, t_k]`. Returns the output `[.., t_q, d_v]` and, if `need_weights`, the attention
/// probabilities `[.., t_q, t_k]`. A query whose keys are all masked gets zero weights (PyTorch
/// would produce NaN).
///
/// # Errors
/// Mismatched head dims or key/value lengths, or a mask that does not broadcast.
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    dropout_p: f64,
    train: bool,
    need_weights: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    const OP: &str = "scaled_dot_product_attention";
    let d = *q.shape().last().unwrap_or(&0);
    if q.ndim() < 2 || k.ndim() < 2 || v.ndim() < 2 || k.shape().last() != Some(&d) {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: q.shape().to_vec(),
            rhs: k.shape().to_vec(),
            detail: "q and k need the same last dim".into(),
        });
    }
    if k.shape()[k.ndim() - 2] != v.shape()[v.ndim() - 2] {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: k.shape().to_vec(),
            rhs: v.shape().to_vec(),
            detail: "k and v need the same length".into(),
        });
    }
    let scale = 1.0 / (d.max(1) as f64).sqrt();
    let no_dropout = dropout_p == 0.0 || !train;
    let no_grads = !ferrite_core::is_grad_enabled() || ![q, k, v].iter().any(|t| t.requires_grad());
    let lead = |t: &Tensor| t.shape()[..t.ndim() - 2].to_vec();
    let same_lead = lead(q) == lead(k) && lead(q) == lead(v);
    if !need_weights && no_dropout && no_grads && same_lead && [q, k, v].iter().all(|t| t.dtype() == DType::F32) {
        // Inference: the fused kernel never materializes the [.., Tq, Tk] scores.
        return Ok((q.fused_attention(k, v, mask, None, scale)?, None));
    }
    let scores = q.matmul(&k.t()?)?.mul_scalar(scale)?; // (.., Tq, Tk)
                                                        // The mask becomes an additive bias (0 or −∞) of the mask's own, small shape: a broadcasting
                                                        // add runs on the vectorized, parallel path and its backward is a pass-through, where a
                                                        // `masked_fill` on the full [.., Tq, Tk] scores would select element by element both ways.
    let scores = match mask {
        Some(m) => {
            let m = if m.dtype() == DType::U8 {
                m.clone()
            } else {
                m.ne(&Tensor::full_dtype([0usize; 0], 0.0, m.dtype())?)?
            };
            let bias = Tensor::full_dtype(m.shape(), 0.0, scores.dtype())?.masked_fill(&m, f64::NEG_INFINITY)?;
            scores.add(&bias)?
        }
        None => scores,
    };
    let p = scores.softmax(-1)?;
    let p_drop = p.dropout(dropout_p, train)?;
    let out = p_drop.matmul(v)?;
    Ok((out, need_weights.then_some(p)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_core::testing::gradcheck;
    use ferrite_core::Rng;

    #[test]
    fn masks_have_the_documented_layout() {
        assert_eq!(
            causal_mask(3, 3).unwrap().to_vec::<u8>().unwrap(),
            vec![0, 1, 1, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(causal_mask(1, 3).unwrap().to_vec::<u8>().unwrap(), vec![0, 0, 0]);
        assert_eq!(
            padding_mask(&[2, 3], 3).unwrap().to_vec::<u8>().unwrap(),
            vec![0, 0, 1, 0, 0, 0]
        );
        assert!(padding_mask(&[4], 3).is_err());
    }

    #[test]
    fn gradients_with_both_mask_kinds() {
        let mut r = Rng::new(5);
        let q = Tensor::randn_with(&mut r, [2, 3, 4]).unwrap();
        let k = Tensor::randn_with(&mut r, [2, 5, 4]).unwrap();
        let v = Tensor::randn_with(&mut r, [2, 5, 3]).unwrap();
        // Key padding: batch 0 has 3 valid keys, batch 1 has 5 → mask [2, 1, 5].
        let pad = padding_mask(&[3, 5], 5).unwrap().unsqueeze(1).unwrap();
        gradcheck(
            |t| Ok(scaled_dot_product_attention(&t[0], &t[1], &t[2], Some(&t[3]), 0.0, false, false)?.0),
            &[q.clone(), k.clone(), v.clone(), pad],
        )
        .unwrap();
        let causal = causal_mask(3, 5).unwrap();
        gradcheck(
            |t| Ok(scaled_dot_product_attention(&t[0], &t[1], &t[2], Some(&t[3]), 0.0, false, false)?.0),
            &[q, k, v, causal],
        )
        .unwrap();
    }

    #[test]
    fn masked_keys_get_no_weight() {
        let q = Tensor::ones([1, 2, 2]).unwrap();
        let k = Tensor::ones([1, 3, 2]).unwrap();
        let v = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [1, 3, 1]).unwrap();
        let m = padding_mask(&[2], 3).unwrap().unsqueeze(1).unwrap();
        let (out, w) = scaled_dot_product_attention(&q, &k, &v, Some(&m), 0.0, false, true).unwrap();
        assert_eq!(w.unwrap().to_vec::<f32>().unwrap(), vec![0.5, 0.5, 0.0, 0.5, 0.5, 0.0]);
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![1.5, 1.5]);
    }
}
