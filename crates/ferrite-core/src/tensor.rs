//! `Tensor`: one type for every dtype and shape. A cheap-to-clone handle (an `Arc`) to a layout over
//! shared storage, plus the op that produced it when gradients are being recorded.
//!
//! Layer: core. Creation, accessors and in-place updates live here; ops live in `ops/`.

use crate::dtype::{DType, WithDType};
use crate::error::{Error, Result};
use crate::grad_mode::is_grad_enabled;
use crate::layout::Layout;
use crate::op::Op;
use crate::rng::{with_default_rng, Rng};
use crate::shape::{concrete_shape, ShapeArg};
use crate::storage::{Storage, StorageElem};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A unique id per tensor handle; gradients are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        TensorId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct Inner {
    id: TensorId,
    storage: Arc<RwLock<Storage>>,
    layout: Layout,
    dtype: DType,
    op: Option<Op>,
    variable: bool,
}

/// An n-dimensional array with optional gradient tracking.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

impl Tensor {
    // ---- construction -------------------------------------------------------------------------

    pub(crate) fn from_storage(storage: Storage, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(storage.len(), shape.iter().product::<usize>());
        let dtype = storage.dtype();
        Tensor(Arc::new(Inner {
            id: TensorId::next(),
            storage: Arc::new(RwLock::new(storage)),
            layout: Layout::contiguous(shape),
            dtype,
            op: None,
            variable: false,
        }))
    }

    /// A result tensor; records `op` when recording is on and any of its inputs tracks gradients.
    pub(crate) fn from_op(storage: Storage, shape: Vec<usize>, op: impl FnOnce() -> Op) -> Tensor {
        let t = Tensor::from_storage(storage, shape);
        t.with_op(op)
    }

    /// A view sharing this tensor's storage with a new layout.
    pub(crate) fn view_with(&self, layout: Layout, op: impl FnOnce() -> Op) -> Tensor {
        let t = Tensor(Arc::new(Inner {
            id: TensorId::next(),
            storage: self.0.storage.clone(),
            layout,
            dtype: self.0.dtype,
            op: None,
            variable: false,
        }));
        t.with_op(op)
    }

    fn with_op(self, op: impl FnOnce() -> Op) -> Tensor {
        if !is_grad_enabled() {
            return self;
        }
        let op = op();
        if !op.inputs().iter().any(|t| t.requires_grad()) {
            return self;
        }
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.op = Some(op);
                Tensor(Arc::new(inner))
            }
            Err(arc) => Tensor(arc),
        }
    }

    /// A tensor from a vector and a shape; errors if the element count differs.
    ///
    /// ```
    /// use ferrite_core::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// assert_eq!(t.shape(), &[2, 3]);
    /// ```
    pub fn from_vec<T: StorageElem>(data: Vec<T>, shape: impl ShapeArg) -> Result<Tensor> {
        let shape = concrete_shape("from_vec", &shape)?;
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::invalid(
                "from_vec",
                format!("{} elements cannot have shape {shape:?} ({n} elements)", data.len()),
            ));
        }
        Ok(Tensor::from_storage(T::wrap(data), shape))
    }

    /// A 1-D tensor copied from a slice.
    pub fn from_slice<T: StorageElem>(data: &[T]) -> Tensor {
        Tensor::from_storage(T::wrap(data.to_vec()), vec![data.len()])
    }

    /// A 0-d f32 tensor.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_storage(Storage::F32(vec![v]), vec![])
    }

    /// A tensor filled with `value`, of the given dtype.
    ///
    /// # Errors
    /// A negative size, or one the allocator refuses (named with the shape and bytes) — a
    /// corrupted config asking for 10¹² rows is an error, not an abort.
    pub fn full_dtype(shape: impl ShapeArg, value: f64, dtype: DType) -> Result<Tensor> {
        let shape = concrete_shape("full", &shape)?;
        let n = allocation_size("full", &shape, dtype.size_in_bytes())?;
        let storage =
            Storage::try_full(dtype, n, value).map_err(|_| allocation_error("full", &shape, dtype.size_in_bytes()))?;
        Ok(Tensor::from_storage(storage, shape))
    }

    /// An f32 tensor filled with `value`; errors on a negative size.
    pub fn full(shape: impl ShapeArg, value: f32) -> Result<Tensor> {
        Tensor::full_dtype(shape, value as f64, DType::F32)
    }

    /// f32 zeros; errors on a negative size.
    pub fn zeros(shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::full(shape, 0.0)
    }

    /// f32 ones; errors on a negative size.
    pub fn ones(shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::full(shape, 1.0)
    }

    /// Zeros with this tensor's shape and dtype.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::from_storage(Storage::full(self.dtype(), self.numel(), 0.0), self.shape().to_vec())
    }

    /// Ones with this tensor's shape and dtype.
    pub fn ones_like(&self) -> Tensor {
        Tensor::from_storage(Storage::full(self.dtype(), self.numel(), 1.0), self.shape().to_vec())
    }

    /// `[start, start+step, …)` below `end`, as f32 (like `torch.arange`).
    pub fn arange(start: f64, end: f64, step: f64) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || (end - start) / step < 0.0 {
            return Err(Error::invalid(
                "arange",
                format!("invalid range {start}..{end} step {step}"),
            ));
        }
        let n = ((end - start) / step).ceil() as usize;
        let v: Vec<f32> = (0..n).map(|i| (start + i as f64 * step) as f32).collect();
        Ok(Tensor::from_storage(Storage::F32(v), vec![n]))
    }

    /// `[start, end)` as i64 indices.
    pub fn arange_i64(start: i64, end: i64) -> Tensor {
        let v: Vec<i64> = (start..end.max(start)).collect();
        let n = v.len();
        Tensor::from_storage(Storage::I64(v), vec![n])
    }

    fn sample(
        shape: impl ShapeArg,
        op: &'static str,
        rng: Option<&mut Rng>,
        f: impl Fn(&mut Rng) -> f64,
    ) -> Result<Tensor> {
        let shape = concrete_shape(op, &shape)?;
        let n = allocation_size(op, &shape, 4)?;
        let mut v: Vec<f32> = Vec::new();
        v.try_reserve_exact(n).map_err(|_| allocation_error(op, &shape, 4))?;
        let mut draw = |r: &mut Rng| v.extend((0..n).map(|_| f(r) as f32));
        match rng {
            Some(r) => draw(r),
            None => with_default_rng(draw),
        }
        Ok(Tensor::from_storage(Storage::F32(v), shape))
    }

    /// Uniform [0, 1) f32 samples from the default generator (see [`crate::manual_seed`]).
    pub fn rand(shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::sample(shape, "rand", None, |r| r.uniform())
    }

    /// Standard-normal f32 samples from the default generator.
    pub fn randn(shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::sample(shape, "randn", None, |r| r.normal())
    }

    /// Uniform [lo, hi) f32 samples from the default generator.
    pub fn uniform(shape: impl ShapeArg, lo: f64, hi: f64) -> Result<Tensor> {
        Tensor::sample(shape, "uniform", None, move |r| lo + (hi - lo) * r.uniform())
    }

    /// Standard-normal f32 samples from an explicit generator.
    pub fn randn_with(rng: &mut Rng, shape: impl ShapeArg) -> Result<Tensor> {
        Tensor::sample(shape, "randn", Some(rng), |r| r.normal())
    }

    /// Uniform [lo, hi) f32 samples from an explicit generator.
    pub fn uniform_with(rng: &mut Rng, shape: impl ShapeArg, lo: f64, hi: f64) -> Result<Tensor> {
        Tensor::sample(shape, "uniform", Some(rng), move |r| lo + (hi - lo) * r.uniform())
    }

    // ---- accessors ----------------------------------------------------------------------------

    pub fn id(&self) -> TensorId {
        self.0.id
    }
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }
    /// Same as [`Tensor::shape`] (PyTorch's `size()`).
    pub fn dims(&self) -> &[usize] {
        self.shape()
    }
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    pub(crate) fn op(&self) -> Option<&Op> {
        self.0.op.as_ref()
    }
    /// Size of dimension `dim` (negative counts from the end).
    pub fn size(&self, dim: isize) -> Result<usize> {
        let d = crate::shape::resolve_dim("size", dim, self.shape())?;
        Ok(self.shape()[d])
    }

    /// True for a leaf that gradients are computed for, or a result computed from one.
    pub fn requires_grad(&self) -> bool {
        self.0.variable || self.0.op.is_some()
    }

    /// True unless this tensor was produced by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.op.is_none()
    }

    /// Marks (or unmarks) this tensor as a leaf that gradients are computed for. Returns a new handle
    /// sharing the same storage; use the returned tensor in computations.
    pub fn requires_grad_(self, on: bool) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::next(),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            op: None,
            variable: on,
        }))
    }

    /// A deep, contiguous copy with its own storage, detached from the graph.
    pub fn copy(&self) -> Tensor {
        Tensor::from_storage(self.read().contiguous(self.layout()), self.shape().to_vec())
    }

    /// The same values, cut from the graph (shares storage).
    pub fn detach(&self) -> Tensor {
        if !self.requires_grad() {
            return self.clone();
        }
        self.clone().requires_grad_(false)
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.write().unwrap_or_else(|e| e.into_inner())
    }

    /// True when both handles share one storage buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    // ---- reading out ----------------------------------------------------------------------------

    /// All elements in row-major order, converted to `T`'s dtype if needed.
    pub fn to_vec<T: StorageElem>(&self) -> Result<Vec<T>> {
        let s = self.read();
        if s.dtype() == T::DTYPE {
            let v = T::slice(&s).expect("ferrite bug: dtype and storage variant disagree");
            return Ok(crate::storage::contig(v, self.layout()).into_owned());
        }
        let conv = s.to_dtype(self.layout(), T::DTYPE);
        Ok(T::slice(&conv)
            .expect("ferrite bug: to_dtype returned another dtype")
            .to_vec())
    }

    /// All elements as f64, whatever the dtype.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.read().to_f64_vec(self.layout())
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "item",
                format!("needs exactly one element, got shape {:?}", self.shape()),
            ));
        }
        Ok(self.to_f64_vec()[0])
    }

    // ---- in-place updates (never recorded) ------------------------------------------------------

    /// Applies `f` to this tensor's elements in place, without recording. The tensor must be
    /// contiguous and own its whole storage range (as parameters do); used by optimizers.
    pub fn update_<T: StorageElem>(&self, f: impl FnOnce(&mut [T])) -> Result<()> {
        let range = self.layout().contiguous_range().ok_or_else(|| {
            Error::invalid(
                "update_",
                format!(
                    "needs a contiguous tensor, got shape {:?} with strides {:?}",
                    self.shape(),
                    self.layout().strides()
                ),
            )
        })?;
        let mut s = self.write();
        let dtype = s.dtype();
        let v = T::slice_mut(&mut s)
            .ok_or_else(|| Error::dtype("update_", format!("tensor is {dtype:?}, not {:?}", T::DTYPE)))?;
        f(&mut v[range]);
        Ok(())
    }

    /// Copies `src`'s values into this tensor in place (same shape and dtype), without recording.
    pub fn assign_(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::shape("assign_", self.shape(), src.shape(), ""));
        }
        if src.dtype() != self.dtype() {
            return Err(Error::dtype(
                "assign_",
                format!("dtypes must match, got {:?} and {:?}", self.dtype(), src.dtype()),
            ));
        }
        let data = src.read().contiguous(src.layout());
        let range = self
            .layout()
            .contiguous_range()
            .ok_or_else(|| Error::invalid("assign_", "destination must be contiguous"))?;
        let mut s = self.write();
        macro_rules! copy {
            ($($v:ident),*) => {
                match (&mut *s, &data) {
                    $((Storage::$v(d), Storage::$v(x)) => d[range].copy_from_slice(x),)*
                    _ => unreachable!("ferrite bug: dtypes checked above"),
                }
            };
        }
        copy!(F32, F64, F16, BF16, I64, U8);
        Ok(())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.to_f64_vec();
        let shown: Vec<f64> = v.iter().take(8).copied().collect();
        write!(
            f,
            "Tensor(shape={:?}, dtype={:?}, values={:?}{})",
            self.shape(),
            self.dtype(),
            shown,
            if v.len() > 8 { " …" } else { "" }
        )
    }
}

/// Conversion of Rust values into tensors (`Tensor::new(&[1.0f32, 2.0])`).
impl Tensor {
    /// A 1-D tensor from a slice of any supported element type.
    pub fn new<T: StorageElem>(data: &[T]) -> Tensor {
        Tensor::from_slice(data)
    }

    /// The element type's dtype for `T` (helper for generic code).
    pub fn dtype_of<T: WithDType>() -> DType {
        T::DTYPE
    }
}

/// The element count of `shape`, or an error if it (times `elem_bytes`) overflows `usize`.
fn allocation_size(op: &'static str, shape: &[usize], elem_bytes: usize) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| n.checked_mul(elem_bytes).is_some())
        .ok_or_else(|| Error::invalid(op, format!("shape {shape:?} has more elements than any memory holds")))
}

fn allocation_error(op: &'static str, shape: &[usize], elem_bytes: usize) -> Error {
    let bytes = shape.iter().product::<usize>() as f64 * elem_bytes as f64;
    Error::invalid(
        op,
        format!(
            "cannot allocate a tensor of shape {shape:?} ({:.3e} bytes): not enough memory",
            bytes
        ),
    )
}
