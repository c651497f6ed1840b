//! Translation metrics compatible with sacreBLEU 2.x defaults, checked against `tests/reference/text.json`
//! (produced by `tools/make_text_reference.py`).
//!
//! Layer: text. Pure functions on strings.

mod bleu;
mod chrf;
mod tok13a;

pub use bleu::{corpus_bleu, Bleu};
pub use chrf::corpus_chrf;
pub use tok13a::tokenize_13a;

use ferrite_core::{Error, Result};

/// Both metrics need one reference per hypothesis and at least one sentence (sacreBLEU raises on an empty corpus).
fn check_corpus(op: &'static str, hyps: &[String], refs: &[String]) -> Result<()> {
    if hyps.len() != refs.len() {
        return Err(Error::Invalid {
            op,
            detail: format!(
                "{} hypotheses but {} references; need one reference each",
                hyps.len(),
                refs.len()
            ),
        });
    }
    if hyps.is_empty() {
        return Err(Error::Invalid {
            op,
            detail: "no sentences to score".to_string(),
        });
    }
    Ok(())
}
