//! The `ferrite` command-line tool: one file per subcommand.

mod bench;
mod bench_mlp;
mod bench_transformer;
mod data;
mod eval;
mod predict;
mod train;
mod translate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ferrite", version, about = "ferrite: deep learning in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model described by a TOML config.
    Train(train::TrainArgs),
    /// Evaluate a saved run on its test split.
    Eval(eval::EvalArgs),
    /// Predict with a saved run.
    Predict(predict::PredictArgs),
    /// Translate sentences with a trained translation run.
    Translate(translate::TranslateArgs),
    /// Prepare datasets (gettext translation pairs).
    Data(data::DataArgs),
    /// Micro-benchmarks (compare with `tools/bench_torch.py`).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Translate(args) => translate::run(args),
        Command::Data(args) => data::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
