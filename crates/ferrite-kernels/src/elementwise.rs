//! Elementwise kernels: strided unary maps, broadcasting binary maps, and the scalar functions
//! (activations and their derivatives) they apply.
//!
//! Layer: kernels. Output is always a fresh contiguous buffer; inputs are (slice, offset, strides).
//! Work is split across threads only above `PAR_MIN_ELEMS`.

use crate::float::Float;
use crate::strided::Plan;
use crate::threads;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A strided read-only operand.
#[derive(Clone, Copy, Debug)]
pub struct Src<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub strides: &'a [usize],
}

/// Rows per parallel task so each task gets at least `PAR_MIN_ELEMS / 4` elements.
fn rows_per_task(inner: usize, rows: usize, threads: usize) -> usize {
    let min_rows = (threads::PAR_MIN_ELEMS / 4).div_ceil(inner.max(1));
    rows.div_ceil(threads * 4).max(min_rows).max(1)
}

/// `out[i] = f(a[i])` over `shape`, reading `a` through its strides.
pub fn map_strided<T: Copy + Sync, U: Copy + Send + Default>(
    shape: &[usize],
    a: Src<'_, T>,
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    let total: usize = shape.iter().product();
    if total == 0 {
        return Vec::new();
    }
    let plan = Plan::<1>::new(shape, [a.strides]);
    let inner = plan.inner_len;
    let sa = plan.inner_strides[0];
    if !threads::should_parallelize(total) {
        // Serial: append row by row, so the buffer is never zero-filled first.
        let mut out = Vec::with_capacity(total);
        plan.for_rows(0, plan.rows(), |_, [oa]| {
            let base = a.offset + oa;
            if sa == 1 {
                let start = out.len();
                map_into(&a.data[base..base + inner], &mut out.spare_capacity_mut()[..inner], &f);
                // SAFETY: map_into wrote the `inner` elements after `start`.
                unsafe { out.set_len(start + inner) };
            } else {
                out.extend((0..inner).map(|i| f(a.data[base + i * sa])));
            }
        });
        return out;
    }
    // Filled in parallel without a zero-fill first: every element is written exactly once.
    let mut out: Vec<U> = Vec::with_capacity(total);
    let buf = &mut out.spare_capacity_mut()[..total];
    let run = |start: usize, chunk: &mut [MaybeUninit<U>]| {
        let rows = chunk.len() / inner;
        plan.for_rows(start, rows, |r, [oa]| {
            let o = &mut chunk[(r - start) * inner..(r - start + 1) * inner];
            let base = a.offset + oa;
            if sa == 1 {
                map_into(&a.data[base..base + inner], o, &f);
            } else {
                for (i, o) in o.iter_mut().enumerate() {
                    *o = MaybeUninit::new(f(a.data[base + i * sa]));
                }
            }
        });
    };
    if plan.rows() > 1 {
        threads::install(|n| {
            let per = rows_per_task(inner, plan.rows(), n);
            buf.par_chunks_mut(per * inner)
                .enumerate()
                .for_each(|(t, chunk)| run(t * per, chunk));
        });
    } else {
        // One long run: split the run itself.
        threads::install(|_| {
            let per = threads::PAR_MIN_ELEMS / 4;
            buf.par_chunks_mut(per).enumerate().for_each(|(t, chunk)| {
                let start = a.offset + t * per * sa;
                if sa == 1 {
                    map_into(&a.data[start..start + chunk.len()], chunk, &f);
                } else {
                    for (i, o) in chunk.iter_mut().enumerate() {
                        *o = MaybeUninit::new(f(a.data[start + i * sa]));
                    }
                }
            });
        });
    }
    // SAFETY: the tasks above wrote all `total` elements (the chunks cover the buffer).
    unsafe { out.set_len(total) };
    out
}

crate::simd::wide_fn! {
    /// `dst[i] = f(src[i])` over equal-length contiguous slices (the vectorizable inner loop of
    /// [`map_strided`]).
    fn map_into<T: Copy, U: Copy, F: Fn(T) -> U>(src: &[T], dst: &mut [MaybeUninit<U>], f: &F) {
        for (o, x) in dst.iter_mut().zip(src) {
            *o = MaybeUninit::new(f(*x));
        }
    }
}

/// `out[i] = f(a[i], b[i])` over the broadcast `shape`; broadcast operands have stride 0.
pub fn zip_strided<T: Copy + Sync, V: Copy + Sync, U: Copy + Send + Default>(
    shape: &[usize],
    a: Src<'_, T>,
    b: Src<'_, V>,
    f: impl Fn(T, V) -> U + Sync,
) -> Vec<U> {
    let total: usize = shape.iter().product();
    if total == 0 {
        return Vec::new();
    }
    let plan = Plan::<2>::new(shape, [a.strides, b.strides]);
    let inner = plan.inner_len;
    let [sa, sb] = plan.inner_strides;
    if !threads::should_parallelize(total) {
        // Serial: append row by row, so the buffer is never zero-filled first.
        let mut out = Vec::with_capacity(total);
        plan.for_rows(0, plan.rows(), |_, [oa, ob]| {
            let (ba, bb) = (a.offset + oa, b.offset + ob);
            match (sa, sb) {
                (1, 1) => out.extend(
                    a.data[ba..ba + inner]
                        .iter()
                        .zip(&b.data[bb..bb + inner])
                        .map(|(&x, &y)| f(x, y)),
                ),
                (1, 0) => {
                    let y = b.data[bb];
                    out.extend(a.data[ba..ba + inner].iter().map(|&x| f(x, y)))
                }
                (0, 1) => {
                    let x = a.data[ba];
                    out.extend(b.data[bb..bb + inner].iter().map(|&y| f(x, y)))
                }
                _ => out.extend((0..inner).map(|i| f(a.data[ba + i * sa], b.data[bb + i * sb]))),
            }
        });
        return out;
    }
    // Filled in parallel without a zero-fill first: every element is written exactly once.
    let mut out: Vec<U> = Vec::with_capacity(total);
    let buf = &mut out.spare_capacity_mut()[..total];
    let row = |o: &mut [MaybeUninit<U>], oa: usize, ob: usize| {
        let (ba, bb) = (a.offset + oa, b.offset + ob);
        match (sa, sb) {
            (1, 1) => {
                for ((o, x), y) in o.iter_mut().zip(&a.data[ba..ba + inner]).zip(&b.data[bb..bb + inner]) {
                    *o = MaybeUninit::new(f(*x, *y));
                }
            }
            (1, 0) => {
                let y = b.data[bb];
                for (o, x) in o.iter_mut().zip(&a.data[ba..ba + inner]) {
                    *o = MaybeUninit::new(f(*x, y));
                }
            }
            (0, 1) => {
                let x = a.data[ba];
                for (o, y) in o.iter_mut().zip(&b.data[bb..bb + inner]) {
                    *o = MaybeUninit::new(f(x, *y));
                }
            }
            _ => {
                for (i, o) in o.iter_mut().enumerate() {
                    *o = MaybeUninit::new(f(a.data[ba + i * sa], b.data[bb + i * sb]));
                }
            }
        }
    };
    let run = |start: usize, chunk: &mut [MaybeUninit<U>]| {
        let rows = chunk.len() / inner;
        plan.for_rows(start, rows, |r, [oa, ob]| {
            row(&mut chunk[(r - start) * inner..(r - start + 1) * inner], oa, ob)
        });
    };
    if plan.rows() > 1 {
        threads::install(|n| {
            let per = rows_per_task(inner, plan.rows(), n);
            buf.par_chunks_mut(per * inner)
                .enumerate()
                .for_each(|(t, chunk)| run(t * per, chunk));
        });
    } else {
        // One long run: split the run itself.
        threads::install(|_| {
            let per = threads::PAR_MIN_ELEMS / 4;
            buf.par_chunks_mut(per).enumerate().for_each(|(t, chunk)| {
                let start = t * per;
                for (i, o) in chunk.iter_mut().enumerate() {
                    *o = MaybeUninit::new(f(
                        a.data[a.offset + (start + i) * sa],
                        b.data[b.offset + (start + i) * sb],
                    ));
                }
            });
        });
    }
    // SAFETY: the tasks above wrote all `total` elements (the chunks cover the buffer).
    unsafe { out.set_len(total) };
    out
}

/// `out[i] = f(c[i], a[i], b[i])` with all three broadcast to `shape` (used by `where`).
pub fn zip3_strided<C: Copy + Sync, T: Copy + Sync + Send + Default>(
    shape: &[usize],
    c: Src<'_, C>,
    a: Src<'_, T>,
    b: Src<'_, T>,
    f: impl Fn(C, T, T) -> T + Sync,
) -> Vec<T> {
    let total: usize = shape.iter().product();
    let mut out = vec![T::default(); total];
    if total == 0 {
        return out;
    }
    let plan = Plan::<3>::new(shape, [c.strides, a.strides, b.strides]);
    let inner = plan.inner_len;
    let [sc, sa, sb] = plan.inner_strides;
    plan.for_rows(0, plan.rows(), |r, [oc, oa, ob]| {
        let o = &mut out[r * inner..(r + 1) * inner];
        for (i, o) in o.iter_mut().enumerate() {
            *o = f(
                c.data[c.offset + oc + i * sc],
                a.data[a.offset + oa + i * sa],
                b.data[b.offset + ob + i * sb],
            );
        }
    });
    out
}

/// The scalar functions behind unary ops. Derivative forms (`*Grad`) take the op's input `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryFn {
    Neg,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Recip,
    Sqr,
    Abs,
    Sign,
    Relu,
    /// GELU with the exact erf form: x·Φ(x).
    Gelu,
    /// GELU with the tanh approximation (PyTorch `approximate="tanh"`).
    GeluTanh,
    Silu,
    Sigmoid,
    Tanh,
    /// d/dx GELU(x) (erf form).
    GeluGrad,
    /// d/dx GELU(x) (tanh form).
    GeluTanhGrad,
    /// d/dx SiLU(x).
    SiluGrad,
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_TANH_C: f64 = 0.044_715;
const INV_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl UnaryFn {
    /// Applies the function to one element.
    #[inline(always)]
    pub fn apply<T: Float>(self, x: T) -> T {
        let one = T::ONE;
        let half = T::from_f64(0.5);
        match self {
            UnaryFn::Neg => -x,
            UnaryFn::Exp => x.exp(),
            UnaryFn::Log => x.ln(),
            UnaryFn::Sqrt => x.sqrt(),
            UnaryFn::Rsqrt => one / x.sqrt(),
            UnaryFn::Recip => one / x,
            UnaryFn::Sqr => x * x,
            UnaryFn::Abs => x.abs(),
            UnaryFn::Sign => {
                if x > T::ZERO {
                    one
                } else if x < T::ZERO {
                    -one
                } else {
                    T::ZERO
                }
            }
            UnaryFn::Relu => {
                if x > T::ZERO {
                    x
                } else {
                    T::ZERO
                }
            }
            UnaryFn::Gelu => half * x * (one + (x * T::from_f64(INV_SQRT_2)).erf()),
            UnaryFn::GeluTanh => {
                let inner = T::from_f64(SQRT_2_OVER_PI) * (x + T::from_f64(GELU_TANH_C) * x * x * x);
                half * x * (one + inner.tanh())
            }
            UnaryFn::Silu => x / (one + (-x).exp()),
            UnaryFn::Sigmoid => one / (one + (-x).exp()),
            UnaryFn::Tanh => x.tanh(),
            UnaryFn::GeluGrad => {
                let cdf = half * (one + (x * T::from_f64(INV_SQRT_2)).erf());
                let pdf = T::from_f64(INV_SQRT_2PI) * (-(half * x * x)).exp();
                cdf + x * pdf
            }
            UnaryFn::GeluTanhGrad => {
                let c = T::from_f64(SQRT_2_OVER_PI);
                let a = T::from_f64(GELU_TANH_C);
                let u = c * (x + a * x * x * x);
                let t = u.tanh();
                let du = c * (one + T::from_f64(3.0) * a * x * x);
                half * (one + t) + half * x * (one - t * t) * du
            }
            UnaryFn::SiluGrad => {
                let s = one / (one + (-x).exp());
                s * (one + x * (one - s))
            }
        }
    }
}

impl UnaryFn {
    /// True when the derivative is cheapest from the op's output y (exp, sqrt, sigmoid, …)
    /// rather than its input x.
    pub fn grad_uses_output(self) -> bool {
        matches!(
            self,
            UnaryFn::Exp | UnaryFn::Sqrt | UnaryFn::Rsqrt | UnaryFn::Recip | UnaryFn::Sigmoid | UnaryFn::Tanh
        )
    }

    /// g · f'(·) for one element, where `v` is x or y as [`UnaryFn::grad_uses_output`] says.
    /// `None` for the derivative forms themselves (no second-order gradients).
    #[inline(always)]
    pub fn backward<T: Float>(self, g: T, v: T) -> Option<T> {
        let one = T::ONE;
        Some(match self {
            UnaryFn::Neg => -g,
            UnaryFn::Exp => g * v,
            UnaryFn::Log => g / v,
            UnaryFn::Sqrt => g * T::from_f64(0.5) / v,
            UnaryFn::Rsqrt => g * T::from_f64(-0.5) * v * v * v,
            UnaryFn::Recip => -(g * v * v),
            UnaryFn::Sqr => g * T::from_f64(2.0) * v,
            UnaryFn::Abs => g * UnaryFn::Sign.apply(v),
            UnaryFn::Sign => T::ZERO,
            // A select, not a product: PyTorch's threshold_backward gives 0 (not NaN) where x ≤ 0.
            UnaryFn::Relu => {
                if v > T::ZERO {
                    g
                } else {
                    T::ZERO
                }
            }
            UnaryFn::Gelu => g * UnaryFn::GeluGrad.apply(v),
            UnaryFn::GeluTanh => g * UnaryFn::GeluTanhGrad.apply(v),
            UnaryFn::Silu => g * UnaryFn::SiluGrad.apply(v),
            UnaryFn::Sigmoid => g * v * (one - v),
            UnaryFn::Tanh => g * (one - v * v),
            UnaryFn::GeluGrad | UnaryFn::GeluTanhGrad | UnaryFn::SiluGrad => return None,
        })
    }
}

/// Fused unary backward g ⊙ f'(v) in one pass (v = x or y, see [`UnaryFn::grad_uses_output`]).
/// Returns `None` for functions without a first-order rule here.
pub fn unary_backward<T: Float>(shape: &[usize], g: Src<'_, T>, v: Src<'_, T>, op: UnaryFn) -> Option<Vec<T>> {
    op.backward(T::ONE, T::ONE)?;
    macro_rules! go {
        ($($f:ident),*) => {
            match op {
                $(UnaryFn::$f => zip_strided(shape, g, v, |g, v| UnaryFn::$f.backward(g, v).unwrap_or(T::ZERO)),)*
                UnaryFn::GeluGrad | UnaryFn::GeluTanhGrad | UnaryFn::SiluGrad => return None,
            }
        };
    }
    Some(go!(
        Neg, Exp, Log, Sqrt, Rsqrt, Recip, Sqr, Abs, Sign, Relu, Gelu, GeluTanh, Silu, Sigmoid, Tanh
    ))
}

/// The scalar functions behind binary ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryFn {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
}

impl BinaryFn {
    #[inline(always)]
    pub fn apply<T: Float>(self, a: T, b: T) -> T {
        match self {
            BinaryFn::Add => a + b,
            BinaryFn::Sub => a - b,
            BinaryFn::Mul => a * b,
            BinaryFn::Div => a / b,
            BinaryFn::Pow => a.powf(b),
            BinaryFn::Maximum => {
                if a >= b {
                    a
                } else {
                    b
                }
            }
            BinaryFn::Minimum => {
                if a <= b {
                    a
                } else {
                    b
                }
            }
        }
    }
}

/// Comparisons producing 0/1 masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpFn {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpFn {
    #[inline(always)]
    pub fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpFn::Eq => a == b,
            CmpFn::Ne => a != b,
            CmpFn::Lt => a < b,
            CmpFn::Le => a <= b,
            CmpFn::Gt => a > b,
            CmpFn::Ge => a >= b,
        }
    }
}

/// Applies a unary function, dispatching on the function outside the loop so each loop is monomorphic.
pub fn unary<T: Float>(shape: &[usize], a: Src<'_, T>, op: UnaryFn) -> Vec<T> {
    macro_rules! go {
        ($($v:ident),*) => {
            match op {
                $(UnaryFn::$v => map_strided(shape, a, |x| UnaryFn::$v.apply(x)),)*
            }
        };
    }
    go!(
        Neg,
        Exp,
        Log,
        Sqrt,
        Rsqrt,
        Recip,
        Sqr,
        Abs,
        Sign,
        Relu,
        Gelu,
        GeluTanh,
        Silu,
        Sigmoid,
        Tanh,
        GeluGrad,
        GeluTanhGrad,
        SiluGrad
    )
}

/// Applies a binary function with broadcasting (strides 0 on broadcast dims).
pub fn binary<T: Float>(shape: &[usize], a: Src<'_, T>, b: Src<'_, T>, op: BinaryFn) -> Vec<T> {
    macro_rules! go {
        ($($v:ident),*) => {
            match op {
                $(BinaryFn::$v => zip_strided(shape, a, b, |x, y| BinaryFn::$v.apply(x, y)),)*
            }
        };
    }
    go!(Add, Sub, Mul, Div, Pow, Maximum, Minimum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_forms_match_finite_differences() {
        for (f, df) in [
            (UnaryFn::Gelu, UnaryFn::GeluGrad),
            (UnaryFn::GeluTanh, UnaryFn::GeluTanhGrad),
            (UnaryFn::Silu, UnaryFn::SiluGrad),
        ] {
            for i in -40..=40 {
                let x = i as f64 * 0.1;
                let h = 1e-6;
                let num = (f.apply(x + h) - f.apply(x - h)) / (2.0 * h);
                assert!((num - df.apply(x)).abs() < 1e-7, "{f:?} at {x}");
            }
        }
    }

    #[test]
    fn broadcast_binary_matches_loop() {
        // a: [2,3] contiguous, b: [3] broadcast over rows.
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0f32, 20.0, 30.0];
        let out = binary(
            &[2, 3],
            Src {
                data: &a,
                offset: 0,
                strides: &[3, 1],
            },
            Src {
                data: &b,
                offset: 0,
                strides: &[0, 1],
            },
            BinaryFn::Add,
        );
        assert_eq!(out, vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    }
}
