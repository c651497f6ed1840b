//! Fused neural-network ops chosen for speed and numerical stability: softmax, log_softmax,
//! layer_norm, rms_norm, cross_entropy; plus the composites dropout and mse_loss.
//!
//! Layer: core (ops). Fused ops normalize over the last dimension(s); other dims go through a
//! transpose. Their backward kernels are called from `backward.rs` via the helpers at the bottom.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::rng::with_default_rng;
use crate::shape::resolve_dim;
use crate::storage::{contig, map_float, Storage};
use crate::tensor::Tensor;
use ferrite_kernels::rows;
use ferrite_kernels::Float;

/// Options for [`Tensor::cross_entropy`] (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct CrossEntropyOptions {
    /// Targets equal to this are skipped (default −100).
    pub ignore_index: i64,
    /// ε in q = (1−ε)·onehot + ε/C (default 0).
    pub label_smoothing: f64,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions {
            ignore_index: -100,
            label_smoothing: 0.0,
        }
    }
}

fn last_len(t: &Tensor) -> usize {
    t.shape().last().copied().unwrap_or(1)
}

impl Tensor {
    fn softmax_last(&self, log: bool) -> Result<Tensor> {
        let name = if log { "log_softmax" } else { "softmax" };
        let len = last_len(self);
        let s = map_float!(name, &*self.read(), |v| {
            let x = contig(v, self.layout());
            if log {
                rows::log_softmax(&x, len)
            } else {
                rows::softmax(&x, len)
            }
        })?;
        Ok(Tensor::from_op(s, self.shape().to_vec(), || {
            if log {
                Op::LogSoftmax(self.clone())
            } else {
                Op::Softmax(self.clone())
            }
        }))
    }

    fn along_last(&self, dim: isize, name: &'static str, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        if self.ndim() == 0 {
            return Err(Error::DimOutOfRange {
                op: name,
                dim,
                shape: vec![],
            });
        }
        let d = resolve_dim(name, dim, self.shape())?;
        let last = self.ndim() - 1;
        if d == last {
            return f(self);
        }
        f(&self.transpose(d as isize, -1)?)?.transpose(d as isize, -1)
    }

    /// Softmax along `dim`, computed stably (max subtracted). A row that is entirely −∞ gives zeros.
    ///
    /// ```
    /// use ferrite_core::Tensor;
    /// let p = Tensor::new(&[1.0f32, 1.0]).softmax(-1).unwrap();
    /// assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.5, 0.5]);
    /// ```
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.along_last(dim, "softmax", |t| t.softmax_last(false))
    }

    /// Log-softmax along `dim` (log-sum-exp with the max subtracted).
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.along_last(dim, "log_softmax", |t| t.softmax_last(true))
    }

    fn check_affine(&self, name: &'static str, normalized: &[usize], p: Option<&Tensor>) -> Result<usize> {
        let nd = normalized.len();
        if nd == 0 || nd > self.ndim() || self.shape()[self.ndim() - nd..] != *normalized {
            return Err(Error::shape(
                name,
                self.shape(),
                normalized,
                "normalized_shape must equal the trailing dims of the input",
            ));
        }
        if let Some(p) = p {
            if p.shape() != normalized {
                return Err(Error::shape(
                    name,
                    p.shape(),
                    normalized,
                    "weight/bias must have normalized_shape",
                ));
            }
            if p.dtype() != self.dtype() {
                return Err(Error::dtype(
                    name,
                    format!("dtypes must match, got {:?} and {:?}", self.dtype(), p.dtype()),
                ));
            }
        }
        Ok(normalized.iter().product())
    }

    /// Layer normalization over the trailing `normalized_shape` dims, with optional elementwise
    /// affine parameters (biased variance, as `torch.nn.functional.layer_norm`).
    ///
    /// # Errors
    /// `normalized_shape` not matching the trailing dims, or weight/bias of another shape.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        let len = self.check_affine(OP, normalized_shape, weight)?;
        self.check_affine(OP, normalized_shape, bias)?;
        let x = self.read();
        let (w, b) = (weight.map(|w| w.read()), bias.map(|b| b.read()));
        let s = match &*x {
            Storage::F32(v) => Storage::F32(ln_fwd(
                v,
                self,
                weight.zip(w.as_deref()),
                bias.zip(b.as_deref()),
                len,
                eps,
            )?),
            Storage::F64(v) => Storage::F64(ln_fwd(
                v,
                self,
                weight.zip(w.as_deref()),
                bias.zip(b.as_deref()),
                len,
                eps,
            )?),
            other => return Err(Error::unsupported_dtype(OP, other.dtype())),
        };
        Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::LayerNorm {
            x: self.clone(),
            weight: weight.cloned(),
            bias: bias.cloned(),
            len,
            eps,
        }))
    }

    /// RMS normalization over the trailing `normalized_shape` dims: x / √(mean(x²) + ε) · w.
    pub fn rms_norm(&self, normalized_shape: &[usize], weight: Option<&Tensor>, eps: f64) -> Result<Tensor> {
        const OP: &str = "rms_norm";
        let len = self.check_affine(OP, normalized_shape, weight)?;
        let x = self.read();
        let w = weight.map(|w| w.read());
        let s = match &*x {
            Storage::F32(v) => Storage::F32(rms_fwd(v, self, weight.zip(w.as_deref()), len, eps)?),
            Storage::F64(v) => Storage::F64(rms_fwd(v, self, weight.zip(w.as_deref()), len, eps)?),
            other => return Err(Error::unsupported_dtype(OP, other.dtype())),
        };
        Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::RmsNorm {
            x: self.clone(),
            weight: weight.cloned(),
            len,
            eps,
        }))
    }

    /// Mean cross-entropy of logits `[N, C]` (or `[.., C]`, class dim last) against i64 class
    /// targets `[N]` (or `[..]`), fusing log-softmax and NLL. Supports `ignore_index` and label
    /// smoothing as PyTorch does; if every target is ignored the loss is NaN, as in PyTorch.
    ///
    /// # Errors
    /// Targets that are not i64, shapes that do not line up, or a target outside `0..C`.
    pub fn cross_entropy(&self, targets: &Tensor, opts: CrossEntropyOptions) -> Result<Tensor> {
        const OP: &str = "cross_entropy";
        if targets.dtype() != DType::I64 {
            return Err(Error::dtype(
                OP,
                format!("targets must be i64 class indices, got {:?}", targets.dtype()),
            ));
        }
        if self.ndim() == 0 || targets.shape() != &self.shape()[..self.ndim() - 1] {
            return Err(Error::shape(
                OP,
                self.shape(),
                targets.shape(),
                "logits must be [.., C] and targets [..]",
            ));
        }
        if !(0.0..=1.0).contains(&opts.label_smoothing) {
            return Err(Error::invalid(
                OP,
                format!("label_smoothing must be in [0, 1], got {}", opts.label_smoothing),
            ));
        }
        let classes = last_len(self);
        let t = targets.to_vec::<i64>()?;
        let bad = |row: usize| Error::IndexOutOfRange {
            op: OP,
            index: t[row],
            size: classes,
            dim: self.ndim() - 1,
            shape: self.shape().to_vec(),
        };
        fn go<T: Float>(
            v: &[T],
            x: &Tensor,
            t: &[i64],
            c: usize,
            o: CrossEntropyOptions,
        ) -> std::result::Result<(f64, usize), usize> {
            let (s, n) = rows::cross_entropy(
                &contig(v, x.layout()),
                t,
                c,
                o.ignore_index,
                <T as Float>::from_f64(o.label_smoothing),
            )?;
            Ok((s.to_f64(), n))
        }
        let (sum, count) = match &*self.read() {
            Storage::F32(v) => go(v, self, &t, classes, opts),
            Storage::F64(v) => go(v, self, &t, classes, opts),
            other => return Err(Error::unsupported_dtype(OP, other.dtype())),
        }
        .map_err(bad)?;
        let loss = sum / count as f64;
        let s = Storage::full(self.dtype(), 1, loss);
        Ok(Tensor::from_op(s, vec![], || Op::CrossEntropy {
            logits: self.clone(),
            targets: targets.clone(),
            ignore_index: opts.ignore_index,
            label_smoothing: opts.label_smoothing,
            count,
        }))
    }

    /// Inverted dropout: in training, zeroes each element with probability `p` (from the default
    /// generator, see [`crate::manual_seed`]) and scales survivors by 1/(1−p); identity otherwise.
    pub fn dropout(&self, p: f64, training: bool) -> Result<Tensor> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid("dropout", format!("p must be in [0, 1), got {p}")));
        }
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let mask = dropout_mask(self.numel(), p, self.dtype())?.reshape(self.shape())?;
        self.mul(&mask)
    }

    /// Mean squared error between `self` and `target` (same shape).
    pub fn mse_loss(&self, target: &Tensor) -> Result<Tensor> {
        if self.shape() != target.shape() {
            return Err(Error::shape(
                "mse_loss",
                self.shape(),
                target.shape(),
                "prediction and target must have the same shape",
            ));
        }
        self.sub(target)?.sqr()?.mean_all()
    }
}

type Param<'a> = Option<(&'a Tensor, &'a Storage)>;

fn typed<'a, T: crate::storage::StorageElem + Copy + Send + Sync + Default>(
    p: Param<'a>,
) -> Option<std::borrow::Cow<'a, [T]>> {
    p.map(|(t, s)| contig(T::slice(s).expect("ferrite bug: dtype checked"), t.layout()))
}

fn ln_fwd<T: Float + crate::storage::StorageElem>(
    v: &[T],
    x: &Tensor,
    w: Param,
    b: Param,
    len: usize,
    eps: f64,
) -> Result<Vec<T>> {
    let (w, b) = (typed::<T>(w), typed::<T>(b));
    Ok(rows::layer_norm(
        &contig(v, x.layout()),
        w.as_deref(),
        b.as_deref(),
        len,
        <T as Float>::from_f64(eps),
    ))
}

fn rms_fwd<T: Float + crate::storage::StorageElem>(
    v: &[T],
    x: &Tensor,
    w: Param,
    len: usize,
    eps: f64,
) -> Result<Vec<T>> {
    let w = typed::<T>(w);
    Ok(rows::rms_norm(
        &contig(v, x.layout()),
        w.as_deref(),
        len,
        <T as Float>::from_f64(eps),
    ))
}

// ---- backward helpers (called by backward.rs; results are never recorded) -----------------------

/// Softmax/log-softmax backward along the last dim from the op's output `y` and upstream `g`.
pub(crate) fn softmax_backward(y: &Tensor, g: &Tensor, log: bool) -> Result<Tensor> {
    let len = last_len(y);
    let s = crate::ops::read2(y, g, |ys, gs| {
        crate::storage::map_float2!("softmax backward", ys, gs, |yv, gv| {
            let (yc, gc) = (contig(yv, y.layout()), contig(gv, g.layout()));
            if log {
                rows::log_softmax_backward(&yc, &gc, len)
            } else {
                rows::softmax_backward(&yc, &gc, len)
            }
        })
    })?;
    Ok(Tensor::from_storage(s, y.shape().to_vec()))
}

fn typed_param<T: crate::storage::StorageElem>(p: Option<&Tensor>) -> Option<Vec<T>> {
    p.and_then(|p| p.to_vec::<T>().ok())
}

/// Layer-norm backward: (dx, dweight, dbias).
pub(crate) fn layer_norm_backward(
    x: &Tensor,
    w: Option<&Tensor>,
    g: &Tensor,
    len: usize,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    fn go<T: Float + crate::storage::StorageElem>(
        x: &Tensor,
        w: Option<&Tensor>,
        g: &Tensor,
        len: usize,
        eps: f64,
    ) -> Result<(Storage, Storage, Storage)> {
        let (xv, gv) = (x.to_vec::<T>()?, g.to_vec::<T>()?);
        let wv = typed_param::<T>(w);
        let (dx, dw, db) = rows::layer_norm_backward(&xv, wv.as_deref(), &gv, len, <T as Float>::from_f64(eps));
        Ok((T::wrap(dx), T::wrap(dw), T::wrap(db)))
    }
    let (dx, dw, db) = match x.dtype() {
        DType::F32 => go::<f32>(x, w, g, len, eps)?,
        DType::F64 => go::<f64>(x, w, g, len, eps)?,
        d => return Err(Error::unsupported_dtype("layer_norm backward", d)),
    };
    Ok((
        Tensor::from_storage(dx, x.shape().to_vec()),
        Tensor::from_storage(dw, vec![len]),
        Tensor::from_storage(db, vec![len]),
    ))
}

/// RMS-norm backward: (dx, dweight).
pub(crate) fn rms_norm_backward(
    x: &Tensor,
    w: Option<&Tensor>,
    g: &Tensor,
    len: usize,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    fn go<T: Float + crate::storage::StorageElem>(
        x: &Tensor,
        w: Option<&Tensor>,
        g: &Tensor,
        len: usize,
        eps: f64,
    ) -> Result<(Storage, Storage)> {
        let (xv, gv) = (x.to_vec::<T>()?, g.to_vec::<T>()?);
        let wv = typed_param::<T>(w);
        let (dx, dw) = rows::rms_norm_backward(&xv, wv.as_deref(), &gv, len, <T as Float>::from_f64(eps));
        Ok((T::wrap(dx), T::wrap(dw)))
    }
    let (dx, dw) = match x.dtype() {
        DType::F32 => go::<f32>(x, w, g, len, eps)?,
        DType::F64 => go::<f64>(x, w, g, len, eps)?,
        d => return Err(Error::unsupported_dtype("rms_norm backward", d)),
    };
    Ok((
        Tensor::from_storage(dx, x.shape().to_vec()),
        Tensor::from_storage(dw, vec![len]),
    ))
}

/// Cross-entropy backward: d logits for upstream scalar gradient `g`.
pub(crate) fn cross_entropy_backward(
    logits: &Tensor,
    targets: &Tensor,
    g: f64,
    ignore_index: i64,
    smoothing: f64,
    count: usize,
) -> Result<Tensor> {
    fn go<T: Float + crate::storage::StorageElem>(
        x: &Tensor,
        t: &[i64],
        scale: f64,
        ii: i64,
        eps: f64,
    ) -> Result<Storage> {
        let c = last_len(x);
        let xv = x.to_vec::<T>()?;
        Ok(T::wrap(rows::cross_entropy_backward(
            &xv,
            t,
            c,
            ii,
            <T as Float>::from_f64(eps),
            <T as Float>::from_f64(scale),
        )))
    }
    let t = targets.to_vec::<i64>()?;
    let scale = g / count as f64;
    let s = match logits.dtype() {
        DType::F32 => go::<f32>(logits, &t, scale, ignore_index, smoothing)?,
        DType::F64 => go::<f64>(logits, &t, scale, ignore_index, smoothing)?,
        d => return Err(Error::unsupported_dtype("cross_entropy backward", d)),
    };
    Ok(Tensor::from_storage(s, logits.shape().to_vec()))
}

/// A dropout mask of `n` values: 0 with probability `p`, else 1/(1−p), in `dtype`.
///
/// One seed is drawn from the default generator (so `manual_seed` makes masks reproducible);
/// each 64k-element block then has its own generator seeded from it, so blocks fill in parallel
/// and the mask does not depend on the thread count. A value is dropped when a 32-bit draw falls
/// below p·2³², two draws per 64-bit step.
fn dropout_mask(n: usize, p: f64, dtype: DType) -> Result<Tensor> {
    const BLOCK: usize = 1 << 16;
    let seed = with_default_rng(|r| r.next_u64());
    let threshold = (p * 4_294_967_296.0).min(u32::MAX as f64) as u32;
    let scale = 1.0 / (1.0 - p);
    fn fill<T: Float>(out: &mut [T], seed: u64, block: usize, threshold: u32, keep: T) {
        let mut r = crate::Rng::new(seed ^ (block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for pair in out.chunks_mut(2) {
            let bits = r.next_u64();
            for (o, b) in pair.iter_mut().zip([bits as u32, (bits >> 32) as u32]) {
                *o = if b >= threshold { keep } else { T::ZERO };
            }
        }
    }
    fn build<T: Float + crate::storage::StorageElem>(n: usize, seed: u64, threshold: u32, keep: T) -> Result<Tensor> {
        let mut v = vec![T::ZERO; n];
        if ferrite_kernels::threads::should_parallelize(n) {
            use rayon::prelude::*;
            ferrite_kernels::threads::install(|_| {
                v.par_chunks_mut(BLOCK)
                    .enumerate()
                    .for_each(|(i, c)| fill(c, seed, i, threshold, keep))
            });
        } else {
            v.chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(i, c)| fill(c, seed, i, threshold, keep));
        }
        Tensor::from_vec(v, [n])
    }
    match dtype {
        DType::F32 => build::<f32>(n, seed, threshold, scale as f32),
        DType::F64 => build::<f64>(n, seed, threshold, scale),
        d => Err(Error::unsupported_dtype("dropout", d)),
    }
}
