//! `ferrite translate --model RUN "Open the file"`: translates sentences with a trained run
//! (arguments, or one sentence per line on standard input when none are given).

use crate::common::{print_json, print_line, Common};
use clap::Args;
use ferrite::models::{SamplingOptions, Strategy};
use ferrite::train::seq2seq::TranslationModel;
use ferrite::{Error, Result};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite translate --model runs/en-fr \"Open the file\" \"Permission denied\"
  ferrite translate --model runs/en-fr --temperature 0.8 --top-p 0.9 --seed 1 --json < sentences.txt")]
pub struct TranslateArgs {
    /// A translation run directory written by `ferrite train`.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// Sentences to translate (default: one per line on standard input; blank lines stay blank).
    texts: Vec<String>,
    /// Beam size (default: the config's; 1 = greedy).
    #[arg(long)]
    beam: Option<usize>,
    /// Sample instead of searching, at this temperature.
    #[arg(long, conflicts_with = "beam")]
    temperature: Option<f32>,
    /// With --temperature: keep only the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// With --temperature: nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// With --temperature: sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: TranslateArgs) -> Result<()> {
    args.common.apply()?;
    let m = TranslationModel::load(&args.model)?;
    let sentences = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<Vec<String>>>()
            .map_err(|e| Error::Invalid {
                op: "translate",
                detail: format!("cannot read standard input: {e}"),
            })?
    } else {
        args.texts
    };
    let strategy = match args.temperature {
        Some(temperature) => Strategy::Sample(SamplingOptions {
            temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            repeat_penalty: 1.0,
            repeat_last_n: 0,
            seed: args.seed,
        }),
        None => m.config.decode.strategy(args.beam.unwrap_or(m.config.decode.beam))?,
    };
    // Blank lines stay blank (`translate` keeps them so).
    let translations = m.translate(&sentences, &strategy, &m.config.decode.options())?;
    if args.common.json {
        let pairs: Vec<serde_json::Value> = sentences
            .iter()
            .zip(&translations)
            .map(|(s, t)| serde_json::json!({"text": s, "translation": t}))
            .collect();
        return print_json(&pairs);
    }
    for t in translations {
        print_line(&t)?;
    }
    Ok(())
}
