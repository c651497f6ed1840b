//! Fairness: measuring how a classifier's decisions differ between groups of people, and
//! mitigating it — to fairlearn 0.15's definitions, checked against its numbers
//! (`tests/reference/fairness.json`, `tools/make_fairness_reference.py`).
//!
//! - `table.rs`: census-style text tables (UCI Adult) and the sensitive-feature [`Groups`] of one
//!   or several columns.
//! - `metrics.rs`: [`MetricFrame`] — per-group selection rate, TPR, FPR, accuracy, count — and
//!   demographic parity, equalized odds and equal opportunity as differences and ratios.
//! - `plot.rs`: the report's picture (selection rate, TPR, FPR per group).
//! - `reweighing.rs`: Kamiran & Calders pre-processing weights, used as sample weights by `fit`.
//! - `threshold.rs`: post-processing — fairlearn's `ThresholdOptimizer` (randomized per-group
//!   thresholds for demographic parity, equalized odds, TPR or FPR parity).
//!
//! Layer: train.

pub mod metrics;
pub mod plot;
pub mod reweighing;
pub mod table;
pub mod threshold;

pub use metrics::{Agg, Method, MetricFrame, Rate, Rates};
pub use plot::plot_group_rates;
pub use reweighing::{reweighing, Reweighing};
pub use table::{Groups, Table};
pub use threshold::{Constraint, Objective, ThresholdOptimizer, ThresholdOptions};
