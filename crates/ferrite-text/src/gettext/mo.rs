//! A reader for GNU gettext `.mo` catalogs: installed translations of program messages are a free, aligned
//! English→X corpus on every Linux machine (`/usr/share/locale/<lang>/LC_MESSAGES/*.mo`).
//!
//! Layer: text. Format (GNU gettext manual, "The Format of GNU MO Files"): a header of u32 words in the file's byte
//! order — magic `0x950412de`, revision, string count N, offset of the original-string table, offset of the
//! translation table, then a hash table we do not need. Each table holds N `(length, offset)` pairs pointing at
//! NUL-terminated strings. Every offset and length is bounds-checked, so a truncated or corrupt file is an error,
//! never a panic.

use ferrite_core::{Error, Result};
use std::path::Path;

const MAGIC: u32 = 0x9504_12de;
const HEADER_LEN: usize = 20;

/// Reads `(msgid, msgstr)` for every translated entry of a `.mo` file, in file order (sorted by msgid).
///
/// Entries with an empty msgid (the catalog header) or an empty msgstr (untranslated) are skipped. Plural entries
/// (`msgid\0msgid_plural`, `msgstr[0]\0msgstr[1]…`) give the singular msgid and the first msgstr. A context prefix
/// (`ctx\x04msgid`) is removed. Strings are decoded by the charset the header declares: UTF-8 (also ASCII or a
/// missing charset) or ISO-8859-1/latin1.
///
/// # Errors
/// [`Error::File`] naming `path` if it cannot be read, has a bad magic number or revision, is truncated (an offset
/// or length pointing outside the file, naming which table entry), declares an unsupported charset, or holds a string
/// that is not valid in its charset.
pub fn read_mo(path: &Path) -> Result<Vec<(String, String)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    parse_mo(&bytes).map_err(|detail| Error::file(path, detail))
}

/// The byte order the magic number reveals.
#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

struct Mo<'a> {
    bytes: &'a [u8],
    endian: Endian,
}

impl<'a> Mo<'a> {
    fn u32_at(&self, offset: usize, what: &str) -> std::result::Result<u32, String> {
        let word = offset
            .checked_add(4)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or_else(|| {
                format!(
                    "truncated .mo file: {what} at byte {offset} is past the end ({} bytes)",
                    self.bytes.len()
                )
            })?;
        let word = [word[0], word[1], word[2], word[3]];
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(word),
            Endian::Big => u32::from_be_bytes(word),
        })
    }

    /// String `index` of the table at `table`: a `(length, offset)` pair, then the bytes it points at.
    fn string(&self, table: usize, index: usize, name: &str) -> std::result::Result<&'a [u8], String> {
        let entry = index
            .checked_mul(8)
            .and_then(|o| o.checked_add(table))
            .ok_or_else(|| format!("corrupt .mo file: {name} table offset overflows"))?;
        let what = format!("{name} entry {index}");
        let len = self.u32_at(entry, &what)? as usize;
        let offset = self.u32_at(entry.saturating_add(4), &what)? as usize;
        offset
            .checked_add(len)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or_else(|| {
                format!(
                    "truncated .mo file: {what} (bytes {offset}..{}) is past the end ({} bytes)",
                    offset.saturating_add(len),
                    self.bytes.len()
                )
            })
    }
}

/// Parses a whole `.mo` image; errors are details for [`Error::file`].
fn parse_mo(bytes: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "not a .mo file: {} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        ));
    }
    let endian = match [bytes[0], bytes[1], bytes[2], bytes[3]] {
        b if u32::from_le_bytes(b) == MAGIC => Endian::Little,
        b if u32::from_be_bytes(b) == MAGIC => Endian::Big,
        b => {
            return Err(format!(
                "not a .mo file: magic number {:#010x}, expected 0x950412de",
                u32::from_le_bytes(b)
            ));
        }
    };
    let mo = Mo { bytes, endian };
    let revision = mo.u32_at(4, "revision")?;
    if revision >> 16 > 1 {
        return Err(format!(
            "unsupported .mo major revision {} (known: 0, 1)",
            revision >> 16
        ));
    }
    let count = mo.u32_at(8, "string count")? as usize;
    let originals = mo.u32_at(12, "original table offset")? as usize;
    let translations = mo.u32_at(16, "translation table offset")? as usize;

    let mut raw = Vec::with_capacity(count.min(bytes.len() / 16));
    let mut charset = Charset::Utf8;
    for i in 0..count {
        let msgid = mo.string(originals, i, "original string")?;
        let msgstr = mo.string(translations, i, "translation")?;
        if msgid.is_empty() {
            charset = Charset::from_header(msgstr)?;
        } else {
            raw.push((i, msgid, msgstr));
        }
    }

    let mut entries = Vec::with_capacity(raw.len());
    for (i, msgid, msgstr) in raw {
        let msgid = charset.decode(msgid, || format!("original string entry {i}"))?;
        let msgstr = charset.decode(msgstr, || format!("translation entry {i}"))?;
        let msgid = msgid.split('\0').next().unwrap_or_default();
        let msgid = msgid.split_once('\u{4}').map_or(msgid, |(_ctx, id)| id);
        let msgstr = msgstr.split('\0').next().unwrap_or_default();
        if !msgid.is_empty() && !msgstr.is_empty() {
            entries.push((msgid.to_string(), msgstr.to_string()));
        }
    }
    Ok(entries)
}

/// The encodings we decode; catalogs in other charsets are rare and rejected with a message naming the charset.
#[derive(Clone, Copy, Debug)]
enum Charset {
    Utf8,
    Latin1,
}

impl Charset {
    /// Reads `charset=…` from the header entry's `Content-Type` line.
    fn from_header(header: &[u8]) -> std::result::Result<Self, String> {
        let header = String::from_utf8_lossy(header);
        let Some(start) = header.find("charset=") else {
            return Ok(Charset::Utf8);
        };
        let name: String = header[start + "charset=".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        match name.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" | "charset" | "" => Ok(Charset::Utf8),
            "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" => Ok(Charset::Latin1),
            _ => Err(format!(
                "unsupported charset {name:?} in the catalog header (supported: UTF-8, ISO-8859-1)"
            )),
        }
    }

    fn decode<'b>(
        self,
        bytes: &'b [u8],
        what: impl Fn() -> String,
    ) -> std::result::Result<std::borrow::Cow<'b, str>, String> {
        match self {
            Charset::Utf8 => std::str::from_utf8(bytes).map(std::borrow::Cow::Borrowed).map_err(|e| {
                format!(
                    "{} is not valid UTF-8 (at byte {} of the string)",
                    what(),
                    e.valid_up_to()
                )
            }),
            // ISO-8859-1 maps each byte to the code point of the same value.
            Charset::Latin1 => Ok(std::borrow::Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_bad_magic() {
        assert!(parse_mo(b"").unwrap_err().contains("shorter than"));
        let err = parse_mo(&[0u8; 28]).unwrap_err();
        assert!(err.contains("magic number 0x00000000"), "{err}");
    }

    #[test]
    fn table_past_end_is_reported() {
        let mut bytes = Vec::new();
        for w in [MAGIC, 0, 1, 1000, 2000] {
            bytes.extend(w.to_le_bytes());
        }
        let err = parse_mo(&bytes).unwrap_err();
        assert!(err.contains("original string entry 0"), "{err}");
    }

    #[test]
    fn header_charsets() {
        assert!(matches!(
            Charset::from_header(b"Content-Type: text/plain; charset=UTF-8\n"),
            Ok(Charset::Utf8)
        ));
        assert!(matches!(
            Charset::from_header(b"charset=iso-8859-1\n"),
            Ok(Charset::Latin1)
        ));
        assert!(Charset::from_header(b"charset=KOI8-R\n")
            .unwrap_err()
            .contains("KOI8-R"));
    }
}
