//! Numeric CSV reading with named columns. Errors name the file, the line and the column.
//!
//! Layer: train. A small reader for numeric tables (header row + numbers, `,` separated, optional
//! double quotes); text columns are not supported here.

use ferrite_core::{Error, Result, Tensor};
use std::path::{Path, PathBuf};

/// A numeric table read from a CSV file.
#[derive(Clone, Debug)]
pub struct Table {
    pub path: PathBuf,
    pub columns: Vec<String>,
    /// Row-major values.
    pub rows: Vec<Vec<f64>>,
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
    /// Reads a CSV file whose first line is a header and whose cells are numbers.
    ///
    /// # Errors
    /// Unreadable file, empty file, a row with the wrong number of cells, or a non-numeric cell —
    /// each naming the file, line (1-based) and column.
    pub fn read(path: impl AsRef<Path>) -> Result<Table> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        Table::parse(path, &text)
    }

    /// Parses CSV text; `path` is used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Table> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| Error::file(path, "empty file: expected a header line"))?;
        let columns = split_line(header.trim_start_matches('\u{feff}'));
        let mut rows = Vec::new();
        for (i, line) in lines {
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
            let row = cells
                .iter()
                .zip(&columns)
                .map(|(c, name)| {
                    c.parse::<f64>().map_err(|_| {
                        Error::file(path, format!("line {}, column '{name}': '{c}' is not a number", i + 1))
                    })
                })
                .collect::<Result<Vec<f64>>>()?;
            rows.push(row);
        }
        Ok(Table {
            path: path.to_path_buf(),
            columns,
            rows,
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
