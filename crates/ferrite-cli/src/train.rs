//! `ferrite train CONFIG.toml`: trains the model a config describes and writes a run directory.

use clap::Args;
use ferrite::train::config::RunKind;
use ferrite::train::run::{train_from_config, RunOptions};
use ferrite::train::seq2seq::{train_translation, TranslateRunOptions};
use ferrite::Error;
use ferrite::Result;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// The run's TOML config (see examples/).
    config: PathBuf,
    /// Run directory (default: a fresh one under runs/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Total number of epochs (overrides the config).
    #[arg(long)]
    epochs: Option<usize>,
    /// Training time budget in minutes (translation configs; overrides the config).
    #[arg(long)]
    minutes: Option<f64>,
    /// Step limit (translation configs; overrides the config).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long, requires = "out")]
    resume: bool,
    /// Print one final JSON line (run_dir, epochs, train_loss, val_loss, test metrics, seconds).
    #[arg(long)]
    json: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    if RunKind::of_config(&args.config)? == RunKind::Translate {
        return translate_run(args);
    }
    let opts = RunOptions {
        out: args.out,
        epochs: args.epochs,
        resume: args.resume,
        max_minutes: args.minutes,
        verbose: true,
    };
    let s = train_from_config(&args.config, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string(&s).unwrap_or_default());
    } else {
        println!("run directory: {}", s.run_dir);
        println!(
            "epochs: {} (best: {:?}), train loss {:.4}, val loss {:?}",
            s.epochs, s.best_epoch, s.train_loss, s.val_loss
        );
        for (k, v) in &s.test {
            println!("{k}: {v:.4}");
        }
        println!("training time: {:.2} s", s.seconds);
    }
    Ok(())
}

fn translate_run(args: TrainArgs) -> Result<()> {
    if args.resume || args.epochs.is_some() {
        return Err(Error::Invalid {
            op: "train",
            detail: "--resume and --epochs apply to epoch-based configs; translation runs use --minutes / --max-steps"
                .into(),
        });
    }
    let opts = TranslateRunOptions {
        out: args.out,
        minutes: args.minutes,
        max_steps: args.max_steps,
        verbose: true,
    };
    let s = train_translation(&args.config, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string(&s).unwrap_or_default());
    } else {
        println!("run directory: {}", s.run_dir);
        println!(
            "{} steps ({:.2} epochs) in {:.0} s, {:.0} tokens/s; best valid loss {:?}",
            s.training.steps, s.training.epochs, s.training.seconds, s.training.tokens_per_s, s.best_valid_loss
        );
        println!(
            "test ({} sentences, {}): BLEU {:.2}, chrF {:.2}",
            s.test.sentences, s.test.decode, s.test.bleu, s.test.chrf
        );
    }
    Ok(())
}
