//! `ferrite bench llm` and `ferrite bench whisper`: the numbers `tools/bench_llm.py` (llama.cpp's
//! `llama-bench`) and `tools/bench_whisper.py` (faster-whisper) print for the same files.
//!
//! LLM: prompt processing of 128 tokens from an empty cache and generation of 64 tokens one at a
//! time after a 9-token prompt (greedy), median of 3 runs after a warm-up, per thread count.
//! Whisper: transcription of one WAV, model load excluded, median of 3 after a warm-up.

use crate::bench::Report;
use crate::bench_transformer::peak_rss_mb;
use ferrite::models::{argmax, LanguageModel, Whisper};
use ferrite::{set_num_threads, Result};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn llm(model: &Path, threads: &[usize], report: &mut Report) -> Result<()> {
    let m = LanguageModel::open(model)?;
    let llama = &m.llama;
    let prompt: Vec<u32> = (0..128u32).map(|i| 1000 + (i * 7919) % 20_000).collect();
    let short = m.encode("Once upon a time, there was a little")?;
    for &t in threads {
        set_num_threads(t);
        let mut pp = Vec::new();
        let mut tg = Vec::new();
        for run in 0..4 {
            let mut cache = llama.new_cache();
            let start = Instant::now();
            llama.forward(&prompt, &mut cache)?;
            let p = start.elapsed().as_secs_f64();
            let mut cache = llama.new_cache();
            let mut logits = llama.forward(&short, &mut cache)?;
            let start = Instant::now();
            for _ in 0..64 {
                logits = llama.forward(&[argmax(&logits)], &mut cache)?;
            }
            let g = start.elapsed().as_secs_f64();
            if run > 0 {
                pp.push(p);
                tg.push(g);
            }
        }
        let (pp, tg) = (128.0 / median(pp), 64.0 / median(tg));
        let rss = peak_rss_mb().unwrap_or(f64::NAN);
        report.emit(
            json!({"bench": "llm", "impl": "ferrite", "threads": t, "prompt_tokens": 128,
                   "prompt_tokens_per_s": (pp * 10.0).round() / 10.0, "generated_tokens": 64,
                   "generated_tokens_per_s": (tg * 10.0).round() / 10.0, "peak_rss_mb": rss.round()}),
            format!("llm threads={t}: prompt {pp:.1} tok/s, generation {tg:.1} tok/s, peak RSS {rss:.0} MiB"),
        )?;
    }
    Ok(())
}

pub fn whisper(model: &Path, audio: &Path, threads: &[usize], report: &mut Report) -> Result<()> {
    let w = Whisper::load(model)?;
    for &t in threads {
        set_num_threads(t);
        let warm = w.transcribe_file(audio, 1)?;
        let mut runs = (0..3)
            .map(|_| w.transcribe_file(audio, 1))
            .collect::<Result<Vec<_>>>()?;
        let secs = median(runs.iter().map(|r| r.seconds).collect());
        let tr = runs.pop().unwrap_or(warm);
        let rss = peak_rss_mb().unwrap_or(f64::NAN);
        report.emit(
            json!({"bench": "whisper", "impl": "ferrite", "threads": t, "audio_seconds": tr.audio_seconds,
                   "seconds": (secs * 1e4).round() / 1e4, "text": tr.text, "peak_rss_mb": rss.round()}),
            format!(
                "whisper threads={t}: {secs:.3} s for {:.2} s of audio, peak RSS {rss:.0} MiB: {}",
                tr.audio_seconds, tr.text
            ),
        )?;
    }
    Ok(())
}
