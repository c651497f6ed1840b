//! Text tables for fairness work: rows of named, mostly categorical columns (a person's sex,
//! race, workclass), as the census-style data sets come. UCI Adult is read here in its own
//! format; [`Table::groups`] turns one or more columns into the sensitive-feature groups the
//! metrics and mitigations work on.

use ferrite_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Rows of text cells under column names. A missing value is kept as the file wrote it (`?` in
/// UCI Adult): a category of its own, as one-hot encoders and fairlearn's groups treat it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The UCI Adult columns, in file order (the files have no header).
pub const ADULT_COLUMNS: [&str; 15] = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income_per_year",
];

/// Which group each row belongs to, for one or more sensitive columns: groups are the value
/// combinations that occur, sorted (fairlearn's order).
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    /// The sensitive columns.
    pub columns: Vec<String>,
    /// Each group's values, one per column.
    pub keys: Vec<Vec<String>>,
    /// Row → index into `keys`.
    pub of_row: Vec<usize>,
}

impl Groups {
    /// Groups from per-row keys (one value per sensitive column).
    pub fn from_keys(columns: Vec<String>, row_keys: Vec<Vec<String>>) -> Groups {
        let mut index: BTreeMap<Vec<String>, usize> = row_keys.iter().map(|k| (k.clone(), 0)).collect();
        for (i, slot) in index.values_mut().enumerate() {
            *slot = i;
        }
        let of_row = row_keys.iter().map(|k| index[k]).collect();
        Groups {
            columns,
            keys: index.into_keys().collect(),
            of_row,
        }
    }

    /// A group's name: its values joined with `, `.
    pub fn name(&self, group: usize) -> String {
        self.keys[group].join(", ")
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl Table {
    /// The index of column `name`; the error lists the columns there are.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::Invalid {
                op: "fairness",
                detail: format!("no column {name:?}; the columns are: {}", self.columns.join(", ")),
            })
    }

    /// The values of column `name`.
    pub fn values(&self, name: &str) -> Result<Vec<&str>> {
        let c = self.column(name)?;
        Ok(self.rows.iter().map(|r| r[c].as_str()).collect())
    }

    /// Groups by the sensitive columns `names` (one or several).
    pub fn groups(&self, names: &[&str]) -> Result<Groups> {
        if names.is_empty() {
            return Err(Error::Invalid {
                op: "fairness",
                detail: "name at least one sensitive column".into(),
            });
        }
        let idx: Vec<usize> = names.iter().map(|n| self.column(n)).collect::<Result<_>>()?;
        let keys = self
            .rows
            .iter()
            .map(|r| idx.iter().map(|&c| r[c].clone()).collect())
            .collect();
        Ok(Groups::from_keys(names.iter().map(|s| s.to_string()).collect(), keys))
    }

    /// A UCI Adult file (`adult.data` or `adult.test`): no header, `, `-separated cells; lines
    /// starting with `|` (the test file's first line) and blank lines are skipped, and the test
    /// file's label dot (`>50K.`) is dropped so both files share labels. All 32,561 / 16,281
    /// rows are kept; `?` marks a missing workclass, occupation or native country.
    pub fn read_adult(path: &Path) -> Result<Table> {
        let file_err = |detail: String| Error::File {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read: {e}")))?;
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('|') {
                continue;
            }
            let mut cells: Vec<String> = line.split(',').map(|c| c.trim().to_string()).collect();
            if cells.len() != ADULT_COLUMNS.len() {
                return Err(file_err(format!(
                    "line {}: {} fields, UCI Adult has {}",
                    n + 1,
                    cells.len(),
                    ADULT_COLUMNS.len()
                )));
            }
            if let Some(label) = cells.last_mut()
                && let Some(stripped) = label.strip_suffix('.')
            {
                *label = stripped.to_string();
            }
            rows.push(cells);
        }
        if rows.is_empty() {
            return Err(file_err("no rows".into()));
        }
        Ok(Table {
            columns: ADULT_COLUMNS.iter().map(|s| s.to_string()).collect(),
            rows,
        })
    }
}
