//! `ferrite eval --model RUN`: test metrics of a saved run. Regression and classification runs
//! report their test-split metrics; translation runs report BLEU and chrF on their test split or
//! on `--input pairs.tsv`.

use crate::common::{print_json, print_line, Common};
use clap::Args;
use ferrite::train::config::RunKind;
use ferrite::train::run::eval_run;
use ferrite::train::seq2seq::eval_translation;
use ferrite::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite eval --model runs/mlp --json
  ferrite eval --model runs/en-fr --input pairs.tsv --beam 1")]
pub struct EvalArgs {
    /// A run directory written by `ferrite train`.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// Translation runs: score these `source<TAB>target` pairs instead of the run's test split.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Translation runs: beam size (default: the config's; 1 = greedy).
    #[arg(long)]
    beam: Option<usize>,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: EvalArgs) -> Result<()> {
    args.common.apply()?;
    let metrics: serde_json::Value = if RunKind::of_run_dir(&args.model)? == RunKind::Translate {
        serde_json::to_value(eval_translation(&args.model, args.input.as_deref(), args.beam)?)
    } else {
        if args.input.is_some() || args.beam.is_some() {
            return Err(Error::Invalid {
                op: "eval",
                detail: format!(
                    "{} is not a translation run: --input and --beam do not apply",
                    args.model.display()
                ),
            });
        }
        serde_json::to_value(eval_run(&args.model)?)
    }
    .map_err(|e| Error::Invalid {
        op: "eval",
        detail: e.to_string(),
    })?;
    if args.common.json {
        return print_json(&metrics);
    }
    if let Some(m) = metrics.as_object() {
        for (k, v) in m {
            print_line(&format!("{k}: {v}"))?;
        }
    }
    Ok(())
}
