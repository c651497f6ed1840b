//! Training progress: an indicatif bar on a terminal, plain lines otherwise (logs, CI).
//!
//! Layer: train.

use crate::history::Logs;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub(crate) struct Progress {
    verbose: bool,
    tty: bool,
    epochs: usize,
    bar: Option<ProgressBar>,
}

fn summary(logs: &Logs) -> String {
    logs.iter()
        .filter(|(k, _)| k.as_str() != "seconds" && k.as_str() != "lr")
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(" - ")
}

impl Progress {
    pub(crate) fn new(verbose: bool, epochs: usize) -> Self {
        Progress {
            verbose,
            tty: std::io::stderr().is_terminal(),
            epochs,
            bar: None,
        }
    }

    pub(crate) fn start_epoch(&mut self, epoch: usize, batches: usize) {
        if self.verbose && self.tty {
            let bar = ProgressBar::new(batches as u64);
            let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("{}/{}", epoch + 1, self.epochs));
            self.bar = Some(bar);
        }
    }

    pub(crate) fn batch(&mut self, running_loss: f64) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if b.position() % 8 == 0 {
                b.set_message(format!("loss {running_loss:.4}"));
            }
        }
    }

    pub(crate) fn end_epoch(&mut self, epoch: usize, logs: &Logs) {
        let secs = logs.get("seconds").copied().unwrap_or(0.0);
        if let Some(b) = self.bar.take() {
            b.finish_with_message(format!("{} ({:.0} ms)", summary(logs), secs * 1e3));
        } else if self.verbose {
            eprintln!(
                "epoch {}/{} - {} ({:.1} ms)",
                epoch + 1,
                self.epochs,
                summary(logs),
                secs * 1e3
            );
        }
    }
}
