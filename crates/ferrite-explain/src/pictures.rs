//! Pictures of attributions a person can open: an image next to its attribution map and the two
//! overlaid (PNG), and per-feature attributions as a bar chart (PNG).
//!
//! Layer: explain. Signed attributions use a diverging scale (red raises the explained output,
//! blue lowers it, white is zero), scaled by the largest |attribution| so the picture shows
//! where, not how much; the caption carries the numbers.

use ferrite_core::{Error, Result};
use ferrite_train::ensure_font;
use ferrite_train::plot_classes::draw_err;
use plotters::prelude::*;
use std::path::Path;

/// Red for positive, blue for negative, white at 0; `v` in [−1, 1].
fn diverging(v: f32) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let fade = |a: f32| (255.0 * (1.0 - a)) as u8;
    if t >= 0.0 {
        RGBColor(255, fade(t), fade(t))
    } else {
        RGBColor(fade(-t), fade(-t), 255)
    }
}

/// One attribution per pixel: channels summed (as Captum's visualizer does for `sign="all"`).
fn per_pixel(attr: &[f32], c: usize, plane: usize) -> Vec<f32> {
    (0..plane)
        .map(|i| (0..c).map(|ch| attr[ch * plane + i]).sum())
        .collect()
}

/// Draws `image` `[C, H, W]` (any value range; shown min–max scaled), its attribution map and the
/// map over a dimmed copy of the image, side by side, with `caption` above.
///
/// # Errors
/// A shape that is not `[C, H, W]` with 1 or 3 channels, lengths that do not match it, or the
/// file cannot be written.
pub fn plot_image_attribution(image: &[f32], attr: &[f32], shape: &[usize], caption: &str, path: &Path) -> Result<()> {
    ensure_font();
    let err = draw_err(path, "attribution picture");
    let (c, h, w) = match shape {
        [c @ (1 | 3), h, w] if image.len() == c * h * w && attr.len() == image.len() => (*c, *h, *w),
        _ => {
            return Err(Error::Invalid {
                op: "plot_image_attribution",
                detail: format!(
                    "needs [C, H, W] images with 1 or 3 channels and matching lengths, got {shape:?}, {} pixels, {} attributions",
                    image.len(),
                    attr.len()
                ),
            });
        }
    };
    let plane = h * w;
    let heat = per_pixel(attr, c, plane);
    let max = heat.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let (lo, hi) = image
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let level = |v: f32| ((v - lo) / span).clamp(0.0, 1.0);
    let scale = (224 / h.max(w).max(1)).max(1) as i32;
    let (pw, ph) = (w as i32 * scale, h as i32 * scale);
    let (gap, top) = (20, 70);
    let size = ((3 * pw + 4 * gap) as u32, (ph + top + 20) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    root.draw(&Text::new(caption.to_string(), (gap, 10), ("sans-serif", 15)))
        .map_err(|e| err(e.to_string()))?;
    let titles = ["input", "attribution (red +, blue −)", "overlay"];
    for (p, t) in titles.iter().enumerate() {
        let x0 = gap + p as i32 * (pw + gap);
        root.draw(&Text::new(t.to_string(), (x0, top - 22), ("sans-serif", 13)))
            .map_err(|e| err(e.to_string()))?;
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let gray = |ch: usize| level(image[ch * plane + i]);
                let rgb = if c == 3 {
                    [gray(0), gray(1), gray(2)]
                } else {
                    [gray(0); 3]
                };
                let a = heat[i] / max;
                let color = match p {
                    0 => RGBColor((rgb[0] * 255.0) as u8, (rgb[1] * 255.0) as u8, (rgb[2] * 255.0) as u8),
                    1 => diverging(a),
                    _ => {
                        // The image dimmed to 60%, blended toward the attribution colour by |a|.
                        let d = diverging(a.signum());
                        let mix = |base: f32, target: u8| {
                            let b = 255.0 * (0.2 + 0.6 * base);
                            (b + (target as f32 - b) * a.abs()) as u8
                        };
                        RGBColor(mix(rgb[0], d.0), mix(rgb[1], d.1), mix(rgb[2], d.2))
                    }
                };
                let (px, py) = (x0 + x as i32 * scale, top + y as i32 * scale);
                root.draw(&Rectangle::new([(px, py), (px + scale, py + scale)], color.filled()))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// Horizontal bars, one per feature, largest |attribution| first (at most `limit`).
///
/// # Errors
/// Names and values of different lengths, or the file cannot be written.
pub fn plot_feature_attribution(names: &[String], values: &[f32], caption: &str, path: &Path) -> Result<()> {
    ensure_font();
    let err = draw_err(path, "feature attribution chart");
    if names.len() != values.len() || names.is_empty() {
        return Err(Error::Invalid {
            op: "plot_feature_attribution",
            detail: format!("{} feature names for {} attributions", names.len(), values.len()),
        });
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
    order.truncate(30);
    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let (left, top, bar_h, half) = (150, 60, 22, 260);
    let size = (
        (left + 2 * half + 90) as u32,
        (top + order.len() as i32 * bar_h + 30) as u32,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    root.draw(&Text::new(caption.to_string(), (10, 10), ("sans-serif", 15)))
        .map_err(|e| err(e.to_string()))?;
    let axis = left + half;
    root.draw(&PathElement::new(
        vec![(axis, top - 6), (axis, top + order.len() as i32 * bar_h)],
        BLACK.mix(0.5),
    ))
    .map_err(|e| err(e.to_string()))?;
    for (row, &j) in order.iter().enumerate() {
        let y = top + row as i32 * bar_h;
        let len = (half as f32 * values[j] / max) as i32;
        let color = if values[j] >= 0.0 {
            RGBColor(214, 39, 40)
        } else {
            RGBColor(31, 119, 180)
        };
        let (x0, x1) = if len >= 0 {
            (axis, axis + len)
        } else {
            (axis + len, axis)
        };
        root.draw(&Rectangle::new(
            [(x0, y + 3), (x1.max(x0 + 1), y + bar_h - 3)],
            color.filled(),
        ))
        .map_err(|e| err(e.to_string()))?;
        root.draw(&Text::new(names[j].clone(), (10, y + 4), ("sans-serif", 13)))
            .map_err(|e| err(e.to_string()))?;
        let label_x = if len >= 0 { x1 + 6 } else { axis + 6 };
        root.draw(&Text::new(
            format!("{:+.4}", values[j]),
            (label_x, y + 4),
            ("sans-serif", 12),
        ))
        .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// Attention heatmaps of one layer: the given head, or every head plus their mean when `head` is
/// `None`; tokens label both axes (rows: queries, columns: keys), darker = more attention.
///
/// # Errors
/// A layer or head that does not exist (named), or the file cannot be written.
pub fn plot_attention(maps: &crate::text::AttentionMaps, layer: usize, head: Option<usize>, path: &Path) -> Result<()> {
    ensure_font();
    let err = draw_err(path, "attention map");
    let panels: Vec<(String, Vec<f32>)> = match head {
        Some(h) => vec![(format!("layer {layer}, head {h}"), maps.select(layer, Some(h))?)],
        None => std::iter::once(Ok((format!("layer {layer}, mean of heads"), maps.select(layer, None)?)))
            .chain((0..maps.heads).map(|h| Ok((format!("head {h}"), maps.select(layer, Some(h))?))))
            .collect::<Result<_>>()?,
    };
    let (q, k) = (maps.queries.len().max(1) as i32, maps.keys.len().max(1) as i32);
    // Cells are square unless there are many more keys than queries (Whisper: tokens over
    // ~50 audio frames a second), then narrower, so a panel stays a readable width.
    let (budget_w, budget_h, max_cell) = if panels.len() == 1 {
        (900, 560, 36)
    } else {
        (360, 260, 20)
    };
    let ch = (budget_h / q).clamp(3, max_cell);
    let cw = (budget_w / k).clamp(2, ch);
    let labels = ch >= 9;
    // Label every `every`-th key so rotated labels do not overlap.
    let every = (12 + cw - 1) / cw;
    let margin = if labels { 90 } else { 8 };
    let (pw, ph) = (margin + k * cw + 16, margin + q * ch + 34);
    let cols = (panels.len() as i32).min(if panels.len() == 1 { 1 } else { 4 });
    let rows = (panels.len() as i32 + cols - 1) / cols;
    let size = ((cols * pw + 20) as u32, (rows * ph + 50) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let title = format!(
        "Attention — rows attend to columns, white 0 → dark each panel's maximum — “{}”",
        maps.text
    );
    let title: String = title.chars().take(140).collect();
    root.draw(&Text::new(title, (10, 10), ("sans-serif", 14)))
        .map_err(|e| err(e.to_string()))?;
    let font = ("sans-serif", (ch - 1).clamp(8, 13));
    let short = |s: &str| s.chars().take(11).collect::<String>();
    for (n, (name, m)) in panels.iter().enumerate() {
        let (x0, y0) = (10 + (n as i32 % cols) * pw, 40 + (n as i32 / cols) * ph);
        root.draw(&Text::new(name.clone(), (x0, y0), ("sans-serif", 13)))
            .map_err(|e| err(e.to_string()))?;
        let (gx, gy) = (x0 + margin, y0 + 20 + margin);
        let top = m.iter().copied().fold(0.0f32, f32::max).max(f32::MIN_POSITIVE);
        for i in 0..q {
            for j in 0..k {
                let v = (m[(i * k + j) as usize] / top).clamp(0.0, 1.0);
                let fade = |c: f32| (255.0 - (255.0 - c) * v) as u8;
                let color = RGBColor(fade(8.0), fade(48.0), fade(107.0));
                let (px, py) = (gx + j * cw, gy + i * ch);
                root.draw(&Rectangle::new([(px, py), (px + cw, py + ch)], color.filled()))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        if labels {
            for (i, tok) in maps.queries.iter().enumerate() {
                root.draw(&Text::new(short(tok), (x0, gy + i as i32 * ch + 1), font))
                    .map_err(|e| err(e.to_string()))?;
            }
            for (j, tok) in maps.keys.iter().enumerate().step_by(every as usize) {
                let style = TextStyle::from(font.into_font()).transform(FontTransform::Rotate270);
                root.draw(&Text::new(short(tok), (gx + j as i32 * cw + 1, gy - 4), style))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
    }
    root.present().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_shape_errors() {
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0), RGBColor(255, 0, 0));
        assert_eq!(diverging(-1.0), RGBColor(0, 0, 255));
        let p = std::env::temp_dir().join(format!("ferrite-explain-pic-{}.png", std::process::id()));
        let e = plot_image_attribution(&[0.0; 4], &[0.0; 4], &[2, 1, 2], "x", &p).unwrap_err();
        assert!(e.to_string().contains("[2, 1, 2]"));
        plot_image_attribution(&[0.0, 1.0, 2.0, 3.0], &[0.5, -1.0, 0.0, 0.2], &[1, 2, 2], "x", &p).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 100);
        let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        plot_feature_attribution(&names, &[0.3, -0.1], "bars", &p).unwrap();
        assert!(plot_feature_attribution(&names, &[0.3], "bars", &p).is_err());
        std::fs::remove_file(p).ok();
    }
}
