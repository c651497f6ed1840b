//! Numeric CSV reading with named columns. Errors name the file, the line and the column.
//!
//! Layer: train. A small reader for numeric tables (header row + numbers, `,` separated, optional
//! double quotes); text columns are not supported here. Every value must be a finite number that
//! fits in f32 (the tensors' type): a missing value (an empty cell, `nan`, `NA`, …) or an infinity
//! is an error naming the cell, unless the caller asks for such rows to be dropped
//! ([`Missing::Drop`], pandas' `dropna`) — a NaN must never reach the scalers or a saved run.

use ferrite_core::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to do with a row holding a missing value (empty cell, `nan`, `NA`, `null`, …) or an
/// infinity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// Refuse the file, naming the line and column (the default: nothing is guessed).
    #[default]
    Error,
    /// Skip the row (pandas' `dropna`); the number of rows dropped is not an error.
    Drop,
}

/// Spellings of a missing value (case-insensitive), as pandas' `read_csv` recognizes them.
fn is_missing_token(cell: &str) -> bool {
    let c = cell.to_ascii_lowercase();
    matches!(
        c.as_str(),
        "" | "nan" | "-nan" | "na" | "n/a" | "null" | "none" | "#n/a" | "<na>"
    )
}

/// A numeric table read from a CSV file.
#[derive(Clone, Debug)]
pub struct Table {
    pub path: PathBuf,
    pub columns: Vec<String>,
    /// Row-major values.
    pub rows: Vec<Vec<f64>>,
    /// The 1-based file line of each row, for messages about a value.
    pub lines: Vec<usize>,
}

fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

impl Table {
    /// Reads a CSV file whose first line is a header and whose cells are finite numbers.
    ///
    /// # Errors
    /// Unreadable file, empty file, a repeated column name, a row with the wrong number of cells,
    /// a non-numeric, missing or infinite cell, or one beyond f32's range — each naming the file,
    /// line (1-based) and column.
    pub fn read(path: impl AsRef<Path>) -> Result<Table> {
        Table::read_with(path, Missing::Error)
    }

    /// As [`read`](Self::read), with rows holding a missing value handled as `missing` says.
    pub fn read_with(path: impl AsRef<Path>, missing: Missing) -> Result<Table> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        Table::parse_with(path, &text, missing)
    }

    /// Parses CSV text; `path` is used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Table> {
        Table::parse_with(path, text, Missing::Error)
    }

    /// Parses CSV text, handling rows with a missing value as `missing` says.
    pub fn parse_with(path: &Path, text: &str, missing: Missing) -> Result<Table> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| Error::file(path, "empty file: expected a header line"))?;
        let columns = split_line(header.trim_start_matches('\u{feff}'));
        for (j, name) in columns.iter().enumerate() {
            if let Some(k) = columns[..j].iter().position(|c| c == name) {
                return Err(Error::file(
                    path,
                    format!(
                        "line 1: column '{name}' appears twice in the header (columns {} and {}); \
                         column names must be unique",
                        k + 1,
                        j + 1
                    ),
                ));
            }
        }
        let (mut rows, mut row_lines) = (Vec::new(), Vec::new());
        'rows: for (i, line) in lines {
            let cells = split_line(line);
            if cells.len() != columns.len() {
                return Err(Error::file(
                    path,
                    format!(
                        "line {}: expected {} cells (as in the header), found {}",
                        i + 1,
                        columns.len(),
                        cells.len()
                    ),
                ));
            }
            let mut row = Vec::with_capacity(cells.len());
            for (c, name) in cells.iter().zip(&columns) {
                let at = || format!("line {}, column '{name}'", i + 1);
                let value = if is_missing_token(c) {
                    Some(f64::NAN)
                } else {
                    c.parse::<f64>().ok()
                };
                let Some(v) = value else {
                    return Err(Error::file(path, format!("{}: '{c}' is not a number", at())));
                };
                if !v.is_finite() {
                    if missing == Missing::Drop {
                        continue 'rows;
                    }
                    let what = if v.is_nan() { "a missing value" } else { "infinite" };
                    return Err(Error::file(
                        path,
                        format!(
                            "{}: '{c}' is {what}; fill it in or remove the row (training configs can \
                             set missing = \"drop\" in [data] to skip such rows)",
                            at()
                        ),
                    ));
                }
                if v.abs() > f32::MAX as f64 {
                    return Err(Error::file(
                        path,
                        format!("{}: {c} is beyond the range of f32 (±3.4e38)", at()),
                    ));
                }
                row.push(v);
            }
            rows.push(row);
            row_lines.push(i + 1);
        }
        Ok(Table {
            path: path.to_path_buf(),
            columns,
            rows,
            lines: row_lines,
        })
    }

    /// Index of `name`, or an error listing the available columns.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::file(
                &self.path,
                format!("no column named '{name}' (columns: {})", self.columns.join(", ")),
            )
        })
    }

    /// The named columns as an `[rows, names.len()]` f32 tensor.
    pub fn select(&self, names: &[String]) -> Result<Tensor> {
        let idx = names.iter().map(|n| self.column_index(n)).collect::<Result<Vec<_>>>()?;
        let data: Vec<f32> = self
            .rows
            .iter()
            .flat_map(|r| idx.iter().map(move |&i| r[i] as f32))
            .collect();
        Tensor::from_vec(data, [self.rows.len(), idx.len()])
    }

    /// All columns except `exclude`, in file order.
    pub fn other_columns(&self, exclude: &[String]) -> Vec<String> {
        self.columns.iter().filter(|c| !exclude.contains(c)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_numeric_cell_names_file_line_and_column() {
        let e = Table::parse(Path::new("bad.csv"), "a,b\n1,2\n3,x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.csv") && e.contains("line 3") && e.contains("column 'b'") && e.contains("'x'"),
            "{e}"
        );
    }

    #[test]
    fn missing_and_infinite_values_are_named_or_dropped() {
        let text = "a,b\n1,2\n3,\n,4\nNaN,5\n6,inf\n7,8\n";
        let e = Table::parse(Path::new("m.csv"), text).unwrap_err().to_string();
        assert!(
            e.contains("m.csv") && e.contains("line 3, column 'b'") && e.contains("missing"),
            "{e}"
        );
        let t = Table::parse_with(Path::new("m.csv"), text, Missing::Drop).unwrap();
        assert_eq!(t.rows, vec![vec![1.0, 2.0], vec![7.0, 8.0]]);
        assert_eq!(t.lines, vec![2, 7]);
        let e = Table::parse(Path::new("m.csv"), "a\n-Infinity\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("infinite"), "{e}");
        let e = Table::parse(Path::new("m.csv"), "a\n1e39\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("f32"), "{e}");
    }

    #[test]
    fn a_repeated_column_name_is_refused() {
        let e = Table::parse(Path::new("d.csv"), "x,y,x\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("d.csv") && e.contains("'x' appears twice") && e.contains("columns 1 and 3"),
            "{e}"
        );
    }

    #[test]
    fn missing_column_lists_available_ones() {
        let t = Table::parse(Path::new("t.csv"), "a,\"b\"\n1,2\n").unwrap();
        let e = t.select(&["c".into()]).unwrap_err().to_string();
        assert!(e.contains("t.csv") && e.contains("'c'") && e.contains("a, b"), "{e}");
        assert_eq!(
            t.select(&["b".into(), "a".into()]).unwrap().to_vec::<f32>().unwrap(),
            vec![2.0, 1.0]
        );
    }
}
