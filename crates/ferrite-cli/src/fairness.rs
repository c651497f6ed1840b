//! `ferrite fairness report`: how a classifier's decisions differ between groups — per-group
//! selection rate, TPR, FPR, accuracy and count, and the disparities fairlearn reports
//! (demographic parity, equal opportunity, equalized odds; between groups and to the overall
//! rate) — from any table of labels, predictions (or scores and a threshold) and sensitive
//! columns, with a bar chart per group.

use crate::common::{print_json, print_line, Common};
use clap::{Args, Subcommand};
use ferrite::text::TextTable;
use ferrite::train::fairness::{plot_group_rates, Agg, Method, MetricFrame, Table};
use ferrite::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args)]
pub struct FairnessArgs {
    #[command(subcommand)]
    command: FairnessCommand,
}

#[derive(Subcommand)]
enum FairnessCommand {
    /// Per-group rates and disparities of binary predictions (fairlearn's MetricFrame).
    #[command(after_help = "Examples:
  ferrite fairness report --input preds.csv --label income --prediction predicted --sensitive sex --out sex.png
  ferrite fairness report --input scores.csv --label y --prediction score --threshold 0.5 --sensitive sex,race --json")]
    Report(ReportArgs),
}

#[derive(Args)]
struct ReportArgs {
    /// A CSV, TSV or JSON Lines table with a header.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The column of true labels.
    #[arg(long, value_name = "COLUMN")]
    label: String,
    /// The column of predicted labels (or scores, with --threshold).
    #[arg(long, value_name = "COLUMN")]
    prediction: String,
    /// Sensitive columns, comma-separated (several make combined groups).
    #[arg(long, value_name = "COLUMN,…", value_delimiter = ',', required = true)]
    sensitive: Vec<String>,
    /// The label value that counts as positive.
    #[arg(long, default_value = "1", value_name = "VALUE")]
    positive: String,
    /// The prediction column holds scores: predicted positive when score ≥ this.
    #[arg(long, value_name = "T")]
    threshold: Option<f64>,
    /// A column of sample weights.
    #[arg(long, value_name = "COLUMN")]
    weight: Option<String>,
    /// A PNG of the per-group rates.
    #[arg(long, value_name = "FILE.png")]
    out: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Serialize)]
struct Pair {
    between_groups: f64,
    to_overall: f64,
}

#[derive(Serialize)]
struct Odds {
    worst_case: Pair,
    mean: Pair,
}

/// What `--json` prints.
#[derive(Serialize)]
struct Report {
    rows: usize,
    #[serde(flatten)]
    frame: MetricFrame,
    demographic_parity_difference: Pair,
    demographic_parity_ratio: Pair,
    equal_opportunity_difference: Pair,
    equal_opportunity_ratio: Pair,
    equalized_odds_difference: Odds,
    equalized_odds_ratio: Odds,
}

pub fn run(args: FairnessArgs) -> Result<()> {
    match args.command {
        FairnessCommand::Report(a) => report(a),
    }
}

fn report(a: ReportArgs) -> Result<()> {
    a.common.apply()?;
    let TextTable { columns, rows, lines } = TextTable::read(&a.input)?;
    let table = Table { columns, rows };
    let bad = |row: usize, column: &str, detail: String| Error::File {
        path: a.input.display().to_string(),
        detail: format!(
            "line {}, column {column:?}: {detail}",
            lines.get(row).copied().unwrap_or(0)
        ),
    };
    let y: Vec<bool> = table.values(&a.label)?.iter().map(|v| *v == a.positive).collect();
    let predictions = table.values(&a.prediction)?;
    let y_pred: Vec<bool> = match a.threshold {
        None => predictions.iter().map(|v| *v == a.positive).collect(),
        Some(t) => predictions
            .iter()
            .enumerate()
            .map(|(i, v)| match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() => Ok(s >= t),
                _ => Err(bad(i, &a.prediction, format!("{v:?} is not a finite score"))),
            })
            .collect::<Result<_>>()?,
    };
    let weights: Option<Vec<f64>> = match &a.weight {
        None => None,
        Some(column) => Some(
            table
                .values(column)?
                .iter()
                .enumerate()
                .map(|(i, v)| match v.trim().parse::<f64>() {
                    Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
                    _ => Err(bad(i, column, format!("{v:?} is not a weight ≥ 0"))),
                })
                .collect::<Result<_>>()?,
        ),
    };
    let sensitive: Vec<&str> = a.sensitive.iter().map(String::as_str).collect();
    let groups = table.groups(&sensitive)?;
    let frame = MetricFrame::new(&y, &y_pred, &groups, weights.as_deref())?;
    let pair = |f: &dyn Fn(Method) -> f64| Pair {
        between_groups: f(Method::BetweenGroups),
        to_overall: f(Method::ToOverall),
    };
    let odds = |f: &dyn Fn(Agg, Method) -> f64| Odds {
        worst_case: pair(&|m| f(Agg::WorstCase, m)),
        mean: pair(&|m| f(Agg::Mean, m)),
    };
    let report = Report {
        rows: y.len(),
        demographic_parity_difference: pair(&|m| frame.demographic_parity_difference(m)),
        demographic_parity_ratio: pair(&|m| frame.demographic_parity_ratio(m)),
        equal_opportunity_difference: pair(&|m| frame.equal_opportunity_difference(m)),
        equal_opportunity_ratio: pair(&|m| frame.equal_opportunity_ratio(m)),
        equalized_odds_difference: odds(&|g, m| frame.equalized_odds_difference(g, m)),
        equalized_odds_ratio: odds(&|g, m| frame.equalized_odds_ratio(g, m)),
        frame,
    };
    if let Some(out) = &a.out {
        let title = format!("{} by {}", a.prediction, a.sensitive.join(", "));
        plot_group_rates(&report.frame, &title, out)?;
    }
    if a.common.json {
        return print_json(&report);
    }
    print_line(&format!(
        "{:<28} {:>7} {:>9} {:>7} {:>7} {:>9}",
        "group", "count", "selection", "TPR", "FPR", "accuracy"
    ))?;
    for r in report
        .frame
        .by_group
        .iter()
        .chain(std::iter::once(&report.frame.overall))
    {
        let name = if r.group.is_empty() {
            "(overall)".to_string()
        } else {
            r.group.join(", ")
        };
        print_line(&format!(
            "{name:<28} {:>7} {:>9.4} {:>7.4} {:>7.4} {:>9.4}",
            r.count, r.selection_rate, r.true_positive_rate, r.false_positive_rate, r.accuracy
        ))?;
    }
    let d = &report;
    print_line(&format!(
        "demographic parity difference {:.4} (to overall {:.4}), ratio {:.4}",
        d.demographic_parity_difference.between_groups,
        d.demographic_parity_difference.to_overall,
        d.demographic_parity_ratio.between_groups
    ))?;
    print_line(&format!(
        "equalized odds difference {:.4} (mean {:.4}); equal opportunity difference {:.4}",
        d.equalized_odds_difference.worst_case.between_groups,
        d.equalized_odds_difference.mean.between_groups,
        d.equal_opportunity_difference.between_groups
    ))?;
    if let Some(out) = &a.out {
        print_line(&format!("wrote {}", out.display()))?;
    }
    Ok(())
}
