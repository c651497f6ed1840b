//! Training progress, one way for every model: an indicatif bar per epoch on a terminal (batches,
//! running loss, learning rate, throughput), one line per evaluation otherwise (logs, CI), and
//! nothing at all when quiet (`--json`).
//!
//! Layer: train. Everything goes to stderr, so stdout stays for results.

use crate::history::Logs;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub(crate) struct Progress {
    verbose: bool,
    tty: bool,
    /// Epochs planned (`None`: until a step or time budget ends the run).
    epochs: Option<usize>,
    bar: Option<ProgressBar>,
}

/// Logs without the bookkeeping keys, as `key value - key value`.
fn summary(logs: &Logs) -> String {
    logs.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "seconds" | "lr" | "epoch" | "step"))
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(" - ")
}

impl Progress {
    pub(crate) fn new(verbose: bool, epochs: usize) -> Self {
        Progress {
            verbose,
            tty: std::io::stderr().is_terminal(),
            epochs: (epochs != usize::MAX).then_some(epochs),
            bar: None,
        }
    }

    fn epoch_label(&self, epoch: usize) -> String {
        match self.epochs {
            Some(n) => format!("{}/{n}", epoch + 1),
            None => format!("{}", epoch + 1),
        }
    }

    /// A bar over `batches` (or a spinner when the count is unknown).
    pub(crate) fn start_epoch(&mut self, epoch: usize, batches: Option<usize>) {
        if !(self.verbose && self.tty) {
            return;
        }
        let bar = match batches {
            Some(n) => ProgressBar::new(n as u64),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(self.epoch_label(epoch));
        self.bar = Some(bar);
    }

    /// One batch done: the running loss, the learning rate, and `rate` items (`unit`) per second.
    pub(crate) fn batch(&mut self, running_loss: f64, lr: f64, rate: f64, unit: &str) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if b.position() % 8 == 1 {
                b.set_message(format!("loss {running_loss:.4} · lr {lr:.2e} · {rate:.0} {unit}/s"));
            }
        }
    }

    /// An evaluation's logs: printed above the bar (mid-epoch) or closing it (epoch end).
    pub(crate) fn log(&mut self, logs: &Logs, epoch_end: bool) {
        let secs = logs.get("seconds").copied().unwrap_or(0.0);
        let step = logs.get("step").copied().unwrap_or(0.0);
        let epoch = logs.get("epoch").map_or(0, |&e| e as usize).saturating_sub(1);
        let line = format!(
            "epoch {} step {step:.0} - {} ({:.1} s)",
            self.epoch_label(epoch),
            summary(logs),
            secs
        );
        match &self.bar {
            Some(b) if epoch_end => {
                b.finish_with_message(format!("{} ({secs:.1} s)", summary(logs)));
                self.bar = None;
            }
            Some(b) => b.println(line),
            None if self.verbose => eprintln!("{line}"),
            None => {}
        }
    }

    /// Clears a bar left by a run that ended mid-epoch.
    pub(crate) fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
