//! The `ferrite` command-line tool: one file per subcommand, one grammar for all of them
//! (`common.rs`, docs/CLI.md): `--model` names the model (a run directory, a pretrained model
//! directory or file), `--input` a file to read, texts are positional (or lines of standard
//! input), `--out` what is written, `--max-minutes` a time budget, `--valid-fraction` /
//! `--test-fraction` the splits, `--seed`, `--threads` and `--json` (one JSON document on
//! standard output) mean the same on every command that has them.

#![deny(clippy::undocumented_unsafe_blocks)]

mod bench;
mod bench_conv;
mod bench_embed;
mod bench_llm;
mod bench_mlp;
mod bench_transformer;
mod common;
mod data;
mod embed;
mod eval;
mod explain;
mod fairness;
mod finetune;
mod generate;
mod predict;
mod privacy;
mod serve;
mod train;
mod transcribe;
mod translate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ferrite",
    version,
    about = "ferrite: deep learning in Rust",
    after_help = "Examples:\n  ferrite train examples/seed-mlp.toml --out runs/mlp\n  ferrite eval --model runs/mlp --json\n  ferrite generate --model .cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \"Once upon a time\"\n\nEvery command takes --json (one JSON document on stdout); see docs/CLI.md for the flags they share."
)]
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
    /// Explain a saved run's answer for one input (attributions and a picture).
    Explain(explain::ExplainArgs),
    /// Translate sentences with a trained translation run.
    Translate(translate::TranslateArgs),
    /// Prepare datasets (gettext translation pairs).
    Data(data::DataArgs),
    /// Micro-benchmarks (compare with `tools/bench_torch.py`).
    Bench(bench::BenchArgs),
    /// Sentence embeddings with a pretrained model.
    Embed(embed::EmbedArgs),
    /// Cosine similarity of texts' embeddings.
    Similarity(embed::SimilarityArgs),
    /// Fine-tune a pretrained encoder on labelled texts.
    Finetune(finetune::FinetuneArgs),
    /// Classify texts with a fine-tuned model.
    Classify(finetune::ClassifyArgs),
    /// Continue a prompt with a GGUF language model (streamed).
    Generate(generate::GenerateArgs),
    /// Chat with a GGUF instruct model (ChatML), one user line per turn.
    Chat(generate::ChatArgs),
    /// Speech to text with a Whisper model (CTranslate2 format).
    Transcribe(transcribe::TranscribeArgs),
    /// Serve models over HTTP: Open Inference Protocol v2 (KServe/Triton) and OpenAI-compatible.
    Serve(serve::ServeArgs),
    /// Differential privacy accounting: ε spent by DP-SGD, or the noise for a target ε.
    Privacy(privacy::PrivacyArgs),
    /// Fairness: per-group rates and disparities of a classifier's predictions.
    Fairness(fairness::FairnessArgs),
}

/// Keeps freed tensor buffers in the process heap instead of returning them to the OS.
///
/// glibc serves allocations above its mmap threshold (128 KiB at first) with fresh `mmap`s and
/// trims the heap top eagerly, so a training step that frees and reallocates the same activation
/// buffers pays a page fault per 4 KiB every time (measured: ~5% of a Transformer step in kernel
/// page-fault handling). Raising the mmap threshold to 32 MiB and the trim threshold to 512 MiB lets
/// those buffers be reused. Only the
/// binary does this: a library must not change its host's allocator policy.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    unsafe extern "C" {
        fn mallopt(param: std::os::raw::c_int, value: std::os::raw::c_int) -> std::os::raw::c_int;
    }
    const M_TRIM_THRESHOLD: std::os::raw::c_int = -1;
    const M_MMAP_THRESHOLD: std::os::raw::c_int = -3;
    const MMAP_LIMIT: std::os::raw::c_int = 32 << 20;
    // Freed memory at the top of the heap is kept up to 512 MB: a BERT batch frees and reallocates
    // ~25 MB attention and FFN buffers every layer, and returning them to the OS made every
    // reallocation page-fault fresh zeroed pages (a tenth of a batch-32 forward pass, measured).
    const TRIM_LIMIT: std::os::raw::c_int = 512 << 20;
    // SAFETY: mallopt only adjusts glibc's allocator parameters; called before any other thread exists.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MMAP_LIMIT);
        mallopt(M_TRIM_THRESHOLD, TRIM_LIMIT);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Lets a closed output pipe end the process quietly, as it ends `cat` or `grep`
/// (`ferrite bench matmul --json | head -1`). Rust ignores SIGPIPE, so the next `println!` to the
/// closed pipe would panic instead.
#[cfg(unix)]
fn quiet_broken_pipe() {
    unsafe extern "C" {
        fn signal(signum: std::os::raw::c_int, handler: usize) -> usize;
    }
    const SIGPIPE: std::os::raw::c_int = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: restores the default action for one signal, before any other thread exists.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn quiet_broken_pipe() {}

/// The last line of defence: a panic that a check missed becomes one line on stderr that says it
/// is a bug and asks for a report, instead of a backtrace dump (exit status 101, as any panic).
/// `RUST_BACKTRACE=1` still adds the backtrace for whoever debugs it. Only the first panic prints:
/// a panic in a worker thread resurfaces in the thread that joins it.
fn report_panics_as_bugs() {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        // A panic inside a dependency that ferrite catches and reports as an error naming the file.
        if ferrite::core::error::panic_is_being_caught() {
            return;
        }
        if REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let what = what.lines().next().unwrap_or_default().to_string();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error ({what}{place}); this is a bug in ferrite, please report it with the \
             command that caused it (set RUST_BACKTRACE=1 for details)"
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
    }));
}

fn main() -> ExitCode {
    keep_freed_memory();
    quiet_broken_pipe();
    report_panics_as_bugs();
    // Lets the CLI tests check the hook above on a real panic (there is no known input that panics).
    if std::env::var_os("FERRITE_PANIC_SELF_TEST").is_some() {
        panic!("panic self-test requested by FERRITE_PANIC_SELF_TEST");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Translate(args) => translate::run(args),
        Command::Data(args) => data::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Embed(args) => embed::run_embed(args),
        Command::Similarity(args) => embed::run_similarity(args),
        Command::Finetune(args) => finetune::run_finetune(args),
        Command::Classify(args) => finetune::run_classify(args),
        Command::Generate(args) => generate::run_generate(args),
        Command::Chat(args) => generate::run_chat(args),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Privacy(args) => privacy::run(args),
        Command::Fairness(args) => fairness::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
