//! `ferrite serve --model NAME=PATH …`: the model server (Open Inference Protocol v2 and
//! OpenAI-compatible routes, see docs/SERVING.md). Prints the address it listens on, then serves
//! until SIGTERM or Ctrl-C, when it stops taking requests, lets running ones finish within the
//! grace period, and exits 0.

use crate::common::{print_json, print_line, Common};
use clap::Args;
use ferrite::{Error, Result};
use ferrite_serve::options::{check_policy, parse_model_arg};
use ferrite_serve::{AppState, BatchPolicy, Metrics, ModelSpec, ServeFile, ServeOptions, API_KEY_ENV};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite serve --model mlp=runs/mlp --model minilm=.cache/assets/all-MiniLM-L6-v2
  ferrite serve --model smollm2=.cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --port 8080 --api-key secret
  ferrite serve --config serve.toml --json
  curl -s localhost:8000/v2/models/mlp/infer -d '{\"inputs\":[{\"name\":\"input\",\"shape\":[1,10],\"datatype\":\"FP32\",\"data\":[0,0,0,0,0,0,0,0,0,0]}]}'")]
pub struct ServeArgs {
    /// A model to serve as NAME=PATH (repeatable): a run directory, a model directory
    /// (MiniLM, Whisper, a fine-tuned classifier) or a .gguf file. The kind is told by its files.
    #[arg(long, value_name = "NAME=PATH")]
    model: Vec<String>,
    /// A TOML file with server settings and [[models]] (see docs/SERVING.md); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to bind (default 127.0.0.1: only this machine; 0.0.0.0 for every interface).
    #[arg(long)]
    host: Option<String>,
    /// Port to bind (default 8000; 0 picks a free one and prints it).
    #[arg(long)]
    port: Option<u16>,
    /// Bearer token required on every route but health and metrics (default: $FERRITE_API_KEY).
    #[arg(long, value_name = "KEY", conflicts_with = "api_key_file")]
    api_key: Option<String>,
    /// Read the API key from a file (a mounted Kubernetes Secret), surrounding whitespace trimmed.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Dynamic batching: rows per forward pass at most.
    #[arg(long, default_value_t = 32, value_name = "N")]
    max_batch: usize,
    /// Dynamic batching: how long the first request of a batch waits for others, in ms (0: a
    /// batch is what queued while the model was busy, as Triton's default).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    max_wait_ms: u64,
    /// Requests waiting per model at most; one more gets 503 with Retry-After.
    #[arg(long, default_value_t = 256, value_name = "N")]
    queue: usize,
    /// Language models: sequences generated together at most (continuous batching).
    #[arg(long, value_name = "N")]
    slots: Option<usize>,
    /// Largest max_tokens a request may ask for.
    #[arg(long, value_name = "N")]
    max_tokens_cap: Option<usize>,
    /// Largest request body in MiB.
    #[arg(long, value_name = "MB")]
    max_body_mb: Option<usize>,
    /// Seconds a request may take before it gets 504.
    #[arg(long, value_name = "S")]
    timeout_s: Option<u64>,
    /// Seconds running requests get to finish after SIGTERM.
    #[arg(long, value_name = "S")]
    grace_s: Option<u64>,
    /// No per-request log lines on standard error.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    common: Common,
}

/// The key in a file, trimmed; an unreadable or empty file is an error naming it.
fn read_key(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read the API key: {e}")))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(Error::file(path, "holds no API key (the file is empty)"));
    }
    Ok(key.to_string())
}

fn invalid(detail: String) -> Error {
    Error::Invalid { op: "serve", detail }
}

/// The options and models from the file (if any), then the flags.
fn settings(a: &ServeArgs) -> Result<(ServeOptions, Vec<ModelSpec>)> {
    let mut o = ServeOptions::default();
    let policy = BatchPolicy {
        max_batch: a.max_batch,
        max_wait: Duration::from_millis(a.max_wait_ms),
        queue_bound: a.queue,
    };
    check_policy("default", &policy)?;
    let mut specs = Vec::new();
    if let Some(path) = &a.config {
        let f = ServeFile::read(path)?;
        let base = path.parent().map(PathBuf::from).unwrap_or_default();
        for m in &f.models {
            specs.push(m.spec(&base, policy).map_err(|e| e.attributed_to(path, None))?);
        }
        o.host = f.host.unwrap_or(o.host);
        o.port = f.port.unwrap_or(o.port);
        o.api_key = f.api_key.or(o.api_key);
        o.max_body_bytes = f.max_body_mb.map_or(o.max_body_bytes, |m| m << 20);
        o.timeout = f.timeout_s.map_or(o.timeout, Duration::from_secs);
        o.grace = f.grace_s.map_or(o.grace, Duration::from_secs);
        o.generation.max_tokens_cap = f.max_tokens_cap.unwrap_or(o.generation.max_tokens_cap);
        o.generation.slots = f.slots.unwrap_or(o.generation.slots);
    }
    for m in &a.model {
        specs.push(parse_model_arg(m, policy)?);
    }
    o.host = a.host.clone().unwrap_or(o.host);
    o.port = a.port.unwrap_or(o.port);
    let from_file = match &a.api_key_file {
        Some(path) => Some(read_key(path)?),
        None => None,
    };
    o.api_key = a
        .api_key
        .clone()
        .or(from_file)
        .or(o.api_key)
        .or_else(|| std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty()));
    if let Some(mb) = a.max_body_mb {
        o.max_body_bytes = mb << 20;
    }
    if let Some(s) = a.timeout_s {
        o.timeout = Duration::from_secs(s);
    }
    if let Some(s) = a.grace_s {
        o.grace = Duration::from_secs(s);
    }
    o.generation.max_tokens_cap = a.max_tokens_cap.unwrap_or(o.generation.max_tokens_cap);
    o.generation.slots = a.slots.unwrap_or(o.generation.slots);
    o.log_requests = !a.quiet;
    if !(1..=1024).contains(&o.generation.slots) {
        return Err(invalid(format!(
            "--slots {} must be between 1 and 1024",
            o.generation.slots
        )));
    }
    if !(1..=1 << 20).contains(&o.generation.max_tokens_cap) {
        return Err(invalid(format!(
            "--max-tokens-cap {} must be between 1 and 1048576",
            o.generation.max_tokens_cap
        )));
    }
    if !(1..=4096).contains(&(o.max_body_bytes >> 20)) {
        return Err(invalid("--max-body-mb must be between 1 and 4096".into()));
    }
    if o.timeout.is_zero() {
        return Err(invalid("--timeout-s must be at least 1".into()));
    }
    Ok((o, specs))
}

pub fn run(args: ServeArgs) -> Result<()> {
    args.common.apply()?;
    let (options, specs) = settings(&args)?;
    let metrics = Arc::new(Metrics::new());
    let models = ferrite_serve::load_models(&specs, &metrics, &options.generation)?;
    let runtime = tokio_runtime()?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", options.host, options.port);
        let listener = ferrite_serve::bind(&options.host, options.port)
            .await
            .map_err(|e| invalid(format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr().map_err(|e| invalid(e.to_string()))?;
        let url = format!("http://{local}");
        if args.common.json {
            let list: Vec<serde_json::Value> = models
                .iter()
                .map(|m| serde_json::json!({"name": m.name, "kind": m.kind.name()}))
                .collect();
            print_json(&serde_json::json!({"listening": url, "models": list}))?;
        } else {
            let names: Vec<String> = models
                .iter()
                .map(|m| format!("{} ({})", m.name, m.kind.name()))
                .collect();
            print_line(&format!(
                "ferrite serve: listening on {url} — models: {}",
                names.join(", ")
            ))?;
        }
        let state = Arc::new(AppState::new(models, metrics, options));
        ferrite_serve::run(listener, state, ferrite_serve::termination())
            .await
            .map_err(|e| invalid(format!("the server stopped: {e}")))
    })
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime> {
    // Two threads answer connections; the models compute on their own threads and the kernel
    // pool, so the runtime stays small.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve-io")
        .enable_all()
        .build()
        .map_err(|e| invalid(format!("cannot start the async runtime: {e}")))
}
