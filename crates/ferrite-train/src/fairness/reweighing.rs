//! Reweighing (Kamiran & Calders 2012), the pre-processing mitigation: weight each example by
//! `P(g)·P(y) / P(g, y)` so that, under the weights, the label is independent of the group. A
//! group that is rarely labelled positive gets its positives weighted up and its negatives down.
//! The weights go to training as per-example sample weights.

use super::table::Groups;
use ferrite_core::{Error, Result};
use serde::Serialize;

/// The weight of one (group, label) cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub group: Vec<String>,
    pub label: bool,
    pub count: usize,
    pub weight: f64,
}

/// Per-row weights and the cell table they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reweighing {
    pub cells: Vec<Cell>,
    #[serde(skip)]
    pub weights: Vec<f64>,
}

/// Kamiran–Calders weights `n_g·n_y / (n·n_gy)` for labels `y` and `groups`; cells in group
/// order, positive label first.
///
/// # Errors
/// Lengths that differ, or no rows.
pub fn reweighing(y: &[bool], groups: &Groups) -> Result<Reweighing> {
    let n = y.len();
    if groups.of_row.len() != n || n == 0 {
        return Err(Error::Invalid {
            op: "reweighing",
            detail: format!(
                "{} labels and {} sensitive values: need the same, non-zero number",
                n,
                groups.of_row.len()
            ),
        });
    }
    // counts[g][label]
    let mut counts = vec![[0usize; 2]; groups.len()];
    for (&g, &label) in groups.of_row.iter().zip(y) {
        counts[g][usize::from(label)] += 1;
    }
    let positives = y.iter().filter(|&&v| v).count();
    let n_y = [n - positives, positives];
    let weight = |g: usize, label: usize| {
        let n_g = counts[g][0] + counts[g][1];
        (n_g as f64 * n_y[label] as f64) / (n as f64 * counts[g][label] as f64)
    };
    let cells = (0..groups.len())
        .flat_map(|g| [1usize, 0].map(|label| (g, label)))
        .filter(|&(g, label)| counts[g][label] > 0)
        .map(|(g, label)| Cell {
            group: groups.keys[g].clone(),
            label: label == 1,
            count: counts[g][label],
            weight: weight(g, label),
        })
        .collect();
    let weights = groups
        .of_row
        .iter()
        .zip(y)
        .map(|(&g, &label)| weight(g, usize::from(label)))
        .collect();
    Ok(Reweighing { cells, weights })
}
