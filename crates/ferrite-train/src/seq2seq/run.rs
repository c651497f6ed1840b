//! A translation run from a [`TranslateConfig`]: pairs (gettext catalogs or TSV), a hash split,
//! a BPE or character tokenizer trained on the training pairs, Transformer training under a time
//! budget, test-set BLEU/chrF — all kept in a run directory that `translate` and `eval` reopen.
//!
//! Run directory: `config.toml` (copy), `data/{train,valid,test}.tsv`, `tokenizer.json`,
//! `model.json` (the Transformer config with vocabulary sizes), `model.safetensors` (the weights
//! with the best validation loss, written atomically at each validation), `history.json`,
//! `summary.json`.
//!
//! Layer: train.

use super::config::{TooLong, TranslateConfig};
use super::trainer::{train_seq2seq, Example, Seq2SeqOptions, Seq2SeqReport};
use crate::callbacks::{Callback, EpochLogger, ModelCheckpoint};
use crate::run::{fresh_run_dir, read_json, write_json};
use crate::tensorboard::TensorBoard;
use ferrite_core::{set_num_threads, Error, Result};
use ferrite_models::{generate, DecodeOptions, Strategy, Transformer, TransformerConfig};
use ferrite_nn::checkpoint::load_safetensors;
use ferrite_nn::{VarBuilder, VarMap};
use ferrite_text::{
    corpus_bleu, corpus_chrf, extract_gettext_pairs, read_tsv, split_by_hash, write_tsv, GettextStats, Pair,
    TextTokenizer, BOS, EOS,
};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The train/valid/test pairs of a run.
pub struct Splits {
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    pub test: Vec<Pair>,
}

/// English→`lang` pairs from `{locale_dir}/{lang}/LC_MESSAGES`, split by hash.
pub fn gettext_splits(locale_dir: &Path, lang: &str, valid: f64, test: f64) -> Result<(Splits, GettextStats)> {
    ferrite_text::check_fractions(valid, test)?;
    let dir = locale_dir.join(lang).join("LC_MESSAGES");
    let (pairs, stats) = extract_gettext_pairs(&dir)?;
    let (train, valid, test) = split_by_hash(pairs, valid, test);
    Ok((Splits { train, valid, test }, stats))
}

/// `ferrite data gettext`: writes `{out}/{train,valid,test}.tsv` and returns the counts.
pub fn write_gettext_data(
    locale_dir: &Path,
    lang: &str,
    out: &Path,
    valid: f64,
    test: f64,
) -> Result<(Splits, GettextStats)> {
    let (s, stats) = gettext_splits(locale_dir, lang, valid, test)?;
    write_splits(out, &s)?;
    Ok((s, stats))
}

fn write_splits(dir: &Path, s: &Splits) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create directory: {e}")))?;
    write_tsv(&dir.join("train.tsv"), &s.train)?;
    write_tsv(&dir.join("valid.tsv"), &s.valid)?;
    write_tsv(&dir.join("test.tsv"), &s.test)
}

fn load_splits(cfg: &TranslateConfig) -> Result<Splits> {
    let d = &cfg.data;
    if let Some(lang) = &d.gettext {
        let (s, stats) = gettext_splits(&d.locale_dir, lang, d.valid_fraction, d.test_fraction)?;
        eprintln!(
            "gettext {lang}: {} catalogs, {} entries, {} pairs kept ({} format-only, {} duplicates, {} other dropped)",
            stats.files,
            stats.entries,
            stats.kept,
            stats.dropped_format_only,
            stats.dropped_duplicate,
            stats.dropped_other
        );
        return Ok(s);
    }
    let train_path = d.train.as_ref().ok_or_else(|| Error::Invalid {
        op: "translate config",
        detail: "[data] train is missing".into(),
    })?;
    let all = read_tsv(train_path)?;
    if all.is_empty() {
        return Err(Error::file(
            train_path,
            "holds no sentence pairs (one SOURCE<TAB>TARGET line each)",
        ));
    }
    let (valid_frac, test_frac) = (
        if d.valid.is_some() { 0.0 } else { d.valid_fraction },
        if d.test.is_some() { 0.0 } else { d.test_fraction },
    );
    let total = all.len();
    let (train, mut valid, mut test) = split_by_hash(all, valid_frac, test_frac);
    if train.is_empty() {
        return Err(Error::file(
            train_path,
            format!("none of its {total} pairs is left for training after valid_fraction {valid_frac} and test_fraction {test_frac}"),
        ));
    }
    if let Some(p) = &d.valid {
        valid = read_tsv(p)?;
    }
    if let Some(p) = &d.test {
        test = read_tsv(p)?;
    }
    Ok(Splits { train, valid, test })
}

/// Tokenizes pairs into examples, applying the config's `too_long` policy.
pub fn to_examples(
    tok: &TextTokenizer,
    pairs: &[Pair],
    max_tokens: usize,
    too_long: TooLong,
    what: &str,
) -> Result<Vec<Example>> {
    let (mut cut, mut dropped) = (0usize, 0usize);
    let mut out = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        let (s, t) = (tok.encode(&p.src)?, tok.encode(&p.tgt)?);
        if s.is_empty() || t.is_empty() {
            dropped += 1;
            continue;
        }
        let (ex, was_cut) = Example::new(&s, &t, BOS, EOS, max_tokens);
        if was_cut {
            match too_long {
                TooLong::Truncate => cut += 1,
                TooLong::Drop => {
                    dropped += 1;
                    continue;
                }
                TooLong::Error => {
                    return Err(Error::Invalid {
                        op: "translate data",
                        detail: format!(
                            "{what} pair {} is longer than max_tokens {max_tokens} ({} / {} tokens): {:?}",
                            i + 1,
                            s.len() + 1,
                            t.len() + 1,
                            p.src
                        ),
                    });
                }
            }
        }
        out.push(ex);
    }
    if cut > 0 || dropped > 0 {
        eprintln!(
            "{what}: {cut} pairs truncated to {max_tokens} tokens, {dropped} dropped (too long or empty after tokenization)"
        );
    }
    Ok(out)
}

/// A trained model reopened from its run directory.
pub struct TranslationModel {
    pub config: TranslateConfig,
    pub tokenizer: TextTokenizer,
    pub model: Transformer,
    pub vars: VarMap,
}

impl TranslationModel {
    /// Loads `config.toml`, `tokenizer.json`, `model.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        crate::config::RunKind::expect(dir, &[crate::config::RunKind::Translate], "ferrite translate")?;
        let config = TranslateConfig::from_file(&dir.join("config.toml"))?;
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
        let mcfg: TransformerConfig = read_json(&dir.join("model.json"))?;
        let vars = VarMap::new();
        let model = Transformer::new(&VarBuilder::new(&vars, 0), &mcfg)?;
        let weights = dir.join("model.safetensors");
        let (tensors, _) = load_safetensors(&weights)?;
        vars.load(&tensors, &weights.display().to_string())?;
        Ok(TranslationModel {
            config,
            tokenizer,
            model,
            vars,
        })
    }

    /// Translates `sentences` with `strategy`, batching by length (outputs keep input order). A
    /// blank sentence stays blank rather than becoming a translation of nothing.
    pub fn translate(&self, sentences: &[String], strategy: &Strategy, opts: &DecodeOptions) -> Result<Vec<String>> {
        let max = self.config.data.max_tokens;
        let mut encoded = vec![Vec::new(); sentences.len()];
        let mut cut = 0;
        for (s, slot) in sentences.iter().zip(&mut encoded) {
            if s.trim().is_empty() {
                continue;
            }
            let mut ids = self.tokenizer.encode(s)?;
            if ids.len() > max - 1 {
                ids.truncate(max - 1);
                cut += 1;
            }
            ids.push(EOS);
            *slot = ids;
        }
        if cut > 0 {
            eprintln!("warning: {cut} input(s) longer than max_tokens {max} were truncated");
        }
        let mut order: Vec<usize> = (0..encoded.len()).filter(|&i| !encoded[i].is_empty()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let per_batch = match strategy {
            Strategy::Beam { size, .. } => (256 / size.max(&1)).max(1),
            _ => 256,
        };
        let mut out = vec![String::new(); sentences.len()];
        for chunk in order.chunks(per_batch) {
            let src: Vec<Vec<u32>> = chunk.iter().map(|&i| encoded[i].clone()).collect();
            let ids = generate(&self.model, &src, strategy, opts)?;
            for (&i, ids) in chunk.iter().zip(ids) {
                out[i] = self.tokenizer.decode(&ids)?;
            }
        }
        Ok(out)
    }
}

/// BLEU, chrF and what produced them.
#[derive(Clone, Debug, Serialize)]
pub struct TranslationScores {
    pub bleu: f64,
    pub chrf: f64,
    pub bleu_precisions: [f64; 4],
    pub brevity_penalty: f64,
    pub sentences: usize,
    pub decode: String,
    pub seconds: f64,
}

/// Translates the sources of `pairs` and scores them against the targets (sacreBLEU settings).
pub fn score(m: &TranslationModel, pairs: &[Pair], beam: usize) -> Result<(TranslationScores, Vec<String>)> {
    if pairs.is_empty() {
        return Err(Error::Invalid {
            op: "eval",
            detail: "no test pairs to score".into(),
        });
    }
    let started = Instant::now();
    let srcs: Vec<String> = pairs.iter().map(|p| p.src.clone()).collect();
    let refs: Vec<String> = pairs.iter().map(|p| p.tgt.clone()).collect();
    let strategy = m.config.decode.strategy(beam)?;
    let hyps = m.translate(&srcs, &strategy, &m.config.decode.options())?;
    let bleu = corpus_bleu(&hyps, &refs)?;
    let chrf = corpus_chrf(&hyps, &refs)?;
    Ok((
        TranslationScores {
            bleu: bleu.score,
            chrf,
            bleu_precisions: bleu.precisions,
            brevity_penalty: bleu.bp,
            sentences: pairs.len(),
            decode: if beam <= 1 {
                "greedy".into()
            } else {
                format!("beam{beam}")
            },
            seconds: started.elapsed().as_secs_f64(),
        },
        hyps,
    ))
}

/// What `ferrite train` prints for a translation run.
#[derive(Clone, Debug, Serialize)]
pub struct TranslateSummary {
    pub run_dir: String,
    pub train_pairs: usize,
    pub valid_pairs: usize,
    pub test_pairs: usize,
    pub vocab_size: usize,
    pub parameters: usize,
    pub training: Seq2SeqReport,
    pub best_valid_loss: Option<f64>,
    pub test: TranslationScores,
}

/// Options from the command line.
#[derive(Clone, Debug, Default)]
pub struct TranslateRunOptions {
    pub out: Option<PathBuf>,
    /// Overrides `[training] minutes`.
    pub minutes: Option<f64>,
    /// Overrides `[training] max_steps`.
    pub max_steps: Option<usize>,
    /// Overrides the config's seed.
    pub seed: Option<u64>,
    /// Overrides `[training] threads`.
    pub threads: Option<usize>,
    pub verbose: bool,
}

/// Runs a translation config end to end and returns the summary (also in `summary.json`).
pub fn train_translation(config_path: &Path, opts: &TranslateRunOptions) -> Result<TranslateSummary> {
    let mut cfg = TranslateConfig::from_file(config_path)?;
    if let Some(m) = opts.minutes {
        cfg.training.minutes = m;
    }
    if let Some(s) = opts.max_steps {
        cfg.training.max_steps = s;
    }
    if let Some(s) = opts.seed {
        cfg.seed = s;
    }
    // The overrides are checked as the file's own values are.
    cfg.validate().map_err(|e| e.attributed_to(config_path, None))?;
    cfg.check_ranges(config_path)?;
    if let Some(t) = opts.threads.or(cfg.training.threads) {
        set_num_threads(t);
    }
    // Past this point an error either names its own file or comes from the config (a model too
    // big to allocate, a tokenizer that cannot be trained): those name the config.
    run_translation(cfg, config_path, opts).map_err(|e| e.attributed_to(config_path, None))
}

/// [`train_translation`] once the config is read, overridden and valid.
fn run_translation(cfg: TranslateConfig, config_path: &Path, opts: &TranslateRunOptions) -> Result<TranslateSummary> {
    let dir = opts.out.clone().unwrap_or_else(|| fresh_run_dir(config_path));
    std::fs::create_dir_all(&dir).map_err(|e| Error::file(&dir, format!("cannot create run directory: {e}")))?;
    // Temp files of a writer killed mid-checkpoint (`kill -9`) would otherwise pile up.
    ferrite_core::fs::remove_stale_temps(&dir);
    let splits = load_splits(&cfg)?;
    write_splits(&dir.join("data"), &splits)?;
    // The copy in the run directory points at the extracted split, so the run is self-contained.
    let mut saved = cfg.clone();
    saved.data.gettext = None;
    saved.data.train = Some(PathBuf::from("data/train.tsv"));
    saved.data.valid = Some(PathBuf::from("data/valid.tsv"));
    saved.data.test = Some(PathBuf::from("data/test.tsv"));
    let text = toml::to_string_pretty(&saved).map_err(|e| Error::file(&dir, e.to_string()))?;
    ferrite_core::fs::write_atomic(dir.join("config.toml"), text.as_bytes())?;

    let texts = splits.train.iter().flat_map(|p| [p.src.as_str(), p.tgt.as_str()]);
    let tokenizer = TextTokenizer::train(cfg.tokenizer.kind, cfg.tokenizer.vocab_size, texts)?;
    tokenizer.save(&dir.join("tokenizer.json"))?;
    let (max, tl) = (cfg.data.max_tokens, cfg.data.too_long);
    let train = to_examples(&tokenizer, &splits.train, max, tl, "train")?;
    let valid = to_examples(&tokenizer, &splits.valid, max, TooLong::Truncate, "valid")?;

    let mut mcfg = cfg.model.clone();
    mcfg.src_vocab = tokenizer.vocab_size();
    mcfg.tgt_vocab = tokenizer.vocab_size();
    write_json(&dir.join("model.json"), &mcfg)?;
    let vars = VarMap::new();
    let model = Transformer::new(&VarBuilder::new(&vars, cfg.seed), &mcfg)?;
    if opts.verbose {
        eprintln!(
            "{} train / {} valid / {} test pairs, vocabulary {}, {} parameters, run directory {}",
            train.len(),
            valid.len(),
            splits.test.len(),
            tokenizer.vocab_size(),
            vars.num_params(),
            dir.display()
        );
    }
    let t = &cfg.training;
    let topts = Seq2SeqOptions {
        max_steps: t.max_steps,
        max_seconds: t.minutes * 60.0,
        batch_tokens: t.batch_tokens,
        lr: t.lr,
        schedule: t.schedule(),
        label_smoothing: t.label_smoothing,
        clip_norm: t.clip_norm,
        weight_decay: t.weight_decay,
        betas: (t.betas[0], t.betas[1]),
        eps: t.eps,
        valid_every: t.valid_every,
        seed: cfg.seed,
        verbose: opts.verbose,
    };
    // The weights with the best validation loss (the latest when there is no validation set).
    let monitor = (!valid.is_empty()).then_some("val_loss");
    let mut best = ModelCheckpoint::new(dir.join("model.safetensors"), monitor).weights_only();
    let mut logger = EpochLogger::jsonl(dir.join("metrics.jsonl"));
    let mut tensorboard = TensorBoard::new(&dir);
    let _ = std::fs::remove_file(dir.join("metrics.jsonl"));
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut logger, &mut tensorboard, &mut best];
    let report = train_seq2seq(&model, &vars, &train, &valid, &topts, &mut callbacks)?;
    let best = report
        .history
        .iter()
        .filter_map(|h| h.2)
        .fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.min(v))));
    write_json(&dir.join("history.json"), &report.history)?;
    let trained = TranslationModel::load(&dir)?;
    let (test, hyps) = score(&trained, &splits.test, cfg.decode.beam)?;
    let lines: String = hyps.iter().map(|h| format!("{h}\n")).collect();
    ferrite_core::fs::write_atomic(dir.join("test_hypotheses.txt"), lines.as_bytes())?;
    let summary = TranslateSummary {
        run_dir: dir.display().to_string(),
        train_pairs: train.len(),
        valid_pairs: valid.len(),
        test_pairs: splits.test.len(),
        vocab_size: tokenizer.vocab_size(),
        parameters: vars.num_params(),
        training: report,
        best_valid_loss: best,
        test,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    Ok(summary)
}

/// `ferrite eval RUN_DIR --data pairs.tsv`: scores a saved model on a TSV (default: its test split).
pub fn eval_translation(dir: &Path, data: Option<&Path>, beam: Option<usize>) -> Result<TranslationScores> {
    let m = TranslationModel::load(dir)?;
    let path = data.map(Path::to_path_buf).unwrap_or_else(|| dir.join("data/test.tsv"));
    let pairs = read_tsv(&path)?;
    let beam = beam.unwrap_or(m.config.decode.beam);
    Ok(score(&m, &pairs, beam)?.0)
}
