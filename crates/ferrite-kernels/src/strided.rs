//! Iteration over strided operands: dimension coalescing and row-by-row offset stepping.
//!
//! Layer: kernels. A "plan" turns an n-d shape plus the strides of N operands into outer rows and
//! one inner run (`inner_len` elements at a fixed stride per operand), so inner loops are plain
//! slice loops the compiler can vectorize. Broadcast operands simply have stride 0.

/// Shape and per-operand strides after merging dimensions that are contiguous for every operand.
#[derive(Debug, Clone)]
pub struct Plan<const N: usize> {
    /// Sizes of the outer dimensions (all but the innermost), row-major.
    pub outer_shape: Vec<usize>,
    /// Per operand, the stride of each outer dimension.
    pub outer_strides: [Vec<usize>; N],
    /// Length of the innermost run.
    pub inner_len: usize,
    /// Per operand, the stride within the innermost run.
    pub inner_strides: [usize; N],
}

impl<const N: usize> Plan<N> {
    /// Builds a plan; `strides[k]` are operand k's strides for `shape`.
    pub fn new(shape: &[usize], strides: [&[usize]; N]) -> Self {
        // Drop size-1 dims, then merge neighbours where every operand is contiguous across them.
        let mut dims: Vec<(usize, [usize; N])> = Vec::with_capacity(shape.len());
        for (d, &size) in shape.iter().enumerate() {
            if size == 1 {
                continue;
            }
            let st: [usize; N] = std::array::from_fn(|k| strides[k][d]);
            if let Some(last) = dims.last_mut() {
                if (0..N).all(|k| last.1[k] == st[k] * size) {
                    last.0 *= size;
                    last.1 = st;
                    continue;
                }
            }
            dims.push((size, st));
        }
        match dims.pop() {
            None => Plan {
                outer_shape: Vec::new(),
                outer_strides: std::array::from_fn(|_| Vec::new()),
                inner_len: if shape.contains(&0) { 0 } else { 1 },
                inner_strides: [0; N],
            },
            Some((inner_len, inner_strides)) => Plan {
                outer_shape: dims.iter().map(|d| d.0).collect(),
                outer_strides: std::array::from_fn(|k| dims.iter().map(|d| d.1[k]).collect()),
                inner_len,
                inner_strides,
            },
        }
    }

    /// Number of outer rows.
    pub fn rows(&self) -> usize {
        self.outer_shape.iter().product()
    }

    /// Calls `f(row, offsets)` for rows `start..start+count`, where `offsets[k]` is operand k's offset
    /// (relative to its base offset) at the start of that row.
    #[inline]
    pub fn for_rows(&self, start: usize, count: usize, mut f: impl FnMut(usize, [usize; N])) {
        let nd = self.outer_shape.len();
        if nd == 0 {
            if start == 0 && count > 0 {
                f(0, [0; N]);
            }
            return;
        }
        // Multi-index of `start`.
        let mut idx = vec![0usize; nd];
        let mut rem = start;
        for d in (0..nd).rev() {
            idx[d] = rem % self.outer_shape[d];
            rem /= self.outer_shape[d];
        }
        let mut off: [usize; N] = std::array::from_fn(|k| (0..nd).map(|d| idx[d] * self.outer_strides[k][d]).sum());
        for row in start..start + count {
            f(row, off);
            // Step the multi-index like an odometer.
            let mut d = nd;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                for (o, strides) in off.iter_mut().zip(&self.outer_strides) {
                    *o += strides[d];
                }
                if idx[d] < self.outer_shape[d] {
                    break;
                }
                for (o, strides) in off.iter_mut().zip(&self.outer_strides) {
                    *o -= strides[d] * idx[d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// The largest element offset (relative to the base offset) a layout can reach, or `None` if empty.
pub fn max_reach(shape: &[usize], strides: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return None;
    }
    Some(shape.iter().zip(strides).map(|(&n, &s)| (n - 1) * s).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_contiguous_and_keeps_broadcast() {
        let p = Plan::<2>::new(&[2, 3, 4], [&[12, 4, 1], &[0, 4, 1]]);
        assert_eq!(p.outer_shape, vec![2]);
        assert_eq!(p.inner_len, 12);
        assert_eq!(p.inner_strides, [1, 1]);
        let mut seen = vec![];
        p.for_rows(0, 2, |r, o| seen.push((r, o)));
        assert_eq!(seen, vec![(0, [0, 0]), (1, [12, 0])]);
    }

    #[test]
    fn odometer_matches_direct_offsets() {
        let shape = [3, 2, 5];
        let st = [1usize, 17, 3];
        let p = Plan::<1>::new(&shape, [&st]);
        let mut offs = vec![];
        p.for_rows(1, p.rows() - 1, |_, o| offs.push(o[0]));
        let mut want = vec![];
        for i in 0..3 {
            for j in 0..2 {
                want.push(i * st[0] + j * st[1]);
            }
        }
        assert_eq!(offs, want[1..].to_vec());
    }
}
