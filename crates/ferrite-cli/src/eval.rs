//! `ferrite eval RUN_DIR`: test-split metrics of a saved run, as one JSON object.

use clap::Args;
use ferrite::train::run::eval_run;
use ferrite::Result;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory written by `ferrite train`.
    run_dir: PathBuf,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let m = eval_run(&args.run_dir)?;
    println!("{}", serde_json::to_string(&m).unwrap_or_default());
    Ok(())
}
