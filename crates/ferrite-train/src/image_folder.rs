//! Image datasets stored as files, in torchvision's `ImageFolder` layout: one sub-directory per
//! class (`DIR/cat/001.png`, `DIR/dog/a.jpg`, …), classes numbered in sorted name order.
//!
//! Layer: train. Images are decoded with the `image` crate (PNG, JPEG, BMP), converted to
//! grayscale (1 channel) or RGB (3 channels, alpha dropped as torchvision's loader does) and kept
//! as raw 0–255 values in channel-major `[C, H, W]` order, the same as IDX pixels, so the usual
//! per-channel standardization applies. Every image must have the first image's size unless a
//! `resize` is given; a mismatch names the file and both sizes.

use ferrite_core::{Error, Result};
use std::path::{Path, PathBuf};

/// File extensions read as images (case-insensitive); other files are skipped.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Decoded images with their class ids.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    /// `[channels, height, width]` of every image.
    pub shape: [usize; 3],
    /// `N·C·H·W` raw pixel values (0–255), image after image.
    pub pixels: Vec<f32>,
    /// Class id of each image (index into the class names).
    pub labels: Vec<i64>,
    /// Where each image came from.
    pub files: Vec<PathBuf>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.files.len()
    }
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// How images are turned into arrays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageOptions {
    /// 1 (grayscale) or 3 (RGB); `None` takes it from the first image (grayscale stays 1).
    pub channels: Option<usize>,
    /// Resize every image to `[height, width]` (bilinear) instead of requiring equal sizes.
    pub resize: Option<[usize; 2]>,
}

pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot read directory: {e}")))?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::file(dir, format!("cannot read directory: {e}")))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The class names of an image folder: its sub-directories, sorted.
pub fn folder_classes(dir: &Path) -> Result<Vec<String>> {
    let classes: Vec<String> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if classes.is_empty() {
        return Err(Error::file(
            dir,
            "no class sub-directories (expected DIR/CLASS_NAME/IMAGE.png, one directory per class)",
        ));
    }
    Ok(classes)
}

/// The image files of `dir` (sorted), or `dir` itself when it is one image file.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_file() && is_image_file(p))
        .collect())
}

/// Decodes images into one array; the first image fixes the channel count and size (unless
/// `opts` fixes them).
///
/// # Errors
/// Unreadable or undecodable files, a size different from the first image's (without `resize`),
/// a channel count other than 1 or 3 — each naming the file.
pub fn read_images(files: &[PathBuf], labels: Vec<i64>, opts: ImageOptions) -> Result<ImageSet> {
    let mut shape: Option<[usize; 3]> = None;
    let mut pixels = Vec::new();
    for file in files {
        let img = image::open(file).map_err(|e| Error::file(file, format!("cannot decode image: {e}")))?;
        let channels = match opts.channels.or(shape.map(|s| s[0])) {
            Some(c) => c,
            None if img.color().has_color() => 3,
            None => 1,
        };
        if channels != 1 && channels != 3 {
            return Err(Error::file(
                file,
                format!("images need 1 (grayscale) or 3 (RGB) channels, not {channels}"),
            ));
        }
        let img = match opts.resize {
            Some([h, w]) if (img.height() as usize, img.width() as usize) != (h, w) => {
                img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
            }
            _ => img,
        };
        let (h, w) = (img.height() as usize, img.width() as usize);
        let this = [channels, h, w];
        match shape {
            None => shape = Some(this),
            Some(s) if s != this => {
                return Err(Error::file(
                    file,
                    format!(
                        "image is {h}×{w} but the first image ({}) is {}×{}; give all images one size or set resize = [H, W]",
                        files[0].display(),
                        s[1],
                        s[2]
                    ),
                ));
            }
            Some(_) => {}
        }
        // Interleaved HWC bytes → channel-major CHW values.
        let raw = if channels == 1 {
            img.to_luma8().into_raw()
        } else {
            img.to_rgb8().into_raw()
        };
        let start = pixels.len();
        pixels.resize(start + raw.len(), 0.0);
        let plane = h * w;
        for (i, px) in raw.chunks_exact(channels).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                pixels[start + c * plane + i] = v as f32;
            }
        }
    }
    let shape = shape.ok_or_else(|| Error::Invalid {
        op: "read_images",
        detail: "no image files to read".into(),
    })?;
    Ok(ImageSet {
        shape,
        pixels,
        labels,
        files: files.to_vec(),
    })
}

/// Reads an `ImageFolder` directory with the given class names (sorted sub-directories of the
/// training folder): class `i`'s images come from `dir/classes[i]/`.
///
/// # Errors
/// A class directory missing or without images, a sub-directory that is not a known class, and
/// everything [`read_images`] reports.
pub fn read_image_folder(dir: &Path, classes: &[String], opts: ImageOptions) -> Result<ImageSet> {
    let found = folder_classes(dir)?;
    if let Some(extra) = found.iter().find(|c| !classes.contains(c)) {
        return Err(Error::file(
            dir,
            format!("class directory '{extra}' is not one of the training classes {classes:?}"),
        ));
    }
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (id, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        if !class_dir.is_dir() {
            continue;
        }
        let these = image_files(&class_dir)?;
        if these.is_empty() {
            return Err(Error::file(
                &class_dir,
                format!("no image files ({}) for class '{class}'", IMAGE_EXTENSIONS.join(", ")),
            ));
        }
        labels.extend(std::iter::repeat_n(id as i64, these.len()));
        files.extend(these);
    }
    read_images(&files, labels, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_gray(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
        image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn reads_classes_in_sorted_order_as_chw_values() {
        let dir = std::env::temp_dir().join(format!("ferrite-imgfolder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for c in ["zebra", "ant"] {
            std::fs::create_dir_all(dir.join(c)).unwrap();
        }
        write_gray(&dir.join("ant/a.png"), 3, 2, |x, y| (10 * y + x) as u8);
        write_gray(&dir.join("zebra/b.png"), 3, 2, |_, _| 7);
        std::fs::write(dir.join("zebra/notes.txt"), "skipped").unwrap();
        let rgb = image::RgbImage::from_fn(3, 2, |x, _| image::Rgb([x as u8, 100, 200]));
        rgb.save(dir.join("zebra/c.bmp")).unwrap();
        let classes = folder_classes(&dir).unwrap();
        assert_eq!(classes, ["ant", "zebra"]);
        let set = read_image_folder(&dir, &classes, ImageOptions::default()).unwrap();
        assert_eq!(set.shape, [1, 2, 3]);
        assert_eq!(set.labels, [0, 1, 1]);
        assert_eq!(&set.pixels[..6], &[0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
        // As RGB: channel planes one after another.
        let opts = ImageOptions {
            channels: Some(3),
            resize: None,
        };
        let set = read_images(&[dir.join("zebra/c.bmp")], vec![0], opts).unwrap();
        assert_eq!(set.shape, [3, 2, 3]);
        assert_eq!(
            set.pixels,
            [0., 1., 2., 0., 1., 2., 100., 100., 100., 100., 100., 100., 200., 200., 200., 200., 200., 200.]
        );
        // A different size is named, unless resized.
        write_gray(&dir.join("zebra/d.png"), 4, 4, |_, _| 0);
        let err = read_image_folder(&dir, &classes, ImageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("d.png") && err.contains("4×4") && err.contains("2×3"),
            "{err}"
        );
        let opts = ImageOptions {
            channels: None,
            resize: Some([2, 3]),
        };
        assert_eq!(read_image_folder(&dir, &classes, opts).unwrap().len(), 4);
        // Undecodable files and unknown classes are named.
        std::fs::write(dir.join("ant/broken.png"), b"not a png").unwrap();
        let err = read_image_folder(&dir, &classes, opts).unwrap_err().to_string();
        assert!(err.contains("broken.png") && err.contains("decode"), "{err}");
        let err = read_image_folder(&dir, &["ant".to_string()], opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'zebra'"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
