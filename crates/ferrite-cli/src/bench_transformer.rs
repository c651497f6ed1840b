//! `ferrite bench transformer-step`: one Transformer training step (forward, label-smoothed loss,
//! backward, AdamW), side by side with `tools/bench_torch.py transformer-step` (same model: shared
//! embeddings and tied output, sinusoidal positions, post-LN, ReLU, dropout 0.1; same data shape:
//! random ids, no padding; same optimizer settings).
//!
//! Reported: the median step time over at least 10 steps (after 3 warm-up steps), tokens/s
//! (source + target tokens per second) and the process's peak resident memory.

use crate::bench::Report;
use clap::Args;
use ferrite::models::{Positional, Seq2SeqBatch, Transformer, TransformerConfig};
use ferrite::prelude::*;
use ferrite::Rng;
use serde_json::json;
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct StepArgs {
    #[arg(long, default_value_t = 256)]
    d_model: usize,
    #[arg(long, default_value_t = 8)]
    heads: usize,
    /// Encoder layers and decoder layers (each).
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[arg(long, default_value_t = 1024)]
    ffn: usize,
    /// Batch size (transformer-step, embed).
    #[arg(long, default_value_t = 32)]
    pub(crate) batch: usize,
    /// Source and target length (transformer-step); tokens per text (embed).
    #[arg(long, default_value_t = 32)]
    pub(crate) len: usize,
    #[arg(long, default_value_t = 1000)]
    vocab: usize,
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn run(a: &StepArgs, threads: usize, report: &mut Report) -> Result<()> {
    set_num_threads(threads);
    manual_seed(0);
    let cfg = TransformerConfig {
        src_vocab: a.vocab,
        tgt_vocab: a.vocab,
        d_model: a.d_model,
        heads: a.heads,
        encoder_layers: a.layers,
        decoder_layers: a.layers,
        ffn: a.ffn,
        dropout: 0.1,
        activation: Activation::Relu,
        norm_first: false,
        positional: Positional::Sinusoidal,
        max_positions: a.len.max(1),
        share_embeddings: true,
        tie_output: true,
    };
    let vars = VarMap::new();
    let model = Transformer::new(&VarBuilder::new(&vars, 0), &cfg)?;
    let params = vars.vars();
    let mut rng = Rng::new(1);
    let mut ids = || -> Vec<u32> {
        (0..a.len)
            .map(|_| 4 + rng.below(a.vocab.saturating_sub(4).max(1)) as u32)
            .collect()
    };
    let rows: Vec<(Vec<u32>, Vec<u32>, Vec<u32>)> = (0..a.batch).map(|_| (ids(), ids(), ids())).collect();
    let ex: Vec<(&[u32], &[u32], &[u32])> = rows.iter().map(|(s, i, o)| (&s[..], &i[..], &o[..])).collect();
    let batch = Seq2SeqBatch::new(&ex)?;
    let mut opt = Adam::adamw(1e-4, 0.01);
    opt.beta2 = 0.98;
    opt.eps = 1e-9;
    let mut step = || -> Result<f64> {
        let t = Instant::now();
        let loss = model.loss(&batch, 0.1, true)?;
        let grads = loss.backward()?;
        opt.step(&params, &grads)?;
        loss.item()?;
        Ok(t.elapsed().as_secs_f64())
    };
    for _ in 0..3 {
        step()?;
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 10 || started.elapsed().as_secs_f64() < 5.0 {
        times.push(step()?);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let tokens_per_s = (a.batch * 2 * a.len) as f64 / median;
    let rss = peak_rss_mb().unwrap_or(f64::NAN);
    report.emit(
        json!({"bench": "transformer-step", "impl": "ferrite", "threads": threads, "d_model": a.d_model,
               "heads": a.heads, "layers": a.layers, "ffn": a.ffn, "batch": a.batch, "len": a.len, "vocab": a.vocab,
               "step_ms": (median * 1e5).round() / 1e2, "tokens_per_s": tokens_per_s.round(),
               "peak_rss_mb": rss.round(), "steps": times.len()}),
        format!(
            "transformer step (d {} h {} layers {}+{} ffn {} batch {} len {} vocab {}) threads={threads}: \
             {:.1} ms median, {:.0} tokens/s, peak RSS {:.0} MiB",
            a.d_model,
            a.heads,
            a.layers,
            a.layers,
            a.ffn,
            a.batch,
            a.len,
            a.vocab,
            median * 1e3,
            tokens_per_s,
            rss
        ),
    )?;
    Ok(())
}
