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

/// One operand (q, k or v) read through strides: row `i` of group `g` is the `width` elements
/// from `offsets[g] + i·row_stride` on. Views need no copy: a time-major KV cache
/// `[positions, batch, heads, head_dim]` has row stride `batch·heads·head_dim`, and groups that
/// share keys (grouped-query attention, several query heads per key/value head) share offsets.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub offsets: &'a [usize],
    pub row_stride: usize,
}

impl Rows<'_> {
    /// Whether every row the dims reach lies inside `data`.
    fn fits(&self, groups: usize, rows: usize, width: usize) -> bool {
        if groups == 0 || rows == 0 || width == 0 {
            return true;
        }
        self.offsets.len() >= groups
            && self.offsets[..groups]
                .iter()
                .all(|&o| o + (rows - 1) * self.row_stride + width <= self.data.len())
    }
}

/// Offsets of `groups` contiguous `[rows, width]` blocks, for [`Rows`] over packed operands.
pub fn packed_offsets(groups: usize, rows: usize, width: usize) -> Vec<usize> {
    (0..groups).map(|g| g * rows * width).collect()
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

/// `out[g] = softmax(q[g]·k[g]ᵀ·scale, hidden keys −∞)·v[g]` for every group `g`, with `out`
/// contiguous `[groups, tq, dv]` and q, k, v read through their strides. A query that sees no key
/// gets zeros (as `rows::softmax` gives for an all −∞ row). With `probs` (`[groups, tq, tk]`), the
/// attention probabilities are written there too (attention maps for explanations; the scores
/// still never exist for more than one block at a time).
///
/// # Panics
/// If an operand's rows reach past its data or a slice is shorter than its dims: callers
/// (ferrite-core's `fused_attention`) validate shapes and build the offsets from checked layouts.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: Rows<'_>,
    k: Rows<'_>,
    v: Rows<'_>,
    dims: AttentionDims,
    scale: f32,
    hide: Hide<'_>,
    out: &mut [f32],
    probs: Option<&mut [f32]>,
) {
    let AttentionDims { groups, tq, tk, d, dv } = dims;
    assert!(
        q.fits(groups, tq, d) && k.fits(groups, tk, d) && v.fits(groups, tk, dv),
        "ferrite bug: attention operands shorter than {dims:?}"
    );
    assert!(
        out.len() >= groups * tq * dv && probs.as_ref().is_none_or(|p| p.len() >= groups * tq * tk),
        "ferrite bug: attention output shorter than {dims:?}"
    );
    if groups == 0 || tq == 0 || (dv == 0 && probs.is_none()) {
        return;
    }
    // One item per group and block of query rows, in parallel when there is enough work; each
    // item owns its block of the output (and of the probabilities).
    let out_blocks = out[..groups * tq * dv]
        .chunks_mut((tq * dv).max(1))
        .flat_map(|o| o.chunks_mut((BLOCK * dv).max(1)));
    let prob_blocks: Box<dyn Iterator<Item = Option<&mut [f32]>>> = match probs {
        Some(p) if tk > 0 => Box::new(
            p[..groups * tq * tk]
                .chunks_mut(tq * tk)
                .flat_map(|p| p.chunks_mut(BLOCK * tk))
                .map(Some),
        ),
        _ => Box::new(std::iter::repeat_with(|| None)),
    };
    let starts = (0..groups).flat_map(|g| (0..tq).step_by(BLOCK).map(move |i0| (g, i0)));
    let items = starts
        .zip(out_blocks.map(Some).chain(std::iter::repeat_with(|| None)))
        .zip(prob_blocks)
        .map(|(((g, i0), ob), pb)| (g, i0, ob, pb));
    let run = |(g, i0, ob, pb): (usize, usize, Option<&mut [f32]>, Option<&mut [f32]>)| {
        let rows = BLOCK.min(tq - i0);
        block(q, k, v, dims, scale, hide, g, i0, rows, ob.unwrap_or_default(), pb)
    };
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
    q: Rows<'_>,
    k: Rows<'_>,
    v: Rows<'_>,
    dims: AttentionDims,
    scale: f32,
    hide: Hide<'_>,
    g: usize,
    i0: usize,
    rows: usize,
    out: &mut [f32],
    keep: Option<&mut [f32]>,
) {
    let AttentionDims { tk, d, dv, .. } = dims;
    let mut buf = SCORES.take();
    if buf.len() < 2 * rows * tk {
        buf = vec![0.0; 2 * BLOCK.max(rows) * tk];
    }
    let (scores, probs) = buf.split_at_mut(rows * tk);
    let probs = &mut probs[..rows * tk];
    let qg = MatRef {
        data: q.data,
        offset: q.offsets[g] + i0 * q.row_stride,
        rs: q.row_stride as isize,
        cs: 1,
    };
    // kᵀ as a view: column j of kᵀ is row j of k.
    let kt = MatRef {
        data: k.data,
        offset: k.offsets[g],
        rs: 1,
        cs: k.row_stride as isize,
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
    if let Some(keep) = keep {
        keep.copy_from_slice(&probs[..keep.len()]);
    }
    if dv > 0 {
        let vg = MatRef {
            data: v.data,
            offset: v.offsets[g],
            rs: v.row_stride as isize,
            cs: 1,
        };
        let pr = MatRef {
            data: &*probs,
            offset: 0,
            rs: tk as isize,
            cs: 1,
        };
        if tk > 0 {
            matmul(rows, dv, tk, out, dv, pr, vg, false, false);
        } else {
            out.fill(0.0);
        }
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
                    let (qo, ko, vo) = (
                        packed_offsets(groups, tq, d),
                        packed_offsets(groups, tk, d),
                        packed_offsets(groups, tk, dv),
                    );
                    attention(
                        Rows {
                            data: &q,
                            offsets: &qo,
                            row_stride: d,
                        },
                        Rows {
                            data: &k,
                            offsets: &ko,
                            row_stride: d,
                        },
                        Rows {
                            data: &v,
                            offsets: &vo,
                            row_stride: dv,
                        },
                        dims,
                        0.3,
                        Hide {
                            mask: hide,
                            causal_offset: causal,
                        },
                        &mut out,
                        None,
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

    /// Grouped-query attention over a time-major cache with strided queries gives what the packed
    /// layout gives, and the kept probabilities are the softmax rows.
    #[test]
    fn strided_operands_shared_key_heads_and_kept_probabilities() {
        let (heads, kv_heads, tq, tk, hd) = (6, 2, 3, 70, 8);
        let rep = heads / kv_heads;
        // q token-major [tq, heads·hd]; k, v time-major [tk, kv_heads·hd].
        let (q, k, v) = (
            values(tq * heads * hd, 4),
            values(tk * kv_heads * hd, 5),
            values(tk * kv_heads * hd, 6),
        );
        let dims = AttentionDims {
            groups: heads,
            tq,
            tk,
            d: hd,
            dv: hd,
        };
        let qo: Vec<usize> = (0..heads).map(|h| h * hd).collect();
        let ko: Vec<usize> = (0..heads).map(|h| (h / rep) * hd).collect();
        let mut out = vec![f32::NAN; heads * tq * hd];
        let mut probs = vec![f32::NAN; heads * tq * tk];
        let hide = Hide {
            mask: None,
            causal_offset: Some(tk - tq),
        };
        attention(
            Rows {
                data: &q,
                offsets: &qo,
                row_stride: heads * hd,
            },
            Rows {
                data: &k,
                offsets: &ko,
                row_stride: kv_heads * hd,
            },
            Rows {
                data: &v,
                offsets: &ko,
                row_stride: kv_heads * hd,
            },
            dims,
            0.5,
            hide,
            &mut out,
            Some(&mut probs),
        );
        // The same problem packed head by head.
        let pack = |x: &[f32], rows: usize, width: usize, head: &dyn Fn(usize) -> usize| -> Vec<f32> {
            (0..heads)
                .flat_map(|h| (0..rows).flat_map(move |i| (0..hd).map(move |c| (h, i, c))))
                .map(|(h, i, c)| x[i * width + head(h) * hd + c])
                .collect()
        };
        let (qp, kp, vp) = (
            pack(&q, tq, heads * hd, &|h| h),
            pack(&k, tk, kv_heads * hd, &|h| h / rep),
            pack(&v, tk, kv_heads * hd, &|h| h / rep),
        );
        let want = naive(&qp, &kp, &vp, dims, 0.5, |_, i, j| j > tk - tq + i);
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        for row in probs.chunks(tk) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        // The last query of each head sees every key; the first misses the last tq - 1.
        assert!(probs
            .chunks(tk)
            .step_by(tq)
            .all(|r| r[tk - 2..].iter().all(|&p| p == 0.0)));
    }
}
