//! Cleaning rules that turn raw gettext entries into sentence pairs worth training on.
//!
//! Layer: text. Program messages carry UI markup that is not language: keyboard accelerators (`_Open`, `&File`) and
//! format placeholders (`%s`, `%1$d`, `%(name)s`, `{0}`). Accelerators are removed; placeholders are kept in the text
//! (a translator must keep them, so the model should learn to copy them) but an entry that is *only* placeholders and
//! punctuation teaches nothing and is dropped.

use crate::whitespace::normalize_whitespace;

/// Longest side kept, in characters: longer entries are help screens and licence texts, not sentences.
pub(crate) const MAX_CHARS: usize = 200;

/// Identical source and target with at least this many words are most likely untranslated copies (help text left in
/// English); shorter identical pairs ("Description", "Menu", "GNU") are usually real translations and are kept.
pub(crate) const MAX_IDENTICAL_WORDS: usize = 3;

/// Removes accelerator markers from `text` and normalizes whitespace (newlines and tabs become single spaces).
///
/// `other` is the other side of the pair. A marker is a `_` or `&` directly before a letter that is the only `_`/`&`
/// in its text, so identifiers such as `LC_ALL_CATEGORIES` or `a_b_c` survive; `&` starting an HTML entity (`&amp;`)
/// is never a marker. A marker at the start of a word (`_Open`) is removed. A marker inside a word (`Ou_vrir`) is
/// removed only when `other` has a marker too and does not contain the same word: translators keep an accelerator
/// but move it (`_Open` vs `Ou_vrir`), while they copy identifiers verbatim (`LC_ALL`) or rewrite them
/// (`minitial_condition` vs `m_condition_initiale`, two underscores, so no marker).
pub(crate) fn clean_text(text: &str, other: &str) -> String {
    let mut s = text.to_string();
    for marker in ['_', '&'] {
        s = strip_accelerator(&s, other, marker);
    }
    normalize_whitespace(&s)
}

/// Byte position of the accelerator marker in `text`, if it has one.
fn marker_pos(text: &str, marker: char) -> Option<usize> {
    if text.matches(marker).count() != 1 {
        return None;
    }
    let pos = text.find(marker)?;
    let after = &text[pos + marker.len_utf8()..];
    let before_letter = after.chars().next().is_some_and(char::is_alphabetic);
    let entity = marker == '&' && is_html_entity(after);
    (before_letter && !entity).then_some(pos)
}

fn strip_accelerator(text: &str, other: &str, marker: char) -> String {
    let Some(pos) = marker_pos(text, marker) else {
        return text.to_string();
    };
    let (before, after) = (&text[..pos], &text[pos + marker.len_utf8()..]);
    let mid_word = before.chars().next_back().is_some_and(char::is_alphanumeric);
    if mid_word {
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| !c.is_alphanumeric())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = after.find(|c: char| !c.is_alphanumeric()).unwrap_or(after.len());
        let word = &text[start..pos + marker.len_utf8() + end];
        if marker_pos(other, marker).is_none() || other.contains(word) {
            return text.to_string();
        }
    }
    format!("{before}{after}")
}

/// `name;` or `#123;` right after an `&`.
fn is_html_entity(after_amp: &str) -> bool {
    let name_len = after_amp
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
        .unwrap_or(after_amp.len());
    name_len > 0 && after_amp[name_len..].starts_with(';')
}

/// True when nothing alphabetic is left after removing format placeholders: such an entry (`"%s: %s"`, `"{0} (%d)"`,
/// `"--"`) carries no language.
pub(crate) fn is_format_only(text: &str) -> bool {
    !strip_format_specs(text).chars().any(char::is_alphabetic)
}

/// Removes printf (`%s`, `%-10.3lf`, `%1$s`, `%'d`, `%%`), Python (`%(name)s`) and brace (`{}`, `{0}`, `{name}`,
/// `{0:>5}`) placeholders, so their conversion letters and names do not count as words.
pub(crate) fn strip_format_specs(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let skip = match chars[i] {
            // Longest match: `%Ey` is strftime, not printf `%E` followed by a `y`.
            '%' => printf_spec_len(&chars[i..]).max(strftime_spec_len(&chars[i..])),
            '{' => brace_spec_len(&chars[i..]),
            _ => 0,
        };
        if skip > 0 {
            i += skip;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Length of a printf/Python placeholder starting at `s[0] == '%'`, or 0 if there is none.
fn printf_spec_len(s: &[char]) -> usize {
    let mut i = 1;
    let take_while = |i: &mut usize, f: &dyn Fn(char) -> bool| {
        while *i < s.len() && f(s[*i]) {
            *i += 1;
        }
    };
    if s.get(1) == Some(&'(') {
        // %(name)s
        match s[2..].iter().position(|&c| c == ')') {
            Some(close) => i = close + 3,
            None => return 0,
        }
    } else {
        // %1$s: a positional argument number.
        let digits_end = {
            let mut j = i;
            take_while(&mut j, &|c| c.is_ascii_digit());
            j
        };
        if digits_end > i && s.get(digits_end) == Some(&'$') {
            i = digits_end + 1;
        }
    }
    // No space flag: "100% sure" is prose, not `% s`.
    take_while(&mut i, &|c| "-+#0'".contains(c));
    take_while(&mut i, &|c| c.is_ascii_digit() || c == '*');
    if s.get(i) == Some(&'.') {
        i += 1;
        take_while(&mut i, &|c| c.is_ascii_digit() || c == '*');
    }
    take_while(&mut i, &|c| "hlLqjzt".contains(c));
    match s.get(i) {
        Some(c) if "diouxXeEfFgGaAcspnm%".contains(*c) => i + 1,
        _ => 0,
    }
}

/// Length of a strftime placeholder (`%H`, `%-d`, `%Ey`) starting at `s[0] == '%'`, or 0: date formats such as
/// `"%a %b %e %H:%M:%S %Z %Y"` are placeholders only.
fn strftime_spec_len(s: &[char]) -> usize {
    let i = if s.get(1).is_some_and(|c| "-_0^#EO".contains(*c)) {
        2
    } else {
        1
    };
    if s.get(i).is_some_and(char::is_ascii_alphabetic) {
        i + 1
    } else {
        0
    }
}

/// Length of a brace placeholder starting at `s[0] == '{'`, or 0 if there is none.
fn brace_spec_len(s: &[char]) -> usize {
    let allowed = |c: char| c.is_alphanumeric() || "_.:!<>=^+-#,[]%".contains(c);
    match s[1..].iter().position(|&c| !allowed(c)) {
        Some(p) if s[1 + p] == '}' => p + 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerators() {
        assert_eq!(clean_text("_Open", "_Ouvrir"), "Open");
        assert_eq!(clean_text("Ou_vrir", "_Open"), "Ouvrir");
        assert_eq!(clean_text("&File", "&Fichier"), "File");
        assert_eq!(clean_text("Save _As…", "Enregistrer _sous…"), "Save As…");
        assert_eq!(clean_text("set LC_ALL", "définir LC_ALL"), "set LC_ALL");
        assert_eq!(clean_text("a_b_c", "x"), "a_b_c");
        assert_eq!(clean_text("Drag & Drop", "x"), "Drag & Drop");
        assert_eq!(clean_text("Tom &amp; Jerry", "x"), "Tom &amp; Jerry");
        assert_eq!(clean_text("line one\nline  two\t", "x"), "line one line two");
        // A multi-byte separator before the word (U+202F, French typography; whitespace, so it becomes ' ').
        assert_eq!(
            clean_text("l’item\u{202f}«\u{202f}project_licence »", "_x"),
            "l’item « projectlicence »"
        );
        assert_eq!(
            clean_text("minitial_condition", "m_condition_initiale"),
            "minitial_condition"
        );
        assert_eq!(clean_text("file_name", "nom du fichier"), "file_name");
        assert_eq!(
            clean_text("«\u{202f}project_licence", "project_licence"),
            "« project_licence"
        );
    }

    #[test]
    fn format_specs() {
        assert_eq!(
            strip_format_specs("%s: %-10.3lf %1$s %'d %% %(name)s {0} {name} {0:>5} {}"),
            ":         "
        );
        assert_eq!(strip_format_specs("100% sure {not a spec}"), "100% sure {not a spec}");
        assert!(is_format_only("%s: %s"));
        assert!(is_format_only("{0} (%d) -- 42."));
        assert!(is_format_only("%a %b %e %H:%M:%S %Z %Y"));
        assert!(is_format_only("%-d/%m/%Ey"));
        assert!(!is_format_only("Error: %s"));
        assert!(!is_format_only("%d files"));
    }
}
