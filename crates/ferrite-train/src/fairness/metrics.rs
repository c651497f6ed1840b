//! Group fairness metrics of binary predictions, as fairlearn 0.15 defines them: a
//! [`MetricFrame`] of per-group rates (fairlearn's `MetricFrame` with `selection_rate`,
//! `true_positive_rate`, `false_positive_rate`, `accuracy_score`, `count`), and the disparity
//! summaries built from it — demographic parity, equalized odds and equal opportunity, as
//! differences and ratios, between groups or to the overall rate.
//!
//! Definitions (weights `w`, default 1): selection rate `Σw·ŷ / Σw`; TPR `Σw·ŷ·y / Σw·y`; FPR
//! `Σw·ŷ·(1−y) / Σw·(1−y)`; accuracy `Σw·[ŷ = y] / Σw`; `count` is the number of rows (never
//! weighted). A group without positives (or negatives) has TPR (FPR) 0, not NaN: fairlearn takes
//! it from scikit-learn's normalized confusion matrix, which turns 0/0 into 0 — so such a group
//! takes part in the max/min like any other.

use super::table::Groups;
use ferrite_core::{Error, Result};
use serde::Serialize;

/// One group's rates (or the overall ones).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    /// The group's values, one per sensitive column (empty for the overall row).
    pub group: Vec<String>,
    pub count: usize,
    pub selection_rate: f64,
    pub true_positive_rate: f64,
    pub false_positive_rate: f64,
    pub accuracy: f64,
}

/// Which rate a disparity compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Selection,
    TruePositive,
    FalsePositive,
    Accuracy,
}

impl Rates {
    pub fn get(&self, rate: Rate) -> f64 {
        match rate {
            Rate::Selection => self.selection_rate,
            Rate::TruePositive => self.true_positive_rate,
            Rate::FalsePositive => self.false_positive_rate,
            Rate::Accuracy => self.accuracy,
        }
    }
}

/// Compare groups with each other (max − min, min / max) or each with the overall rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    BetweenGroups,
    ToOverall,
}

/// How equalized odds combines its TPR and FPR disparities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    /// The larger difference (smaller ratio): fairlearn's default.
    WorstCase,
    /// Their mean.
    Mean,
}

/// Per-group and overall rates of binary predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricFrame {
    /// The sensitive columns.
    pub columns: Vec<String>,
    /// One row per group, in sorted group order.
    pub by_group: Vec<Rates>,
    pub overall: Rates,
}

/// Weighted tallies of one group.
#[derive(Default, Clone, Copy)]
struct Tally {
    count: usize,
    weight: f64,
    selected: f64,
    positives: f64,
    true_positives: f64,
    negatives: f64,
    false_positives: f64,
    correct: f64,
}

impl Tally {
    fn add(&mut self, y: bool, pred: bool, w: f64) {
        self.count += 1;
        self.weight += w;
        if pred {
            self.selected += w;
        }
        if y {
            self.positives += w;
            if pred {
                self.true_positives += w;
            }
        } else {
            self.negatives += w;
            if pred {
                self.false_positives += w;
            }
        }
        if y == pred {
            self.correct += w;
        }
    }

    fn rates(&self, group: Vec<String>) -> Rates {
        // 0/0 → 0, as scikit-learn's normalized confusion matrix.
        let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        Rates {
            group,
            count: self.count,
            selection_rate: ratio(self.selected, self.weight),
            true_positive_rate: ratio(self.true_positives, self.positives),
            false_positive_rate: ratio(self.false_positives, self.negatives),
            accuracy: ratio(self.correct, self.weight),
        }
    }
}

impl MetricFrame {
    /// Rates of predictions `y_pred` against labels `y_true` per group of `groups`, with optional
    /// per-row `weights`.
    ///
    /// # Errors
    /// Lengths that differ (named), and weights that are negative or not finite.
    pub fn new(y_true: &[bool], y_pred: &[bool], groups: &Groups, weights: Option<&[f64]>) -> Result<MetricFrame> {
        let n = y_true.len();
        let mismatch = |what: &str, len: usize| Error::Invalid {
            op: "fairness metrics",
            detail: format!("{what} has {len} rows but y_true has {n}"),
        };
        if y_pred.len() != n {
            return Err(mismatch("y_pred", y_pred.len()));
        }
        if groups.of_row.len() != n {
            return Err(mismatch("the sensitive feature", groups.of_row.len()));
        }
        if let Some(w) = weights {
            if w.len() != n {
                return Err(mismatch("sample_weight", w.len()));
            }
            if let Some(i) = w.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(Error::Invalid {
                    op: "fairness metrics",
                    detail: format!("sample_weight[{i}] = {} must be finite and ≥ 0", w[i]),
                });
            }
        }
        let mut tallies = vec![Tally::default(); groups.len()];
        let mut overall = Tally::default();
        for i in 0..n {
            let w = weights.map_or(1.0, |w| w[i]);
            tallies[groups.of_row[i]].add(y_true[i], y_pred[i], w);
            overall.add(y_true[i], y_pred[i], w);
        }
        Ok(MetricFrame {
            columns: groups.columns.clone(),
            by_group: tallies
                .iter()
                .zip(&groups.keys)
                .map(|(t, k)| t.rates(k.clone()))
                .collect(),
            overall: overall.rates(Vec::new()),
        })
    }

    /// The largest gap in `rate`: max − min over groups, or the largest |group − overall|.
    pub fn difference(&self, rate: Rate, method: Method) -> f64 {
        let values = self.by_group.iter().map(|g| g.get(rate));
        match method {
            Method::BetweenGroups => {
                values.clone().fold(f64::NEG_INFINITY, f64::max) - values.fold(f64::INFINITY, f64::min)
            }
            Method::ToOverall => {
                let overall = self.overall.get(rate);
                values.map(|v| (v - overall).abs()).fold(f64::NEG_INFINITY, f64::max)
            }
        }
    }

    /// The smallest ratio in `rate`: min / max over groups, or the smallest of each group's
    /// `group / overall` taken as `≤ 1` (inverted when above 1). NaN when undefined (0/0).
    pub fn ratio(&self, rate: Rate, method: Method) -> f64 {
        let values: Vec<f64> = self.by_group.iter().map(|g| g.get(rate)).collect();
        match method {
            Method::BetweenGroups => {
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                min / max
            }
            Method::ToOverall => {
                let overall = self.overall.get(rate);
                values
                    .iter()
                    .map(|v| v / overall)
                    .map(|r| if r > 1.0 { 1.0 / r } else { r })
                    .filter(|r| !r.is_nan())
                    .fold(f64::NAN, f64::min)
            }
        }
    }

    /// Demographic parity difference: the gap in selection rates.
    pub fn demographic_parity_difference(&self, method: Method) -> f64 {
        self.difference(Rate::Selection, method)
    }

    pub fn demographic_parity_ratio(&self, method: Method) -> f64 {
        self.ratio(Rate::Selection, method)
    }

    /// Equal opportunity difference: the gap in true positive rates.
    pub fn equal_opportunity_difference(&self, method: Method) -> f64 {
        self.difference(Rate::TruePositive, method)
    }

    pub fn equal_opportunity_ratio(&self, method: Method) -> f64 {
        self.ratio(Rate::TruePositive, method)
    }

    /// Equalized odds difference: the TPR and FPR gaps, the larger or their mean.
    pub fn equalized_odds_difference(&self, agg: Agg, method: Method) -> f64 {
        let (tpr, fpr) = (
            self.difference(Rate::TruePositive, method),
            self.difference(Rate::FalsePositive, method),
        );
        match agg {
            Agg::WorstCase => tpr.max(fpr),
            Agg::Mean => (tpr + fpr) / 2.0,
        }
    }

    pub fn equalized_odds_ratio(&self, agg: Agg, method: Method) -> f64 {
        let (tpr, fpr) = (
            self.ratio(Rate::TruePositive, method),
            self.ratio(Rate::FalsePositive, method),
        );
        match agg {
            Agg::WorstCase => tpr.min(fpr),
            Agg::Mean => (tpr + fpr) / 2.0,
        }
    }
}
