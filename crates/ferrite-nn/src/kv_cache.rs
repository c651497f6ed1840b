//! The key/value cache of incremental decoding: per decoder layer, the keys and values of every
//! position decoded so far, and the cross-attention keys and values of the encoder output. Every
//! model that decodes token by token (the seq2seq Transformer, Whisper, Llama) keeps one of these.
//!
//! Layer: nn. Keys and values live time-major, `[capacity, batch, heads, head_dim]`, so appending
//! the positions of a step writes one contiguous range in place (amortized O(1) per position: the
//! buffer doubles when full) and attention reads a strided view `[batch, heads, len, head_dim]`
//! without copying the cache (`Tensor::fused_attention` takes strided operands). Inference only:
//! writes are in place and never recorded, so appending under gradient recording is refused.

use ferrite_core::{is_grad_enabled, DType, Error, Result, Tensor};

const OP: &str = "KvCache";
/// Positions a fresh buffer holds before it first grows.
const MIN_CAPACITY: usize = 16;

#[derive(Default)]
struct LayerKv {
    /// `[capacity, batch, heads, head_dim]`, positions `..len` filled.
    keys: Option<Tensor>,
    values: Option<Tensor>,
    len: usize,
    /// Cross-attention keys and values `[batch, heads, source_len, head_dim]`.
    cross: Option<(Tensor, Tensor)>,
}

/// Keys and values kept across decoding steps, one entry per decoder layer.
///
/// ```
/// use ferrite_core::{no_grad, Tensor};
/// use ferrite_nn::KvCache;
/// let _g = no_grad();
/// let mut cache = KvCache::new(1);
/// // A 3-token prompt, then one token: [batch, heads, t, head_dim].
/// cache.append(0, &Tensor::ones([1, 2, 3, 4])?, &Tensor::ones([1, 2, 3, 4])?)?;
/// let (k, v) = cache.append(0, &Tensor::zeros([1, 2, 1, 4])?, &Tensor::zeros([1, 2, 1, 4])?)?;
/// assert_eq!((k.shape(), cache.len()), (&[1usize, 2, 4, 4][..], 4));
/// assert_eq!(v.sum_all()?.item()?, 24.0);
/// # Ok::<(), ferrite_core::Error>(())
/// ```
///
/// Not `Clone`: clones would share buffers that appends write in place. Beam search reorders rows
/// with [`reorder`](Self::reorder) instead of copying caches.
pub struct KvCache {
    layers: Vec<LayerKv>,
}

impl KvCache {
    /// An empty cache for a decoder of `layers` layers.
    pub fn new(layers: usize) -> Self {
        KvCache {
            layers: (0..layers).map(|_| LayerKv::default()).collect(),
        }
    }

    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Positions cached: the count of the first layer (every layer holds the same count between
    /// decoding steps). The position of the next token.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    /// True before the first step.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn layer(&mut self, layer: usize) -> Result<&mut LayerKv> {
        let n = self.layers.len();
        self.layers.get_mut(layer).ok_or_else(|| Error::Invalid {
            op: OP,
            detail: format!("layer {layer} does not exist (the cache has {n} layers)"),
        })
    }

    /// Appends the keys and values of new positions to `layer` and returns views of every cached
    /// position of that layer (no copy of the cache).
    ///
    /// # Shapes
    /// `k`, `v`: `[batch, heads, t, head_dim]` → `[batch, heads, len + t, head_dim]` each.
    ///
    /// # Errors
    /// A layer that does not exist; keys and values of different shapes, or whose batch, heads or
    /// head dim differ from what the layer holds (both shapes named); non-f32 tensors; gradient
    /// recording of `k` or `v` (the cache is for inference).
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        if k.ndim() != 4 || k.shape() != v.shape() {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: k.shape().to_vec(),
                rhs: v.shape().to_vec(),
                detail: "keys and values must both be [batch, heads, t, head_dim]".into(),
            });
        }
        if k.dtype() != DType::F32 || v.dtype() != DType::F32 {
            return Err(Error::Invalid {
                op: OP,
                detail: format!("keys and values must be f32, got {:?} and {:?}", k.dtype(), v.dtype()),
            });
        }
        if is_grad_enabled() && (k.requires_grad() || v.requires_grad()) {
            return Err(Error::Invalid {
                op: OP,
                detail: "the cache is for inference: append under no_grad".into(),
            });
        }
        let (b, h, t, hd) = (k.shape()[0], k.shape()[1], k.shape()[2], k.shape()[3]);
        let l = self.layer(layer)?;
        if let Some(buf) = &l.keys
            && buf.shape()[1..] != [b, h, hd]
        {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: buf.shape()[1..].to_vec(),
                rhs: vec![b, h, hd],
                detail: format!("layer {layer} caches [batch, heads, head_dim] of another size"),
            });
        }
        let need = l.len + t;
        let capacity = l.keys.as_ref().map_or(0, |buf| buf.shape()[0]);
        if need > capacity {
            let grown = need.max(2 * capacity).max(MIN_CAPACITY);
            let grow = |old: &Option<Tensor>| -> Result<Tensor> {
                let buf = Tensor::zeros([grown, b, h, hd])?;
                if let Some(old) = old
                    && l.len > 0
                {
                    buf.narrow(0, 0, l.len)?.assign_(&old.narrow(0, 0, l.len)?)?;
                }
                Ok(buf)
            };
            let (keys, values) = (grow(&l.keys)?, grow(&l.values)?);
            l.keys = Some(keys);
            l.values = Some(values);
        }
        let (keys, values) = (
            l.keys.as_ref().expect("ferrite bug: allocated above"),
            l.values.as_ref().expect("ferrite bug: allocated above"),
        );
        let time_major = [2, 0, 1, 3];
        keys.narrow(0, l.len, t)?.assign_(&k.permute(&time_major)?)?;
        values.narrow(0, l.len, t)?.assign_(&v.permute(&time_major)?)?;
        l.len = need;
        let view = |buf: &Tensor| buf.narrow(0, 0, need)?.permute(&[1, 2, 0, 3]); // (B, H, len, hd)
        Ok((view(keys)?, view(values)?))
    }

    /// Sets the cross-attention keys and values of `layer` (`[batch, heads, source_len,
    /// head_dim]`, projected once from the encoder output).
    ///
    /// # Errors
    /// A layer that does not exist, or keys and values of different shapes.
    pub fn set_cross(&mut self, layer: usize, k: Tensor, v: Tensor) -> Result<()> {
        if k.shape() != v.shape() {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: k.shape().to_vec(),
                rhs: v.shape().to_vec(),
                detail: "cross-attention keys and values must have one shape".into(),
            });
        }
        self.layer(layer)?.cross = Some((k, v));
        Ok(())
    }

    /// The cross-attention keys and values of `layer`, if set.
    pub fn cross(&self, layer: usize) -> Option<(&Tensor, &Tensor)> {
        self.layers.get(layer)?.cross.as_ref().map(|(k, v)| (k, v))
    }

    /// Keeps the batch rows `rows`, in that order (a row may repeat): beam search calls this to
    /// follow the surviving hypotheses, and to expand each source into its beams.
    ///
    /// # Errors
    /// A row outside the cached batch.
    pub fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        let index = Tensor::from_vec(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [rows.len()])?;
        for l in &mut self.layers {
            for buf in [&mut l.keys, &mut l.values].into_iter().flatten() {
                *buf = buf.index_select(1, &index)?;
            }
            if let Some((k, v)) = &mut l.cross {
                *k = k.index_select(0, &index)?;
                *v = v.index_select(0, &index)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_core::{no_grad, Rng};

    #[test]
    fn appends_in_pieces_equal_one_concatenation_across_growth() {
        let _g = no_grad();
        let mut r = Rng::new(1);
        let mut cache = KvCache::new(2);
        let mut all = Vec::new();
        // 3 + 1 + 20 positions: the buffer grows from 16 to 32 on the way.
        for t in [3, 1, 20] {
            let k = Tensor::randn_with(&mut r, [2, 3, t, 4]).unwrap();
            let v = k.mul_scalar(2.0).unwrap();
            let (ks, vs) = cache.append(0, &k, &v).unwrap();
            cache.append(1, &k, &v).unwrap();
            all.push(k);
            let want = Tensor::cat(&all, 2).unwrap();
            assert_eq!(ks.shape(), want.shape());
            assert_eq!(ks.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
            assert_eq!(
                vs.to_vec::<f32>().unwrap(),
                want.mul_scalar(2.0).unwrap().to_vec::<f32>().unwrap()
            );
        }
        assert_eq!(cache.len(), 24);
    }

    #[test]
    fn reorder_follows_rows_and_errors_name_shapes() {
        let _g = no_grad();
        let mut cache = KvCache::new(1);
        let k = Tensor::from_vec((0..8).map(|x| x as f32).collect::<Vec<_>>(), [2, 1, 2, 2]).unwrap();
        cache.set_cross(0, k.clone(), k.clone()).unwrap();
        cache.append(0, &k, &k).unwrap();
        cache.reorder(&[1, 1, 0]).unwrap();
        let next = Tensor::zeros([3, 1, 1, 2]).unwrap();
        let (ks, _) = cache.append(0, &next, &next).unwrap();
        assert_eq!(ks.shape(), &[3, 1, 3, 2]);
        let row = |i: usize| ks.narrow(0, i, 1).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(row(0), vec![4.0, 5.0, 6.0, 7.0, 0.0, 0.0]);
        assert_eq!(row(2), vec![0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
        assert_eq!(cache.cross(0).unwrap().0.shape(), &[3, 1, 2, 2]);
        let e = cache.append(
            0,
            &Tensor::zeros([3, 2, 1, 2]).unwrap(),
            &Tensor::zeros([3, 2, 1, 2]).unwrap(),
        );
        assert!(e.unwrap_err().to_string().contains("[3, 2, 2]"));
        assert!(cache.append(5, &next, &next).is_err());
    }

    #[test]
    fn refuses_to_record_gradients() {
        let k = Tensor::zeros([1, 1, 1, 2]).unwrap().requires_grad_(true);
        let e = KvCache::new(1).append(0, &k, &k).unwrap_err().to_string();
        assert!(e.contains("no_grad"), "{e}");
    }
}
