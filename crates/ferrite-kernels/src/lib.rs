//! ferrite-kernels: numeric kernels on slices and strides.
//!
//! Layer: the bottom of ferrite (`cli → train → models → nn → core → kernels`). Pure functions over
//! element buffers, generic over [`Float`]; no tensors, no shapes-as-objects, no autodiff. Tiny inputs
//! run on the calling thread; larger ones use ferrite's own rayon pool ([`threads`]).

// SIMD intrinsics, uninitialized outputs and raw views need `unsafe`: every block says why it holds.
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
pub mod simd;
pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod conv_gemm;
pub mod elementwise;
pub mod float;
pub mod index;
pub mod matmul;
pub mod quant;
#[cfg(target_arch = "x86_64")]
mod quant_avx2;
pub mod reduce;
pub mod rows;

#[cfg(target_arch = "x86_64")]
mod sgemm;
pub mod strided;
mod team;
pub mod threads;

pub use float::Float;
