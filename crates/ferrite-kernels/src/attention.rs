//! Fused attention for inference: `softmax(q·kᵀ·scale + mask)·v`, one block of query rows at a
//! time, so memory stays O(block × keys) per thread instead of O(queries × keys) per head.
//!
//! Layer: kernels. Unfused, a Whisper encoder layer (6 heads, 1,500 frames) writes and re-reads a
//! 54 MB score tensor, then a 54 MB probability tensor, each in freshly faulted pages. Here each
//! item — one head and `BLOCK` query rows — computes its scores into a per-thread buffer that stays
//! in L2, takes the softmax in place, and multiplies by v straight into the output. Items run in
//! parallel; the GEMMs inside them are single-threaded. No gradients: training keeps the unfused
//! composition, whose backward needs the probabilities.

use crate::matmul::{matmul, MatRef};
use crate::rows::softmax_row;
use crate::threads;
use rayon::prelude::*;
use std::cell::Cell;

/// Query rows per item: a 64 × 1,500-key score block is 384 KB, inside a 512 KB L2.
const BLOCK: usize = 64;

/// Sizes of a batched attention: `groups` independent (batch, head) pairs, each with `tq` queries
/// of width `d`, `tk` keys of width `d` and values of width `dv`.
#[derive(Clone, Copy, Debug)]
pub struct AttentionDims {
    pub groups: usize,
    pub tq: usize,
    pub tk: usize,
    pub d: usize,
    pub dv: usize,
}

/// A u8 mask (nonzero = the key is hidden from the query), broadcast by strides: element (group
/// `g`, query `i`, key `j`) at `offsets[g] + i·query_stride + j·key_stride` (strides may be 0).
#[derive(Clone, Copy)]
pub struct MaskRef<'a> {
    pub data: &'a [u8],
    pub offsets: &'a [usize],
    pub query_stride: usize,
    pub key_stride: usize,
}

/// What hides keys from queries: an explicit mask, and/or causality (query `i` sees keys up to
/// `causal_offset + i`, as in decoding after `causal_offset` cached positions).
#[derive(Clone, Copy, Default)]
pub struct Hide<'a> {
    pub mask: Option<MaskRef<'a>>,
    pub causal_offset: Option<usize>,
}

thread_local! {
    static SCORES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// `out[g] = softmax(q[g]·k[g]ᵀ·scale, hidden keys −∞)·v[g]` for every group `g`; all operands
/// contiguous (`q [groups, tq, d]`, `k [groups, tk, d]`, `v [groups, tk, dv]`, `out [groups, tq,
/// dv]`). A query that sees no key gets zeros (as `rows::softmax` gives for an all −∞ row).
///
/// # Panics
/// If a slice is shorter than its dims or the mask reaches past its data: callers (ferrite-core's
/// `fused_attention`) validate shapes and build the offsets from checked layouts.
pub fn attention(q: &[f32], k: &[f32], v: &[f32], dims: AttentionDims, scale: f32, hide: Hide<'_>, out: &mut [f32]) {
    let AttentionDims { groups, tq, tk, d, dv } = dims;
    assert!(
        q.len() >= groups * tq * d && k.len() >= groups * tk * d && v.len() >= groups * tk * dv,
        "ferrite bug: attention operands shorter than {dims:?}"
    );
    assert!(
        out.len() >= groups * tq * dv,
        "ferrite bug: attention output shorter than {dims:?}"
    );
    if groups == 0 || tq == 0 || dv == 0 {
        return;
    }
    // One item per group and block of query rows, in parallel when there is enough work.
    let items = out[..groups * tq * dv]
        .chunks_mut(tq * dv)
        .enumerate()
        .flat_map(|(g, o)| {
            o.chunks_mut(BLOCK * dv)
                .enumerate()
                .map(move |(b, ob)| (g, b * BLOCK, ob))
        });
    let run = |(g, i0, ob): (usize, usize, &mut [f32])| block(q, k, v, dims, scale, hide, g, i0, ob.len() / dv, ob);
    let flops = groups * tq * tk * (d + dv);
    if threads::num_threads() > 1 && flops >= 1 << 20 && groups * tq > BLOCK {
        let items: Vec<_> = items.collect();
        threads::install(|_| items.into_par_iter().for_each(run));
    } else {
        items.for_each(run);
    }
}

/// Rows `i0..i0 + rows` of group `g`.
#[allow(clippy::too_many_arguments)]
fn block(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: AttentionDims,
    scale: f32,
    hide: Hide<'_>,
    g: usize,
    i0: usize,
    rows: usize,
    out: &mut [f32],
) {
    let AttentionDims { tq, tk, d, dv, .. } = dims;
    let mut buf = SCORES.take();
    if buf.len() < 2 * rows * tk {
        buf = vec![0.0; 2 * BLOCK.max(rows) * tk];
    }
    let (scores, probs) = buf.split_at_mut(rows * tk);
    let probs = &mut probs[..rows * tk];
    let qg = MatRef {
        data: q,
        offset: (g * tq + i0) * d,
        rs: d as isize,
        cs: 1,
    };
    // kᵀ as a view: column j of kᵀ is row j of k.
    let kt = MatRef {
        data: k,
        offset: g * tk * d,
        rs: 1,
        cs: d as isize,
    };
    if tk > 0 {
        matmul(rows, tk, d, scores, tk, qg, kt, false, false);
    }
    for (r, (s, p)) in scores
        .chunks_mut(tk.max(1))
        .zip(probs.chunks_mut(tk.max(1)))
        .enumerate()
        .take(rows)
    {
        let i = i0 + r;
        s.iter_mut().for_each(|x| *x *= scale);
        if let Some(m) = hide.mask {
            let base = m.offsets[g] + i * m.query_stride;
            for (j, x) in s.iter_mut().enumerate() {
                if m.data[base + j * m.key_stride] != 0 {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(off) = hide.causal_offset {
            let seen = (off + i + 1).min(tk);
            s[seen..].fill(f32::NEG_INFINITY);
        }
        softmax_row(s, p);
    }
    let vg = MatRef {
        data: v,
        offset: g * tk * dv,
        rs: dv as isize,
        cs: 1,
    };
    let pr = MatRef {
        data: probs,
        offset: 0,
        rs: tk as isize,
        cs: 1,
    };
    if tk > 0 {
        matmul(rows, dv, tk, out, dv, pr, vg, false, false);
    } else {
        out.fill(0.0);
    }
    SCORES.set(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unfused reference in f64.
    fn naive(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dims: AttentionDims,
        scale: f32,
        hidden: impl Fn(usize, usize, usize) -> bool,
    ) -> Vec<f32> {
        let AttentionDims { groups, tq, tk, d, dv } = dims;
        let mut out = vec![0f32; groups * tq * dv];
        for g in 0..groups {
            for i in 0..tq {
                let s: Vec<f64> = (0..tk)
                    .map(|j| {
                        if hidden(g, i, j) {
                            f64::NEG_INFINITY
                        } else {
                            (0..d)
                                .map(|c| q[(g * tq + i) * d + c] as f64 * k[(g * tk + j) * d + c] as f64)
                                .sum::<f64>()
                                * scale as f64
                        }
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..dv {
                    out[(g * tq + i) * dv + c] =
                        (0..tk).map(|j| e[j] / z * v[(g * tk + j) * dv + c] as f64).sum::<f64>() as f32;
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_the_unfused_product_with_masks_causality_and_blocks() {
        for threads in [1, 2] {
            threads::set_num_threads(threads);
            for (groups, tq, tk, d, dv) in [
                (1, 1, 1, 1, 1),
                (3, 5, 7, 4, 3),
                (2, 130, 70, 16, 8),
                (1, 200, 300, 64, 64),
                (12, 64, 64, 8, 8),
            ] {
                let dims = AttentionDims { groups, tq, tk, d, dv };
                let (q, k, v) = (
                    values(groups * tq * d, 1),
                    values(groups * tk * d, 2),
                    values(groups * tk * dv, 3),
                );
                // Key padding per group: group g hides keys from tk - g on (group 0 none, and with
                // tk = 1 and g = 1 every key: a fully hidden row).
                let mask: Vec<u8> = (0..groups * tk)
                    .map(|x| u8::from(x % tk >= tk - (x / tk).min(tk)))
                    .collect();
                let offsets: Vec<usize> = (0..groups).map(|g| g * tk).collect();
                let m = MaskRef {
                    data: &mask,
                    offsets: &offsets,
                    query_stride: 0,
                    key_stride: 1,
                };
                for (hide, causal) in [(None, None), (Some(m), None), (None, Some(2)), (Some(m), Some(0))] {
                    let mut out = vec![f32::NAN; groups * tq * dv];
                    attention(
                        &q,
                        &k,
                        &v,
                        dims,
                        0.3,
                        Hide {
                            mask: hide,
                            causal_offset: causal,
                        },
                        &mut out,
                    );
                    let want = naive(&q, &k, &v, dims, 0.3, |g, i, j| {
                        hide.is_some() && mask[g * tk + j] != 0 || causal.is_some_and(|o| j > o + i)
                    });
                    for (x, (a, b)) in out.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() < 1e-5,
                            "{dims:?} mask={} causal={causal:?} [{x}]: {a} vs {b}",
                            hide.is_some()
                        );
                    }
                }
            }
        }
    }
}
