//! Arithmetic operators on tensors, as candle spells them: `(&a + &b)?`, `(&x * 2.0)?`,
//! `(-&x)?`. Each returns a `Result` (shapes may not broadcast) and is exactly the named op
//! (`add`, `sub`, `mul`, `div`, `affine`, `neg`), gradients included.
//!
//! Layer: core.
//!
//! ```
//! use ferrite_core::Tensor;
//! let a = Tensor::from_vec(vec![1.0f32, 2.0], [2])?;
//! let b = Tensor::from_vec(vec![10.0f32, 20.0], [2])?;
//! let c = ((&a + &b)? * 2.0)?;
//! assert_eq!(c.to_vec::<f32>()?, vec![22.0, 44.0]);
//! assert_eq!((-&a)?.to_vec::<f32>()?, vec![-1.0, -2.0]);
//! assert!((&a + &Tensor::zeros([3])?).is_err()); // [2] and [3] do not broadcast
//! # Ok::<(), ferrite_core::Error>(())
//! ```

use crate::error::Result;
use crate::tensor::Tensor;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// `tensor ∘ tensor` for every combination of owned and borrowed operands.
macro_rules! tensor_op {
    ($trait:ident, $method:ident) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$method(self, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::$method(self, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$method(&self, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::$method(&self, &rhs)
            }
        }
    };
}

tensor_op!(Add, add);
tensor_op!(Sub, sub);
tensor_op!(Mul, mul);
tensor_op!(Div, div);

/// `tensor ∘ scalar` as one affine map `x·mul + add`.
macro_rules! scalar_op {
    ($trait:ident, $method:ident, |$v:ident| ($mul:expr, $add:expr)) => {
        impl $trait<f64> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, $v: f64) -> Result<Tensor> {
                self.affine($mul, $add)
            }
        }
        impl $trait<f64> for Tensor {
            type Output = Result<Tensor>;
            fn $method(self, $v: f64) -> Result<Tensor> {
                self.affine($mul, $add)
            }
        }
    };
}

scalar_op!(Add, add, |v| (1.0, v));
scalar_op!(Sub, sub, |v| (1.0, -v));
scalar_op!(Mul, mul, |v| (v, 0.0));
scalar_op!(Div, div, |v| (1.0 / v, 0.0));

impl Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(&self)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn operators_are_the_named_ops_with_gradients() {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3])
            .unwrap()
            .requires_grad_(true);
        let b = Tensor::from_vec(vec![4.0f32], [1]).unwrap();
        let y = ((((&a * &b).unwrap() - 1.0).unwrap() / 2.0).unwrap() + &a).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.5, 5.5, 8.5]);
        let g = y.sum_all().unwrap().backward().unwrap();
        // d/da (a·4 − 1)/2 + a = 3
        assert_eq!(g.get(&a).unwrap().to_vec::<f32>().unwrap(), vec![3.0; 3]);
        let e = (&a + &Tensor::zeros([2]).unwrap()).unwrap_err().to_string();
        assert!(e.contains("[3]") && e.contains("[2]"), "{e}");
    }
}
