//! What every subcommand shares, so a flag means the same thing everywhere: `--threads` and
//! `--json` ([`Common`]), reading texts from arguments or standard input, and writing results
//! to standard output as text lines or one JSON document — where a failed write or a value that
//! cannot be serialized is an error, never a panic or an empty line.
//!
//! Layer: app.

use clap::Args;
use ferrite::{set_num_threads, Error, Result, MAX_THREADS};
use serde::Serialize;
use std::io::{BufRead, Write};

/// `--threads N` and `--json`, on every command that computes.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Kernel threads (default: FERRITE_NUM_THREADS, else every core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print one JSON document on standard output, and no progress drawing.
    #[arg(long)]
    pub json: bool,
}

impl Common {
    /// Applies `--threads`.
    ///
    /// # Errors
    /// `--threads 0` or above [`MAX_THREADS`].
    pub fn apply(&self) -> Result<()> {
        match self.threads {
            Some(n) if !(1..=MAX_THREADS).contains(&n) => Err(Error::Invalid {
                op: "--threads",
                detail: format!("{n} must be between 1 and {MAX_THREADS}"),
            }),
            Some(n) => {
                set_num_threads(n);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Whether progress should be drawn (never with `--json`).
    pub fn verbose(&self) -> bool {
        !self.json
    }
}

/// Parses a time budget in minutes (`--max-minutes`, `--max-audio-minutes`): a finite number
/// above 0. clap reports a failure naming the flag (exit code 2).
pub fn minutes(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(m) if m.is_finite() && m > 0.0 => Ok(m),
        Ok(_) => Err("must be a number of minutes above 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a share of the data or of the steps (`--valid-fraction`, `--test-fraction`,
/// `--warmup-frac`): a number in [0, 1).
pub fn fraction(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        Ok(_) => Err("must be a fraction in [0, 1)".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn write_error(e: std::io::Error) -> Error {
    Error::Invalid {
        op: "output",
        detail: format!("cannot write to standard output: {e}"),
    }
}

/// Writes `text` and a newline to standard output.
///
/// # Errors
/// A failed write (a full disk, a closed terminal); a closed pipe ends the process quietly
/// (SIGPIPE, see `main.rs`).
pub fn print_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(write_error)
}

/// Writes `text` without a newline and flushes (streamed generation).
///
/// # Errors
/// As [`print_line`].
pub fn print_piece(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    write!(out, "{text}").and_then(|()| out.flush()).map_err(write_error)
}

/// Writes `value` as one JSON document (one line) to standard output.
///
/// # Errors
/// A value that cannot be serialized, or a failed write.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|e| Error::Invalid {
        op: "output",
        detail: format!("cannot serialize the result as JSON: {e}"),
    })?;
    print_line(&text)
}

/// The texts given as arguments, or else the non-blank lines of standard input.
///
/// # Errors
/// An unreadable standard input.
pub fn texts_or_stdin(texts: Vec<String>) -> Result<Vec<String>> {
    if !texts.is_empty() {
        return Ok(texts);
    }
    std::io::stdin()
        .lock()
        .lines()
        .collect::<std::io::Result<Vec<String>>>()
        .map(|lines| lines.into_iter().filter(|l| !l.trim().is_empty()).collect())
        .map_err(|e| Error::Invalid {
            op: "input",
            detail: format!("cannot read standard input: {e}"),
        })
}
