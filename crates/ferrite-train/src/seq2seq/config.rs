//! The TOML description of a translation run (`task = "translate"`, see
//! `examples/translate-en-fr.toml`). Unknown keys are errors naming the key.
//!
//! Layer: train. Relative paths are resolved against the config file's directory.

use crate::checks::Checks;
use ferrite_core::{Error, Result};
use ferrite_models::{DecodeOptions, Ranking, Strategy, TransformerConfig};
use ferrite_nn::LrSchedule;
use ferrite_text::TokenizerKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole translation run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateConfig {
    /// Must be `"translate"`; tells `ferrite train` which kind of run this is.
    pub task: String,
    #[serde(default)]
    pub seed: u64,
    pub data: TranslateData,
    pub tokenizer: TokenizerConfig,
    pub model: TransformerConfig,
    pub training: TrainingSection,
    #[serde(default)]
    pub decode: DecodeSection,
}

/// What to do with a pair longer than `max_tokens` on either side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TooLong {
    /// Keep the first tokens (EOS stays last); the number cut is logged.
    #[default]
    Truncate,
    /// Leave the pair out; the number dropped is logged.
    Drop,
    /// Stop with an error naming the pair.
    Error,
}

fn default_valid_fraction() -> f64 {
    0.02
}
fn default_test_fraction() -> f64 {
    0.03
}
fn default_max_tokens() -> usize {
    64
}
fn default_locale_dir() -> PathBuf {
    PathBuf::from("/usr/share/locale")
}

/// Where pairs come from: a gettext language, or TSV files.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateData {
    /// Extract English→`gettext` pairs from `{locale_dir}/{gettext}/LC_MESSAGES/*.mo`.
    pub gettext: Option<String>,
    #[serde(default = "default_locale_dir")]
    pub locale_dir: PathBuf,
    /// `source<TAB>target` training pairs (instead of `gettext`).
    pub train: Option<PathBuf>,
    /// Validation pairs; split off `train` by hash when absent.
    pub valid: Option<PathBuf>,
    /// Test pairs; split off `train` by hash when absent.
    pub test: Option<PathBuf>,
    #[serde(default = "default_valid_fraction")]
    pub valid_fraction: f64,
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Tokens per side, BOS/EOS included.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    #[serde(default)]
    pub too_long: TooLong,
}

/// The largest vocabulary a translation tokenizer may be trained to (large LLM vocabularies are
/// ~256k; a BPE merge table is allocated from this number).
pub const MAX_VOCAB: usize = 1 << 20;

/// The tokenizer trained on the training pairs (both sides, one shared vocabulary).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    pub kind: TokenizerKind,
    #[serde(default)]
    pub vocab_size: usize,
}

fn default_batch_tokens() -> usize {
    4096
}
fn default_lr() -> f64 {
    7e-4
}
fn default_warmup() -> usize {
    1000
}
fn default_smoothing() -> f64 {
    0.1
}
fn default_clip() -> f64 {
    1.0
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.98]
}
fn default_eps() -> f64 {
    1e-9
}
fn default_valid_every() -> usize {
    500
}

/// Learning-rate shape after warmup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    InverseSqrt,
    Cosine,
}

/// Optimization and budget.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Wall-clock budget in minutes (0 = none); the first of this and `max_steps` stops training.
    #[serde(default)]
    pub minutes: f64,
    #[serde(default)]
    pub max_steps: usize,
    #[serde(default = "default_batch_tokens")]
    pub batch_tokens: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_warmup")]
    pub warmup_steps: usize,
    #[serde(default)]
    pub schedule: ScheduleKind,
    #[serde(default = "default_smoothing")]
    pub label_smoothing: f64,
    #[serde(default = "default_clip")]
    pub clip_norm: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default = "default_valid_every")]
    pub valid_every: usize,
    /// Kernel threads (default: FERRITE_NUM_THREADS or all cores).
    pub threads: Option<usize>,
}

fn default_beam() -> usize {
    4
}
fn one() -> f64 {
    1.0
}
fn default_a() -> f64 {
    1.5
}
fn default_b() -> usize {
    10
}

/// How test sentences and `ferrite translate` decode.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeSection {
    /// Beam size (1 = greedy).
    #[serde(default = "default_beam")]
    pub beam: usize,
    #[serde(default = "one")]
    pub length_penalty: f64,
    #[serde(default = "default_a")]
    pub max_len_a: f64,
    #[serde(default = "default_b")]
    pub max_len_b: usize,
}

impl Default for DecodeSection {
    fn default() -> Self {
        DecodeSection {
            beam: default_beam(),
            length_penalty: 1.0,
            max_len_a: default_a(),
            max_len_b: default_b(),
        }
    }
}

impl DecodeSection {
    pub fn options(&self) -> DecodeOptions {
        DecodeOptions {
            bos: ferrite_text::BOS,
            eos: ferrite_text::EOS,
            max_len_a: self.max_len_a,
            max_len_b: self.max_len_b,
        }
    }

    /// Greedy for beam 1, beam search otherwise.
    ///
    /// # Errors
    /// A beam size outside 1..=[`MAX_BEAM`](ferrite_models::generation::MAX_BEAM) (0 is not
    /// greedy: it is a mistake).
    pub fn strategy(&self, beam: usize) -> Result<Strategy> {
        ferrite_models::generation::check_beam(beam)?;
        Ok(if beam == 1 {
            Strategy::Greedy
        } else {
            Strategy::Beam {
                size: beam,
                ranking: Ranking::LengthPenalty(self.length_penalty),
            }
        })
    }
}

impl TrainingSection {
    pub fn schedule(&self) -> LrSchedule {
        match self.schedule {
            ScheduleKind::InverseSqrt => LrSchedule::InverseSqrt {
                warmup: self.warmup_steps,
            },
            ScheduleKind::Cosine => LrSchedule::Warmup {
                warmup: self.warmup_steps,
                then: Box::new(LrSchedule::Cosine {
                    t_max: self.max_steps.saturating_sub(self.warmup_steps),
                    eta_min: 0.0,
                }),
            },
        }
    }
}

impl TranslateConfig {
    /// Reads and checks a config; relative data paths become relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e.to_string()))?;
        let mut cfg: TranslateConfig = toml::from_str(&text).map_err(|e| Error::file(path, e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.data.train, &mut cfg.data.valid, &mut cfg.data.test]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        cfg.validate().map_err(|e| Error::file(path, e.to_string()))?;
        cfg.check_ranges(path)?;
        Ok(cfg)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::Invalid {
                op: "translate config",
                detail,
            })
        };
        if self.task != "translate" {
            return bad(format!("task must be \"translate\", got \"{}\"", self.task));
        }
        match (&self.data.gettext, &self.data.train) {
            (Some(_), Some(_)) => return bad("[data] has both gettext and train: choose one".into()),
            (None, None) => return bad("[data] needs gettext = \"LANG\" or train = \"pairs.tsv\"".into()),
            _ => {}
        }
        if self.data.max_tokens < 3 {
            return bad(format!(
                "[data] max_tokens {} is too small (BOS/EOS need 2)",
                self.data.max_tokens
            ));
        }
        let (v, t) = (self.data.valid_fraction, self.data.test_fraction);
        if !(0.0..1.0).contains(&v) || !(0.0..1.0).contains(&t) || v + t >= 1.0 {
            return bad(format!(
                "[data] valid_fraction {v} + test_fraction {t} must be within [0, 1)"
            ));
        }
        if self.training.minutes <= 0.0 && self.training.max_steps == 0 {
            return bad("[training] set minutes or max_steps, or training never stops".into());
        }
        if self.training.schedule == ScheduleKind::Cosine && self.training.max_steps <= self.training.warmup_steps {
            return bad("[training] the cosine schedule needs max_steps > warmup_steps".into());
        }
        if self.training.batch_tokens < self.data.max_tokens {
            return bad(format!(
                "[training] batch_tokens {} is smaller than one max-length example ({})",
                self.training.batch_tokens, self.data.max_tokens
            ));
        }
        if self.decode.beam == 0 {
            return bad("[decode] beam must be at least 1".into());
        }
        if self.model.max_positions < self.data.max_tokens {
            return bad(format!(
                "[model] max_positions {} is below [data] max_tokens {}",
                self.model.max_positions, self.data.max_tokens
            ));
        }
        Ok(())
    }

    /// The ranges of the numbers (learning rate, betas, sizes, …), every problem at once.
    pub(crate) fn check_ranges(&self, path: &Path) -> Result<()> {
        let mut c = Checks::new();
        let t = &self.training;
        c.positive("training.lr", t.lr);
        c.non_negative("training.minutes", t.minutes);
        c.within("training.label_smoothing", t.label_smoothing, 0.0, 1.0, false);
        c.non_negative("training.clip_norm", t.clip_norm);
        c.non_negative("training.weight_decay", t.weight_decay);
        c.within("training.betas[0]", t.betas[0], 0.0, 1.0, false);
        c.within("training.betas[1]", t.betas[1], 0.0, 1.0, false);
        c.positive("training.eps", t.eps);
        c.threads("training.threads", t.threads);
        c.at_least("training.valid_every", t.valid_every, 1);
        c.seed("seed", self.seed);
        if self.tokenizer.vocab_size > MAX_VOCAB {
            c.problem(
                "tokenizer.vocab_size",
                format!("{} is more than {MAX_VOCAB}", self.tokenizer.vocab_size),
            );
        }
        if self.decode.beam > ferrite_models::generation::MAX_BEAM {
            c.problem(
                "decode.beam",
                format!(
                    "{} must be between 1 and {}",
                    self.decode.beam,
                    ferrite_models::generation::MAX_BEAM
                ),
            );
        }
        let m = &self.model;
        for (key, v) in [
            ("model.d_model", m.d_model),
            ("model.heads", m.heads),
            ("model.encoder_layers", m.encoder_layers),
            ("model.decoder_layers", m.decoder_layers),
            ("model.ffn", m.ffn),
        ] {
            c.at_least(key, v, 1);
        }
        if m.heads > 0 && !m.d_model.is_multiple_of(m.heads) {
            c.problem(
                "model.heads",
                format!("{} must divide model.d_model {}", m.heads, m.d_model),
            );
        }
        c.within("model.dropout", m.dropout, 0.0, 1.0, false);
        if !self.decode.length_penalty.is_finite() {
            c.problem(
                "decode.length_penalty",
                format!("{} must be a finite number", self.decode.length_penalty),
            );
        }
        c.non_negative("decode.max_len_a", self.decode.max_len_a);
        c.finish(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_unknown_keys_are_named() {
        // Found by scripts/hostile.sh: values that were accepted (valid_every = 0, beam 0 taken as
        // greedy) or aborted (a BPE vocabulary of 10¹²).
        let dir = std::env::temp_dir().join(format!("ferrite-tcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let example =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/translate-en-fr.toml"))
                .unwrap();
        let bad = example
            .replace("beam = 4", "beam = 65")
            .replace("valid_every = 200", "valid_every = 0")
            .replace("vocab_size = 6000", "vocab_size = 1000000000000");
        let path = dir.join("t.toml");
        std::fs::write(&path, bad).unwrap();
        let e = TranslateConfig::from_file(&path).err().unwrap().to_string();
        for part in [
            "t.toml",
            "decode.beam: 65 must be between 1 and 64",
            "training.valid_every: 0 must be at least 1",
            "tokenizer.vocab_size: 1000000000000 is more than 1048576",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
        let cfg = TranslateConfig::from_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/translate-en-fr.toml"),
        )
        .unwrap();
        assert!(cfg.decode.strategy(0).is_err() && cfg.decode.strategy(65).is_err());
        assert!(matches!(cfg.decode.strategy(1).unwrap(), Strategy::Greedy));
        std::fs::remove_dir_all(dir).ok();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/translate-en-fr.toml");
        let cfg = TranslateConfig::from_file(&path).unwrap();
        assert_eq!(cfg.data.gettext.as_deref(), Some("fr"));
        assert_eq!(
            crate::config::RunKind::of_config(&path).unwrap(),
            crate::config::RunKind::Translate
        );
        let text = std::fs::read_to_string(&path).unwrap().replace("beam = 4", "beams = 4");
        let err = toml::from_str::<TranslateConfig>(&text).err().unwrap().to_string();
        assert!(err.contains("beams"), "{err}");
    }
}
