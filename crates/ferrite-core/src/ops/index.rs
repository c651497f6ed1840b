//! Indexing ops: index_select (embedding lookup), gather, scatter_add.
//!
//! Layer: core (ops). Indices are i64 tensors; each is checked against the indexed dimension and an
//! out-of-range value is reported with the op, the index, the dimension and the shape.

use crate::error::{Error, Result};
use crate::op::Op;
use crate::shape::resolve_dim;
use crate::storage::{contig, Storage};
use crate::tensor::Tensor;
use ferrite_kernels::index as ki;

/// `[outer, dim, inner]` factorization of `shape` around `d`.
fn split3(shape: &[usize], d: usize) -> (usize, usize, usize) {
    (shape[..d].iter().product(), shape[d], shape[d + 1..].iter().product())
}

macro_rules! per_dtype {
    ($s:expr, $l:expr, |$v:ident| $body:expr) => {
        match $s {
            Storage::F32(x) => {
                let $v = contig(x, $l);
                Storage::F32($body)
            }
            Storage::F64(x) => {
                let $v = contig(x, $l);
                Storage::F64($body)
            }
            Storage::F16(x) => {
                let $v = contig(x, $l);
                Storage::F16($body)
            }
            Storage::BF16(x) => {
                let $v = contig(x, $l);
                Storage::BF16($body)
            }
            Storage::I64(x) => {
                let $v = contig(x, $l);
                Storage::I64($body)
            }
            Storage::U8(x) => {
                let $v = contig(x, $l);
                Storage::U8($body)
            }
        }
    };
}

impl Tensor {
    /// Selects entries along `dim` by a 1-D i64 `index` (embedding lookup: `weight.index_select(0, ids)`).
    ///
    /// # Errors
    /// A non-i64 or non-1-D index, or an index outside the dimension (named in the message).
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        const OP: &str = "index_select";
        let d = resolve_dim(OP, dim, self.shape())?;
        if index.ndim() != 1 {
            return Err(Error::invalid(
                OP,
                format!("index must be 1-D, got shape {:?}", index.shape()),
            ));
        }
        let idx = index
            .read()
            .indices(OP, index.layout(), self.shape()[d], d, self.shape())?;
        let (outer, size, inner) = split3(self.shape(), d);
        let s = per_dtype!(&*self.read(), self.layout(), |v| ki::index_select(
            &v, outer, size, inner, &idx
        ));
        let mut shape = self.shape().to_vec();
        shape[d] = idx.len();
        Ok(Tensor::from_op(s, shape, || Op::IndexSelect {
            x: self.clone(),
            index: index.clone(),
            dim: d,
        }))
    }

    /// Embedding lookup for any index shape: `[..] ids -> [.., dim]` rows of a 2-D table.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.ndim() != 2 {
            return Err(Error::invalid(
                "embedding",
                format!("table must be 2-D, got shape {:?}", self.shape()),
            ));
        }
        let flat = ids.reshape([ids.numel()])?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.shape()[1]);
        self.index_select(0, &flat)?.reshape(shape)
    }

    fn check_gather_shapes(&self, op: &'static str, d: usize, index: &Tensor) -> Result<()> {
        let ok = index.ndim() == self.ndim()
            && index
                .shape()
                .iter()
                .zip(self.shape())
                .enumerate()
                .all(|(i, (a, b))| i == d || a == b);
        if !ok {
            return Err(Error::shape(
                op,
                self.shape(),
                index.shape(),
                format!("index must match the input in every dim except {d}"),
            ));
        }
        Ok(())
    }

    /// `out[i][j][k] = self[i][index[i][j][k]][k]` for `dim = 1` (`torch.gather`). The index has the
    /// input's shape except along `dim`.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        const OP: &str = "gather";
        let d = resolve_dim(OP, dim, self.shape())?;
        self.check_gather_shapes(OP, d, index)?;
        let idx = index
            .read()
            .indices(OP, index.layout(), self.shape()[d], d, self.shape())?;
        let (outer, size, inner) = split3(self.shape(), d);
        let n = index.shape()[d];
        let s = per_dtype!(&*self.read(), self.layout(), |v| ki::gather(
            &v, outer, size, inner, &idx, n
        ));
        Ok(Tensor::from_op(s, index.shape().to_vec(), || Op::Gather {
            x: self.clone(),
            index: index.clone(),
            dim: d,
        }))
    }

    /// Returns a copy of `self` with `src` added at `index` along `dim` (`torch.scatter_add`).
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        const OP: &str = "scatter_add";
        let d = resolve_dim(OP, dim, self.shape())?;
        self.check_gather_shapes(OP, d, index)?;
        if src.shape() != index.shape() {
            return Err(Error::shape(
                OP,
                index.shape(),
                src.shape(),
                "src must have the index's shape",
            ));
        }
        if src.dtype() != self.dtype() {
            return Err(Error::dtype(
                OP,
                format!("dtypes must match, got {:?} and {:?}", self.dtype(), src.dtype()),
            ));
        }
        let idx = index
            .read()
            .indices(OP, index.layout(), self.shape()[d], d, self.shape())?;
        let (outer, size, inner) = split3(self.shape(), d);
        let n = index.shape()[d];
        let mut out = self.read().contiguous(self.layout());
        let sv = src.read().contiguous(src.layout());
        match (&mut out, &sv) {
            (Storage::F32(o), Storage::F32(s)) => ki::scatter_add(o, outer, size, inner, &idx, s, n),
            (Storage::F64(o), Storage::F64(s)) => ki::scatter_add(o, outer, size, inner, &idx, s, n),
            (Storage::I64(o), Storage::I64(s)) => ki::scatter_add(o, outer, size, inner, &idx, s, n),
            (o, _) => return Err(Error::unsupported_dtype(OP, o.dtype())),
        }
        Ok(Tensor::from_op(out, self.shape().to_vec(), || Op::ScatterAdd {
            x: self.clone(),
            index: index.clone(),
            src: src.clone(),
            dim: d,
        }))
    }
}

/// index_select backward: `g` summed into zeros of `shape` at `index` along `dim`.
pub(crate) fn index_add_zeros(g: &Tensor, shape: &[usize], dim: usize, index: &Tensor) -> Result<Tensor> {
    let idx = index
        .read()
        .indices("index_select", index.layout(), shape[dim], dim, shape)?;
    let (outer, size, inner) = split3(shape, dim);
    let s = match &*g.read() {
        Storage::F32(v) => Storage::F32(ki::index_add(&contig(v, g.layout()), outer, size, inner, &idx)),
        Storage::F64(v) => Storage::F64(ki::index_add(&contig(v, g.layout()), outer, size, inner, &idx)),
        other => return Err(Error::unsupported_dtype("index_select backward", other.dtype())),
    };
    Ok(Tensor::from_storage(s, shape.to_vec()))
}
