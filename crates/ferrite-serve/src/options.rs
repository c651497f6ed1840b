//! What a server runs with: its address, limits, API key and models — from command-line flags
//! or a TOML file (`ferrite serve --config serve.toml`):
//!
//! ```toml
//! host = "127.0.0.1"
//! port = 8000
//! max_body_mb = 32
//! timeout_s = 300
//! max_tokens_cap = 4096
//! slots = 8
//!
//! [[models]]
//! name = "minilm"
//! path = ".cache/assets/all-MiniLM-L6-v2"
//! max_batch = 32        # dynamic batching: rows per pass at most
//! max_wait_ms = 2       # how long the first request waits for company (default 0)
//! queue = 256           # requests waiting at most (then 503 + Retry-After)
//! ```
//!
//! Layer: serving.

use crate::batcher::BatchPolicy;
use crate::models::llm::GenerationLimits;
use crate::models::{Kind, ModelSpec};
use ferrite_core::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable holding the API key when `--api-key` is not given.
pub const API_KEY_ENV: &str = "FERRITE_API_KEY";

/// A server's settings.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Bearer token required on every route but health and metrics.
    pub api_key: Option<String>,
    pub max_body_bytes: usize,
    /// A request that has not answered by then gets 504 (a stream's head counts as the answer).
    pub timeout: Duration,
    /// After SIGTERM/SIGINT: how long in-flight requests may take to finish.
    pub grace: Duration,
    pub generation: GenerationLimits,
    /// One JSON line per request on standard error.
    pub log_requests: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8000,
            api_key: None,
            max_body_bytes: 32 << 20,
            timeout: Duration::from_secs(300),
            grace: Duration::from_secs(30),
            generation: GenerationLimits::default(),
            log_requests: true,
        }
    }
}

/// The TOML file's layout; absent keys keep the defaults (or the command line's values).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub api_key: Option<String>,
    pub max_body_mb: Option<usize>,
    pub timeout_s: Option<u64>,
    pub grace_s: Option<u64>,
    pub max_tokens_cap: Option<usize>,
    pub slots: Option<usize>,
    #[serde(default)]
    pub models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub path: PathBuf,
    pub kind: Option<String>,
    pub max_batch: Option<usize>,
    pub max_wait_ms: Option<u64>,
    pub queue: Option<usize>,
}

impl ServeFile {
    /// Reads a server TOML file.
    ///
    /// # Errors
    /// An unreadable file or invalid TOML (unknown keys included), naming the file.
    pub fn read(path: &Path) -> Result<ServeFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        toml::from_str(&text).map_err(|e| Error::file(path, e.to_string().trim_end().to_string()))
    }
}

impl ModelEntry {
    /// The spec of this entry; relative paths are relative to the TOML file's directory.
    ///
    /// # Errors
    /// An unknown kind or a batch policy out of range.
    pub fn spec(&self, base: &Path, defaults: BatchPolicy) -> Result<ModelSpec> {
        let policy = BatchPolicy {
            max_batch: self.max_batch.unwrap_or(defaults.max_batch),
            max_wait: self.max_wait_ms.map_or(defaults.max_wait, Duration::from_millis),
            queue_bound: self.queue.unwrap_or(defaults.queue_bound),
        };
        check_policy(&self.name, &policy)?;
        Ok(ModelSpec {
            name: self.name.clone(),
            path: if self.path.is_absolute() {
                self.path.clone()
            } else {
                base.join(&self.path)
            },
            kind: self.kind.as_deref().map(Kind::parse).transpose()?,
            policy,
        })
    }
}

/// Checks a model name (it appears in URLs) and its batch policy.
///
/// # Errors
/// An empty name or one with characters other than letters, digits, `-`, `_`, `.`; a batch of
/// 0 or above 4096, a wait above 10 s, a queue of 0 or above 100,000.
pub fn check_policy(name: &str, p: &BatchPolicy) -> Result<()> {
    let bad = |detail: String| Err(Error::Invalid { op: "serve", detail });
    if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return bad(format!(
            "model name '{name}' must be 1–128 letters, digits, '-', '_' or '.' (it is part of URLs)"
        ));
    }
    if !(1..=4096).contains(&p.max_batch) {
        return bad(format!(
            "model '{name}': max_batch {} must be between 1 and 4096",
            p.max_batch
        ));
    }
    if p.max_wait > Duration::from_secs(10) {
        return bad(format!("model '{name}': max_wait_ms must be at most 10000"));
    }
    if !(1..=100_000).contains(&p.queue_bound) {
        return bad(format!(
            "model '{name}': queue {} must be between 1 and 100000",
            p.queue_bound
        ));
    }
    Ok(())
}

/// Parses `NAME=PATH` (or a bare `PATH`, named after its file or directory).
///
/// # Errors
/// A path with no usable name.
pub fn parse_model_arg(arg: &str, policy: BatchPolicy) -> Result<ModelSpec> {
    let (name, path) = match arg.split_once('=') {
        Some((n, p)) => (n.to_string(), PathBuf::from(p)),
        None => {
            let path = PathBuf::from(arg);
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            (stem, path)
        }
    };
    check_policy(&name, &policy)?;
    Ok(ModelSpec {
        name,
        path,
        kind: None,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_arguments_and_names() {
        let s = parse_model_arg("mlp=runs/mlp", BatchPolicy::default()).unwrap();
        assert_eq!((s.name.as_str(), s.path.as_path()), ("mlp", Path::new("runs/mlp")));
        let s = parse_model_arg("dir/SmolLM2.Q4_1.gguf", BatchPolicy::default()).unwrap();
        assert_eq!(s.name, "SmolLM2.Q4_1");
        assert!(parse_model_arg("a b=x", BatchPolicy::default()).is_err());
        let zero = BatchPolicy {
            max_batch: 0,
            ..BatchPolicy::default()
        };
        assert!(parse_model_arg("m=x", zero)
            .unwrap_err()
            .to_string()
            .contains("max_batch 0"));
    }

    #[test]
    fn the_toml_file_refuses_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("ferrite-serve-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("serve.toml");
        std::fs::write(&f, "port = 1\n[[models]]\nname = \"m\"\npath = \"x\"\nbatch = 3\n").unwrap();
        let e = ServeFile::read(&f).err().unwrap().to_string();
        assert!(e.contains("serve.toml") && e.contains("batch"), "{e}");
        std::fs::write(&f, "port = 1\n[[models]]\nname = \"m\"\npath = \"x\"\nmax_batch = 3\n").unwrap();
        let file = ServeFile::read(&f).unwrap();
        let spec = file.models[0].spec(&dir, BatchPolicy::default()).unwrap();
        assert_eq!((spec.path, spec.policy.max_batch), (dir.join("x"), 3));
    }
}
