//! Post-processing mitigation: fairlearn 0.15's `ThresholdOptimizer` (Hardt, Price, Srebro
//! 2016), on any model's scores. Per group, every threshold on the scores gives a point (x, y)
//! — x the rate the constraint equalizes (selection rate for demographic parity, FPR for
//! equalized odds), y the objective (accuracy) or TPR — and mixing two thresholds at random
//! reaches any point of the upper convex hull of those points. The optimizer picks the x (on a
//! grid) where the groups, each at that x, do best overall; each group then predicts with a
//! randomized mix of (at most) two thresholds. Equalized odds needs one (FPR, TPR) point for all
//! groups: the best point under every group's ROC hull, reached by also mixing in a constant-rate
//! coin.
//!
//! The port follows `docs/notes/threshold_optimizer_spec.md` step by step — tie handling, the
//! grid `k·(1/grid_size)`, left segments at grid points that hit a vertex, first maxima, the EO
//! objective rounded to 15 decimals — and matches fairlearn bit for bit on
//! `tests/reference/fairness.json` → `threshold_optimizer`. Randomized predictions draw from
//! ferrite's generator, not numpy's, so they agree with fairlearn's in distribution only.

use super::table::Groups;
use ferrite_core::{Error, Result, Rng};
use serde::Serialize;

/// Which rate the groups must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// Equal selection rates.
    DemographicParity,
    /// Equal TPR and FPR.
    EqualizedOdds,
    /// Equal TPR (equal opportunity).
    TruePositiveRateParity,
    /// Equal FPR.
    FalsePositiveRateParity,
}

/// What the chosen thresholds maximize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    Accuracy,
    BalancedAccuracy,
}

/// fairlearn's `ThresholdOptimizer` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdOptions {
    pub constraint: Constraint,
    pub objective: Objective,
    /// Grid points on the x axis (fairlearn's default 1000).
    pub grid_size: usize,
    /// Also consider "score below the threshold" as the positive prediction.
    pub flip: bool,
}

impl ThresholdOptions {
    pub fn new(constraint: Constraint) -> Self {
        ThresholdOptions {
            constraint,
            objective: Objective::Accuracy,
            grid_size: 1000,
            flip: false,
        }
    }
}

/// Predict 1 when the score is strictly above (or, flipped, below) the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Operation {
    /// `true`: `score > threshold`; `false`: `score < threshold`.
    pub above: bool,
    pub threshold: f64,
}

impl Operation {
    fn positive(&self, score: f64) -> bool {
        if self.above {
            score > self.threshold
        } else {
            score < self.threshold
        }
    }
}

/// One group's randomized rule: with probability `p0` apply `op0`, else `op1`; for equalized
/// odds, with probability `p_ignore` predict 1 with probability `prediction_constant` instead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRule {
    pub group: Vec<String>,
    pub p0: f64,
    pub op0: Operation,
    pub p1: f64,
    pub op1: Operation,
    pub p_ignore: Option<f64>,
    pub prediction_constant: Option<f64>,
}

impl GroupRule {
    /// P(ŷ = 1) for a score.
    pub fn probability(&self, score: f64) -> f64 {
        let ind = |op: &Operation| if op.positive(score) { 1.0 } else { 0.0 };
        let q = self.p0 * ind(&self.op0) + self.p1 * ind(&self.op1);
        match (self.p_ignore, self.prediction_constant) {
            (Some(p), Some(c)) => p * c + (1.0 - p) * q,
            _ => q,
        }
    }
}

/// A point of a group's trade-off curve and the threshold that gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub op: Operation,
}

/// A fitted threshold optimizer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdOptimizer {
    pub constraint: Constraint,
    pub objective: Objective,
    /// The chosen grid index and its point: the shared x, and y (the overall objective for
    /// demographic parity, the shared TPR for equalized odds).
    pub i_best: usize,
    pub x_best: f64,
    pub y_best: f64,
    /// Equalized odds: the expected objective at the chosen point (rounded to 15 decimals).
    pub objective_best: Option<f64>,
    /// One rule per group, in group order.
    pub rules: Vec<GroupRule>,
    /// Each group's upper convex hull, in group order.
    #[serde(skip)]
    pub hulls: Vec<Vec<Point>>,
}

/// Confusion counts at one threshold (exact integers held as f64).
#[derive(Clone, Copy)]
struct Counts {
    tp: f64,
    fp: f64,
    tn: f64,
    fn_: f64,
}

impl Counts {
    fn rate(&self, what: Rate) -> f64 {
        let Counts { tp, fp, tn, fn_ } = *self;
        match what {
            Rate::Selection => (tp + fp) / (tp + fp + tn + fn_),
            Rate::FalsePositive => fp / (tn + fp),
            Rate::TruePositive => tp / (tp + fn_),
            Rate::Accuracy => (tp + tn) / (tp + fp + tn + fn_),
            Rate::BalancedAccuracy => 0.5 * tp / (tp + fn_) + 0.5 * tn / (tn + fp),
        }
    }
}

#[derive(Clone, Copy)]
enum Rate {
    Selection,
    FalsePositive,
    TruePositive,
    Accuracy,
    BalancedAccuracy,
}

impl ThresholdOptimizer {
    /// Fits the per-group rules on `scores` (any finite numbers, higher = more positive),
    /// labels `y` and `groups`.
    ///
    /// # Errors
    /// Lengths that differ, a non-finite score (named by row), a group with no positive or no
    /// negative label (named), or `grid_size` 0.
    pub fn fit(scores: &[f64], y: &[bool], groups: &Groups, opts: ThresholdOptions) -> Result<ThresholdOptimizer> {
        let bad = |detail: String| Error::Invalid {
            op: "threshold optimizer",
            detail,
        };
        let n = scores.len();
        if y.len() != n || groups.of_row.len() != n || n == 0 {
            return Err(bad(format!(
                "{n} scores, {} labels and {} sensitive values: need the same, non-zero number",
                y.len(),
                groups.of_row.len()
            )));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(bad(format!("score of row {i} is {}: scores must be finite", scores[i])));
        }
        if opts.grid_size == 0 {
            return Err(bad("grid_size must be at least 1".into()));
        }
        let (x_rate, y_rate) = match (opts.constraint, opts.objective) {
            (Constraint::EqualizedOdds, _) => (Rate::FalsePositive, Rate::TruePositive),
            (c, o) => (
                match c {
                    Constraint::DemographicParity => Rate::Selection,
                    Constraint::TruePositiveRateParity => Rate::TruePositive,
                    _ => Rate::FalsePositive,
                },
                match o {
                    Objective::Accuracy => Rate::Accuracy,
                    Objective::BalancedAccuracy => Rate::BalancedAccuracy,
                },
            ),
        };
        let mut members: Vec<Vec<(f64, bool)>> = vec![Vec::new(); groups.len()];
        for i in 0..n {
            members[groups.of_row[i]].push((scores[i], y[i]));
        }
        let grid: Vec<f64> = (0..=opts.grid_size)
            .map(|k| {
                if k == opts.grid_size {
                    1.0
                } else {
                    k as f64 * (1.0 / opts.grid_size as f64)
                }
            })
            .collect();
        let mut hulls = Vec::with_capacity(groups.len());
        let mut curves = Vec::with_capacity(groups.len());
        for (g, rows) in members.iter().enumerate() {
            let points = tradeoff_points(rows, x_rate, y_rate, opts.flip).ok_or_else(|| {
                bad(format!(
                    "group {} has no positive or no negative labels: a threshold cannot trade them off (fairlearn: degenerate labels)",
                    groups.name(g)
                ))
            })?;
            let hull = upper_hull(&points);
            curves.push(interpolate(&hull, &grid));
            hulls.push(hull);
        }
        let (i_best, y_best, objective_best, p_ignore): (usize, f64, Option<f64>, Vec<Option<f64>>) =
            match opts.constraint {
                Constraint::EqualizedOdds => {
                    let y_min: Vec<f64> = (0..grid.len())
                        .map(|k| curves.iter().map(|c| c[k].y).fold(f64::INFINITY, f64::min))
                        .collect();
                    let positives = y.iter().filter(|&&v| v).count() as f64;
                    let negatives = n as f64 - positives;
                    let objective: Vec<f64> = grid
                        .iter()
                        .zip(&y_min)
                        .map(|(&x, &ym)| {
                            let c = Counts {
                                tp: positives * ym,
                                fn_: positives * (1.0 - ym),
                                fp: negatives * x,
                                tn: negatives * (1.0 - x),
                            };
                            let v = match opts.objective {
                                Objective::Accuracy => (c.tp + c.tn) / (((c.tp + c.tn) + c.fp) + c.fn_),
                                Objective::BalancedAccuracy => c.rate(Rate::BalancedAccuracy),
                            };
                            (v * 1e15).round_ties_even() / 1e15
                        })
                        .collect();
                    let i = first_max(&objective);
                    let ignore = curves
                        .iter()
                        .map(|c| {
                            let r = &c[i];
                            Some(if r.y == r.x {
                                0.0
                            } else {
                                (r.y - y_min[i]) / (r.y - r.x)
                            })
                        })
                        .collect();
                    (i, y_min[i], Some(objective[i]), ignore)
                }
                _ => {
                    let mut overall = vec![0.0f64; grid.len()];
                    for (c, rows) in curves.iter().zip(&members) {
                        let w = rows.len() as f64 / n as f64;
                        for (o, row) in overall.iter_mut().zip(c) {
                            *o += w * row.y;
                        }
                    }
                    let i = first_max(&overall);
                    (i, overall[i], None, vec![None; groups.len()])
                }
            };
        let x_best = grid[i_best];
        let rules = curves
            .iter()
            .zip(&groups.keys)
            .zip(p_ignore)
            .map(|((c, key), p_ignore)| {
                let r = &c[i_best];
                GroupRule {
                    group: key.clone(),
                    p0: r.p0,
                    op0: r.op0,
                    p1: r.p1,
                    op1: r.op1,
                    p_ignore,
                    prediction_constant: p_ignore.map(|_| x_best),
                }
            })
            .collect();
        Ok(ThresholdOptimizer {
            constraint: opts.constraint,
            objective: opts.objective,
            i_best,
            x_best,
            y_best,
            objective_best,
            rules,
            hulls,
        })
    }

    /// P(ŷ = 1) per row for `scores` of rows in `groups` (matched to the fitted groups by their
    /// values; a group not seen in fitting gets 0, as in fairlearn).
    pub fn probabilities(&self, scores: &[f64], groups: &Groups) -> Vec<f64> {
        let rule_of: Vec<Option<&GroupRule>> = groups
            .keys
            .iter()
            .map(|k| self.rules.iter().find(|r| &r.group == k))
            .collect();
        scores
            .iter()
            .zip(&groups.of_row)
            .map(|(&s, &g)| rule_of.get(g).copied().flatten().map_or(0.0, |r| r.probability(s)))
            .collect()
    }

    /// Randomized predictions: ŷ = 1 when P(ŷ = 1) ≥ u, u uniform from `rng` (one per row).
    pub fn predict(&self, scores: &[f64], groups: &Groups, rng: &mut Rng) -> Vec<bool> {
        self.probabilities(scores, groups)
            .into_iter()
            .map(|p| p >= rng.uniform())
            .collect()
    }
}

/// A group's points, one per threshold (before every distinct score, from "+inf" — nothing
/// positive — to "−inf"), sorted by (x, y); `None` if the group lacks positives or negatives.
fn tradeoff_points(rows: &[(f64, bool)], x_rate: Rate, y_rate: Rate, flip: bool) -> Option<Vec<Point>> {
    let mut sorted = rows.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = sorted.len();
    let positives = sorted.iter().filter(|r| r.1).count() as f64;
    let negatives = n as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let (mut fp, mut tp) = (0.0f64, 0.0f64);
    let mut points = Vec::new();
    let push = |fp: f64, tp: f64, threshold: f64, points: &mut Vec<Point>| {
        let above = Counts {
            tp,
            fp,
            tn: negatives - fp,
            fn_: positives - tp,
        };
        points.push(Point {
            x: above.rate(x_rate),
            y: above.rate(y_rate),
            op: Operation { above: true, threshold },
        });
        if flip {
            let below = Counts {
                tp: positives - tp,
                fp: negatives - fp,
                tn: fp,
                fn_: tp,
            };
            points.push(Point {
                x: below.rate(x_rate),
                y: below.rate(y_rate),
                op: Operation {
                    above: false,
                    threshold,
                },
            });
        }
    };
    push(0.0, 0.0, f64::INFINITY, &mut points);
    let mut i = 0;
    while i < n {
        let t = sorted[i].0;
        while i < n && sorted[i].0 == t {
            if sorted[i].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        let next = if i < n { sorted[i].0 } else { f64::NEG_INFINITY };
        push(fp, tp, (t + next) / 2.0, &mut points);
    }
    points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    Some(points)
}

/// The upper convex hull of points sorted by (x, y) (Andrew's monotone chain; collinear and
/// duplicate points dropped).
fn upper_hull(points: &[Point]) -> Vec<Point> {
    let mut hull: Vec<Point> = Vec::new();
    for &r2 in points {
        while hull.len() >= 2 {
            let (r0, r1) = (hull[hull.len() - 2], hull[hull.len() - 1]);
            if (r1.y - r0.y) * (r2.x - r0.x) <= (r2.y - r0.y) * (r1.x - r0.x) {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(r2);
    }
    hull
}

/// A hull read at one grid x: the mix `p0·op0 + p1·op1` of its two neighbouring vertices.
#[derive(Debug, Clone, Copy)]
struct Interpolated {
    x: f64,
    y: f64,
    p0: f64,
    op0: Operation,
    p1: f64,
    op1: Operation,
}

fn interpolate(hull: &[Point], grid: &[f64]) -> Vec<Interpolated> {
    grid.iter()
        .enumerate()
        .map(|(k, &g)| {
            let last = hull.len().saturating_sub(2);
            let mut j = hull.partition_point(|p| p.x <= g).saturating_sub(1).min(last);
            if k > 0 && j > 0 && hull[j].x == g {
                j -= 1;
            }
            let (a, b) = (hull[j], hull[j + 1]);
            let p0 = (b.x - g) / (b.x - a.x);
            let p1 = 1.0 - p0;
            Interpolated {
                x: g,
                y: p0 * a.y + p1 * b.y,
                p0,
                op0: a.op,
                p1,
                op1: b.op,
            }
        })
        .collect()
}

/// The index of the first largest value.
fn first_max(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}
