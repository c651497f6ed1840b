//! Storage: the one place where a tensor's dtype is dispatched to a typed kernel.
//!
//! Layer: core. Everything above works on `Tensor`; everything below (`ferrite-kernels`) works on typed
//! slices. Float compute is implemented for f32 and f64; f16/bf16/i64/u8 support copies, conversion and
//! indexing, and float ops on them return a dtype error naming the op.

use crate::dtype::{DType, WithDType};
use crate::error::{Error, Result};
use crate::layout::Layout;
use ferrite_kernels::elementwise::{self, BinaryFn, CmpFn, Src, UnaryFn};
use ferrite_kernels::Float;
use half::{bf16, f16};
use std::borrow::Cow;

/// A typed element buffer.
#[derive(Clone, Debug)]
pub enum Storage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}

/// Applies `$body` to the typed vector of any dtype, rewrapping the result in the same variant.
macro_rules! map_any {
    ($s:expr, |$v:ident| $body:expr) => {
        match $s {
            Storage::F32($v) => Storage::F32($body),
            Storage::F64($v) => Storage::F64($body),
            Storage::F16($v) => Storage::F16($body),
            Storage::BF16($v) => Storage::BF16($body),
            Storage::I64($v) => Storage::I64($body),
            Storage::U8($v) => Storage::U8($body),
        }
    };
}

/// Applies `$body` to f32/f64 storage; other dtypes are an error naming `$op`.
macro_rules! map_float {
    ($op:expr, $s:expr, |$v:ident| $body:expr) => {
        match $s {
            Storage::F32($v) => Ok(Storage::F32($body)),
            Storage::F64($v) => Ok(Storage::F64($body)),
            other => Err(Error::unsupported_dtype($op, other.dtype())),
        }
    };
}

/// Like `map_float!` for two operands that must share a dtype.
macro_rules! map_float2 {
    ($op:expr, $a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Storage::F32($x), Storage::F32($y)) => Ok(Storage::F32($body)),
            (Storage::F64($x), Storage::F64($y)) => Ok(Storage::F64($body)),
            (a, b) if a.dtype() != b.dtype() => Err(Error::dtype(
                $op,
                format!("dtypes must match, got {:?} and {:?}", a.dtype(), b.dtype()),
            )),
            (a, _) => Err(Error::unsupported_dtype($op, a.dtype())),
        }
    };
}
pub(crate) use {map_float, map_float2};

fn src<'a, T>(v: &'a [T], l: &'a Layout) -> Src<'a, T> {
    Src {
        data: v,
        offset: l.offset(),
        strides: l.strides(),
    }
}

/// The elements of `v` under layout `l` as one contiguous slice (borrowed when already contiguous).
pub(crate) fn contig<'a, T: Copy + Sync + Send + Default>(v: &'a [T], l: &Layout) -> Cow<'a, [T]> {
    match l.contiguous_range() {
        Some(r) => Cow::Borrowed(&v[r]),
        None => Cow::Owned(elementwise::map_strided(l.shape(), src(v, l), |x| x)),
    }
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::I64(_) => DType::I64,
            Storage::U8(_) => DType::U8,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::F16(v) => v.len(),
            Storage::BF16(v) => v.len(),
            Storage::I64(v) => v.len(),
            Storage::U8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A storage of `n` copies of `value` converted to `dtype`.
    pub fn full(dtype: DType, n: usize, value: f64) -> Storage {
        fn fill<T: WithDType>(n: usize, v: f64) -> Vec<T> {
            vec![T::from_f64(v); n]
        }
        match dtype {
            DType::F32 => Storage::F32(fill(n, value)),
            DType::F64 => Storage::F64(fill(n, value)),
            DType::F16 => Storage::F16(fill(n, value)),
            DType::BF16 => Storage::BF16(fill(n, value)),
            DType::I64 => Storage::I64(fill(n, value)),
            DType::U8 => Storage::U8(fill(n, value)),
        }
    }

    /// As [`full`](Self::full), but a size the allocator refuses (a corrupted or absurd shape
    /// from a config or file) is an error instead of an abort.
    pub fn try_full(
        dtype: DType,
        n: usize,
        value: f64,
    ) -> std::result::Result<Storage, std::collections::TryReserveError> {
        fn fill<T: WithDType>(n: usize, v: f64) -> std::result::Result<Vec<T>, std::collections::TryReserveError> {
            let mut out = Vec::new();
            out.try_reserve_exact(n)?;
            out.resize(n, T::from_f64(v));
            Ok(out)
        }
        Ok(match dtype {
            DType::F32 => Storage::F32(fill(n, value)?),
            DType::F64 => Storage::F64(fill(n, value)?),
            DType::F16 => Storage::F16(fill(n, value)?),
            DType::BF16 => Storage::BF16(fill(n, value)?),
            DType::I64 => Storage::I64(fill(n, value)?),
            DType::U8 => Storage::U8(fill(n, value)?),
        })
    }

    /// Copies the elements under `l` into a fresh contiguous storage.
    pub fn contiguous(&self, l: &Layout) -> Storage {
        map_any!(self, |v| contig(v, l).into_owned())
    }

    /// Reads the elements under `l` as f64 values (for tests, printing and conversion).
    pub fn to_f64_vec(&self, l: &Layout) -> Vec<f64> {
        fn conv<T: WithDType>(v: &[T], l: &Layout) -> Vec<f64> {
            elementwise::map_strided(l.shape(), src(v, l), |x: T| x.to_f64())
        }
        match self {
            Storage::F32(v) => conv(v, l),
            Storage::F64(v) => conv(v, l),
            Storage::F16(v) => conv(v, l),
            Storage::BF16(v) => conv(v, l),
            Storage::I64(v) => conv(v, l),
            Storage::U8(v) => conv(v, l),
        }
    }

    /// Converts the elements under `l` to `dtype` (contiguous result).
    pub fn to_dtype(&self, l: &Layout, dtype: DType) -> Storage {
        fn conv<S: WithDType, D: WithDType>(v: &[S], l: &Layout) -> Vec<D> {
            elementwise::map_strided(l.shape(), src(v, l), |x: S| D::from_f64(x.to_f64()))
        }
        macro_rules! to {
            ($v:expr) => {
                match dtype {
                    DType::F32 => Storage::F32(conv($v, l)),
                    DType::F64 => Storage::F64(conv($v, l)),
                    DType::F16 => Storage::F16(conv($v, l)),
                    DType::BF16 => Storage::BF16(conv($v, l)),
                    DType::I64 => Storage::I64(conv($v, l)),
                    DType::U8 => Storage::U8(conv($v, l)),
                }
            };
        }
        match self {
            Storage::F32(v) => to!(v),
            Storage::F64(v) => to!(v),
            Storage::F16(v) => to!(v),
            Storage::BF16(v) => to!(v),
            Storage::I64(v) => to!(v),
            Storage::U8(v) => to!(v),
        }
    }

    pub(crate) fn unary(&self, op: &'static str, l: &Layout, f: UnaryFn) -> Result<Storage> {
        map_float!(op, self, |v| elementwise::unary(l.shape(), src(v, l), f))
    }

    /// g ⊙ f'(v) for a unary op, one pass; `g` and `v` layouts share one shape.
    pub(crate) fn unary_backward(&self, lg: &Layout, v: &Storage, lv: &Layout, f: UnaryFn) -> Result<Storage> {
        const OP: &str = "unary backward";
        let r = map_float2!(OP, self, v, |g, x| elementwise::unary_backward(
            lg.shape(),
            src(g, lg),
            src(x, lv),
            f
        )
        .ok_or_else(|| Error::Backward(format!(
            "second-order gradient of {f:?} is not supported"
        )))?)?;
        Ok(r)
    }

    pub(crate) fn affine(&self, op: &'static str, l: &Layout, mul: f64, add: f64) -> Result<Storage> {
        fn go<T: Float>(v: &[T], l: &Layout, mul: f64, add: f64) -> Vec<T> {
            let (m, a) = (T::from_f64(mul), T::from_f64(add));
            elementwise::map_strided(l.shape(), src(v, l), move |x: T| x * m + a)
        }
        map_float!(op, self, |v| go(v, l, mul, add))
    }

    pub(crate) fn powf(&self, op: &'static str, l: &Layout, e: f64) -> Result<Storage> {
        fn go<T: Float>(v: &[T], l: &Layout, e: f64) -> Vec<T> {
            let e = T::from_f64(e);
            elementwise::map_strided(l.shape(), src(v, l), move |x: T| x.powf(e))
        }
        map_float!(op, self, |v| go(v, l, e))
    }

    pub(crate) fn clamp(&self, op: &'static str, l: &Layout, lo: f64, hi: f64) -> Result<Storage> {
        fn go<T: Float>(v: &[T], l: &Layout, lo: f64, hi: f64) -> Vec<T> {
            let (lo, hi) = (T::from_f64(lo), T::from_f64(hi));
            elementwise::map_strided(l.shape(), src(v, l), move |x: T| x.max(lo).min(hi))
        }
        map_float!(op, self, |v| go(v, l, lo, hi))
    }

    /// Binary op on two operands already broadcast to `out_shape` (layouts `la`, `lb`).
    pub(crate) fn binary(
        &self,
        op: &'static str,
        la: &Layout,
        rhs: &Storage,
        lb: &Layout,
        f: BinaryFn,
    ) -> Result<Storage> {
        map_float2!(op, self, rhs, |a, b| elementwise::binary(
            la.shape(),
            src(a, la),
            src(b, lb),
            f
        ))
    }

    /// Comparison of two broadcast operands, producing a u8 mask.
    pub(crate) fn compare(
        &self,
        op: &'static str,
        la: &Layout,
        rhs: &Storage,
        lb: &Layout,
        f: CmpFn,
    ) -> Result<Storage> {
        fn go<T: Copy + Sync + PartialOrd>(a: &[T], la: &Layout, b: &[T], lb: &Layout, f: CmpFn) -> Vec<u8> {
            elementwise::zip_strided(la.shape(), src(a, la), src(b, lb), move |x, y| f.apply(x, y) as u8)
        }
        Ok(Storage::U8(match (self, rhs) {
            (Storage::F32(a), Storage::F32(b)) => go(a, la, b, lb, f),
            (Storage::F64(a), Storage::F64(b)) => go(a, la, b, lb, f),
            (Storage::I64(a), Storage::I64(b)) => go(a, la, b, lb, f),
            (Storage::U8(a), Storage::U8(b)) => go(a, la, b, lb, f),
            (a, b) if a.dtype() != b.dtype() => {
                return Err(Error::dtype(
                    op,
                    format!("dtypes must match, got {:?} and {:?}", a.dtype(), b.dtype()),
                ));
            }
            (a, _) => return Err(Error::unsupported_dtype(op, a.dtype())),
        }))
    }

    /// `cond ? a : b` elementwise; all three layouts already broadcast to the same shape.
    pub(crate) fn where_cond(
        cond: &Storage,
        lc: &Layout,
        a: &Storage,
        la: &Layout,
        b: &Storage,
        lb: &Layout,
    ) -> Result<Storage> {
        const OP: &str = "where";
        let Storage::U8(c) = cond else {
            return Err(Error::dtype(
                OP,
                format!("condition must be a u8 mask, got {:?}", cond.dtype()),
            ));
        };
        fn go<T: Copy + Sync + Send + Default>(
            c: &[u8],
            lc: &Layout,
            a: &[T],
            la: &Layout,
            b: &[T],
            lb: &Layout,
        ) -> Vec<T> {
            elementwise::zip3_strided(lc.shape(), src(c, lc), src(a, la), src(b, lb), |c, x, y| {
                if c != 0 {
                    x
                } else {
                    y
                }
            })
        }
        match (a, b) {
            (Storage::F32(x), Storage::F32(y)) => Ok(Storage::F32(go(c, lc, x, la, y, lb))),
            (Storage::F64(x), Storage::F64(y)) => Ok(Storage::F64(go(c, lc, x, la, y, lb))),
            (Storage::I64(x), Storage::I64(y)) => Ok(Storage::I64(go(c, lc, x, la, y, lb))),
            (Storage::U8(x), Storage::U8(y)) => Ok(Storage::U8(go(c, lc, x, la, y, lb))),
            (x, y) if x.dtype() != y.dtype() => Err(Error::dtype(
                OP,
                format!("dtypes must match, got {:?} and {:?}", x.dtype(), y.dtype()),
            )),
            (x, _) => Err(Error::unsupported_dtype(OP, x.dtype())),
        }
    }

    /// Index values under `l` as usize, each checked against `size` (dimension `dim` of `shape`).
    pub(crate) fn indices(
        &self,
        op: &'static str,
        l: &Layout,
        size: usize,
        dim: usize,
        shape: &[usize],
    ) -> Result<Vec<usize>> {
        let Storage::I64(v) = self else {
            return Err(Error::dtype(op, format!("indices must be i64, got {:?}", self.dtype())));
        };
        contig(v, l)
            .iter()
            .map(|&i| {
                // Negative indices count from the end, as in PyTorch.
                let j = if i < 0 { i + size as i64 } else { i };
                if j < 0 || j as usize >= size {
                    Err(Error::IndexOutOfRange {
                        op,
                        index: i,
                        size,
                        dim,
                        shape: shape.to_vec(),
                    })
                } else {
                    Ok(j as usize)
                }
            })
            .collect()
    }
}

/// Typed access to a storage's vector, for code that already knows the dtype.
pub trait StorageElem: WithDType {
    fn slice(s: &Storage) -> Option<&[Self]>;
    fn slice_mut(s: &mut Storage) -> Option<&mut Vec<Self>>;
    fn wrap(v: Vec<Self>) -> Storage;
}

macro_rules! storage_elem {
    ($t:ty, $v:ident) => {
        impl StorageElem for $t {
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut Storage) -> Option<&mut Vec<Self>> {
                match s {
                    Storage::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> Storage {
                Storage::$v(v)
            }
        }
    };
}
storage_elem!(f32, F32);
storage_elem!(f64, F64);
storage_elem!(f16, F16);
storage_elem!(bf16, BF16);
storage_elem!(i64, I64);
storage_elem!(u8, U8);
