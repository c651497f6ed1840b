//! `Dropout`: inverted dropout in training, identity in inference. Layer: nn.

use crate::module::Module;
use ferrite_core::{Error, Result, Tensor};

/// Zeroes inputs with probability `rate` during training.
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
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        x.dropout(self.rate, train)
    }
}
