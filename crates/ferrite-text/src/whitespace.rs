//! Whitespace normalization shared by the tokenizer, the TSV writer and the gettext cleaner.
//!
//! Layer: text. Depends on nothing.

/// Trims `s` and collapses every run of whitespace (Unicode `White_Space`, as `char::is_whitespace`) to one `' '`.
///
/// This is the canonical form [`crate::TextTokenizer`] round-trips to: `decode(encode(s)) == normalize_whitespace(s)`.
///
/// ```
/// assert_eq!(ferrite_text::normalize_whitespace("  a\t b\n\nc "), "a b c");
/// ```
pub fn normalize_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_trims() {
        assert_eq!(normalize_whitespace(""), "");
        assert_eq!(normalize_whitespace(" \t\n "), "");
        assert_eq!(normalize_whitespace("a"), "a");
        assert_eq!(normalize_whitespace("\u{a0}x\u{3000}\u{2028}y  "), "x y");
    }
}
