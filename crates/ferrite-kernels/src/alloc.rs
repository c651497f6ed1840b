//! A global allocator that puts large blocks on cache-line boundaries, as PyTorch's CPU allocator
//! does (`c10::alloc_cpu`, 64-byte alignment).
//!
//! Layer: kernels; opted into by a binary (the `ferrite` CLI does):
//! `#[global_allocator] static ALLOC: ferrite::kernels::alloc::CacheAligned = CacheAligned;`
//! Why: tensor buffers are plain `Vec`s (Rust's allocator API for `Vec` is unstable), and glibc's
//! `malloc` aligns them to 16 bytes, so a row of a matrix straddles cache lines and a 32-byte vector
//! load from it can too. A 64³ f32 product measured about 5% slower with operands 16 or 48 bytes
//! off a line than on one. Small blocks keep the system's alignment: padding them would waste
//! memory for no gain.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, with blocks of [`MIN_SIZE`] bytes or more aligned to [`LINE`] bytes.
pub struct CacheAligned;

/// A cache line on x86-64 and most ARM cores.
pub const LINE: usize = 64;
/// Blocks from this size on are aligned to a line (a 32×32 f32 matrix).
pub const MIN_SIZE: usize = 4096;

/// The layout a block is really allocated with. The same function serves `alloc` and `dealloc`, so
/// both always see the same layout.
fn padded(layout: Layout) -> Layout {
    if layout.size() >= MIN_SIZE && layout.align() < LINE {
        Layout::from_size_align(layout.size(), LINE).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every call forwards to `System` with the layout `padded` gives, which has the caller's
// size and at least its alignment; `dealloc` and `realloc` recompute that same layout from the
// caller's, as the `GlobalAlloc` contract lets them.
unsafe impl GlobalAlloc for CacheAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `padded` keeps the non-zero size the caller guarantees.
        unsafe { System.alloc(padded(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(padded(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with `padded(layout)`.
        unsafe { System.dealloc(ptr, padded(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = padded(layout);
        let Ok(new) = Layout::from_size_align(new_size, layout.align()).map(padded) else {
            return std::ptr::null_mut();
        };
        if old.align() == new.align() {
            // SAFETY: `ptr` was allocated with `old`; the alignment stays what `padded` asks for.
            return unsafe { System.realloc(ptr, old, new_size) };
        }
        // Crossing MIN_SIZE changes the alignment, which `realloc` cannot: move the block.
        // SAFETY: `new` has a non-zero size (the caller's `new_size`); `ptr` holds `old.size()`
        // readable bytes and is freed with the layout it was allocated with.
        unsafe {
            let moved = System.alloc(new);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, old.size().min(new_size));
                System.dealloc(ptr, old);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_are_line_aligned_and_keep_their_bytes_across_reallocs() {
        let a = CacheAligned;
        // SAFETY: sizes are non-zero; each block is freed once with its current layout.
        unsafe {
            let small = Layout::from_size_align(100, 4).unwrap();
            let mut p = a.alloc(small);
            assert!(!p.is_null());
            for i in 0..100 {
                *p.add(i) = i as u8;
            }
            // Grow across MIN_SIZE (the block moves to a line), then past it, then back below.
            let mut size = 100;
            for new_size in [5000, 70_000, 300] {
                p = a.realloc(p, Layout::from_size_align(size, 4).unwrap(), new_size);
                assert!(!p.is_null());
                if new_size >= MIN_SIZE {
                    assert_eq!(p as usize % LINE, 0, "{new_size} bytes");
                }
                for i in 0..100 {
                    assert_eq!(*p.add(i), i as u8);
                }
                size = new_size;
            }
            a.dealloc(p, Layout::from_size_align(size, 4).unwrap());
            let z = a.alloc_zeroed(Layout::from_size_align(8192, 4).unwrap());
            assert_eq!(z as usize % LINE, 0);
            assert!((0..8192).all(|i| *z.add(i) == 0));
            a.dealloc(z, Layout::from_size_align(8192, 4).unwrap());
        }
    }
}
