//! A translation corpus from installed gettext catalogs: read every `.mo` file of one language, clean, filter and
//! deduplicate the entries.
//!
//! Layer: text. `mo.rs` parses the binary format, `clean.rs` holds the cleaning rules, this file applies them in a
//! fixed order and counts what each rule removed, so a corpus build can be reported and reproduced.

mod clean;
mod mo;

pub use mo::read_mo;

use crate::tsv::Pair;
use clean::{clean_text, is_format_only, MAX_CHARS, MAX_IDENTICAL_WORDS};
use ferrite_core::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What [`extract_gettext_pairs`] read and removed; `entries == kept + dropped_format_only + dropped_duplicate +
/// dropped_other`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GettextStats {
    /// `.mo` files read.
    pub files: usize,
    /// Translated entries in those files (non-empty msgid and msgstr).
    pub entries: usize,
    /// Pairs returned.
    pub kept: usize,
    /// Entries with nothing alphabetic outside format placeholders on either side (`"%s: %s"`).
    pub dropped_format_only: usize,
    /// Entries whose cleaned source was already kept from an earlier entry.
    pub dropped_duplicate: usize,
    /// Entries with a side over 200 characters, or an identical source and target of 4 or more words.
    pub dropped_other: usize,
}

/// Reads every `*.mo` file in `dir` (sorted by file name, so the result is deterministic) and returns cleaned,
/// deduplicated `(msgid, msgstr)` pairs with statistics.
///
/// Per entry, in order:
/// 1. clean both sides: remove keyboard accelerators (`_Open`, `&File`), turn newlines and tabs into spaces and
///    collapse whitespace (see `clean.rs` for how accelerators are told apart from identifiers such as `LC_ALL`);
/// 2. drop it if either side is format-only: nothing alphabetic left after removing printf (`%s`, `%1$d`), Python
///    (`%(name)s`) and brace (`{0}`, `{name}`) placeholders; counted in `dropped_format_only`;
/// 3. drop it if either side is longer than 200 characters, or if source and target are identical and have 4 or
///    more words (an untranslated copy; short identical pairs such as "Description" are real translations and are
///    kept); counted in `dropped_other`;
/// 4. drop it if its source was already kept (first occurrence wins); counted in `dropped_duplicate`.
///
/// Placeholders stay in kept text: translations must preserve them, so the model should learn to copy them.
///
/// # Errors
/// [`Error::File`] naming `dir` if it cannot be listed or holds no `.mo` file, or naming the first `.mo` file that
/// [`read_mo`] rejects.
pub fn extract_gettext_pairs(dir: &Path) -> Result<(Vec<Pair>, GettextStats)> {
    let files = mo_files(dir)?;
    let mut stats = GettextStats {
        files: files.len(),
        ..GettextStats::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut pairs = Vec::new();
    for file in &files {
        for (msgid, msgstr) in read_mo(file)? {
            stats.entries += 1;
            let src = clean_text(&msgid, &msgstr);
            let tgt = clean_text(&msgstr, &msgid);
            if is_format_only(&src) || is_format_only(&tgt) {
                stats.dropped_format_only += 1;
            } else if too_long(&src) || too_long(&tgt) || untranslated_copy(&src, &tgt) {
                stats.dropped_other += 1;
            } else if !seen.insert(src.clone()) {
                stats.dropped_duplicate += 1;
            } else {
                pairs.push(Pair { src, tgt });
            }
        }
    }
    stats.kept = pairs.len();
    Ok((pairs, stats))
}

fn too_long(s: &str) -> bool {
    s.chars().count() > MAX_CHARS
}

fn untranslated_copy(src: &str, tgt: &str) -> bool {
    src == tgt && src.split(' ').count() > MAX_IDENTICAL_WORDS
}

/// The `*.mo` files directly in `dir`, sorted by file name.
fn mo_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot list directory: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Error::file(dir, format!("cannot list directory: {e}")))?
            .path();
        if path.extension().is_some_and(|ext| ext == "mo") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::file(dir, "no .mo files in this directory"));
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}
