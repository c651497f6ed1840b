//! The fairness report's picture: selection rate, TPR and FPR per group as grouped bars, with the
//! overall rates as dashed lines — what differs between groups at a glance.
//!
//! Layer: train.

use super::metrics::{MetricFrame, Rate};
use crate::plot::ensure_font;
use crate::plot_classes::draw_err;
use ferrite_core::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Draws `frame` into a PNG.
///
/// # Errors
/// A frame without groups, or a file that cannot be written (named).
pub fn plot_group_rates(frame: &MetricFrame, title: &str, path: &Path) -> Result<()> {
    ensure_font();
    let err = draw_err(path, "fairness chart");
    if frame.by_group.is_empty() {
        return Err(err("no groups to draw".into()));
    }
    let rates = [
        ("selection rate", RGBColor(31, 119, 180), Rate::Selection),
        ("true positive rate", RGBColor(44, 160, 44), Rate::TruePositive),
        ("false positive rate", RGBColor(214, 39, 40), Rate::FalsePositive),
    ];
    let groups = frame.by_group.len();
    let width = (160 + 110 * groups as u32).clamp(640, 2400);
    let root = BitMapBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups as f64, 0f64..1.05f64)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("rate")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    // Group names centred under their bars (plotters places numeric ticks where it likes).
    let label = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, r) in frame.by_group.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(r.group.join(", "), (x, y + 8), label.clone()))
            .map_err(|e| err(e.to_string()))?;
    }
    let bar = 0.8 / rates.len() as f64;
    for (k, (name, color, rate)) in rates.iter().enumerate() {
        let bars = frame.by_group.iter().enumerate().map(|(i, r)| {
            let x0 = i as f64 + 0.1 + k as f64 * bar;
            Rectangle::new([(x0, 0.0), (x0 + bar * 0.9, r.get(*rate))], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(|e| err(e.to_string()))?
            .label(format!("{name} (overall {:.3})", frame.overall.get(*rate)))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let overall = frame.overall.get(*rate);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, overall), (groups as f64, overall)],
                6,
                4,
                color.stroke_width(1),
            ))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
