//! Parallel corpora as `src<TAB>tgt` lines: the format every stage of the pipeline reads and writes.
//!
//! Layer: text. TSV rather than two aligned files because one file cannot fall out of alignment, and a bad line can
//! be reported by its line number.

use ferrite_core::fs::write_atomic;
use ferrite_core::{Error, Result};
use std::path::Path;

/// A source/target sentence pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The sentence in the source language.
    pub src: String,
    /// Its translation in the target language.
    pub tgt: String,
}

impl Pair {
    /// A pair from anything string-like.
    pub fn new(src: impl Into<String>, tgt: impl Into<String>) -> Self {
        Pair {
            src: src.into(),
            tgt: tgt.into(),
        }
    }
}

/// Reads `src<TAB>tgt` lines (UTF-8, `\n` or `\r\n` line ends, an optional BOM).
///
/// Blank (whitespace-only) lines are skipped. Fields are returned as written; the tokenizer normalizes whitespace.
///
/// # Errors
/// [`Error::File`] naming `path` if it cannot be read or is not UTF-8 (with the line of the first bad byte), or
/// naming `path` and the 1-based line number of a line without a tab, with more than two columns, or with an empty
/// (whitespace-only) side.
pub fn read_tsv(path: &Path) -> Result<Vec<Pair>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        Error::file(
            path,
            format!("line {line}: invalid UTF-8 at byte offset {}", e.valid_up_to()),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut pairs = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| Error::file(path, format!("line {}: {what}", i + 1));
        let cols: Vec<&str> = line.split('\t').collect();
        match cols.as_slice() {
            [_] => return Err(bad("expected `source<TAB>target`, found no tab")),
            [src, tgt] if src.trim().is_empty() => return Err(bad(&format!("empty source (target is {tgt:?})"))),
            [src, tgt] if tgt.trim().is_empty() => return Err(bad(&format!("empty target (source is {src:?})"))),
            [src, tgt] => pairs.push(Pair::new(*src, *tgt)),
            _ => return Err(bad(&format!("expected 2 tab-separated columns, found {}", cols.len()))),
        }
    }
    Ok(pairs)
}

/// Writes `pairs` as `src<TAB>tgt` lines, atomically (temp file + rename).
///
/// Tabs, carriage returns and newlines inside fields become spaces, so [`read_tsv`] reads back the same number of
/// pairs.
///
/// # Errors
/// [`Error::Invalid`] if a pair has an empty (whitespace-only) side, since [`read_tsv`] would reject the file;
/// [`Error::File`] naming `path` if it cannot be written.
pub fn write_tsv(path: &Path, pairs: &[Pair]) -> Result<()> {
    let mut out = String::new();
    for (i, pair) in pairs.iter().enumerate() {
        for (side, text) in [("source", &pair.src), ("target", &pair.tgt)] {
            if text.trim().is_empty() {
                return Err(Error::Invalid {
                    op: "write_tsv",
                    detail: format!("pair {i} has an empty {side}; it could not be read back"),
                });
            }
        }
        out.push_str(&flatten(&pair.src));
        out.push('\t');
        out.push_str(&flatten(&pair.tgt));
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}

fn flatten(s: &str) -> String {
    s.replace(['\t', '\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrite_text_tsv_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn reads_pairs_skipping_blank_lines_and_crlf() {
        let path = temp_file("ok.tsv", "\u{feff}Hello\tBonjour\r\n\n  \nCat\tChat\n".as_bytes());
        let pairs = read_tsv(&path).unwrap();
        assert_eq!(pairs, vec![Pair::new("Hello", "Bonjour"), Pair::new("Cat", "Chat")]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: [(&str, &[u8], &str); 5] = [
            (
                "notab.tsv",
                b"a\tb\n\nno tab here\n",
                "line 3: expected `source<TAB>target`, found no tab",
            ),
            (
                "three.tsv",
                b"a\tb\tc\n",
                "line 1: expected 2 tab-separated columns, found 3",
            ),
            ("emptysrc.tsv", b"a\tb\n \tb\n", "line 2: empty source"),
            ("emptytgt.tsv", b"a\t\n", "line 1: empty target"),
            ("utf8.tsv", b"a\tb\nc\t\xff\n", "line 2: invalid UTF-8"),
        ];
        for (name, contents, expected) in cases {
            let path = temp_file(name, contents);
            let err = read_tsv(&path).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn write_read_round_trip_flattens_fields() {
        let path = temp_file("rt.tsv", b"");
        let pairs = vec![Pair::new("a\tb", "c\nd"), Pair::new("é", "ü\r\n")];
        write_tsv(&path, &pairs).unwrap();
        let back = read_tsv(&path).unwrap();
        assert_eq!(back, vec![Pair::new("a b", "c d"), Pair::new("é", "ü  ")]);
        assert!(write_tsv(&path, &[Pair::new("", "x")]).is_err());
    }
}
