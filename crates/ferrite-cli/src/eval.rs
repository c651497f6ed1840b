//! `ferrite eval RUN_DIR`: test metrics of a saved run, as one JSON object. Regression and
//! classification runs report their test-split metrics; translation runs report BLEU and chrF on
//! their test split or on `--data pairs.tsv`.

use clap::Args;
use ferrite::train::config::RunKind;
use ferrite::train::run::eval_run;
use ferrite::train::seq2seq::eval_translation;
use ferrite::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory written by `ferrite train`.
    run_dir: PathBuf,
    /// Translation runs: score these `source<TAB>target` pairs instead of the run's test split.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Translation runs: beam size (default: the config's; 1 = greedy).
    #[arg(long)]
    beam: Option<usize>,
    /// Print JSON (the only format; accepted for symmetry with other commands).
    #[arg(long)]
    json: bool,
}

pub fn run(args: EvalArgs) -> Result<()> {
    if RunKind::of_run_dir(&args.run_dir)? == RunKind::Translate {
        let s = eval_translation(&args.run_dir, args.data.as_deref(), args.beam)?;
        println!("{}", serde_json::to_string(&s).unwrap_or_default());
        return Ok(());
    }
    if args.data.is_some() || args.beam.is_some() {
        return Err(Error::Invalid {
            op: "eval",
            detail: format!(
                "{} is not a translation run: --data and --beam do not apply",
                args.run_dir.display()
            ),
        });
    }
    let m = eval_run(&args.run_dir)?;
    println!("{}", serde_json::to_string(&m).unwrap_or_default());
    Ok(())
}
