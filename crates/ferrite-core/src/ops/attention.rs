//! Fused attention for inference (`Tensor::fused_attention`): the scores never exist as a tensor.
//!
//! Layer: core (ops). Checks shapes, dtypes and that no gradient is wanted, turns a mask of any
//! broadcastable shape into per-group offsets and strides (no copy), and calls
//! `ferrite_kernels::attention`, which works one block of query rows at a time. Training uses the
//! unfused composition in `ferrite_nn::scaled_dot_product_attention`, whose backward needs the
//! probabilities; that function takes this path by itself when nothing needs gradients.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::grad_mode::is_grad_enabled;
use crate::storage::Storage;
use crate::tensor::Tensor;
use ferrite_kernels::attention::{attention, AttentionDims, Hide, MaskRef};

const OP: &str = "fused_attention";

impl Tensor {
    /// `softmax(q·kᵀ·scale + hidden)·v` for inference, with `self` as q: q `[.., tq, d]`, k `[..,
    /// tk, d]`, v `[.., tk, dv]` with the same leading dims, f32. `mask` (nonzero = hidden) is
    /// broadcast to `[.., tq, tk]`; with `causal_offset = Some(p)` query i also sees only keys
    /// `..= p + i`. A query that sees no key gets zeros. Returns `[.., tq, dv]`.
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
        let q = self;
        let nd = q.ndim();
        let same_lead = |t: &Tensor| t.ndim() == nd && t.shape()[..nd - 2] == q.shape()[..nd - 2];
        if nd < 2 || !same_lead(k) || !same_lead(v) || k.shape()[nd - 1] != q.shape()[nd - 1] {
            return Err(Error::shape(
                OP,
                q.shape(),
                k.shape(),
                "q [.., tq, d] and k [.., tk, d] need the same leading dims and d",
            ));
        }
        if v.shape()[nd - 2] != k.shape()[nd - 2] {
            return Err(Error::shape(OP, k.shape(), v.shape(), "k and v need the same length"));
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
        let offsets = mask.as_ref().map(|m| group_offsets(m, lead)).unwrap_or_default();
        let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
        let (qs, ks, vs) = (q.read(), k.read(), v.read());
        let ms = mask.as_ref().map(|m| m.read());
        let mask_ref = match (&mask, &ms) {
            (Some(m), Some(s)) => match &**s {
                Storage::U8(data) => {
                    let st = m.layout().strides();
                    Some(MaskRef {
                        data,
                        offsets: &offsets,
                        query_stride: st[nd - 2],
                        key_stride: st[nd - 1],
                    })
                }
                _ => return Err(Error::unsupported_dtype(OP, m.dtype())),
            },
            _ => None,
        };
        let mut out = vec![0f32; dims.groups * dims.tq * dims.dv];
        let hide = Hide {
            mask: mask_ref,
            causal_offset,
        };
        attention(
            f32_from(&qs, &q)?,
            f32_from(&ks, &k)?,
            f32_from(&vs, &v)?,
            dims,
            scale as f32,
            hide,
            &mut out,
        );
        let shape = lead.iter().copied().chain([dims.tq, dims.dv]).collect();
        Ok(Tensor::from_storage(Storage::F32(out), shape))
    }
}

/// The f32 elements of contiguous `t` from its first one on.
fn f32_from<'a>(s: &'a Storage, t: &Tensor) -> Result<&'a [f32]> {
    match s {
        Storage::F32(x) => Ok(&x[t.layout().offset()..]),
        _ => Err(Error::unsupported_dtype(OP, t.dtype())),
    }
}

/// Storage offset of each group's `[tq, tk]` plane of a broadcast view, groups in row-major order
/// of the leading dims `lead`.
fn group_offsets(m: &Tensor, lead: &[usize]) -> Vec<usize> {
    let strides = m.layout().strides();
    let mut offsets = vec![m.layout().offset()];
    for (dim, &size) in lead.iter().enumerate() {
        offsets = offsets
            .iter()
            .flat_map(|&o| (0..size).map(move |i| o + i * strides[dim]))
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
}
