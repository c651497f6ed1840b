//! Corpus BLEU (Papineni et al. 2002) exactly as sacreBLEU 2.x's default `BLEU()` computes it
//! (`metrics/bleu.py`): 13a tokenization, case-sensitive, n-grams up to 4, `exp` smoothing, one reference.
//!
//! Layer: text metrics. Statistics (clipped matches and totals per order, lengths) are summed over all sentences first
//! and the score is computed once from the sums; averaging sentence scores would give a different, non-standard number.

use super::tok13a::{is_py_space, py_split, tokenize_13a};
use ferrite_core::Result;
use std::collections::HashMap;

const MAX_ORDER: usize = 4;

/// A corpus BLEU score with the parts sacreBLEU reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Bleu {
    /// The BLEU score, 0..100.
    pub score: f64,
    /// Modified n-gram precisions for n = 1..4, in percent (smoothed where the match count is 0).
    pub precisions: [f64; 4],
    /// Brevity penalty, `exp(1 - ref_len / sys_len)` when the system is shorter, else 1.
    pub bp: f64,
    /// Total hypothesis length in 13a tokens.
    pub sys_len: usize,
    /// Total reference length in 13a tokens.
    pub ref_len: usize,
}

/// Sufficient statistics of one sentence or a whole corpus.
#[derive(Default)]
struct Stats {
    sys_len: usize,
    ref_len: usize,
    correct: [u64; MAX_ORDER],
    total: [u64; MAX_ORDER],
}

/// Corpus BLEU of `hyps` against one reference each, equal to sacreBLEU 2.x `BLEU().corpus_score(hyps, [refs])`.
///
/// ```
/// let hyps = vec!["the cat sat on the mat".to_string()];
/// let bleu = ferrite_text::corpus_bleu(&hyps, &hyps).unwrap();
/// assert!((bleu.score - 100.0).abs() < 1e-9);
/// ```
///
/// # Errors
/// [`ferrite_core::Error::Invalid`] if `hyps` and `refs` differ in length or are empty.
pub fn corpus_bleu(hyps: &[String], refs: &[String]) -> Result<Bleu> {
    super::check_corpus("corpus_bleu", hyps, refs)?;
    let mut sum = Stats::default();
    for (hyp, reference) in hyps.iter().zip(refs) {
        let s = sentence_stats(hyp, reference);
        sum.sys_len += s.sys_len;
        sum.ref_len += s.ref_len;
        for n in 0..MAX_ORDER {
            sum.correct[n] += s.correct[n];
            sum.total[n] += s.total[n];
        }
    }
    Ok(compute_bleu(&sum))
}

/// sacreBLEU's `_preprocess_segment` (`rstrip` then 13a) followed by whitespace splitting.
fn tokens(s: &str) -> Vec<String> {
    py_split(&tokenize_13a(s.trim_end_matches(is_py_space)))
        .map(str::to_owned)
        .collect()
}

fn ngram_counts(tokens: &[String]) -> HashMap<&[String], u64> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER.min(tokens.len()) {
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

fn sentence_stats(hyp: &str, reference: &str) -> Stats {
    let (hyp, reference) = (tokens(hyp), tokens(reference));
    let ref_counts = ngram_counts(&reference);
    let mut stats = Stats {
        sys_len: hyp.len(),
        ref_len: reference.len(),
        ..Stats::default()
    };
    for (gram, count) in ngram_counts(&hyp) {
        let n = gram.len() - 1;
        stats.total[n] += count;
        stats.correct[n] += count.min(ref_counts.get(gram).copied().unwrap_or(0));
    }
    stats
}

/// sacreBLEU's `my_log`: log with log(0) floored to -9999999999 so a zero precision gives a score of 0, not NaN.
fn my_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// `BLEU.compute_bleu` with `smooth_method='exp'`, `effective_order=False`; operation order kept for bitwise parity.
fn compute_bleu(s: &Stats) -> Bleu {
    let (sys_len, ref_len) = (s.sys_len as f64, s.ref_len as f64);
    let bp = if s.sys_len < s.ref_len {
        if s.sys_len > 0 {
            (1.0 - ref_len / sys_len).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = [0.0; MAX_ORDER];
    let done = |score, precisions| Bleu {
        score,
        precisions,
        bp,
        sys_len: s.sys_len,
        ref_len: s.ref_len,
    };
    // sacreBLEU issue #141: no match at any order scores 0 without smoothing.
    if s.correct.iter().all(|&c| c == 0) {
        return done(0.0, precisions);
    }
    let mut smooth_mteval = 1.0;
    for (p, (&correct, &total)) in precisions.iter_mut().zip(s.correct.iter().zip(&s.total)) {
        if total == 0 {
            break;
        }
        if correct == 0 {
            smooth_mteval *= 2.0;
            *p = 100.0 / (smooth_mteval * total as f64);
        } else {
            *p = 100.0 * correct as f64 / total as f64;
        }
    }
    let log_sum = precisions.iter().fold(0.0, |acc, &p| acc + my_log(p));
    done(bp * (log_sum / MAX_ORDER as f64).exp(), precisions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn perfect_and_empty() {
        let refs = v(&["The cat sat on the mat.", "A dog."]);
        let perfect = corpus_bleu(&refs, &refs).unwrap();
        assert!((perfect.score - 100.0).abs() < 1e-9, "{perfect:?}");
        let empty = corpus_bleu(&v(&["", ""]), &refs).unwrap();
        assert_eq!((empty.score, empty.bp, empty.sys_len, empty.ref_len), (0.0, 0.0, 0, 10));
    }

    #[test]
    fn length_mismatch_is_an_error() {
        assert!(corpus_bleu(&v(&["a"]), &v(&["a", "b"])).is_err());
        assert!(corpus_bleu(&[], &[]).is_err());
    }
}
