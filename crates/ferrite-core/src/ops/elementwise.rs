//! Elementwise ops: unary math and activations, scalar affine/pow/clamp, broadcasting binary ops,
//! comparisons, `where`/`masked_fill`, and dtype conversion.
//!
//! Layer: core (ops). Backward rules: `backward.rs`.

use super::read2;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::shape::broadcast_shapes;
use crate::storage::Storage;
use crate::tensor::Tensor;
use ferrite_kernels::elementwise::{BinaryFn, CmpFn, UnaryFn};

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => $f:ident,)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Result<Tensor> {
                    self.unary_op(UnaryFn::$f, stringify!($name))
                }
            )*
        }
    };
}

unary_ops! {
    /// −x
    neg => Neg,
    /// eˣ
    exp => Exp,
    /// Natural logarithm.
    log => Log,
    /// √x
    sqrt => Sqrt,
    /// 1/√x
    rsqrt => Rsqrt,
    /// 1/x
    recip => Recip,
    /// x²
    sqr => Sqr,
    /// |x|
    abs => Abs,
    /// −1, 0 or 1 (gradient zero).
    sign => Sign,
    /// max(x, 0)
    relu => Relu,
    /// x·σ(x) (also called swish).
    silu => Silu,
    /// 1/(1+e⁻ˣ)
    sigmoid => Sigmoid,
    /// tanh(x)
    tanh => Tanh,
}

impl Tensor {
    pub(crate) fn unary_op(&self, f: UnaryFn, name: &'static str) -> Result<Tensor> {
        let s = self.read().unary(name, self.layout(), f)?;
        Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::Unary(self.clone(), f)))
    }

    /// g ⊙ f'(x) for a recorded unary op with input `x` and output `y` (used by backward).
    pub(crate) fn unary_backward(g: &Tensor, x: &Tensor, y: &Tensor, f: UnaryFn) -> Result<Tensor> {
        let v = if f.grad_uses_output() { y } else { x };
        let s = read2(g, v, |gs, vs| gs.unary_backward(g.layout(), vs, v.layout(), f))?;
        Ok(Tensor::from_storage(s, g.shape().to_vec()))
    }

    /// GELU. `approximate = false` is the exact erf form (PyTorch's default); `true` is the tanh form.
    ///
    /// ```
    /// use ferrite_core::Tensor;
    /// let y = Tensor::new(&[0.0f32, 1.0]).gelu(false).unwrap();
    /// assert!((y.to_vec::<f32>().unwrap()[1] - 0.841_344_7).abs() < 1e-6);
    /// ```
    pub fn gelu(&self, approximate: bool) -> Result<Tensor> {
        if approximate {
            self.unary_op(UnaryFn::GeluTanh, "gelu")
        } else {
            self.unary_op(UnaryFn::Gelu, "gelu")
        }
    }

    /// x·mul + add, elementwise.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        let s = self.read().affine("affine", self.layout(), mul, add)?;
        Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::Affine {
            x: self.clone(),
            mul,
            add,
        }))
    }

    /// x + v
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, v)
    }
    /// x − v
    pub fn sub_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, -v)
    }
    /// x · v
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(v, 0.0)
    }
    /// x / v
    pub fn div_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0 / v, 0.0)
    }

    /// xᵉ for a scalar exponent.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        let s = self.read().powf("powf", self.layout(), e)?;
        Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::Powf(self.clone(), e)))
    }

    /// Clamps into [min, max]; the gradient passes where min ≤ x ≤ max.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max {
            return Err(Error::invalid("clamp", format!("min {min} is greater than max {max}")));
        }
        let s = self.read().clamp("clamp", self.layout(), min, max)?;
        Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::Clamp {
            x: self.clone(),
            min,
            max,
        }))
    }

    fn binary_op(&self, rhs: &Tensor, f: BinaryFn, name: &'static str) -> Result<Tensor> {
        let shape = broadcast_shapes(name, self.shape(), rhs.shape())?;
        let la = self.layout().broadcast_as(name, &shape)?;
        let lb = rhs.layout().broadcast_as(name, &shape)?;
        let s = read2(self, rhs, |a, b| a.binary(name, &la, b, &lb, f))?;
        Ok(Tensor::from_op(s, shape, || Op::Binary(self.clone(), rhs.clone(), f)))
    }

    /// Elementwise sum with broadcasting.
    ///
    /// # Errors
    /// Shapes that do not broadcast: the message names `add` and both shapes.
    ///
    /// ```
    /// use ferrite_core::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let b = Tensor::new(&[10.0f32, 20.0]);
    /// assert_eq!(a.add(&b).unwrap().to_vec::<f32>().unwrap(), vec![11.0, 22.0, 13.0, 24.0]);
    /// ```
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryFn::Add, "add")
    }
    /// Elementwise difference with broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryFn::Sub, "sub")
    }
    /// Elementwise product with broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryFn::Mul, "mul")
    }
    /// Elementwise quotient with broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryFn::Div, "div")
    }
    /// Elementwise power with broadcasting (base must be positive where the exponent's gradient is needed).
    pub fn pow(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryFn::Pow, "pow")
    }
    /// Elementwise maximum with broadcasting.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryFn::Maximum, "maximum")
    }
    /// Elementwise minimum with broadcasting.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryFn::Minimum, "minimum")
    }

    fn compare(&self, rhs: &Tensor, f: CmpFn, name: &'static str) -> Result<Tensor> {
        let shape = broadcast_shapes(name, self.shape(), rhs.shape())?;
        let la = self.layout().broadcast_as(name, &shape)?;
        let lb = rhs.layout().broadcast_as(name, &shape)?;
        let s = read2(self, rhs, |a, b| a.compare(name, &la, b, &lb, f))?;
        Ok(Tensor::from_storage(s, shape))
    }

    /// A same-dtype scalar tensor, for comparing with a number.
    fn scalar_like(&self, v: f64) -> Result<Tensor> {
        Tensor::full_dtype([0usize; 0], v, self.dtype())
    }

    /// Mask (u8) of `self == rhs`, broadcasting.
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpFn::Eq, "eq")
    }
    /// Mask of `self != rhs`.
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpFn::Ne, "ne")
    }
    /// Mask of `self < rhs`.
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpFn::Lt, "lt")
    }
    /// Mask of `self <= rhs`.
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpFn::Le, "le")
    }
    /// Mask of `self > rhs`.
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpFn::Gt, "gt")
    }
    /// Mask of `self >= rhs`.
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpFn::Ge, "ge")
    }
    /// Mask of `self == v`.
    pub fn eq_scalar(&self, v: f64) -> Result<Tensor> {
        self.eq(&self.scalar_like(v)?)
    }
    /// Mask of `self > v`.
    pub fn gt_scalar(&self, v: f64) -> Result<Tensor> {
        self.gt(&self.scalar_like(v)?)
    }
    /// Mask of `self >= v`.
    pub fn ge_scalar(&self, v: f64) -> Result<Tensor> {
        self.ge(&self.scalar_like(v)?)
    }
    /// Mask of `self < v`.
    pub fn lt_scalar(&self, v: f64) -> Result<Tensor> {
        self.lt(&self.scalar_like(v)?)
    }
    /// Mask of `self <= v`.
    pub fn le_scalar(&self, v: f64) -> Result<Tensor> {
        self.le(&self.scalar_like(v)?)
    }

    /// `cond ? self : other` elementwise; `cond` is a u8 mask; all three broadcast together.
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        const OP: &str = "where";
        let shape = broadcast_shapes(OP, cond.shape(), a.shape())?;
        let shape = broadcast_shapes(OP, &shape, b.shape())?;
        let lc = cond.layout().broadcast_as(OP, &shape)?;
        let la = a.layout().broadcast_as(OP, &shape)?;
        let lb = b.layout().broadcast_as(OP, &shape)?;
        let s = {
            let sc = cond.read();
            read2(a, b, |sa, sb| Storage::where_cond(&sc, &lc, sa, &la, sb, &lb))?
        };
        Ok(Tensor::from_op(s, shape, || Op::Where {
            cond: cond.clone(),
            a: a.clone(),
            b: b.clone(),
        }))
    }

    /// Replaces elements where `mask` (u8, broadcastable) is set with `value`.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        let fill = self.scalar_like(value)?;
        Tensor::where_cond(mask, &fill, self)
    }

    /// Converts to `dtype`. Float-to-float conversions pass gradients through.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let s = self.read().to_dtype(self.layout(), dtype);
        if dtype.is_float() && self.dtype().is_float() {
            Ok(Tensor::from_op(s, self.shape().to_vec(), || Op::ToDType(self.clone())))
        } else {
            Ok(Tensor::from_storage(s, self.shape().to_vec()))
        }
    }
}
