//! `ferrite train CONFIG.toml`: trains the model a config describes and writes a run directory.

use clap::Args;
use ferrite::train::run::{train_from_config, RunOptions};
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
    /// Continue the run in --out from its last checkpoint.
    #[arg(long, requires = "out")]
    resume: bool,
    /// Print one final JSON line (run_dir, epochs, train_loss, val_loss, test metrics, seconds).
    #[arg(long)]
    json: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let opts = RunOptions {
        out: args.out,
        epochs: args.epochs,
        resume: args.resume,
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
