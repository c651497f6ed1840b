//! Learning-rate schedules as pure functions of a step counter (epochs or optimizer steps,
//! whichever the caller counts). Reduce-on-plateau depends on a metric, so it is a training
//! callback, not a schedule.
//!
//! Layer: nn. Formulas follow PyTorch's `StepLR`, `ExponentialLR`, `CosineAnnealingLR`,
//! `LinearLR` (warmup) and the Hugging Face linear warmup/decay schedule.

use serde::{Deserialize, Serialize};

/// A learning-rate schedule: `lr(t) = base_lr · factor(t)`.
///
/// ```
/// use ferrite_nn::LrSchedule;
/// // Hugging Face's linear warmup then decay: 10 warmup steps, 0 at step 100.
/// let s = LrSchedule::Warmup { warmup: 10, then: Box::new(LrSchedule::LinearDecay { total: 90 }) };
/// assert_eq!((s.lr(1.0, 4), s.lr(1.0, 10), s.lr(1.0, 55), s.lr(1.0, 100)), (0.5, 1.0, 0.5, 0.0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LrSchedule {
    Constant,
    /// ×gamma every `step_size` steps.
    Step {
        step_size: usize,
        gamma: f64,
    },
    /// ×gamma every step.
    Exponential {
        gamma: f64,
    },
    /// Cosine from base_lr down to `eta_min` over `t_max` steps, then held.
    Cosine {
        t_max: usize,
        eta_min: f64,
    },
    /// Linear ramp from base_lr/warmup to base_lr over `warmup` steps, then `then` (shifted).
    Warmup {
        warmup: usize,
        then: Box<LrSchedule>,
    },
    /// Linear decay from base_lr to 0 at step `total` (Hugging Face's schedule after warmup).
    LinearDecay {
        total: usize,
    },
    /// Inverse square root after warmup (the original Transformer): base_lr·min((t+1)/w, √(w/(t+1))).
    InverseSqrt {
        warmup: usize,
    },
}

impl LrSchedule {
    /// The learning rate at step `t` (0-based).
    pub fn lr(&self, base_lr: f64, t: usize) -> f64 {
        match self {
            LrSchedule::Constant => base_lr,
            LrSchedule::Step { step_size, gamma } => base_lr * gamma.powi((t / (*step_size).max(1)) as i32),
            LrSchedule::Exponential { gamma } => base_lr * gamma.powi(t as i32),
            LrSchedule::Cosine { t_max, eta_min } => {
                let p = (t.min(*t_max) as f64) / (*t_max).max(1) as f64;
                eta_min + (base_lr - eta_min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            LrSchedule::Warmup { warmup, then } => {
                if t < *warmup {
                    base_lr * (t + 1) as f64 / *warmup as f64
                } else {
                    then.lr(base_lr, t - warmup)
                }
            }
            LrSchedule::LinearDecay { total } => base_lr * (1.0 - t as f64 / (*total).max(1) as f64).max(0.0),
            LrSchedule::InverseSqrt { warmup } => {
                let s = (t + 1) as f64;
                let w = (*warmup).max(1) as f64;
                base_lr * (s / w).min((w / s).sqrt())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        assert_eq!(
            LrSchedule::Step {
                step_size: 2,
                gamma: 0.5
            }
            .lr(1.0, 5),
            0.25
        );
        assert!((LrSchedule::Exponential { gamma: 0.9 }.lr(1.0, 2) - 0.81).abs() < 1e-12);
        let c = LrSchedule::Cosine {
            t_max: 10,
            eta_min: 0.0,
        };
        assert!((c.lr(1.0, 5) - 0.5).abs() < 1e-12 && c.lr(1.0, 10).abs() < 1e-12);
        let w = LrSchedule::Warmup {
            warmup: 4,
            then: Box::new(LrSchedule::LinearDecay { total: 10 }),
        };
        assert_eq!(w.lr(1.0, 0), 0.25);
        assert_eq!(w.lr(1.0, 4), 1.0);
        assert!((w.lr(1.0, 9) - 0.5).abs() < 1e-12);
    }
}
