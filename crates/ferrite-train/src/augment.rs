//! Seeded image augmentation applied to each training batch: random crop after padding
//! (torchvision `RandomCrop(size, padding=p)`) and random horizontal flip (`p = 0.5`).
//!
//! Layer: train. Batches arrive standardized, so padding uses each channel's standardized value
//! of a raw 0 pixel (`fill`), which is what torchvision's pipeline (pad, then normalize) yields.
//! The random draws come from the caller's generator, seeded per epoch by `fit`, so a resumed run
//! sees the same crops as an uninterrupted one.

use ferrite_core::{Error, Result, Rng, Tensor};
use serde::{Deserialize, Serialize};

/// The `[augment]` section of a training config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Pad each side by this many pixels, then crop a random window of the original size.
    #[serde(default)]
    pub crop_padding: usize,
    /// Mirror each image left–right with probability 0.5.
    #[serde(default)]
    pub horizontal_flip: bool,
}

/// An augmentation ready to run on `[N, C, H, W]` batches.
#[derive(Clone, Debug, PartialEq)]
pub struct Augment {
    pub crop_padding: usize,
    pub horizontal_flip: bool,
    /// Per-channel value of padded pixels.
    pub fill: Vec<f32>,
}

impl Augment {
    pub fn new(cfg: &AugmentConfig, fill: Vec<f32>) -> Self {
        Augment {
            crop_padding: cfg.crop_padding,
            horizontal_flip: cfg.horizontal_flip,
            fill,
        }
    }

    fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.horizontal_flip
    }

    /// A randomly cropped and flipped copy of the batch `x` `[N, C, H, W]`; each sample draws
    /// its own offsets and flip from `rng`.
    ///
    /// # Errors
    /// `x` is not 4-D, or `fill` does not have one value per channel.
    pub fn apply(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        if x.ndim() != 4 || x.shape()[1] != self.fill.len() {
            return Err(Error::Invalid {
                op: "augment",
                detail: format!(
                    "needs image batches [N, C, H, W] with C = {} channels, got {:?}",
                    self.fill.len(),
                    x.shape()
                ),
            });
        }
        if self.is_identity() {
            return Ok(x.clone());
        }
        let [c, h, w] = [x.shape()[1], x.shape()[2], x.shape()[3]];
        let src = x.contiguous()?.to_vec::<f32>()?;
        let mut out = vec![0.0f32; src.len()];
        let pad = self.crop_padding as isize;
        for (sample, dst) in src.chunks_exact(c * h * w).zip(out.chunks_exact_mut(c * h * w)) {
            // Offsets of the crop window in the padded image, relative to the original.
            let dy = rng.below(2 * self.crop_padding + 1) as isize - pad;
            let dx = rng.below(2 * self.crop_padding + 1) as isize - pad;
            let flip = self.horizontal_flip && rng.below(2) == 1;
            for ch in 0..c {
                let plane = &sample[ch * h * w..(ch + 1) * h * w];
                let fill = self.fill[ch];
                for y in 0..h {
                    let row = &mut dst[(ch * h + y) * w..(ch * h + y + 1) * w];
                    let sy = y as isize + dy;
                    if sy < 0 || sy >= h as isize {
                        row.fill(fill);
                        continue;
                    }
                    let src_row = &plane[sy as usize * w..(sy as usize + 1) * w];
                    for (x_out, v) in row.iter_mut().enumerate() {
                        let xc = if flip { w - 1 - x_out } else { x_out };
                        let sx = xc as isize + dx;
                        *v = if sx < 0 || sx >= w as isize {
                            fill
                        } else {
                            src_row[sx as usize]
                        };
                    }
                }
            }
        }
        Tensor::from_vec(out, x.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize, c: usize, h: usize, w: usize) -> Tensor {
        Tensor::arange(0.0, (n * c * h * w) as f64, 1.0)
            .unwrap()
            .reshape([n, c, h, w])
            .unwrap()
    }

    #[test]
    fn flip_only_mirrors_rows_and_crop_shifts_with_fill() {
        let x = batch(64, 2, 3, 4);
        let src = x.to_vec::<f32>().unwrap();
        let flip = Augment::new(
            &AugmentConfig {
                crop_padding: 0,
                horizontal_flip: true,
            },
            vec![0.0, 0.0],
        );
        let out = flip.apply(&x, &mut Rng::new(3)).unwrap().to_vec::<f32>().unwrap();
        let mut flipped = 0;
        for (s, o) in src.chunks(24).zip(out.chunks(24)) {
            let mirrored: Vec<f32> = s.chunks(4).flat_map(|r| r.iter().rev().copied()).collect();
            assert!(o == s || o == &mirrored[..]);
            flipped += (o == &mirrored[..]) as usize;
        }
        assert!((20..=44).contains(&flipped), "{flipped} of 64 flipped");

        let crop = Augment::new(
            &AugmentConfig {
                crop_padding: 1,
                horizontal_flip: false,
            },
            vec![-1.0, -2.0],
        );
        let out = crop.apply(&x, &mut Rng::new(5)).unwrap().to_vec::<f32>().unwrap();
        let mut shifts = std::collections::BTreeSet::new();
        for (s, o) in src.chunks(24).zip(out.chunks(24)) {
            // Find the shift that explains the output: every pixel is the shifted source or the fill.
            let found = (-1..=1isize)
                .flat_map(|dy| (-1..=1isize).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| {
                    (0..24).all(|i| {
                        let (ch, y, xx) = (i / 12, (i / 4) % 3, i % 4);
                        let (sy, sx) = (y as isize + dy, xx as isize + dx);
                        let expect = if (0..3).contains(&sy) && (0..4).contains(&sx) {
                            s[ch * 12 + sy as usize * 4 + sx as usize]
                        } else {
                            [-1.0, -2.0][ch]
                        };
                        o[i] == expect
                    })
                });
            shifts.insert(found.expect("output is a shifted copy"));
        }
        assert_eq!(shifts.len(), 9, "all nine offsets occur in 64 samples");
        // Seeded: the same generator state gives the same batch.
        let again = crop.apply(&x, &mut Rng::new(5)).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn wrong_channel_count_is_an_error() {
        let a = Augment::new(&AugmentConfig::default(), vec![0.0; 3]);
        let err = a.apply(&batch(2, 1, 4, 4), &mut Rng::new(0)).unwrap_err().to_string();
        assert!(err.contains("C = 3") && err.contains("[2, 1, 4, 4]"), "{err}");
    }
}
