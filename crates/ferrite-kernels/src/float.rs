//! The `Float` trait: the element types every float kernel is written once for (f32 and f64).
//!
//! Layer: kernels (bottom). Must not depend on tensors or autodiff.
//! f64 exists mainly so gradient checks can use finite differences without f32 round-off.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point element type the kernels compute in.
pub trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    const INFINITY: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn from_usize(v: usize) -> Self {
        Self::from_f64(v as f64)
    }
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn erf(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    fn is_nan(self) -> bool;
}

/// `exp` for f32 without a libm call, so loops over it vectorize (softmax, cross-entropy, sigmoid).
///
/// Cephes' `expf`: x = n·ln2 + r with |r| ≤ ln2/2 (n rounded with the 1.5·2²³ trick, ln2 split in two
/// for an exact product), e^r by a degree-6 polynomial, 2ⁿ built from exponent bits in two halves so
/// n = 128 does not overflow the exponent field. Within 2 ulp of the exact value on the normal
/// range (tested); below e^-87.34 (the smallest normal f32) it returns 0, above e^88.72 infinity,
/// NaN stays NaN. Branch-free apart from the final selects.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LO: f32 = -87.336_54;
    const HI: f32 = 88.722_83;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0;
    let xc = x.clamp(LO, HI);
    // t's low mantissa bits hold the rounded integer n (offset by 2²²): read them as bits rather
    // than converting with `as i32`, whose saturating semantics compile to scalar code.
    let t = xc * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let y = p * r * r + r + 1.0;
    let ni = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let (n1, n2) = (ni >> 1, ni - (ni >> 1));
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let v = y * s1 * s2;
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        v
    }
}

/// erf for f32, branch-free so loops over it vectorize: for |x| < 0.5 the Maclaurin series to x¹¹
/// (relative error < 1e-7 there), otherwise Abramowitz & Stegun 7.1.26,
/// 1 − t·P(t)·e^(−x²) with t = 1/(1 + 0.3275911·|x|) (absolute error < 4e-7 in f32) — the form PyTorch's
/// vectorized CPU `erf` uses, so GELU matches it closely. libm's `erff` branches per element and
/// cost a sixth of a BERT forward pass.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    // 2/√π · (x − x³/3 + x⁵/10 − x⁷/42 + x⁹/216 − x¹¹/1320)
    let mut s = -1.0f32 / 1320.0;
    s = s * x2 + 1.0 / 216.0;
    s = s * x2 - 1.0 / 42.0;
    s = s * x2 + 1.0 / 10.0;
    s = s * x2 - 1.0 / 3.0;
    s = s * x2 + 1.0;
    let small = std::f32::consts::FRAC_2_SQRT_PI * x * s;
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let mut p = 1.061_405_4f32;
    p = p * t - 1.453_152;
    p = p * t + 1.421_413_8;
    p = p * t - 0.284_496_74;
    p = p * t + 0.254_829_6;
    let large = (1.0 - t * p * exp_f32(-x2)).copysign(x);
    if a < 0.5 {
        small
    } else {
        large
    }
}

macro_rules! impl_float {
    ($t:ty, $erf:path, $exp:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const INFINITY: Self = <$t>::INFINITY;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}

impl_float!(f32, erf_f32, exp_f32);
impl_float!(f64, libm::erf, f64::exp);

#[cfg(test)]
mod exp_tests {
    use super::{erf_f32, exp_f32};

    #[test]
    fn fast_erf_is_close_to_libm() {
        let (mut worst_abs, mut worst_rel) = (0f64, 0f64);
        let mut x = -6.0f32;
        while x <= 6.0 {
            let want = libm::erf(f64::from(x));
            let got = f64::from(erf_f32(x));
            worst_abs = worst_abs.max((got - want).abs());
            if want != 0.0 {
                worst_rel = worst_rel.max(((got - want) / want).abs());
            }
            x += 1.0e-4;
        }
        assert!(worst_abs < 4e-7, "abs error {worst_abs}");
        assert!(worst_rel < 1e-6, "rel error {worst_rel}");
        assert_eq!(erf_f32(0.0), 0.0);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert!(erf_f32(f32::NAN).is_nan());
    }

    #[test]
    fn fast_exp_is_within_two_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.5 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            let ulp = (want as f32).abs() * f32::EPSILON;
            worst = worst.max((got - want).abs() / ulp as f64);
            x += 0.0137;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
