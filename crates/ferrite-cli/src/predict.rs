//! `ferrite predict RUN_DIR --input FILE.csv`: predictions for each row (in the target's units or
//! class ids); image runs also take an image file or a directory of images (sorted by name).

use clap::Args;
use ferrite::train::run::predict_run;
use ferrite::Result;
use std::path::PathBuf;

#[derive(Args)]
pub struct PredictArgs {
    /// A run directory written by `ferrite train`.
    run_dir: PathBuf,
    /// CSV with the run's feature columns (other columns are ignored), or for image runs an image
    /// file or a directory of images.
    #[arg(long)]
    input: PathBuf,
    /// Print a JSON array instead of one value per line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let preds = predict_run(&args.run_dir, &args.input)?;
    if args.json {
        println!("{}", serde_json::to_string(&preds).unwrap_or_default());
    } else {
        println!("prediction");
        for p in preds {
            println!("{p}");
        }
    }
    Ok(())
}
