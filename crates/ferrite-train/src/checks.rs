//! Range checks for config values, so nonsense (a negative learning rate, `beta1 = 2`, `eps = 0`,
//! a split that cannot hold a row) is refused before any work starts, with the key, the value and
//! the allowed range — every problem in the file at once, not one per try.
//!
//! Layer: train. Used by the Sequential, translation and fine-tuning configs.

use ferrite_core::{Error, Result};
use std::path::Path;

/// The most kernel threads a config or flag may ask for: beyond this a machine only thrashes
/// (and 100,000 threads fail to start).
pub const MAX_THREADS: usize = ferrite_core::MAX_THREADS;

/// Collects the problems of one config.
#[derive(Default)]
pub struct Checks {
    problems: Vec<String>,
}

impl Checks {
    pub fn new() -> Self {
        Checks::default()
    }

    /// Records a problem with `key` in free words.
    pub fn problem(&mut self, key: &str, detail: impl std::fmt::Display) {
        self.problems.push(format!("{key}: {detail}"));
    }

    /// A finite number > 0.
    pub fn positive(&mut self, key: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.problem(key, format!("{v} must be a number above 0"));
        }
    }

    /// A finite number ≥ 0.
    pub fn non_negative(&mut self, key: &str, v: f64) {
        if !(v.is_finite() && v >= 0.0) {
            self.problem(key, format!("{v} must be a number ≥ 0"));
        }
    }

    /// A number in [lo, hi) (`hi_inclusive` makes it [lo, hi]).
    pub fn within(&mut self, key: &str, v: f64, lo: f64, hi: f64, hi_inclusive: bool) {
        let ok = v >= lo && (v < hi || (hi_inclusive && v == hi));
        if !ok {
            let close = if hi_inclusive { ']' } else { ')' };
            self.problem(key, format!("{v} must be in [{lo}, {hi}{close}"));
        }
    }

    /// A whole number ≥ `min`.
    pub fn at_least(&mut self, key: &str, v: usize, min: usize) {
        if v < min {
            self.problem(key, format!("{v} must be at least {min}"));
        }
    }

    /// A thread count in 1..=[`MAX_THREADS`].
    pub fn threads(&mut self, key: &str, v: Option<usize>) {
        if let Some(n) = v
            && !(1..=MAX_THREADS).contains(&n)
        {
            self.problem(key, format!("{n} must be between 1 and {MAX_THREADS}"));
        }
    }

    /// A seed that a TOML file can hold again: run directories save their config, and TOML
    /// integers are signed 64-bit, so a larger seed would make the run unloadable.
    pub fn seed(&mut self, key: &str, v: u64) {
        if v > i64::MAX as u64 {
            self.problem(
                key,
                format!("{v} must be at most {} (TOML integers are signed 64-bit)", i64::MAX),
            );
        }
    }

    /// "invalid value: …" or "N invalid values: …; …", or `None` when all is well.
    fn summary(&self) -> Option<String> {
        match self.problems.len() {
            0 => None,
            1 => Some(format!("invalid value: {}", self.problems[0])),
            n => Some(format!("{n} invalid values: {}", self.problems.join("; "))),
        }
    }

    /// Ok, or one error naming `path` and every problem found.
    ///
    /// # Errors
    /// Any recorded problem.
    pub fn finish(self, path: &Path) -> Result<()> {
        self.summary().map_or(Ok(()), |detail| Err(Error::file(path, detail)))
    }

    /// Ok, or one error for `op` listing every problem found (options given as flags or in
    /// code, with no file to name).
    ///
    /// # Errors
    /// Any recorded problem.
    pub fn finish_options(self, op: &'static str) -> Result<()> {
        self.summary()
            .map_or(Ok(()), |detail| Err(Error::Invalid { op, detail }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_with_its_range() {
        let mut c = Checks::new();
        c.positive("optimizer.lr", -1.0);
        c.positive("optimizer.eps", f64::NAN);
        c.within("optimizer.beta1", 2.0, 0.0, 1.0, false);
        c.within("data.test_split", 0.5, 0.0, 1.0, false);
        c.threads("training.threads", Some(100_000));
        c.at_least("model.layers[0].units", 0, 1);
        let e = c.finish(Path::new("c.toml")).unwrap_err().to_string();
        for part in [
            "c.toml",
            "5 invalid values",
            "optimizer.lr: -1 must be a number above 0",
            "optimizer.eps: NaN",
            "optimizer.beta1: 2 must be in [0, 1)",
            "training.threads: 100000 must be between 1 and",
            "model.layers[0].units: 0 must be at least 1",
        ] {
            assert!(e.contains(part), "{part} missing from: {e}");
        }
        assert!(Checks::new().finish(Path::new("c.toml")).is_ok());
    }
}
