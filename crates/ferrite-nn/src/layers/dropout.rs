//! `Dropout`: inverted dropout in training, identity in inference. Layer: nn.

use crate::module::Module;
use ferrite_core::{Error, Result, Tensor};

/// Zeroes inputs with probability `rate` during training (and scales the rest by
/// `1 / (1 − rate)`); the identity in inference.
///
/// ```
/// use ferrite_core::{manual_seed, Tensor};
/// use ferrite_nn::{Dropout, Module};
/// let d = Dropout::new(0.5)?;
/// let x = Tensor::ones([1000])?;
/// assert_eq!(d.forward(&x, false)?.to_vec::<f32>()?, vec![1.0; 1000]);
/// manual_seed(0);
/// let kept = d.forward(&x, true)?.to_vec::<f32>()?.iter().filter(|&&v| v == 2.0).count();
/// assert!((400..600).contains(&kept));
/// assert!(Dropout::new(1.0).is_err());
/// # Ok::<(), ferrite_core::Error>(())
/// ```
pub struct Dropout {
    rate: f64,
}

impl Dropout {
    pub fn new(rate: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::Invalid {
                op: "Dropout",
                detail: format!("rate must be in [0, 1), got {rate}"),
            });
        }
        Ok(Dropout { rate })
    }
}

impl Module for Dropout {
    /// # Shapes
    /// `[..] → [..]`.
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        x.dropout(self.rate, train)
    }
}
