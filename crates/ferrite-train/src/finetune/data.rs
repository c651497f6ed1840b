//! Labelled texts for fine-tuning: read from a CSV/TSV/JSONL table, cleaned, split
//! deterministically by a hash of the text, and written back as JSON Lines so other tools
//! (`tools/bow_baseline.py`) train on exactly the same examples.
//!
//! Layer: train.

use crate::run::write_json;
use ferrite_core::fs::write_atomic;
use ferrite_core::{Error, Result, Rng};
use ferrite_text::{split_by_hash, Pair, TextTable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// One text with its label's index into [`Splits::labels`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledText {
    pub text: String,
    pub label: usize,
}

/// Train/valid/test examples and the label names (sorted, so ids do not depend on row order).
#[derive(Clone, Debug, Default)]
pub struct Splits {
    pub labels: Vec<String>,
    pub train: Vec<LabelledText>,
    pub valid: Vec<LabelledText>,
    pub test: Vec<LabelledText>,
    /// Rows skipped because the text or the label was empty.
    pub skipped: usize,
}

/// How to turn a table into splits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataOptions {
    pub text_column: String,
    pub label_column: String,
    pub valid_frac: f64,
    pub test_frac: f64,
    /// Keep only this many training examples (a random sample, seeded), for low-data runs.
    pub train_limit: Option<usize>,
    pub seed: u64,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            text_column: "text".into(),
            label_column: "label".into(),
            valid_frac: 0.1,
            test_frac: 0.1,
            train_limit: None,
            seed: 0,
        }
    }
}

/// Reads `path` and splits it: each distinct text lands in one split only (a hash of the text
/// picks it), the training set is shuffled with `seed` and optionally cut to `train_limit`.
///
/// # Errors
/// A missing column (the message lists those there are), fewer than two labels, or an empty
/// split.
pub fn load_splits(path: &Path, opts: &DataOptions) -> Result<Splits> {
    ferrite_text::check_fractions(opts.valid_frac, opts.test_frac)?;
    let table = TextTable::read(path)?;
    let ti = table.column(&opts.text_column, path)?;
    let li = table.column(&opts.label_column, path)?;
    let mut pairs = Vec::new();
    let mut skipped = 0;
    for row in &table.rows {
        let text = ferrite_text::normalize_whitespace(&row[ti]);
        let label = row[li].trim().to_string();
        if text.is_empty() || label.is_empty() {
            skipped += 1;
            continue;
        }
        pairs.push(Pair { src: text, tgt: label });
    }
    let labels: Vec<String> = pairs
        .iter()
        .map(|p| p.tgt.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if labels.len() < 2 {
        return Err(Error::file(
            path,
            format!(
                "column \"{}\" has {} distinct label(s); classification needs at least 2",
                opts.label_column,
                labels.len()
            ),
        ));
    }
    let (train, valid, test) = split_by_hash(pairs, opts.valid_frac, opts.test_frac);
    let to_examples = |ps: Vec<Pair>| -> Vec<LabelledText> {
        ps.into_iter()
            .map(|p| LabelledText {
                label: labels.binary_search(&p.tgt).unwrap_or(0),
                text: p.src,
            })
            .collect()
    };
    let mut train = to_examples(train);
    Rng::new(opts.seed).shuffle(&mut train);
    if let Some(n) = opts.train_limit {
        train.truncate(n);
    }
    let splits = Splits {
        train,
        valid: to_examples(valid),
        test: to_examples(test),
        labels,
        skipped,
    };
    for (name, s) in [
        ("train", &splits.train),
        ("valid", &splits.valid),
        ("test", &splits.test),
    ] {
        if s.is_empty() {
            return Err(Error::file(
                path,
                format!("the {name} split is empty: the file has too few rows"),
            ));
        }
    }
    Ok(splits)
}

/// Writes `examples` as JSON Lines `{"text": …, "label": "<name>"}`, atomically.
pub fn write_jsonl(path: &Path, examples: &[LabelledText], labels: &[String]) -> Result<()> {
    let mut out = String::new();
    for e in examples {
        let line = serde_json::json!({"text": e.text, "label": labels[e.label]});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}

/// Writes the three splits into `dir` as `train.jsonl`, `valid.jsonl`, `test.jsonl` and the label
/// names as `labels.json`.
pub fn write_splits(dir: &Path, s: &Splits) -> Result<()> {
    write_jsonl(&dir.join("train.jsonl"), &s.train, &s.labels)?;
    write_jsonl(&dir.join("valid.jsonl"), &s.valid, &s.labels)?;
    write_jsonl(&dir.join("test.jsonl"), &s.test, &s.labels)?;
    write_json(&dir.join("labels.json"), &s.labels)
}

/// Accuracy, macro-averaged F1 and the confusion matrix of predictions against labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    /// F1 of each class, in label order.
    pub f1: Vec<f64>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl ClassificationMetrics {
    /// Metrics of `pred` against `truth` over `classes` classes. A class that is never predicted
    /// and never true has F1 0 and still counts in the macro average, as scikit-learn does.
    pub fn compute(pred: &[usize], truth: &[usize], classes: usize) -> Self {
        let mut confusion = vec![vec![0usize; classes]; classes];
        for (&p, &t) in pred.iter().zip(truth) {
            if p < classes && t < classes {
                confusion[t][p] += 1;
            }
        }
        let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
        let f1: Vec<f64> = (0..classes)
            .map(|c| {
                let tp = confusion[c][c] as f64;
                let predicted: usize = (0..classes).map(|t| confusion[t][c]).sum();
                let actual: usize = confusion[c].iter().sum();
                let denom = predicted as f64 + actual as f64;
                if denom == 0.0 {
                    0.0
                } else {
                    2.0 * tp / denom
                }
            })
            .collect();
        ClassificationMetrics {
            accuracy: correct as f64 / truth.len().max(1) as f64,
            macro_f1: f1.iter().sum::<f64>() / classes.max(1) as f64,
            f1,
            confusion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_matches_scikit_learn() {
        // sklearn: f1_score([0,0,1,1,2,2], [0,1,1,1,0,2], average="macro") = 0.6555555…
        let m = ClassificationMetrics::compute(&[0, 1, 1, 1, 0, 2], &[0, 0, 1, 1, 2, 2], 3);
        assert!((m.macro_f1 - 0.655_555_555_555_555_6).abs() < 1e-12, "{}", m.macro_f1);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(m.confusion[2], vec![1, 0, 1]);
    }

    #[test]
    fn splits_are_disjoint_by_text_and_columns_are_checked() {
        let dir = std::env::temp_dir().join(format!("ferrite-ft-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.csv");
        let mut csv = String::from("label,text\n");
        for i in 0..300 {
            csv.push_str(&format!("{},\"text number {}\"\n", ["neg", "pos"][i % 2], i % 250));
        }
        csv.push_str("pos,\n");
        std::fs::write(&path, csv).unwrap();
        let s = load_splits(&path, &DataOptions::default()).unwrap();
        assert_eq!(s.labels, vec!["neg", "pos"]);
        assert_eq!(s.skipped, 1);
        assert_eq!(s.train.len() + s.valid.len() + s.test.len(), 300);
        let train: BTreeSet<&str> = s.train.iter().map(|e| e.text.as_str()).collect();
        assert!(s.test.iter().all(|e| !train.contains(e.text.as_str())));
        let limited = load_splits(
            &path,
            &DataOptions {
                train_limit: Some(20),
                ..DataOptions::default()
            },
        )
        .unwrap();
        assert_eq!(limited.train.len(), 20);
        let e = load_splits(
            &path,
            &DataOptions {
                label_column: "sentiment".into(),
                ..DataOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no column \"sentiment\"") && e.contains("label, text"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
