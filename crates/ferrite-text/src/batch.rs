//! Token-budget batching with length bucketing, as in fairseq's `--max-tokens` and the original Transformer
//! ("sentence pairs were batched together by approximate sequence length", Vaswani et al. 2017, §5.1).
//!
//! Layer: text. Works on lengths only, so it knows nothing of tensors; the caller pads each batch to its longest
//! sequence. Grouping similar lengths wastes little compute on padding, and a fixed token budget keeps memory per step
//! roughly constant.

/// SplitMix64 (Steele, Lea, Flood 2014; the seeder of `xoshiro`): a tiny PRNG whose stream is fixed by its
/// definition, so batches are identical on every platform and Rust version for the same seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` by multiply-shift (Lemire 2019); the bias is below 2^-32 for any `n` we shuffle.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Fisher–Yates shuffle.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Groups example indices into batches whose padded size stays within `max_tokens`.
///
/// `lengths[i] = (src_len, tgt_len)` of example `i`. Indices are sorted by `max(src_len, tgt_len)` (shuffled by
/// `seed` within equal lengths), consecutive runs are cut greedily so that
/// `batch.len() * max(longest src, longest tgt) <= max_tokens`, and the batch order is shuffled by `seed`.
/// An example longer than `max_tokens` on its own forms a one-example batch rather than being dropped, so every index
/// appears in exactly one batch. Deterministic for a given `seed`; use e.g. `seed ^ epoch` for a new order each epoch.
///
/// # Shapes
/// `lengths`: one entry per example; result: batches of indices into `lengths`.
///
/// ```
/// let lengths = [(3, 4), (10, 9), (4, 3), (2, 2)];
/// let batches = ferrite_text::token_batches(&lengths, 12, 0);
/// let mut all: Vec<usize> = batches.concat();
/// all.sort();
/// assert_eq!(all, vec![0, 1, 2, 3]);
/// ```
pub fn token_batches(lengths: &[(usize, usize)], max_tokens: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = SplitMix64(seed);
    let key = |i: usize| lengths[i].0.max(lengths[i].1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Shuffle, then a stable sort: equal lengths keep their random relative order.
    rng.shuffle(&mut order);
    order.sort_by_key(|&i| key(i));

    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0usize;
    for i in order {
        let new_longest = longest.max(key(i));
        let padded = (current.len() + 1).saturating_mul(new_longest);
        if !current.is_empty() && padded > max_tokens {
            batches.push(std::mem::take(&mut current));
            longest = key(i);
        } else {
            longest = new_longest;
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    rng.shuffle(&mut batches);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_stream() {
        // First outputs for seed 1234567 from the reference C implementation (prng.di.unimi.it/splitmix64.c).
        let mut rng = SplitMix64(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn empty_and_oversized() {
        assert!(token_batches(&[], 100, 0).is_empty());
        let batches = token_batches(&[(50, 60), (1, 1)], 10, 3);
        let mut sorted = batches.clone();
        sorted.sort();
        assert_eq!(sorted, vec![vec![0], vec![1]]);
    }
}
