//! split_by_hash (pinned assignments, determinism, fractions) and token_batches invariants.

use ferrite_text::{split_by_hash, token_batches, Pair};

#[test]
fn split_assignments_are_pinned() {
    // FNV-1a 64 % 10_000 of the sources (computed independently in Python): 6363, 6223, 2393, 1734.
    let pairs = ["Hello", "Où est la gare ?", "Open", "The cat sat on the mat."].map(|s| Pair::new(s, "x"));
    let (train, valid, test) = split_by_hash(pairs.to_vec(), 0.2, 0.425);
    let srcs = |v: &[Pair]| v.iter().map(|p| p.src.clone()).collect::<Vec<_>>();
    assert_eq!(srcs(&train), ["Hello"]);
    assert_eq!(srcs(&valid), ["The cat sat on the mat."]);
    assert_eq!(srcs(&test), ["Où est la gare ?", "Open"]);
}

#[test]
fn split_is_deterministic_order_independent_and_near_fractions() {
    let pairs: Vec<Pair> = (0..30_000)
        .map(|i| Pair::new(format!("source number {i}"), format!("cible {i}")))
        .collect();
    let (train, valid, test) = split_by_hash(pairs.clone(), 0.1, 0.05);
    assert_eq!(train.len() + valid.len() + test.len(), pairs.len());
    let n = pairs.len() as f64;
    assert!((valid.len() as f64 / n - 0.1).abs() < 0.01, "valid {}", valid.len());
    assert!((test.len() as f64 / n - 0.05).abs() < 0.01, "test {}", test.len());
    // Reversing the input reverses each part but moves no pair between parts.
    let mut reversed = pairs;
    reversed.reverse();
    let (mut train2, mut valid2, mut test2) = split_by_hash(reversed, 0.1, 0.05);
    train2.reverse();
    valid2.reverse();
    test2.reverse();
    assert_eq!((train2, valid2, test2), (train, valid, test));
}

/// Deterministic pseudo-random lengths (an LCG; the test needs variety, not quality).
fn lengths(n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move |m: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % m
    };
    (0..n).map(|_| (1 + next(60), 1 + next(60))).collect()
}

fn key(l: (usize, usize)) -> usize {
    l.0.max(l.1)
}

#[test]
fn every_index_once_and_budget_respected() {
    for (n, max_tokens, seed) in [
        (1000, 512, 0),
        (1000, 64, 7),
        (333, 59, 3),
        (50, 10_000, 1),
        (200, 1, 9),
    ] {
        let lens = lengths(n, seed);
        let batches = token_batches(&lens, max_tokens, seed);
        let mut seen = vec![0u32; n];
        for batch in &batches {
            assert!(!batch.is_empty());
            for &i in batch {
                seen[i] += 1;
            }
            let longest = batch.iter().map(|&i| key(lens[i])).max().unwrap_or(0);
            assert!(
                batch.len() == 1 || batch.len() * longest <= max_tokens,
                "batch of {} x {longest}",
                batch.len()
            );
        }
        assert!(seen.iter().all(|&c| c == 1), "n={n} max_tokens={max_tokens}");
    }
}

#[test]
fn batches_are_length_buckets_and_greedy() {
    let lens = lengths(2000, 11);
    let max_tokens = 600;
    let batches = token_batches(&lens, max_tokens, 5);
    let mut ranges: Vec<(usize, usize, usize)> = batches
        .iter()
        .map(|b| {
            let keys: Vec<usize> = b.iter().map(|&i| key(lens[i])).collect();
            (*keys.iter().min().unwrap(), *keys.iter().max().unwrap(), b.len())
        })
        .collect();
    // Back into stream order: by length range, and among equal single-length batches the full ones come first
    // (two batches can only share a range when all their examples have the same length).
    ranges.sort_by_key(|&(lo, hi, len)| (lo, hi, std::cmp::Reverse(len)));
    for w in ranges.windows(2) {
        // Consecutive runs of the length-sorted order: ranges touch at most at one shared length.
        assert!(w[0].1 <= w[1].0, "overlapping buckets {:?} {:?}", w[0], w[1]);
        // Greedy: a batch was only closed because the next example would have broken the budget.
        assert!(
            (w[0].2 + 1) * w[1].0.max(w[0].1) > max_tokens,
            "batch {:?} could have taken more",
            w[0]
        );
    }
}

#[test]
fn deterministic_per_seed() {
    let lens = lengths(500, 2);
    assert_eq!(token_batches(&lens, 256, 42), token_batches(&lens, 256, 42));
    assert_ne!(token_batches(&lens, 256, 42), token_batches(&lens, 256, 43));
}
