//! Compiling hot loops again for AVX-512 and for AVX2 and picking the widest copy at run time.
//!
//! Layer: kernels. ferrite's binaries target baseline x86-64 so they run anywhere, which leaves
//! auto-vectorized loops at SSE2 width (4 floats). A loop body written as an `#[inline(always)]`
//! function and wrapped by [`wide_fn!`] gets twins compiled with AVX-512 enabled (16 floats per
//! instruction) and with AVX2 + FMA (8 floats, for the many CPUs without AVX-512: AMD before Zen 4,
//! Intel clients), the widest the CPU has used (`is_x86_feature_detected!` caches the answer).
//! Only code inlined into a twin is widened, so the body must not call out to large non-inline
//! functions. The GEMM has its own intrinsics and does not need this.

/// True when this CPU has the AVX-512 subsets the wide twins are compiled for.
#[inline(always)]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when this CPU has AVX2 and FMA, the features the 8-wide twins are compiled for.
#[inline(always)]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `fn NAME<G: BOUND>(args) -> R { body }` that runs an AVX-512 compilation of `body` on
/// CPUs that have it, else an AVX2 one where available, else the baseline compilation. `body` is
/// inlined into all three.
macro_rules! wide_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$($g:ident: $b:path),*>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name<$($g: $b),*>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body<$($g: $b),*>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
            unsafe fn wide<$($g: $b),*>($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<$($g: $b),*>($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::has_avx512() {
                // SAFETY: the features `wide` is compiled with were detected on this CPU.
                return unsafe { wide($($arg),*) };
            } else if $crate::simd::has_avx2() {
                // SAFETY: the features `avx2` is compiled with were detected on this CPU.
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}
pub(crate) use wide_fn;
