//! `ferrite bench embed --model DIR --batch B --len T --threads N`: sentence-embedding inference
//! latency (encoder forward + pooling + normalization, no gradients), side by side with
//! `tools/bench_embed.py --engine torch|onnx` (same model, same synthetic input: `[CLS]`, T−2
//! random ids, `[SEP]`, no padding, seeded).
//!
//! Reported: the median and 90th-percentile time per call over at least 5 calls and ~2 s, texts/s,
//! and the process's peak resident memory.

use crate::bench::Report;
use crate::bench_transformer::peak_rss_mb;
use ferrite::models::{EncoderInput, SentenceEmbedder};
use ferrite::prelude::*;
use ferrite::Rng;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

pub fn run(model: &Path, batch: usize, len: usize, threads: usize, report: &mut Report) -> Result<()> {
    set_num_threads(threads);
    if len < 2 || batch == 0 {
        return Err(Error::Invalid {
            op: "bench embed",
            detail: "--len must be at least 2 ([CLS] and [SEP]) and --batch at least 1".into(),
        });
    }
    let m = SentenceEmbedder::load(model)?;
    let cls = m.tokenizer.token_to_id("[CLS]").unwrap_or(101);
    let sep = m.tokenizer.token_to_id("[SEP]").unwrap_or(102);
    // Ordinary word pieces: skip the first 1000 ids (special and unused tokens in BERT vocabularies).
    let vocab = m.model.encoder.config.vocab_size as u64;
    let first = if vocab > 2000 { 1000 } else { 0 };
    let mut rng = Rng::new(0);
    let ids: Vec<Vec<u32>> = (0..batch)
        .map(|_| {
            let body = (0..len - 2).map(|_| (first + rng.next_u64() % (vocab - first)) as u32);
            std::iter::once(cls).chain(body).chain(std::iter::once(sep)).collect()
        })
        .collect();
    let mask = vec![vec![1u32; len]; batch];
    let types = vec![vec![0u32; len]; batch];
    let input = EncoderInput::from_rows(&ids, &mask, Some(&types))?;
    for _ in 0..3 {
        m.embed_input(&input)?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || start.elapsed().as_secs_f64() < 2.0 {
        let t = Instant::now();
        m.embed_input(&input)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    let rss = peak_rss_mb().unwrap_or(f64::NAN);
    let round = |x: f64| (x * 1e3).round() / 1e3;
    report.emit(
                json!({"bench": "embed", "engine": "ferrite", "batch": batch, "len": len, "threads": threads,
               "ms": round(median), "p90_ms": round(p90), "texts_per_s": round(batch as f64 * 1e3 / median),
               "peak_rss_mb": rss.round(), "calls": times.len()}),
        format!(
            "embed batch {batch} × {len} tokens, threads={threads}: {median:.2} ms median (p90 {p90:.2}), {:.1} texts/s, peak RSS {rss:.0} MiB",
            batch as f64 * 1e3 / median
        ),
    )?;
    Ok(())
}
