//! Fused attention for inference (`Tensor::fused_attention`): the scores never exist as a tensor.
//!
//! Layer: core (ops). Checks shapes, dtypes and that no gradient is wanted, turns q, k, v and a
//! mask of any broadcastable shape into per-group offsets and strides (no copy: a view of a
//! time-major KV cache is read in place), and calls `ferrite_kernels::attention`, which works one
//! block of query rows at a time. Training uses the unfused composition in
//! `ferrite_nn::scaled_dot_product_attention`, whose backward needs the probabilities; that
//! function takes this path by itself when nothing needs gradients.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::grad_mode::is_grad_enabled;
use crate::storage::Storage;
use crate::tensor::Tensor;
use ferrite_kernels::attention::{attention, AttentionDims, Hide, MaskRef, Rows};

const OP: &str = "fused_attention";

impl Tensor {
    /// `softmax(q·kᵀ·scale + hidden)·v` for inference, with `self` as q.
    ///
    /// # Shapes
    /// q `[.., h, tq, d]`, k `[.., h_kv, tk, d]`, v `[.., h_kv, tk, dv]` → `[.., h, tq, dv]`.
    /// Leading dims of k and v equal q's or are 1 (broadcast); the last one may also divide q's
    /// (grouped-query attention: query head `i` reads key/value head `i / (h / h_kv)`, PyTorch's
    /// `enable_gqa`). `mask` (nonzero = hidden) is broadcast to `[.., h, tq, tk]`; with
    /// `causal_offset = Some(p)` query i also sees only keys `..= p + i`. A query that sees no key
    /// gets zeros. Operands whose last dim is contiguous are read in place, whatever their other
    /// strides.
    ///
    /// Memory stays O(64 × tk) per thread instead of O(tq × tk) per head.
    ///
    /// # Errors
    /// Mismatched shapes (named), non-f32 operands, a mask that does not broadcast, or gradients
    /// being recorded for an operand: this op has no backward, so call it under `no_grad` (or use
    /// `ferrite_nn::scaled_dot_product_attention`, which falls back to the differentiable path).
    pub fn fused_attention(
        &self,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        causal_offset: Option<usize>,
        scale: f64,
    ) -> Result<Tensor> {
        Ok(fused(self, k, v, mask, causal_offset, scale, false)?.0)
    }

    /// [`fused_attention`](Self::fused_attention) that also returns the attention probabilities
    /// `[.., h, tq, tk]` (attention maps for explanations), still without materializing more than
    /// one block of scores at a time.
    ///
    /// # Errors
    /// As [`fused_attention`](Self::fused_attention).
    pub fn fused_attention_with_probs(
        &self,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        causal_offset: Option<usize>,
        scale: f64,
    ) -> Result<(Tensor, Tensor)> {
        let (out, probs) = fused(self, k, v, mask, causal_offset, scale, true)?;
        Ok((out, probs.expect("ferrite bug: probabilities were requested")))
    }
}

#[allow(clippy::too_many_arguments)]
fn fused(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    causal_offset: Option<usize>,
    scale: f64,
    keep_probs: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let nd = q.ndim();
    if nd < 2 || k.ndim() != nd || v.ndim() != nd || k.shape()[nd - 1] != q.shape()[nd - 1] {
        return Err(Error::shape(
            OP,
            q.shape(),
            k.shape(),
            "q [.., tq, d] and k [.., tk, d] need the same rank and d",
        ));
    }
    if v.shape()[nd - 2] != k.shape()[nd - 2] || v.shape()[..nd - 2] != k.shape()[..nd - 2] {
        return Err(Error::shape(
            OP,
            k.shape(),
            v.shape(),
            "k and v need the same leading dims and length",
        ));
    }
    for t in [q, k, v] {
        if t.dtype() != DType::F32 {
            return Err(Error::unsupported_dtype(OP, t.dtype()));
        }
    }
    if is_grad_enabled() && [q, k, v].iter().any(|t| t.requires_grad()) {
        return Err(Error::invalid(
            OP,
            "has no backward: call it under no_grad, or use scaled_dot_product_attention to train",
        ));
    }
    let lead = &q.shape()[..nd - 2];
    let dims = AttentionDims {
        groups: lead.iter().product(),
        tq: q.shape()[nd - 2],
        tk: k.shape()[nd - 2],
        d: q.shape()[nd - 1],
        dv: v.shape()[nd - 1],
    };
    // How each of k's leading dims follows q's: equal, broadcast, or shared by q-heads (GQA).
    let share: Vec<usize> = (0..nd - 2)
        .map(|i| {
            let (qs, ks) = (lead[i], k.shape()[i]);
            if ks == qs {
                Ok(1)
            } else if ks == 1 {
                Ok(0)
            } else if i == nd - 3 && ks > 0 && qs % ks == 0 {
                Ok(qs / ks)
            } else {
                Err(Error::shape(
                    OP,
                    q.shape(),
                    k.shape(),
                    "k's leading dims must equal q's, be 1, or (heads) divide q's",
                ))
            }
        })
        .collect::<Result<_>>()?;
    let mask = match mask {
        None => None,
        Some(m) => {
            let m = if m.dtype() == DType::U8 {
                m.clone()
            } else {
                m.ne(&Tensor::full_dtype([0usize; 0], 0.0, m.dtype())?)?
            };
            let full: Vec<usize> = lead.iter().copied().chain([dims.tq, dims.tk]).collect();
            Some(m.broadcast_to(full)?)
        }
    };
    // Operands are read in place when their rows are contiguous; otherwise one copy.
    let rows_view = |t: &Tensor| -> Result<Tensor> {
        if t.layout().strides()[nd - 1] == 1 || t.shape()[nd - 1] <= 1 {
            Ok(t.clone())
        } else {
            t.contiguous()
        }
    };
    let (q, k, v) = (rows_view(q)?, rows_view(k)?, rows_view(v)?);
    let q_offsets = group_offsets(&q, lead, &vec![1; nd - 2]);
    let k_offsets = group_offsets(&k, lead, &share);
    let v_offsets = group_offsets(&v, lead, &share);
    let mask_offsets = mask
        .as_ref()
        .map(|m| group_offsets(m, lead, &vec![1; nd - 2]))
        .unwrap_or_default();
    let (qs, ks, vs) = (q.read(), k.read(), v.read());
    let ms = mask.as_ref().map(|m| m.read());
    let mask_ref = match (&mask, &ms) {
        (Some(m), Some(s)) => match &**s {
            Storage::U8(data) => {
                let st = m.layout().strides();
                Some(MaskRef {
                    data,
                    offsets: &mask_offsets,
                    query_stride: st[nd - 2],
                    key_stride: st[nd - 1],
                })
            }
            _ => return Err(Error::unsupported_dtype(OP, m.dtype())),
        },
        _ => None,
    };
    let mut out = vec![0f32; dims.groups * dims.tq * dims.dv];
    let mut probs = keep_probs.then(|| vec![0f32; dims.groups * dims.tq * dims.tk]);
    let hide = Hide {
        mask: mask_ref,
        causal_offset,
    };
    attention(
        Rows {
            data: f32_data(&qs, &q)?,
            offsets: &q_offsets,
            row_stride: row_stride(&q),
        },
        Rows {
            data: f32_data(&ks, &k)?,
            offsets: &k_offsets,
            row_stride: row_stride(&k),
        },
        Rows {
            data: f32_data(&vs, &v)?,
            offsets: &v_offsets,
            row_stride: row_stride(&v),
        },
        dims,
        scale as f32,
        hide,
        &mut out,
        probs.as_deref_mut(),
    );
    let shape: Vec<usize> = lead.iter().copied().chain([dims.tq, dims.dv]).collect();
    let probs = probs.map(|p| {
        let shape: Vec<usize> = lead.iter().copied().chain([dims.tq, dims.tk]).collect();
        Tensor::from_storage(Storage::F32(p), shape)
    });
    Ok((Tensor::from_storage(Storage::F32(out), shape), probs))
}

/// The f32 elements of `t`'s storage.
fn f32_data<'a>(s: &'a Storage, t: &Tensor) -> Result<&'a [f32]> {
    match s {
        Storage::F32(x) => Ok(x),
        _ => Err(Error::unsupported_dtype(OP, t.dtype())),
    }
}

/// The stride between rows (the second-to-last dim) of `t`.
fn row_stride(t: &Tensor) -> usize {
    let st = t.layout().strides();
    st[st.len() - 2]
}

/// Storage offset of each group's `[rows, cols]` plane of `t`, groups in row-major order of the
/// leading dims `lead` (q's). `share[i]` says how `t`'s dim `i` follows q's: 1 = same index,
/// 0 = broadcast (index 0), r > 1 = r consecutive q indices share one of `t`'s (grouped-query
/// attention).
fn group_offsets(t: &Tensor, lead: &[usize], share: &[usize]) -> Vec<usize> {
    let strides = t.layout().strides();
    let mut offsets = vec![t.layout().offset()];
    for (dim, &size) in lead.iter().enumerate() {
        let (stride, r) = (strides[dim], share[dim]);
        offsets = offsets
            .iter()
            .flat_map(|&o| {
                (0..size).map(move |i| {
                    let j = match r {
                        0 => 0,
                        r => i / r,
                    };
                    o + j * stride
                })
            })
            .collect();
    }
    offsets
}

#[cfg(test)]
mod tests {
    use crate::{no_grad, Rng, Tensor};

    fn unfused(q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>, scale: f64) -> Tensor {
        let s = q
            .matmul(&k.transpose(-2, -1).unwrap())
            .unwrap()
            .mul_scalar(scale)
            .unwrap();
        let s = match bias {
            Some(b) => s.add(b).unwrap(),
            None => s,
        };
        s.softmax(-1).unwrap().matmul(v).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) {
        assert_eq!(a.shape(), b.shape());
        for (x, y) in a.to_vec::<f32>().unwrap().iter().zip(b.to_vec::<f32>().unwrap()) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn matches_the_composition_with_a_broadcast_padding_mask() {
        let mut r = Rng::new(3);
        let q = Tensor::randn_with(&mut r, [2, 3, 5, 8]).unwrap();
        let k = Tensor::randn_with(&mut r, [2, 3, 7, 8]).unwrap();
        let v = Tensor::randn_with(&mut r, [2, 3, 7, 4]).unwrap();
        // Key padding [2, 1, 1, 7]: batch 0 sees 4 keys, batch 1 all 7.
        let pad: Vec<u8> = (0..14).map(|x| u8::from(x < 7 && x % 7 >= 4)).collect();
        let mask = Tensor::from_vec(pad, [2, 1, 1, 7]).unwrap();
        let bias = Tensor::zeros([2, 1, 1, 7])
            .unwrap()
            .masked_fill(&mask, f64::NEG_INFINITY)
            .unwrap();
        let _g = no_grad();
        close(
            &q.fused_attention(&k, &v, Some(&mask), None, 0.35).unwrap(),
            &unfused(&q, &k, &v, Some(&bias), 0.35),
        );
        close(
            &q.fused_attention(&k, &v, None, None, 0.35).unwrap(),
            &unfused(&q, &k, &v, None, 0.35),
        );
        // Causal after 2 cached positions: query i sees keys 0..=2+i.
        let causal: Vec<f32> = (0..35)
            .map(|x| if x % 7 > 2 + x / 7 { f32::NEG_INFINITY } else { 0.0 })
            .collect();
        let causal = Tensor::from_vec(causal, [5, 7]).unwrap();
        close(
            &q.fused_attention(&k, &v, None, Some(2), 0.35).unwrap(),
            &unfused(&q, &k, &v, Some(&causal), 0.35),
        );
    }

    #[test]
    fn errors_name_the_shapes_and_refuse_gradients() {
        let q = Tensor::zeros([2, 5, 8]).unwrap();
        let k = Tensor::zeros([2, 7, 4]).unwrap();
        let e = q.fused_attention(&k, &k, None, None, 1.0).unwrap_err().to_string();
        assert!(e.contains("[2, 5, 8]") && e.contains("[2, 7, 4]"), "{e}");
        let k = Tensor::zeros([2, 7, 8]).unwrap();
        let v = Tensor::zeros([2, 6, 8]).unwrap();
        assert!(q
            .fused_attention(&k, &v, None, None, 1.0)
            .unwrap_err()
            .to_string()
            .contains("[2, 6, 8]"));
        let q = q.requires_grad_(true);
        let e = q.fused_attention(&k, &k, None, None, 1.0).unwrap_err().to_string();
        assert!(e.contains("no backward"), "{e}");
        let bad_mask = Tensor::zeros([3, 5, 7]).unwrap();
        let _g = no_grad();
        assert!(q.fused_attention(&k, &k, Some(&bad_mask), None, 1.0).is_err());
    }

    /// Grouped-query attention over a strided (time-major) key/value view equals the composition
    /// with each key/value head repeated, and the kept probabilities are the softmax.
    #[test]
    fn grouped_query_heads_strided_views_and_probabilities() {
        let mut r = Rng::new(4);
        let (h, h_kv, tq, tk, d) = (6, 2, 3, 9, 8);
        let q = Tensor::randn_with(&mut r, [2, h, tq, d]).unwrap();
        // A time-major cache [tk, batch, h_kv, d] seen as [batch, h_kv, tk, d].
        let cache_k = Tensor::randn_with(&mut r, [tk, 2, h_kv, d]).unwrap();
        let cache_v = Tensor::randn_with(&mut r, [tk, 2, h_kv, d]).unwrap();
        let (k, v) = (
            cache_k.permute(&[1, 2, 0, 3]).unwrap(),
            cache_v.permute(&[1, 2, 0, 3]).unwrap(),
        );
        assert!(!k.is_contiguous());
        let repeat = |t: &Tensor| {
            t.unsqueeze(2)
                .unwrap()
                .expand([2, h_kv, h / h_kv, tk, d])
                .unwrap()
                .reshape([2, h, tk, d])
                .unwrap()
        };
        let _g = no_grad();
        let (out, probs) = q.fused_attention_with_probs(&k, &v, None, Some(tk - tq), 0.3).unwrap();
        let causal: Vec<f32> = (0..tq * tk)
            .map(|x| {
                if x % tk > tk - tq + x / tk {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let causal = Tensor::from_vec(causal, [tq, tk]).unwrap();
        close(&out, &unfused(&q, &repeat(&k), &repeat(&v), Some(&causal), 0.3));
        let want = q
            .matmul(&repeat(&k).transpose(-2, -1).unwrap())
            .unwrap()
            .mul_scalar(0.3)
            .unwrap()
            .add(&causal)
            .unwrap()
            .softmax(-1)
            .unwrap();
        close(&probs, &want);
        // Heads that do not divide are refused, naming both shapes.
        let k5 = Tensor::zeros([2, 4, tk, d]).unwrap();
        let e = q.fused_attention(&k5, &k5, None, None, 1.0).unwrap_err().to_string();
        assert!(e.contains("[2, 4, 9, 8]"), "{e}");
    }
}
