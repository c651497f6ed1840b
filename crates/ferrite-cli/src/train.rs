//! `ferrite train CONFIG.toml`: trains the model a config describes (its top-level `task` says
//! which kind of run) and writes a run directory.

use crate::common::{minutes, print_json, print_line, Common};
use clap::Args;
use ferrite::train::config::RunKind;
use ferrite::train::run::{train_from_config, RunOptions};
use ferrite::train::seq2seq::{train_translation, TranslateRunOptions};
use ferrite::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite train examples/seed-mlp.toml --out runs/mlp --json
  ferrite train examples/seed-mlp.toml --out runs/mlp --epochs 5 --resume
  ferrite train examples/translate-en-fr.toml --out runs/en-fr --max-minutes 25")]
pub struct TrainArgs {
    /// The run's TOML config (see examples/); its `task` is regression, classification or translate.
    config: PathBuf,
    /// Run directory (default: a fresh one under runs/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Total number of epochs, counting resumed ones (overrides the config; not for translation).
    #[arg(long)]
    epochs: Option<usize>,
    /// Training time budget in minutes (overrides the config).
    #[arg(long, value_name = "M", value_parser = minutes)]
    max_minutes: Option<f64>,
    /// Optimizer step limit (translation; overrides the config).
    #[arg(long, value_name = "N")]
    max_steps: Option<usize>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long, requires = "out")]
    resume: bool,
    /// Seed for the split, initialization, shuffling and dropout (overrides the config).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: TrainArgs) -> Result<()> {
    args.common.apply()?;
    if RunKind::of_config(&args.config)? == RunKind::Translate {
        return translate_run(args);
    }
    if args.max_steps.is_some() {
        return Err(Error::Invalid {
            op: "train",
            detail: "--max-steps applies to translation configs; epoch-based runs use --epochs or --max-minutes".into(),
        });
    }
    let opts = RunOptions {
        out: args.out,
        epochs: args.epochs,
        resume: args.resume,
        max_minutes: args.max_minutes,
        seed: args.seed,
        threads: args.common.threads,
        verbose: args.common.verbose(),
    };
    let s = train_from_config(&args.config, &opts)?;
    if args.common.json {
        return print_json(&s);
    }
    print_line(&format!("run directory: {}", s.run_dir))?;
    print_line(&format!(
        "epochs: {} (best: {:?}), train loss {:.4}, val loss {:?}",
        s.epochs, s.best_epoch, s.train_loss, s.val_loss
    ))?;
    for (k, v) in &s.test {
        print_line(&format!("{k}: {v:.4}"))?;
    }
    if let Some(p) = &s.privacy {
        print_line(&format!("privacy: {p}"))?;
    }
    print_line(&format!("training time: {:.2} s", s.seconds))
}

fn translate_run(args: TrainArgs) -> Result<()> {
    if args.resume || args.epochs.is_some() {
        return Err(Error::Invalid {
            op: "train",
            detail:
                "--resume and --epochs apply to epoch-based configs; translation runs use --max-minutes / --max-steps"
                    .into(),
        });
    }
    let opts = TranslateRunOptions {
        out: args.out,
        minutes: args.max_minutes,
        max_steps: args.max_steps,
        seed: args.seed,
        threads: args.common.threads,
        verbose: args.common.verbose(),
    };
    let s = train_translation(&args.config, &opts)?;
    if args.common.json {
        return print_json(&s);
    }
    print_line(&format!("run directory: {}", s.run_dir))?;
    print_line(&format!(
        "{} steps ({:.2} epochs) in {:.0} s, {:.0} tokens/s; best valid loss {:?}",
        s.training.steps, s.training.epochs, s.training.seconds, s.training.tokens_per_s, s.best_valid_loss
    ))?;
    print_line(&format!(
        "test ({} sentences, {}): BLEU {:.2}, chrF {:.2}",
        s.test.sentences, s.test.decode, s.test.bleu, s.test.chrf
    ))
}
