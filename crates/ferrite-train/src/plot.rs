//! The loss-curve PNG of a run (train and validation loss per epoch), drawn with plotters.
//!
//! Layer: train. plotters' bitmap backend needs a font for any text, so we ship DejaVu Sans
//! (`assets/fonts`, free licence) inside the binary and register it once.

use crate::history::History;
use ferrite_core::Result;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled DejaVu Sans as plotters' "sans-serif" (once per process), so pictures
/// render text on machines without system fonts.
pub fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF shipped with the crate; failure would only drop text.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws loss (and val_loss when present) against epoch into a PNG.
pub fn plot_loss_curve(history: &History, path: &Path) -> Result<()> {
    ensure_font();
    let err = crate::plot_classes::draw_err(path, "loss curve");
    let loss = history.get("loss");
    let val = history.get("val_loss");
    if loss.is_empty() {
        return Err(err("no epochs to plot".into()));
    }
    let all: Vec<f64> = loss.iter().chain(&val).copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Training loss", ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1f64..(loss.len().max(2)) as f64, (lo - pad)..(hi + pad))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let series = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(i, &y)| ((i + 1) as f64, y))
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(LineSeries::new(series(&loss), BLUE.stroke_width(2)))
        .map_err(|e| err(e.to_string()))?
        .label("train loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    if !val.is_empty() {
        chart
            .draw_series(LineSeries::new(series(&val), RED.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label("validation loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// One run's privacy–utility trade-off: (ε spent, metric) after each epoch, and its label.
pub struct UtilityCurve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Draws `metric` against ε spent for several DP-SGD runs (one line per run, e.g. per noise
/// multiplier) into a PNG: the privacy–utility curve.
///
/// # Errors
/// No points at all, or a file that cannot be written (named).
pub fn plot_privacy_utility(curves: &[UtilityCurve], metric: &str, path: &Path) -> Result<()> {
    ensure_font();
    let err = crate::plot_classes::draw_err(path, "privacy-utility curve");
    let all: Vec<(f64, f64)> = curves
        .iter()
        .flat_map(|c| c.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if all.is_empty() {
        return Err(err("no (epsilon, metric) points to plot".into()));
    }
    let x_hi = all.iter().map(|p| p.0).fold(0.0, f64::max) * 1.05 + 1e-9;
    let (y_lo, y_hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = ((y_hi - y_lo) * 0.05).max(1e-3);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Privacy–utility: {metric} against ε"), ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_hi, (y_lo - pad)..(y_hi + pad))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("ε spent")
        .y_desc(metric)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, c) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(c.points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(c.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
