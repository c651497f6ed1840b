//! `ferrite generate --model FILE.gguf --prompt "…"` (text continuation, streamed) and
//! `ferrite chat --model FILE.gguf` (an interactive ChatML conversation), both with sampling
//! options and `--json` output holding ids, text and timing.

use clap::Args;
use ferrite::models::generation::{chatml_prompt, Message};
use ferrite::models::{Generation, LanguageModel, SamplingOptions, Strategy};
use ferrite::{set_num_threads, Error, Result};
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Args)]
pub struct SamplingArgs {
    /// A GGUF model file (e.g. .cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    model: PathBuf,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Repetition penalty over the last 64 tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Kernel threads (default: FERRITE_NUM_THREADS or all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object (ids, text, timing) instead of streaming text.
    #[arg(long)]
    json: bool,
}

impl SamplingArgs {
    /// Sampling with these options; each call restarts the seeded generator.
    fn strategy(&self) -> Strategy {
        Strategy::Sample(SamplingOptions {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: 64,
            seed: self.seed,
        })
    }

    fn open(&self) -> Result<LanguageModel> {
        if let Some(t) = self.threads {
            set_num_threads(t);
        }
        LanguageModel::open(&self.model)
    }
}

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    sampling: SamplingArgs,
    /// The text to continue.
    #[arg(long)]
    prompt: String,
}

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    sampling: SamplingArgs,
    /// System message (default: the model's own, from its chat template).
    #[arg(long)]
    system: Option<String>,
}

fn flush() {
    let _ = std::io::stdout().flush();
}

/// Generates after `ids`, streaming the text (then a newline) or, with `--json`, printing the
/// whole result as one JSON line.
fn run_one(m: &LanguageModel, ids: &[u32], s: &SamplingArgs) -> Result<Generation> {
    let stream = !s.json;
    let g = m.generate(ids, s.max_tokens, &s.strategy(), |piece| {
        if stream {
            print!("{piece}");
            flush();
        }
    })?;
    if s.json {
        println!("{}", serde_json::to_string(&g).unwrap_or_default());
    } else {
        println!();
    }
    Ok(g)
}

pub fn run_generate(args: GenerateArgs) -> Result<()> {
    let s = &args.sampling;
    let m = s.open()?;
    let ids = m.encode(&args.prompt)?;
    if !s.json {
        print!("{}", args.prompt);
        flush();
    }
    let g = run_one(&m, &ids, s)?;
    if !s.json {
        eprintln!(
            "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, stop: {}]",
            g.prompt_ids.len(),
            g.prompt_tokens_per_s,
            g.ids.len(),
            g.generated_tokens_per_s,
            g.stop
        );
    }
    Ok(())
}

/// Reads user turns from standard input (one line each; an empty line or EOF ends the chat)
/// and answers each with the whole conversation as the prompt.
pub fn run_chat(args: ChatArgs) -> Result<()> {
    let s = &args.sampling;
    let m = s.open()?;
    let system = match &args.system {
        Some(sys) => Some(sys.clone()),
        None => m.default_system()?,
    };
    let mut messages: Vec<Message> = Vec::new();
    if let Some(sys) = &args.system {
        messages.push(Message {
            role: "system".into(),
            content: sys.clone(),
        });
    }
    let stdin = std::io::stdin();
    loop {
        if !s.json {
            print!("> ");
            flush();
        }
        let mut line = String::new();
        let n = stdin.lock().read_line(&mut line).map_err(|e| Error::Invalid {
            op: "chat",
            detail: format!("cannot read standard input: {e}"),
        })?;
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        if n == 0 || line.is_empty() {
            return Ok(());
        }
        messages.push(Message {
            role: "user".into(),
            content: line,
        });
        let prompt = chatml_prompt(&messages, system.as_deref());
        let ids = m.encode(&prompt)?;
        let g = run_one(&m, &ids, s)?;
        messages.push(Message {
            role: "assistant".into(),
            content: g.text.trim().to_string(),
        });
    }
}
