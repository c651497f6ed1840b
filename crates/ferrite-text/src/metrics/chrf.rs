//! Corpus chrF (Popović 2015) exactly as sacreBLEU 2.x's default `CHRF()` computes it (`metrics/chrf.py`):
//! character n-grams of orders 1..6 with all whitespace removed, no word n-grams, beta = 2, case-sensitive.
//!
//! Layer: text metrics. As in sacreBLEU, per-order counts (hypothesis n-grams, reference n-grams, matches) are summed
//! over all sentences first; then precision and recall are computed per order, averaged over the orders where both
//! the hypothesis and reference counts are non-zero ("effective order"), and combined into one F-beta.

use super::tok13a::is_py_space;
use ferrite_core::Result;
use std::collections::HashMap;

const CHAR_ORDER: usize = 6;
const BETA: f64 = 2.0;

/// Corpus chrF of `hyps` against one reference each, 0..100, equal to sacreBLEU 2.x
/// `CHRF().corpus_score(hyps, [refs]).score`.
///
/// ```
/// let hyps = vec!["le chat".to_string()];
/// assert!((ferrite_text::corpus_chrf(&hyps, &hyps).unwrap() - 100.0).abs() < 1e-9);
/// ```
///
/// # Errors
/// [`ferrite_core::Error::Invalid`] if `hyps` and `refs` differ in length or are empty.
pub fn corpus_chrf(hyps: &[String], refs: &[String]) -> Result<f64> {
    super::check_corpus("corpus_chrf", hyps, refs)?;
    // [order] -> (hyp n-grams, ref n-grams, matches)
    let mut sum = [(0u64, 0u64, 0u64); CHAR_ORDER];
    for (hyp, reference) in hyps.iter().zip(refs) {
        let hyp: Vec<char> = hyp.chars().filter(|&c| !is_py_space(c)).collect();
        let reference: Vec<char> = reference.chars().filter(|&c| !is_py_space(c)).collect();
        for (n, slot) in sum.iter_mut().enumerate() {
            let (h, r, m) = order_stats(&hyp, &reference, n + 1);
            slot.0 += h;
            slot.1 += r;
            slot.2 += m;
        }
    }
    Ok(f_score(&sum))
}

fn counts(chars: &[char], n: usize) -> HashMap<&[char], u64> {
    let mut map = HashMap::new();
    for gram in chars.windows(n) {
        *map.entry(gram).or_insert(0) += 1;
    }
    map
}

/// `CHRF._get_match_statistics` for one order: the hypothesis count is zeroed when the reference has no n-grams of
/// this order ("don't count hits if no reference exists for that n-gram").
fn order_stats(hyp: &[char], reference: &[char], n: usize) -> (u64, u64, u64) {
    let (h, r) = (counts(hyp, n), counts(reference, n));
    let mut hyp_count = 0;
    let mut matches = 0;
    for (gram, &count) in &h {
        hyp_count += count;
        matches += count.min(r.get(gram).copied().unwrap_or(0));
    }
    let ref_count = r.values().sum();
    (if r.is_empty() { 0 } else { hyp_count }, ref_count, matches)
}

/// `CHRF._compute_f_score` with `eps_smoothing=False`; operation order kept for bitwise parity.
fn f_score(stats: &[(u64, u64, u64); CHAR_ORDER]) -> f64 {
    let factor = BETA * BETA;
    let (mut avg_prec, mut avg_rec, mut effective_order) = (0.0, 0.0, 0usize);
    for &(n_hyp, n_ref, n_match) in stats {
        if n_hyp > 0 && n_ref > 0 {
            avg_prec += n_match as f64 / n_hyp as f64;
            avg_rec += n_match as f64 / n_ref as f64;
            effective_order += 1;
        }
    }
    if effective_order == 0 {
        return 0.0;
    }
    avg_prec /= effective_order as f64;
    avg_rec /= effective_order as f64;
    if avg_prec + avg_rec == 0.0 {
        return 0.0;
    }
    let score = (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
    100.0 * score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn perfect_disjoint_and_whitespace_insensitive() {
        assert!((corpus_chrf(&v(&["a b c"]), &v(&["abc"])).unwrap() - 100.0).abs() < 1e-12);
        assert_eq!(corpus_chrf(&v(&["xyz"]), &v(&["abc"])).unwrap(), 0.0);
        assert_eq!(corpus_chrf(&v(&[""]), &v(&["abc"])).unwrap(), 0.0);
        assert!(corpus_chrf(&v(&["a"]), &v(&[])).is_err());
    }
}
