//! Labelled text tables: CSV (RFC 4180 quoting, fields spanning lines), TSV, or JSON Lines, with
//! a header naming the columns.
//!
//! Layer: data (text). Real corpora are messy — the tweet corpus we fine-tune on has CRLF rows,
//! carriage returns inside quoted fields and bytes that are not UTF-8 — so bytes are decoded
//! lossily and quoting follows the RFC instead of splitting lines first. Errors name the file and
//! the 1-based line where the bad record starts.

use ferrite_core::{Error, Result};
use std::path::Path;

/// Rows of text cells under named columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// For each row, the line it starts on (for error messages).
    pub lines: Vec<usize>,
}

impl TextTable {
    /// Reads `path` by extension: `.jsonl`/`.json` (one object per line), `.tsv`, otherwise CSV.
    ///
    /// # Errors
    /// An unreadable or empty file, a row with the wrong number of cells, an unterminated quote, or
    /// a JSON line that is not an object — naming the file and line.
    pub fn read(path: impl AsRef<Path>) -> Result<TextTable> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_start_matches('\u{feff}');
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json") => parse_jsonl(path, text),
            Some("tsv") => parse_delimited(path, text, '\t'),
            _ => parse_delimited(path, text, ','),
        }
    }

    /// The index of column `name`.
    ///
    /// # Errors
    /// No such column: the message lists the columns there are.
    pub fn column(&self, name: &str, source: &Path) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::file(
                source,
                format!("no column \"{name}\" (columns: {})", self.columns.join(", ")),
            )
        })
    }
}

/// RFC 4180 records: `"` quotes a field (`""` is a literal quote), and a quoted field may hold the
/// delimiter, CR and LF. Unquoted records end at LF, CRLF or CR. Blank lines are skipped.
fn records(path: &Path, text: &str, delim: char) -> Result<Vec<(usize, Vec<String>)>> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut was_quoted) = (false, false);
    let (mut line, mut start_line) = (1usize, 1usize);
    let mut chars = text.chars().peekable();
    let mut end_record = |fields: &mut Vec<String>, cur: &mut String, start: usize, was_quoted: bool| {
        if fields.is_empty() && cur.trim().is_empty() && !was_quoted {
            cur.clear(); // blank line
            return;
        }
        fields.push(std::mem::take(cur));
        out.push((start, std::mem::take(fields)));
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => {
                    if c == '\n' {
                        line += 1;
                    }
                    cur.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if cur.is_empty() => {
                quoted = true;
                was_quoted = true;
            }
            c if c == delim => {
                fields.push(std::mem::take(&mut cur));
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_record(&mut fields, &mut cur, start_line, was_quoted);
                was_quoted = false;
                line += 1;
                start_line = line;
            }
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err(Error::file(
            path,
            format!("line {start_line}: a quoted field is never closed"),
        ));
    }
    end_record(&mut fields, &mut cur, start_line, was_quoted);
    Ok(out)
}

fn parse_delimited(path: &Path, text: &str, delim: char) -> Result<TextTable> {
    let mut recs = records(path, text, delim)?.into_iter();
    let (_, columns) = recs
        .next()
        .ok_or_else(|| Error::file(path, "empty file: expected a header line"))?;
    let columns: Vec<String> = columns.into_iter().map(|c| c.trim().to_string()).collect();
    let mut table = TextTable {
        columns,
        rows: Vec::new(),
        lines: Vec::new(),
    };
    for (line, cells) in recs {
        if cells.len() != table.columns.len() {
            return Err(Error::file(
                path,
                format!(
                    "line {line}: {} cells but the header has {} columns",
                    cells.len(),
                    table.columns.len()
                ),
            ));
        }
        table.rows.push(cells);
        table.lines.push(line);
    }
    Ok(table)
}

fn parse_jsonl(path: &Path, text: &str) -> Result<TextTable> {
    let mut table = TextTable {
        columns: Vec::new(),
        rows: Vec::new(),
        lines: Vec::new(),
    };
    let mut objects = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(l).map_err(|e| Error::file(path, format!("line {}: not valid JSON: {e}", i + 1)))?;
        let obj = v
            .as_object()
            .cloned()
            .ok_or_else(|| Error::file(path, format!("line {}: expected a JSON object", i + 1)))?;
        for k in obj.keys() {
            if !table.columns.contains(k) {
                table.columns.push(k.clone());
            }
        }
        objects.push((i + 1, obj));
    }
    if objects.is_empty() {
        return Err(Error::file(path, "empty file: expected JSON objects, one per line"));
    }
    for (line, obj) in objects {
        let row = table
            .columns
            .iter()
            .map(|c| match obj.get(c) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            })
            .collect();
        table.rows.push(row);
        table.lines.push(line);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TextTable> {
        parse_delimited(Path::new("t.csv"), text, ',')
    }

    #[test]
    fn quoted_fields_may_hold_delimiters_quotes_and_line_breaks() {
        let t = parse("label,text\r\npos,\"a, \"\"b\"\"\rc\nd\"\r\n\r\nneg,plain\r\nneu,").unwrap();
        assert_eq!(t.columns, vec!["label", "text"]);
        assert_eq!(t.rows[0], vec!["pos", "a, \"b\"\rc\nd"]);
        assert_eq!(t.rows[1], vec!["neg", "plain"]);
        assert_eq!(t.rows[2], vec!["neu", ""]);
        assert_eq!(t.lines, vec![2, 5, 6]);
    }

    #[test]
    fn bad_rows_name_the_line() {
        let e = parse("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(
            e.contains("t.csv") && e.contains("line 3") && e.contains("1 cells"),
            "{e}"
        );
        let e = parse("a,b\n1,\"open\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("never closed"), "{e}");
        assert!(parse("").unwrap_err().to_string().contains("empty file"));
    }

    #[test]
    fn json_lines_collect_columns() {
        let t = parse_jsonl(
            Path::new("t.jsonl"),
            "{\"text\": \"hi\", \"label\": 1}\n\n{\"text\": \"yo\"}\n",
        )
        .unwrap();
        assert_eq!(t.columns, vec!["label", "text"]);
        assert_eq!(t.rows, vec![vec!["1", "hi"], vec!["", "yo"]]);
        let e = parse_jsonl(Path::new("t.jsonl"), "[1]\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("object"), "{e}");
    }
}
