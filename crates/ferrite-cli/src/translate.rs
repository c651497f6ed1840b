//! `ferrite translate RUN_DIR "Open the file"`: translates sentences with a trained run
//! (arguments, or one sentence per line on standard input when none are given).

use clap::Args;
use ferrite::models::{SamplingOptions, Strategy};
use ferrite::train::seq2seq::TranslationModel;
use ferrite::{Error, Result};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Args)]
pub struct TranslateArgs {
    /// A translation run directory written by `ferrite train`.
    run_dir: PathBuf,
    /// Sentences to translate (default: read lines from standard input).
    sentences: Vec<String>,
    /// Beam size (default: the config's; 1 = greedy).
    #[arg(long)]
    beam: Option<usize>,
    /// Sample instead of searching, at this temperature.
    #[arg(long, conflicts_with = "beam")]
    temperature: Option<f64>,
    /// With --temperature: keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// With --temperature: nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// With --temperature: sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: TranslateArgs) -> Result<()> {
    let m = TranslationModel::load(&args.run_dir)?;
    let sentences = if args.sentences.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<Vec<String>>>()
            .map_err(|e| Error::Invalid {
                op: "translate",
                detail: format!("cannot read standard input: {e}"),
            })?
    } else {
        args.sentences
    };
    let strategy = match args.temperature {
        Some(temperature) => Strategy::Sample(SamplingOptions {
            temperature: temperature as f32,
            top_k: args.top_k,
            top_p: args.top_p as f32,
            repeat_penalty: 1.0,
            repeat_last_n: 0,
            seed: args.seed,
        }),
        None => m.config.decode.strategy(args.beam.unwrap_or(m.config.decode.beam)),
    };
    // Blank lines stay blank rather than becoming a translation of nothing.
    let blank: Vec<bool> = sentences.iter().map(|s| s.trim().is_empty()).collect();
    let text: Vec<String> = sentences.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
    let mut out = m.translate(&text, &strategy, &m.config.decode.options())?.into_iter();
    for is_blank in blank {
        if is_blank {
            println!();
        } else {
            println!("{}", out.next().unwrap_or_default());
        }
    }
    Ok(())
}
