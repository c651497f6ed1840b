//! Matrix product with PyTorch's `matmul` semantics: 1-D operands are promoted, batch dims broadcast.
//!
//! Layer: core (ops). Operands are read through their strides (a transposed view costs nothing);
//! when the rhs is shared across the batch and the lhs rows are evenly strided, the whole batch
//! becomes one large product. Many small products run in parallel across the batch.

use super::read2;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::op::Op;
use crate::shape::broadcast_shapes;
use crate::storage::{contig, map_float2, Storage, StorageElem};
use crate::tensor::Tensor;
use ferrite_kernels::matmul::{matmul as gemm, matmul_uninit, MatRef};
use ferrite_kernels::strided::Plan;
use ferrite_kernels::{threads, Float};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Per-product multiply-adds below which a batch is split across threads instead of each product.
const SMALL_PRODUCT: usize = 128 * 128 * 128;

struct Dims {
    batch: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
}

/// One `m×k · k×n` product of 2-D operands, read through their strides. The batched path would
/// give the same result, but its broadcast layouts and batch plan cost about 0.3 µs of small
/// allocations per call, a tenth of a 32×64×64 product.
fn single<T: Float>(a: &[T], la: &Layout, b: &[T], lb: &Layout, m: usize, k: usize, n: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(m * n);
    if m * n == 0 {
        return out;
    }
    let (sa, sb) = (la.strides(), lb.strides());
    let lhs = MatRef {
        data: a,
        offset: la.offset(),
        rs: sa[0] as isize,
        cs: sa[1] as isize,
    };
    let rhs = MatRef {
        data: b,
        offset: lb.offset(),
        rs: sb[0] as isize,
        cs: sb[1] as isize,
    };
    matmul_uninit(m, n, k, &mut out.spare_capacity_mut()[..m * n], n, lhs, rhs, true);
    // SAFETY: `matmul_uninit` wrote all m×n elements.
    unsafe { out.set_len(m * n) };
    out
}

fn batched<T: Float>(a: &[T], la: &Layout, b: &[T], lb: &Layout, d: &Dims) -> Vec<T> {
    let len = d.batch.iter().product::<usize>() * d.m * d.n;
    let mut out = Vec::with_capacity(len);
    if len == 0 {
        return out;
    }
    // Every element is written by exactly one product below (`matmul_uninit` writes all m×n).
    write_products(&mut out.spare_capacity_mut()[..len], a, la, b, lb, d);
    // SAFETY: the `len` elements were all initialized by `write_products`.
    unsafe { out.set_len(len) };
    out
}

/// Writes all `batch·m·n` outputs of `batched` into `out`, which may be uninitialized.
fn write_products<T: Float>(out: &mut [MaybeUninit<T>], a: &[T], la: &Layout, b: &[T], lb: &Layout, d: &Dims) {
    let (m, k, n) = (d.m, d.k, d.n);
    let nb = d.batch.len();
    let (sa, sb) = (la.strides(), lb.strides());
    let (a_rs, a_cs, b_rs, b_cs) = (
        sa[nb] as isize,
        sa[nb + 1] as isize,
        sb[nb] as isize,
        sb[nb + 1] as isize,
    );
    let batches: usize = d.batch.iter().product();
    // Fold the batch into the rows when rhs is shared and lhs rows are evenly strided.
    if sb[..nb].iter().all(|&s| s == 0) {
        let mut rows_shape = d.batch.clone();
        rows_shape.push(m);
        let plan = Plan::<1>::new(&rows_shape, [&sa[..=nb]]);
        if plan.outer_shape.is_empty() {
            let rs = if batches * m == 1 {
                a_rs
            } else {
                plan.inner_strides[0] as isize
            };
            let lhs = MatRef {
                data: a,
                offset: la.offset(),
                rs,
                cs: a_cs,
            };
            let rhs = MatRef {
                data: b,
                offset: lb.offset(),
                rs: b_rs,
                cs: b_cs,
            };
            matmul_uninit(batches * m, n, k, out, n, lhs, rhs, true);
            return;
        }
    }
    let plan = Plan::<2>::new(&d.batch, [&sa[..nb], &sb[..nb]]);
    // Batch offsets, in output order.
    let mut offs = Vec::with_capacity(batches);
    plan.for_rows(0, plan.rows(), |_, [oa, ob]| {
        for i in 0..plan.inner_len {
            offs.push((oa + i * plan.inner_strides[0], ob + i * plan.inner_strides[1]));
        }
    });
    let one = |dst: &mut [MaybeUninit<T>], (oa, ob): (usize, usize), threads_ok: bool| {
        let lhs = MatRef {
            data: a,
            offset: la.offset() + oa,
            rs: a_rs,
            cs: a_cs,
        };
        let rhs = MatRef {
            data: b,
            offset: lb.offset() + ob,
            rs: b_rs,
            cs: b_cs,
        };
        matmul_uninit(m, n, k, dst, n, lhs, rhs, threads_ok);
    };
    // Small products, or enough of them to keep every thread busy (a convolution's per-sample
    // products), run one per thread; a few large ones are split inside instead.
    let many = batches >= 4 * threads::num_threads();
    let parallel_batches =
        batches >= 2 && (m * n * k < SMALL_PRODUCT || many) && threads::should_parallelize(batches * m * n * k / 8);
    if parallel_batches {
        threads::install(|_| {
            out.par_chunks_mut(m * n)
                .zip(offs.par_iter())
                .for_each(|(dst, &o)| one(dst, o, false));
        });
    } else {
        for (dst, &o) in out.chunks_mut(m * n).zip(&offs) {
            one(dst, o, true);
        }
    }
}

impl Tensor {
    /// Matrix product with broadcasting batch dims (`torch.matmul`).
    ///
    /// # Shapes
    /// `[..., m, k] @ [..., k, n] -> [broadcast(...), m, n]`; a 1-D lhs is a row vector and a 1-D
    /// rhs a column vector, their added dim removed from the result.
    ///
    /// # Errors
    /// Inner dimensions that differ, or batch dims that do not broadcast; the message names
    /// `matmul` and both shapes.
    ///
    /// ```
    /// use ferrite_core::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let b = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
    /// assert_eq!(a.matmul(&b).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    /// ```
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        const OP: &str = "matmul";
        if self.ndim() == 0 || rhs.ndim() == 0 {
            return Err(Error::shape(
                OP,
                self.shape(),
                rhs.shape(),
                "both operands need at least one dimension",
            ));
        }
        if self.ndim() == 1 {
            return self
                .unsqueeze(0)?
                .matmul(rhs)
                .map_err(|_| mismatch(self, rhs))?
                .squeeze(-2);
        }
        if rhs.ndim() == 1 {
            return self
                .matmul(&rhs.unsqueeze(-1)?)
                .map_err(|_| mismatch(self, rhs))?
                .squeeze(-1);
        }
        let (sa, sb) = (self.shape(), rhs.shape());
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
        if k != k2 {
            return Err(mismatch(self, rhs));
        }
        if sa.len() == 2 && sb.len() == 2 {
            let (la, lb) = (self.layout(), rhs.layout());
            let s = read2(self, rhs, |x, y| {
                map_float2!(OP, x, y, |a, b| single(a, la, b, lb, m, k, n))
            })?;
            return Ok(Tensor::from_op(s, vec![m, n], || Op::Matmul(self.clone(), rhs.clone())));
        }
        let batch = broadcast_shapes(OP, &sa[..sa.len() - 2], &sb[..sb.len() - 2])
            .map_err(|_| Error::shape(OP, sa, sb, "batch dimensions do not broadcast"))?;
        let mut shape_a = batch.clone();
        shape_a.extend([m, k]);
        let mut shape_b = batch.clone();
        shape_b.extend([k, n]);
        let la = self.layout().broadcast_as(OP, &shape_a)?;
        let lb = rhs.layout().broadcast_as(OP, &shape_b)?;
        let dims = Dims {
            batch: batch.clone(),
            m,
            k,
            n,
        };
        let s = read2(self, rhs, |x, y| {
            map_float2!(OP, x, y, |a, b| batched(a, &la, b, &lb, &dims))
        })?;
        let mut out_shape = batch;
        out_shape.extend([m, n]);
        Ok(Tensor::from_op(s, out_shape, || Op::Matmul(self.clone(), rhs.clone())))
    }
}

/// y[M, out] = x[M, in] · w[out, in]ᵀ (+ b), with the bias written first and the product accumulated.
fn linear_rows<T: Float>(x: &[T], w: &[T], lw: &Layout, b: Option<&[T]>, m: usize, k: usize, n: usize) -> Vec<T> {
    let lhs = MatRef {
        data: x,
        offset: 0,
        rs: k as isize,
        cs: 1,
    };
    // wᵀ read in place: element (i, j) of wᵀ is w[j, i].
    let rhs = MatRef {
        data: w,
        offset: lw.offset(),
        rs: lw.strides()[1] as isize,
        cs: lw.strides()[0] as isize,
    };
    let Some(b) = b else {
        let mut out = Vec::with_capacity(m * n);
        matmul_uninit(m, n, k, &mut out.spare_capacity_mut()[..m * n], n, lhs, rhs, true);
        // SAFETY: `matmul_uninit` wrote all m×n elements.
        unsafe { out.set_len(m * n) };
        return out;
    };
    let mut out = Vec::with_capacity(m * n);
    for _ in 0..m {
        out.extend_from_slice(b);
    }
    gemm(m, n, k, &mut out, n, lhs, rhs, true, true);
    out
}

impl Tensor {
    /// A fully connected layer, x·wᵀ + b, as one fused op (PyTorch `F.linear`).
    ///
    /// # Shapes
    /// x `[..., in]`, w `[out, in]`, b `[out]` → `[..., out]`.
    ///
    /// # Errors
    /// Mismatched `in` sizes or a bias of the wrong length; the message names the shapes.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "linear";
        if weight.ndim() != 2 || self.ndim() == 0 || self.shape()[self.ndim() - 1] != weight.shape()[1] {
            return Err(Error::shape(
                OP,
                self.shape(),
                weight.shape(),
                "input's last dim must equal weight's dim 1",
            ));
        }
        let (n, k) = (weight.shape()[0], weight.shape()[1]);
        if let Some(b) = bias {
            if b.shape() != [n] {
                return Err(Error::shape(
                    OP,
                    weight.shape(),
                    b.shape(),
                    "bias must be [out_features]",
                ));
            }
            if b.dtype() != self.dtype() {
                return Err(Error::dtype(
                    OP,
                    format!("dtypes must match, got {:?} and {:?}", self.dtype(), b.dtype()),
                ));
            }
        }
        // Rows from the leading dims, not numel / k: with no input features (k = 0) there are
        // still rows, each the bias alone.
        let m: usize = self.shape()[..self.ndim() - 1].iter().product();
        let x = self.read();
        let w = weight.read();
        let bs = bias.map(|b| b.read());
        #[allow(clippy::too_many_arguments)]
        fn typed<T: Float + StorageElem>(
            x: &Tensor,
            xv: &[T],
            w: &Tensor,
            wv: &[T],
            b: Option<(&Tensor, &Storage)>,
            m: usize,
            k: usize,
            n: usize,
        ) -> Vec<T> {
            // The bias dtype was checked above, so `slice` finds the same element type.
            let bias = b.and_then(|(b, s)| T::slice(s).map(|v| contig(v, b.layout())));
            linear_rows(&contig(xv, x.layout()), wv, w.layout(), bias.as_deref(), m, k, n)
        }
        let b = bias.zip(bs.as_deref());
        let s = match (&*x, &*w) {
            (Storage::F32(xv), Storage::F32(wv)) => Storage::F32(typed(self, xv, weight, wv, b, m, k, n)),
            (Storage::F64(xv), Storage::F64(wv)) => Storage::F64(typed(self, xv, weight, wv, b, m, k, n)),
            (a, b) if a.dtype() != b.dtype() => {
                return Err(Error::dtype(
                    OP,
                    format!("dtypes must match, got {:?} and {:?}", a.dtype(), b.dtype()),
                ));
            }
            (a, _) => return Err(Error::unsupported_dtype(OP, a.dtype())),
        };
        let mut shape = self.shape().to_vec();
        *shape.last_mut().expect("checked ndim > 0") = n;
        Ok(Tensor::from_op(s, shape, || Op::Linear {
            x: self.clone(),
            weight: weight.clone(),
            bias: bias.cloned(),
        }))
    }
}

fn mismatch(a: &Tensor, b: &Tensor) -> Error {
    let k1 = a.shape().last().copied().unwrap_or(0);
    let k2 = if b.ndim() >= 2 {
        b.shape()[b.ndim() - 2]
    } else {
        b.shape()[0]
    };
    Error::shape(
        "matmul",
        a.shape(),
        b.shape(),
        format!("inner dimensions differ ({k1} vs {k2})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a·b` in f64 from the operands' logical (strided) values.
    fn naive(a: &Tensor, b: &Tensor) -> Vec<f64> {
        let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
        let (x, y) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| x[i * k + p] as f64 * y[p * n + j] as f64).sum();
            }
        }
        c
    }

    #[test]
    fn two_d_products_of_views_match_the_batched_path_and_f64() {
        crate::rng::manual_seed(7);
        // Offsets, row strides wider than the row, and transposes, at sizes that take the unpacked,
        // blocked and dot-product kernels (and the thread team for the larger ones).
        for (m, k, n) in [(1, 5, 3), (7, 9, 33), (64, 64, 64), (40, 100, 70), (3, 200, 90)] {
            let big_a = Tensor::randn([m + 3, k + 5]).unwrap();
            let a = big_a.narrow(0, 2, m).unwrap().narrow(1, 4, k).unwrap();
            let bt = Tensor::randn([n, k + 2]).unwrap().narrow(1, 1, k).unwrap();
            let b = bt.t().unwrap();
            let single = a.matmul(&b).unwrap();
            let via_batch = a.unsqueeze(0).unwrap().matmul(&b.unsqueeze(0).unwrap()).unwrap();
            assert_eq!(single.shape(), [m, n]);
            let (got, batched) = (single.to_vec::<f32>().unwrap(), via_batch.to_vec::<f32>().unwrap());
            for ((g, w), r) in got.iter().zip(&batched).zip(naive(&a, &b)) {
                assert!(
                    (*g as f64 - r).abs() <= 1e-4 * (1.0 + r.abs()),
                    "{m}x{k}x{n}: {g} vs {r}"
                );
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{m}x{k}x{n}: {g} vs batched {w}"
                );
            }
        }
    }
}
