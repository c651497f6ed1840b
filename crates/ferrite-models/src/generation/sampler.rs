//! Choosing the next token from logits: [`argmax`] (the first maximum on ties, as
//! `torch.argmax`) and the [`Sampler`] — repetition penalty, temperature, top-k, top-p, a seeded
//! draw. Every model's greedy and sampled decoding goes through these two.
//!
//! Layer: models (generation). Semantics follow llama.cpp's and Hugging Face's logits warpers,
//! which agree on these: the repetition penalty divides positive and multiplies negative logits
//! of tokens seen in the last `repeat_last_n` ids (Keskar et al. 2019); temperature scales the
//! logits; top-k keeps the k largest; top-p keeps the smallest set, in probability order, whose
//! mass reaches p (Holtzman et al. 2020); the draw renormalizes what is kept.

use ferrite_core::{Error, Result, Rng};
use ferrite_kernels::reduce::argmax_slice;
use serde::{Deserialize, Serialize};

/// Index of the largest logit, the first one on ties (as `torch.argmax`; a NaN counts as the
/// largest, so a model that produced one shows it rather than hiding it); 0 for an empty row.
/// The kernels' [`argmax_slice`], which the tensor op `Tensor::argmax` uses too.
pub fn argmax(logits: &[f32]) -> u32 {
    argmax_slice(logits) as u32
}

/// How [`Sampler`] chooses a token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingOptions {
    /// Softmax temperature; 0 = greedy (argmax after the repetition penalty).
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = all).
    pub top_p: f32,
    /// > 1 discourages repeating recent tokens (1 = off).
    pub repeat_penalty: f32,
    /// How many of the latest ids the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplingOptions {
    /// llama.cpp's defaults, greedy: temperature 0, top-k 40, top-p 0.95, no penalty over the last
    /// 64 tokens, seed 0.
    fn default() -> Self {
        SamplingOptions {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplingOptions {
    /// Checks the ranges: temperature ≥ 0, 0 < top_p ≤ 1, repeat_penalty > 0 (all finite).
    ///
    /// # Errors
    /// The first value out of range, named.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(Error::Invalid { op: "sampling", detail });
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad(format!("temperature must be ≥ 0, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return bad(format!("repeat_penalty must be > 0, got {}", self.repeat_penalty));
        }
        Ok(())
    }
}

/// Chooses tokens from logits with a seeded generator: the same options and seed give the same
/// tokens.
pub struct Sampler {
    options: SamplingOptions,
    rng: Rng,
}

impl Sampler {
    /// # Errors
    /// Options out of range (see [`SamplingOptions::validate`]).
    pub fn new(options: SamplingOptions) -> Result<Self> {
        options.validate()?;
        let rng = Rng::new(options.seed);
        Ok(Sampler { options, rng })
    }

    pub fn options(&self) -> &SamplingOptions {
        &self.options
    }

    /// The next token given its logits and the ids so far (prompt included: the repetition
    /// penalty looks at them).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let o = &self.options;
        let mut l = logits.to_vec();
        if o.repeat_penalty != 1.0 {
            let from = history.len().saturating_sub(o.repeat_last_n);
            let mut seen = history[from..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(v) = l.get_mut(id as usize) {
                    *v = if *v > 0.0 {
                        *v / o.repeat_penalty
                    } else {
                        *v * o.repeat_penalty
                    };
                }
            }
        }
        if o.temperature == 0.0 || l.len() <= 1 {
            return argmax(&l);
        }
        // Most likely first; ties keep the lower id first, so draws do not depend on sort order.
        let mut order: Vec<usize> = (0..l.len()).collect();
        order.sort_unstable_by(|&a, &b| l[b].total_cmp(&l[a]).then(a.cmp(&b)));
        if o.top_k > 0 {
            order.truncate(o.top_k);
        }
        let max = l[order[0]] as f64;
        let mut probs: Vec<f64> = order
            .iter()
            .map(|&i| ((l[i] as f64 - max) / o.temperature as f64).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if o.top_p < 1.0 {
            let mut mass = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    mass += p;
                    mass >= o.top_p as f64
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            order.truncate(keep);
        }
        let kept: f64 = probs.iter().sum();
        let mut u = self.rng.uniform() * kept;
        for (p, &i) in probs.iter().zip(&order) {
            if u < *p {
                return i as u32;
            }
            u -= p;
        }
        order[order.len() - 1] as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[1.0, f32::NAN, 3.0, f32::NAN]), 1);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn sampling_rules() {
        let logits = [1.0f32, 3.0, 2.0, -1.0];
        let mut greedy = Sampler::new(SamplingOptions::default()).unwrap();
        assert_eq!(greedy.sample(&logits, &[]), 1);
        // The penalty divides the leader's positive logit: 3/2 < 2.
        let mut s = Sampler::new(SamplingOptions {
            repeat_penalty: 2.0,
            ..SamplingOptions::default()
        })
        .unwrap();
        assert_eq!(s.sample(&logits, &[1]), 2);
        // top_k = 1 is greedy whatever the temperature; seeded draws repeat.
        let mut s = Sampler::new(SamplingOptions {
            temperature: 5.0,
            top_k: 1,
            ..SamplingOptions::default()
        })
        .unwrap();
        assert!((0..20).all(|_| s.sample(&logits, &[]) == 1));
        let opts = SamplingOptions {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 7,
            ..SamplingOptions::default()
        };
        let draw = |o: &SamplingOptions| {
            let mut s = Sampler::new(o.clone()).unwrap();
            (0..400).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>()
        };
        let a = draw(&opts);
        assert_eq!(a, draw(&opts));
        let share = a.iter().filter(|&&t| t == 1).count() as f64 / 400.0;
        // softmax([1, 3, 2, -1])[1] ≈ 0.66
        assert!((share - 0.66).abs() < 0.08, "{share}");
        // top_p = 0.5 keeps only the leader (its probability alone passes 0.5); top_k = 2 never
        // draws the two least likely.
        assert!(draw(&SamplingOptions {
            top_p: 0.5,
            ..opts.clone()
        })
        .iter()
        .all(|&t| t == 1));
        assert!(draw(&SamplingOptions {
            top_k: 2,
            ..opts.clone()
        })
        .iter()
        .all(|&t| t == 1 || t == 2));
        // A very low temperature is greedy.
        assert!(draw(&SamplingOptions {
            temperature: 1e-3,
            ..opts
        })
        .iter()
        .all(|&t| t == 1));
    }

    #[test]
    fn options_out_of_range_are_named() {
        for (o, word) in [
            (
                SamplingOptions {
                    temperature: -1.0,
                    ..SamplingOptions::default()
                },
                "temperature",
            ),
            (
                SamplingOptions {
                    top_p: 0.0,
                    ..SamplingOptions::default()
                },
                "top_p",
            ),
            (
                SamplingOptions {
                    repeat_penalty: 0.0,
                    ..SamplingOptions::default()
                },
                "repeat_penalty",
            ),
        ] {
            let e = Sampler::new(o).err().unwrap().to_string();
            assert!(e.contains(word), "{e}");
        }
    }
}
