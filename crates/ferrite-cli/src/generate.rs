//! `ferrite generate --model FILE.gguf "prompt"` (text continuation, streamed) and
//! `ferrite chat --model FILE.gguf` (a ChatML conversation, one user line per turn), both with
//! sampling options; `--json` prints ids, text and timing as one document.

use crate::common::{print_json, print_line, print_piece, texts_or_stdin, Common};
use clap::Args;
use ferrite::models::generation::{chatml_prompt, Message};
use ferrite::models::{Generation, LanguageModel, SamplingOptions, Strategy};
use ferrite::{Error, Result};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Args)]
pub struct SamplingArgs {
    /// A GGUF model file (e.g. .cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Tokens to generate at most.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Softmax temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Repetition penalty over the last 64 tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    common: Common,
}

impl SamplingArgs {
    /// Sampling with these options (temperature 0 is greedy after the repetition penalty).
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

    /// Applies `--threads` and opens the model, checking the options first: a bad value is
    /// reported before the model loads or any text is printed.
    fn open(&self) -> Result<LanguageModel> {
        self.common.apply()?;
        if let Strategy::Sample(options) = self.strategy() {
            options.validate()?;
        }
        let m = LanguageModel::open(&self.model)?;
        m.check_max_tokens(self.max_tokens)?;
        Ok(m)
    }

    /// Generates after `ids`, streaming the text unless `--json`.
    fn run(&self, m: &LanguageModel, ids: &[u32]) -> Result<Generation> {
        let stream = !self.common.json;
        let mut failed = None;
        let g = m.generate(ids, self.max_tokens, &self.strategy(), |piece| {
            if stream && failed.is_none() {
                failed = print_piece(piece).err();
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(g),
        }
    }
}

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite generate --model .cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \"Once upon a time, there was a little\" --max-tokens 24
  ferrite generate --model FILE.gguf \"…\" --temperature 0.8 --top-k 40 --top-p 0.95 --seed 1 --json")]
pub struct GenerateArgs {
    #[command(flatten)]
    sampling: SamplingArgs,
    /// The text to continue (default: standard input).
    prompt: Option<String>,
}

#[derive(Args)]
#[command(after_help = "Example:
  echo \"What is the capital of Germany?\" | ferrite chat --model .cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")]
pub struct ChatArgs {
    #[command(flatten)]
    sampling: SamplingArgs,
    /// System message (default: the model's own, from its chat template).
    #[arg(long)]
    system: Option<String>,
}

pub fn run_generate(args: GenerateArgs) -> Result<()> {
    let s = &args.sampling;
    let m = s.open()?;
    let prompt = match &args.prompt {
        Some(p) => p.clone(),
        None => texts_or_stdin(Vec::new())?.join("\n"),
    };
    let ids = m.encode(&prompt)?;
    if !s.common.json {
        print_piece(&prompt)?;
    }
    let g = s.run(&m, &ids)?;
    if s.common.json {
        return print_json(&g);
    }
    print_line("")?;
    eprintln!(
        "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, stop: {}]",
        g.prompt_ids.len(),
        g.prompt_tokens_per_s,
        g.ids.len(),
        g.generated_tokens_per_s,
        g.stop
    );
    Ok(())
}

/// Reads user turns from standard input (one line each; an empty line or EOF ends the chat)
/// and answers each with the whole conversation as the prompt. With `--json`, the conversation
/// and every turn's generation are printed as one document at the end.
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
    let mut turns = Vec::new();
    let stdin = std::io::stdin();
    loop {
        if !s.common.json {
            print_piece("> ")?;
        }
        let mut line = String::new();
        let n = stdin.lock().read_line(&mut line).map_err(|e| Error::Invalid {
            op: "chat",
            detail: format!("cannot read standard input: {e}"),
        })?;
        let line = line.trim_end_matches(['\n', '\r']).to_string();
        if n == 0 || line.is_empty() {
            break;
        }
        messages.push(Message {
            role: "user".into(),
            content: line,
        });
        let prompt = chatml_prompt(&messages, system.as_deref());
        let ids = m.encode(&prompt)?;
        let g = s.run(&m, &ids)?;
        if !s.common.json {
            print_line("")?;
        }
        messages.push(Message {
            role: "assistant".into(),
            content: g.text.trim().to_string(),
        });
        turns.push(g);
    }
    if s.common.json {
        return print_json(&serde_json::json!({"messages": messages, "turns": turns}));
    }
    Ok(())
}
