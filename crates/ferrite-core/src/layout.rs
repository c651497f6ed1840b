//! Layout: shape, strides and offset of a view into a storage buffer. All view ops (permute, narrow,
//! broadcast, reshape of contiguous data) are pure functions on layouts: no data moves.
//!
//! Layer: core. Strides are in elements and never negative; broadcast dims have stride 0.

use crate::error::{Error, Result};
use crate::shape::contiguous_strides;

/// How a tensor's elements map into its storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// A row-major contiguous layout starting at 0.
    pub fn contiguous(shape: Vec<usize>) -> Self {
        let strides = contiguous_strides(&shape);
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when elements are laid out row-major without gaps (size-1 dims may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for d in (0..self.shape.len()).rev() {
            if self.shape[d] != 1 && self.strides[d] != acc {
                return false;
            }
            acc *= self.shape[d];
        }
        true
    }

    /// The contiguous range `offset..offset+numel` when the layout is contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous().then(|| self.offset..self.offset + self.numel())
    }

    /// Reorders dimensions; `perm` must be a permutation (checked by the caller).
    pub fn permute(&self, perm: &[usize]) -> Layout {
        Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// Keeps `len` entries of dimension `dim` starting at `start` (checked by the caller).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Layout {
        let mut l = self.clone();
        l.shape[dim] = len;
        if len > 0 {
            l.offset += start * self.strides[dim];
        }
        l
    }

    /// Views this layout as `shape` by broadcasting (stride 0 on new or size-1 dims).
    pub fn broadcast_as(&self, op: &'static str, shape: &[usize]) -> Result<Layout> {
        if shape.len() < self.shape.len() {
            return Err(Error::Broadcast {
                op,
                lhs: self.shape.clone(),
                rhs: shape.to_vec(),
            });
        }
        let extra = shape.len() - self.shape.len();
        let mut strides = vec![0; shape.len()];
        for (i, &target) in shape.iter().enumerate().skip(extra) {
            let src = self.shape[i - extra];
            if src == target {
                strides[i] = self.strides[i - extra];
            } else if src == 1 {
                strides[i] = 0;
            } else {
                return Err(Error::Broadcast {
                    op,
                    lhs: self.shape.clone(),
                    rhs: shape.to_vec(),
                });
            }
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// A view with a new shape of the same element count, if expressible without copying.
    /// Works for contiguous layouts and for splitting/merging dims that are contiguous among themselves.
    pub fn reshape_view(&self, shape: &[usize]) -> Option<Layout> {
        if self.is_contiguous() {
            return Some(Layout {
                shape: shape.to_vec(),
                strides: contiguous_strides(shape),
                offset: self.offset,
            });
        }
        // Only squeeze/unsqueeze of size-1 dims otherwise: same non-1 dims in the same order.
        let a: Vec<(usize, usize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(s, _)| **s != 1)
            .map(|(&s, &t)| (s, t))
            .collect();
        let b: Vec<usize> = shape.iter().copied().filter(|&s| s != 1).collect();
        if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.0 != *y) {
            return None;
        }
        let mut it = a.iter();
        let strides = shape
            .iter()
            .map(|&s| if s == 1 { 0 } else { it.next().map_or(0, |x| x.1) })
            .collect();
        Some(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }
}
