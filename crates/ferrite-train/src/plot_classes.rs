//! Pictures of a classifier's test results: the confusion matrix as a heat map with counts, and a
//! grid of misclassified test images captioned "true → predicted".
//!
//! Layer: train. Drawn in pixel coordinates with plotters' bitmap backend (PNG), using the font
//! `plot.rs` registers.

use crate::plot::ensure_font;
use ferrite_core::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// `counts[true][predicted]` for `classes` classes from class-id vectors.
pub fn confusion_counts(truth: &[usize], pred: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&t, &p) in truth.iter().zip(pred) {
        if t < classes && p < classes {
            m[t][p] += 1;
        }
    }
    m
}

/// A picture-drawing error naming the file and what was being drawn.
///
/// plotters reports a file it cannot write with Debug output (`ImageError(IoError(Os { code: 2
/// …`); when the file cannot be opened, the message says what the file system said instead.
pub fn draw_err<'a>(path: &'a Path, what: &str) -> impl Fn(String) -> Error + 'a {
    let what = what.to_string();
    move |e| match std::fs::OpenOptions::new().append(true).create(true).open(path) {
        Err(io) => Error::file(path, format!("cannot write the {what}: {io}")),
        Ok(_) => Error::file(path, format!("cannot draw the {what}: {e}")),
    }
}

fn centered(size: u32) -> TextStyle<'static> {
    ("sans-serif", size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center))
}

/// Draws the confusion matrix (rows: true class, columns: predicted; cell shade = share of the
/// row, so per-class recall reads off the diagonal) with the count in each cell.
pub fn plot_confusion_matrix(counts: &[Vec<usize>], labels: &[String], path: &Path) -> Result<()> {
    ensure_font();
    let err = draw_err(path, "confusion matrix");
    let k = counts.len().max(1) as i32;
    let cell = (560 / k).clamp(24, 64);
    let (left, top) = (150, 90);
    let (w, h) = ((left + k * cell + 30) as u32, (top + k * cell + 40) as u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let total: usize = counts.iter().flatten().sum();
    let correct: usize = (0..counts.len()).map(|i| counts[i].get(i).copied().unwrap_or(0)).sum();
    let title = format!(
        "Confusion matrix — {} test samples, accuracy {:.2}%",
        total,
        100.0 * correct as f64 / total.max(1) as f64
    );
    root.draw(&Text::new(title, (10, 12), ("sans-serif", 18)))
        .map_err(|e| err(e.to_string()))?;
    root.draw(&Text::new("predicted →", (left, top - 52), ("sans-serif", 14)))
        .map_err(|e| err(e.to_string()))?;
    root.draw(&Text::new("true ↓", (10, top - 24), ("sans-serif", 14)))
        .map_err(|e| err(e.to_string()))?;
    let name = |i: usize| labels.get(i).cloned().unwrap_or_else(|| i.to_string());
    for (i, row) in counts.iter().enumerate() {
        let row_total = row.iter().sum::<usize>().max(1) as f64;
        let y = top + i as i32 * cell;
        root.draw(&Text::new(name(i), (10, y + cell / 2 - 7), ("sans-serif", 13)))
            .map_err(|e| err(e.to_string()))?;
        for (j, &n) in row.iter().enumerate() {
            let x = left + j as i32 * cell;
            let share = n as f64 / row_total;
            // White → deep blue with the row share; off-diagonal mistakes tinted red.
            let (r, g, b) = if i == j {
                (255.0 * (1.0 - share), 255.0 * (1.0 - 0.6 * share), 255.0)
            } else {
                (
                    255.0,
                    255.0 * (1.0 - 0.8 * share.sqrt()),
                    255.0 * (1.0 - 0.8 * share.sqrt()),
                )
            };
            let color = RGBColor(r as u8, g as u8, b as u8);
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], color.filled()))
                .map_err(|e| err(e.to_string()))?;
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], BLACK.mix(0.2)))
                .map_err(|e| err(e.to_string()))?;
            root.draw(&Text::new(n.to_string(), (x + cell / 2, y + cell / 2), centered(11)))
                .map_err(|e| err(e.to_string()))?;
        }
    }
    for j in 0..counts.len() {
        let x = left + j as i32 * cell + cell / 2;
        let short: String = name(j).chars().take(7).collect();
        root.draw(&Text::new(short, (x, top - 12), centered(11)))
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// One image to show: `[C, H, W]` values (any scale; each image is stretched to its own range)
/// with its true and predicted class.
pub struct Example<'a> {
    pub pixels: &'a [f32],
    pub truth: usize,
    pub predicted: usize,
}

/// Draws up to `examples.len()` images in a grid (grayscale from channel 0, or RGB when C = 3),
/// each captioned "true → predicted".
pub fn plot_image_grid(
    examples: &[Example],
    shape: &[usize],
    labels: &[String],
    title: &str,
    path: &Path,
) -> Result<()> {
    ensure_font();
    let err = draw_err(path, "image grid");
    let (c, ih, iw) = match shape {
        [c, h, w] => (*c, *h, *w),
        _ => return Err(err(format!("images must be [C, H, W], got {shape:?}"))),
    };
    let cols = 6usize;
    let rows = examples.len().div_ceil(cols).max(1);
    let scale = (96 / ih.max(iw).max(1)).max(1) as i32;
    let (tile_w, tile_h) = ((iw as i32 * scale).max(124) + 12, ih as i32 * scale + 34);
    let (w, h) = ((cols as i32 * tile_w + 10) as u32, (rows as i32 * tile_h + 40) as u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 16)))
        .map_err(|e| err(e.to_string()))?;
    let name = |i: usize| labels.get(i).cloned().unwrap_or_else(|| i.to_string());
    for (k, ex) in examples.iter().enumerate() {
        let (x0, y0) = (10 + (k % cols) as i32 * tile_w, 36 + (k / cols) as i32 * tile_h);
        let plane = ih * iw;
        let (lo, hi) = ex
            .pixels
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let level = |v: f32| (255.0 * (v - lo) / span).clamp(0.0, 255.0) as u8;
        for y in 0..ih {
            for x in 0..iw {
                let at = |ch: usize| ex.pixels.get(ch * plane + y * iw + x).copied().unwrap_or(lo);
                let color = if c == 3 {
                    RGBColor(level(at(0)), level(at(1)), level(at(2)))
                } else {
                    let g = level(at(0));
                    RGBColor(g, g, g)
                };
                let (px, py) = (x0 + x as i32 * scale, y0 + y as i32 * scale);
                root.draw(&Rectangle::new([(px, py), (px + scale, py + scale)], color.filled()))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        let caption = format!("{} → {}", name(ex.truth), name(ex.predicted));
        root.draw(&Text::new(
            caption,
            (x0, y0 + ih as i32 * scale + 6),
            ("sans-serif", 12),
        ))
        .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_picture_path_is_a_plain_error() {
        let path = std::env::temp_dir().join("ferrite-no-such-dir-4711/confusion.png");
        let e = plot_confusion_matrix(&[vec![1, 0], vec![0, 1]], &["a".into(), "b".into()], &path)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("confusion.png") && e.contains("No such file or directory"),
            "{e}"
        );
        assert!(!e.contains("IoError") && !e.contains("Os {"), "{e}");
    }

    #[test]
    fn counts_and_pictures() {
        let m = confusion_counts(&[0, 1, 1, 2], &[0, 1, 2, 2], 3);
        assert_eq!(m, vec![vec![1, 0, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        let dir = std::env::temp_dir().join(format!("ferrite-plot-classes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        plot_confusion_matrix(&m, &labels, &dir.join("cm.png")).unwrap();
        let px: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let ex = [Example {
            pixels: &px,
            truth: 1,
            predicted: 2,
        }];
        plot_image_grid(&ex, &[1, 4, 4], &labels, "misclassified", &dir.join("grid.png")).unwrap();
        for f in ["cm.png", "grid.png"] {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            assert!(bytes.starts_with(b"\x89PNG"), "{f} is a PNG");
        }
        assert!(plot_image_grid(&ex, &[16], &labels, "x", &dir.join("bad.png")).is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
