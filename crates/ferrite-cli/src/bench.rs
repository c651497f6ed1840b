//! `ferrite bench`: micro-benchmarks whose JSON records match `tools/bench_torch.py`'s, so the two
//! can be run side by side on the same machine and compared as ratios (`tools/compare.py`).
//!
//! Timing method (same as the PyTorch script): warm up, then time batches of calls lasting about
//! 1 ms each until at least 0.3 s and 5 batches have run; report the median per-call time.

use crate::common::{print_json, print_line};
use clap::{Args, ValueEnum};
use ferrite::prelude::*;
use ferrite::MAX_THREADS;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Copy, ValueEnum)]
pub enum Which {
    /// C = A·B for square sizes 64–2048 and training shapes.
    Matmul,
    /// A tracked 64-element add plus its backward (framework overhead per op).
    OpOverhead,
    /// Training-loop time of the seed MLP on diabetes (batch 32) and on 100k synthetic rows (batch 1024).
    Mlp,
    /// One Transformer training step (forward + backward + AdamW); sizes from the flags below.
    TransformerStep,
    /// Sentence-embedding inference with a pretrained model (--model, --batch, --len).
    Embed,
    /// A 3×3, 64→64 convolution on [32, 64, 32, 32]: forward, and forward + backward.
    Conv2d,
    /// GGUF language model: prompt processing (128 tokens) and generation (64) tokens/s (--model).
    Llm,
    /// Whisper transcription time of one WAV (--model, --input).
    Whisper,
}

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite bench matmul --threads 1,2 --json
  ferrite bench embed --model .cache/assets/all-MiniLM-L6-v2 --batch 1 --len 16 --threads 1
  ferrite bench whisper --input fox.wav --json")]
pub struct BenchArgs {
    which: Which,
    /// Print one JSON document (an array of results) instead of text lines.
    #[arg(long)]
    json: bool,
    /// Kernel threads: a comma-separated list runs the benchmark once per count.
    #[arg(long, default_value = "1,2", value_name = "N[,N…]")]
    threads: String,
    /// The model: a pretrained directory (embed; default MiniLM), a GGUF file (llm; default
    /// SmolLM2) or a Whisper directory (whisper; default tiny.en), from scripts/fetch-assets.sh.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// The data: the diabetes CSV (mlp; default data/diabetes.csv) or a 16-bit PCM WAV file
    /// (whisper; required).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    #[command(flatten)]
    step: crate::bench_transformer::StepArgs,
}

/// Results as they are measured: text lines now, or one JSON array at the end.
pub(crate) struct Report {
    json: bool,
    rows: Vec<serde_json::Value>,
}

impl Report {
    /// One result: `v` for `--json`, `human` otherwise.
    pub(crate) fn emit(&mut self, v: serde_json::Value, human: String) -> Result<()> {
        if self.json {
            self.rows.push(v);
            Ok(())
        } else {
            print_line(&human)
        }
    }

    fn finish(self) -> Result<()> {
        if self.json {
            print_json(&self.rows)?;
        }
        Ok(())
    }
}

const SQUARE: [usize; 6] = [64, 128, 256, 512, 1024, 2048];
const TRAINING: [(usize, usize, usize); 3] = [(32, 64, 64), (1024, 256, 256), (1024, 256, 1024)];

/// Median seconds per call of `f`.
pub(crate) fn time_per_call(mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    let mut n = 0u32;
    while n < 3 || t0.elapsed().as_secs_f64() < 0.05 {
        f();
        n += 1;
    }
    let est = t0.elapsed().as_secs_f64() / n as f64;
    let batch = ((1e-3 / est.max(1e-9)) as usize).max(1);
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || start.elapsed().as_secs_f64() < 0.3 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed().as_secs_f64() / batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        0.5 * (samples[mid - 1] + samples[mid])
    }
}

/// `--threads 1,2,4`: each count in 1..=[`MAX_THREADS`], as `--threads` is on every command.
fn parse_threads(s: &str) -> Result<Vec<usize>> {
    let bad = |detail: String| Error::Invalid {
        op: "--threads",
        detail,
    };
    let counts = s
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| match t.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
            Ok(n) => Err(bad(format!("{n} must be between 1 and {MAX_THREADS}"))),
            Err(_) => Err(bad(format!("'{t}' is not a thread count"))),
        })
        .collect::<Result<Vec<_>>>()?;
    if counts.is_empty() {
        return Err(bad("give at least one thread count (e.g. 1,2)".into()));
    }
    Ok(counts)
}

pub fn run(args: BenchArgs) -> Result<()> {
    let threads = parse_threads(&args.threads)?;
    let mut report = Report {
        json: args.json,
        rows: Vec::new(),
    };
    let asset = |default: &str| -> PathBuf { args.model.clone().unwrap_or_else(|| PathBuf::from(default)) };
    match args.which {
        Which::Matmul => matmul(&threads, &mut report)?,
        Which::OpOverhead => op_overhead(&mut report)?,
        Which::Mlp => {
            let data = args.input.clone().unwrap_or_else(|| PathBuf::from("data/diabetes.csv"));
            crate::bench_mlp::run(&data, &mut report)?
        }
        Which::TransformerStep => {
            for t in threads {
                crate::bench_transformer::run(&args.step, t, &mut report)?;
            }
        }
        Which::Conv2d => crate::bench_conv::run(&threads, &mut report)?,
        Which::Llm => crate::bench_llm::llm(
            &asset(".cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            &threads,
            &mut report,
        )?,
        Which::Whisper => {
            let audio = args.input.clone().ok_or_else(|| Error::Invalid {
                op: "bench whisper",
                detail:
                    "give --input FILE.wav (e.g. espeak-ng -w fox.wav \"The quick brown fox jumps over the lazy dog.\")"
                        .into(),
            })?;
            crate::bench_llm::whisper(&asset(".cache/assets/whisper-tiny-en"), &audio, &threads, &mut report)?
        }
        Which::Embed => {
            for t in threads {
                let model = asset(".cache/assets/all-MiniLM-L6-v2");
                crate::bench_embed::run(&model, args.step.batch, args.step.len, t, &mut report)?;
            }
        }
    }
    report.finish()
}

fn matmul(threads: &[usize], report: &mut Report) -> Result<()> {
    manual_seed(0);
    let shapes: Vec<(usize, usize, usize)> = SQUARE.iter().map(|&s| (s, s, s)).chain(TRAINING).collect();
    for &t in threads {
        set_num_threads(t);
        for &(m, k, n) in &shapes {
            let a = Tensor::randn([m, k])?;
            let b = Tensor::randn([k, n])?;
            let mut err = None;
            let sec = time_per_call(|| {
                if let Err(e) = a.matmul(&b) {
                    err = Some(e);
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            let gflops = 2.0 * (m * k * n) as f64 / sec / 1e9;
            report.emit(
                json!({"bench": "matmul", "impl": "ferrite", "m": m, "k": k, "n": n, "threads": t,
                       "gflops": (gflops * 100.0).round() / 100.0, "us": (sec * 1e9).round() / 1e3}),
                format!(
                    "matmul {m}x{k}x{n} threads={t}: {gflops:.1} GFLOP/s ({:.1} µs)",
                    sec * 1e6
                ),
            )?;
        }
    }
    Ok(())
}

fn op_overhead(report: &mut Report) -> Result<()> {
    set_num_threads(1);
    manual_seed(0);
    let a = Tensor::randn([64])?.requires_grad_(true);
    let b = Tensor::randn([64])?.requires_grad_(true);
    let g = Tensor::ones([64])?;
    let mut err = None;
    let backward = time_per_call(|| {
        let r = a.add(&b).and_then(|c| c.backward_with(&g));
        if let Err(e) = r {
            err = Some(e);
        }
    });
    let nograd = time_per_call(|| {
        let _guard = no_grad();
        if let Err(e) = a.add(&b) {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    report.emit(
        json!({"bench": "op-overhead", "impl": "ferrite", "elements": 64,
               "add_backward_us": (backward * 1e9).round() / 1e3, "add_nograd_us": (nograd * 1e9).round() / 1e3}),
        format!(
            "tracked add (64) + backward: {:.3} µs; add under no_grad: {:.3} µs",
            backward * 1e6,
            nograd * 1e6
        ),
    )?;
    Ok(())
}
