//! Evaluation metrics (Keras names): mae, mse, accuracy, top-k accuracy, precision, recall, F1.
//!
//! Layer: train. Metrics are plain numbers computed without gradients. For classification,
//! predictions are logits `[N, C]` (argmax) or a single logit column `[N, 1]` (positive when > 0);
//! precision/recall/F1 are for class 1 in the binary case and macro-averaged otherwise.

use ferrite_core::{with_no_grad, DType, Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// A metric to report during `fit` and `evaluate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Mae,
    Mse,
    Accuracy,
    TopK(usize),
    Precision,
    Recall,
    F1,
}

impl Metric {
    /// Parses `mae`, `mse`, `accuracy`, `top_5_accuracy`, `precision`, `recall`, `f1`.
    pub fn parse(name: &str) -> Result<Metric> {
        Ok(match name {
            "mae" => Metric::Mae,
            "mse" => Metric::Mse,
            "accuracy" | "acc" => Metric::Accuracy,
            "precision" => Metric::Precision,
            "recall" => Metric::Recall,
            "f1" => Metric::F1,
            other => {
                let k = other
                    .strip_prefix("top_")
                    .and_then(|r| r.strip_suffix("_accuracy"))
                    .and_then(|k| k.parse().ok());
                match k {
                    Some(k) if k > 0 => Metric::TopK(k),
                    _ => {
                        return Err(Error::Invalid {
                            op: "metric",
                            detail: format!(
                                "unknown metric '{other}' (expected mae, mse, accuracy, top_K_accuracy, precision, recall, f1)"
                            ),
                        });
                    }
                }
            }
        })
    }

    /// The key used in logs and history (`"mae"`, `"top_5_accuracy"`, …).
    pub fn name(&self) -> String {
        match self {
            Metric::Mae => "mae".into(),
            Metric::Mse => "mse".into(),
            Metric::Accuracy => "accuracy".into(),
            Metric::TopK(k) => format!("top_{k}_accuracy"),
            Metric::Precision => "precision".into(),
            Metric::Recall => "recall".into(),
            Metric::F1 => "f1".into(),
        }
    }

    /// Computes the metric for predictions `pred` against targets `target`.
    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Result<f64> {
        with_no_grad(|| match self {
            Metric::Mae | Metric::Mse => {
                let t = target
                    .to_dtype(pred.dtype())?
                    .reshape(pred.shape())
                    .map_err(|_| shape_err(pred, target))?;
                let d = pred.sub(&t)?;
                let v = if *self == Metric::Mae { d.abs()? } else { d.sqr()? };
                v.mean_all()?.item()
            }
            Metric::Accuracy | Metric::TopK(_) => {
                let (classes, truth) = class_preds(pred, target, if let Metric::TopK(k) = self { *k } else { 1 })?;
                let hits = classes.iter().zip(&truth).filter(|(top, t)| top.contains(t)).count();
                Ok(hits as f64 / truth.len().max(1) as f64)
            }
            Metric::Precision | Metric::Recall | Metric::F1 => {
                let (classes, truth) = class_preds(pred, target, 1)?;
                let pred1: Vec<i64> = classes.iter().map(|c| c[0]).collect();
                let n_classes = if pred.ndim() == 2 && pred.shape()[1] > 1 {
                    pred.shape()[1]
                } else {
                    2
                };
                let scored: Vec<i64> = if n_classes == 2 {
                    vec![1]
                } else {
                    (0..n_classes as i64).collect()
                };
                let mut total = 0.0;
                for &c in &scored {
                    let tp = pred1.iter().zip(&truth).filter(|(p, t)| **p == c && **t == c).count() as f64;
                    let fp = pred1.iter().zip(&truth).filter(|(p, t)| **p == c && **t != c).count() as f64;
                    let fneg = pred1.iter().zip(&truth).filter(|(p, t)| **p != c && **t == c).count() as f64;
                    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
                    let recall = if tp + fneg > 0.0 { tp / (tp + fneg) } else { 0.0 };
                    total += match self {
                        Metric::Precision => precision,
                        Metric::Recall => recall,
                        _ if precision + recall > 0.0 => 2.0 * precision * recall / (precision + recall),
                        _ => 0.0,
                    };
                }
                Ok(total / scored.len() as f64)
            }
        })
    }
}

fn shape_err(pred: &Tensor, target: &Tensor) -> Error {
    Error::ShapeMismatch {
        op: "metric",
        lhs: pred.shape().to_vec(),
        rhs: target.shape().to_vec(),
        detail: "one target per prediction".into(),
    }
}

/// Top-k predicted classes per row and the true class per row.
fn class_preds(pred: &Tensor, target: &Tensor, k: usize) -> Result<(Vec<Vec<i64>>, Vec<i64>)> {
    let n = pred.shape().first().copied().unwrap_or(0);
    let truth: Vec<i64> = target
        .to_dtype(DType::F64)?
        .to_vec::<f64>()?
        .iter()
        .map(|v| v.round() as i64)
        .collect();
    if truth.len() != n {
        return Err(shape_err(pred, target));
    }
    let cols = if pred.ndim() == 2 { pred.shape()[1] } else { 1 };
    let v = pred.to_vec::<f64>()?;
    let classes = (0..n)
        .map(|i| {
            let row = &v[i * cols..(i + 1) * cols];
            if cols == 1 {
                return vec![(row[0] > 0.0) as i64];
            }
            let mut idx: Vec<usize> = (0..cols).collect();
            idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            idx.into_iter().take(k).map(|c| c as i64).collect()
        })
        .collect();
    Ok((classes, truth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics_by_hand() {
        let logits = Tensor::from_vec(
            vec![2.0f32, 1.0, 0.0, 0.0, 3.0, 1.0, 0.0, 1.0, 2.0, 5.0, 0.0, 1.0],
            [4, 3],
        )
        .unwrap();
        let t = Tensor::from_vec(vec![0i64, 1, 1, 2], [4]).unwrap();
        assert_eq!(Metric::Accuracy.compute(&logits, &t).unwrap(), 0.5);
        assert_eq!(Metric::TopK(2).compute(&logits, &t).unwrap(), 1.0);
        assert_eq!(Metric::TopK(1).compute(&logits, &t).unwrap(), 0.5);
        // preds 0,1,2,0 vs truth 0,1,1,2: class0 P=1/2 R=1; class1 P=1 R=1/2; class2 P=0 R=0.
        let p = Metric::Precision.compute(&logits, &t).unwrap();
        assert!((p - 0.5).abs() < 1e-12);
        let f1 = Metric::F1.compute(&logits, &t).unwrap();
        assert!((f1 - (2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert!(Metric::parse("top_3_accuracy").unwrap() == Metric::TopK(3));
        assert!(Metric::parse("auc").is_err());
    }
}
