//! `ferrite predict --model RUN --input FILE.csv`: predictions for each row (in the target's
//! units or class ids); image runs also take an image file or a directory of images (sorted by
//! name).

use crate::common::{print_json, print_line, Common};
use clap::Args;
use ferrite::train::run::predict_run;
use ferrite::Result;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite predict --model runs/mlp --input data/diabetes.csv
  ferrite predict --model runs/digits --input digit.png --json")]
pub struct PredictArgs {
    /// A run directory written by `ferrite train`.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// CSV with the run's feature columns (other columns are ignored), or for image runs an image
    /// file or a directory of images.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: PredictArgs) -> Result<()> {
    args.common.apply()?;
    let preds = predict_run(&args.model, &args.input)?;
    if args.common.json {
        return print_json(&preds);
    }
    print_line("prediction")?;
    for p in preds {
        print_line(&p.to_string())?;
    }
    Ok(())
}
