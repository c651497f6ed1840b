//! Deterministic train/valid/test split by a stable hash of the source sentence.
//!
//! Layer: text. Hashing the source (rather than shuffling by index) keeps a sentence in the same split when the
//! corpus grows or is reordered, and puts every duplicate of a source in the same split, so no test sentence leaks
//! into training. FNV-1a 64 is used because it is fixed by its spec; std's `RandomState` is seeded per process.

use crate::tsv::Pair;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes` (<http://www.isthe.com/chongo/tech/comp/fnv/>).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// Checks held-out fractions before a split: each in [0, 1) and together below 1, so some data
/// is left to train on (a NaN or a fraction of 2 would otherwise be clamped silently).
///
/// # Errors
/// A fraction out of range, named with both values.
pub fn check_fractions(valid_frac: f64, test_frac: f64) -> ferrite_core::Result<()> {
    let ok = |f: f64| (0.0..1.0).contains(&f);
    if ok(valid_frac) && ok(test_frac) && valid_frac + test_frac < 1.0 {
        return Ok(());
    }
    Err(ferrite_core::Error::Invalid {
        op: "split",
        detail: format!(
            "valid fraction {valid_frac} and test fraction {test_frac} must each be in [0, 1) and add up to less than 1"
        ),
    })
}

/// Splits `pairs` into `(train, valid, test)` by the FNV-1a 64 hash of each source string.
///
/// With `b = fnv1a64(src) % 10_000`: valid if `b < valid_frac * 10_000`, else test if
/// `b < (valid_frac + test_frac) * 10_000`, else train. Each output keeps the input order. Fractions are clamped to
/// `[0, 1]` (NaN counts as 0), so the function cannot fail.
///
/// ```
/// use ferrite_text::{split_by_hash, Pair};
/// let pairs: Vec<Pair> = (0..1000).map(|i| Pair { src: format!("s{i}"), tgt: format!("t{i}") }).collect();
/// let (train, valid, test) = split_by_hash(pairs, 0.1, 0.1);
/// assert_eq!(train.len() + valid.len() + test.len(), 1000);
/// ```
pub fn split_by_hash(pairs: Vec<Pair>, valid_frac: f64, test_frac: f64) -> (Vec<Pair>, Vec<Pair>, Vec<Pair>) {
    let clamp = |f: f64| if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
    let valid_cut = clamp(valid_frac) * 10_000.0;
    let test_cut = clamp(clamp(valid_frac) + clamp(test_frac)) * 10_000.0;
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for pair in pairs {
        let bucket = (fnv1a64(pair.src.as_bytes()) % 10_000) as f64;
        if bucket < valid_cut {
            valid.push(pair);
        } else if bucket < test_cut {
            test.push(pair);
        } else {
            train.push(pair);
        }
    }
    (train, valid, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_out_of_range_are_refused_not_clamped() {
        assert!(check_fractions(0.1, 0.1).is_ok() && check_fractions(0.0, 0.0).is_ok());
        for (v, t) in [(2.0, 0.0), (0.6, 0.6), (f64::NAN, 0.1), (0.1, -0.1), (0.5, 0.5)] {
            let e = check_fractions(v, t).unwrap_err().to_string();
            assert!(e.contains("add up to less than 1"), "{v} {t}: {e}");
        }
    }

    #[test]
    fn fnv_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    fn pairs(n: usize) -> Vec<Pair> {
        (0..n)
            .map(|i| Pair::new(format!("sentence {i}"), format!("phrase {i}")))
            .collect()
    }

    #[test]
    fn deterministic_and_fractions_roughly_respected() {
        let (train, valid, test) = split_by_hash(pairs(20_000), 0.05, 0.1);
        assert_eq!(
            split_by_hash(pairs(20_000), 0.05, 0.1),
            (train.clone(), valid.clone(), test.clone())
        );
        assert_eq!(train.len() + valid.len() + test.len(), 20_000);
        let frac = |v: &Vec<Pair>| v.len() as f64 / 20_000.0;
        assert!((frac(&valid) - 0.05).abs() < 0.01, "{}", frac(&valid));
        assert!((frac(&test) - 0.1).abs() < 0.01, "{}", frac(&test));
    }

    #[test]
    fn same_source_same_split_and_extremes() {
        let mut all = pairs(500);
        all.push(Pair::new("sentence 7", "autre"));
        let (train, valid, test) = split_by_hash(all, 0.3, 0.3);
        for part in [&train, &valid, &test] {
            let n = part.iter().filter(|p| p.src == "sentence 7").count();
            assert!(n == 0 || n == 2);
        }
        let (train, valid, test) = split_by_hash(pairs(100), 0.0, 0.0);
        assert_eq!((train.len(), valid.len(), test.len()), (100, 0, 0));
        let (train, valid, test) = split_by_hash(pairs(100), 1.0, f64::NAN);
        assert_eq!((train.len(), valid.len(), test.len()), (0, 100, 0));
    }
}
