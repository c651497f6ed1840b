//! Pooling layers: `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d` (global average pooling is
//! `AdaptiveAvgPool2d([1, 1])`). No parameters.
//!
//! Layer: nn.

use crate::module::Module;
use ferrite_core::{Pool2dOptions, Result, Tensor};

/// Which pooling a [`Pool2d`] layer applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pool2d {
    Max(Pool2dOptions),
    Avg {
        options: Pool2dOptions,
        count_include_pad: bool,
    },
    AdaptiveAvg([usize; 2]),
}

impl Pool2d {
    /// Output `[channels, height, width]` for one `[c, h, w]` sample, or `None` if no window fits.
    pub fn output_shape(&self, input: &[usize]) -> Option<Vec<usize>> {
        if input.len() != 3 {
            return None;
        }
        // Shape arithmetic by running the op on an empty batch costs nothing and cannot drift.
        let probe = Tensor::zeros([0, input[0], input[1], input[2]]).ok()?;
        let out = self.forward(&probe, false).ok()?;
        Some(out.shape()[1..].to_vec())
    }
}

impl Module for Pool2d {
    /// # Shapes
    /// `[N, C, H, W] → [N, C, OH, OW]`.
    fn forward(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        match *self {
            Pool2d::Max(o) => x.max_pool2d(o),
            Pool2d::Avg {
                options,
                count_include_pad,
            } => x.avg_pool2d(options, count_include_pad),
            Pool2d::AdaptiveAvg(size) => x.adaptive_avg_pool2d(size),
        }
    }
}
