//! # ferrite-serve
//!
//! `ferrite serve`: ferrite's models behind HTTP, for the clients people already use.
//!
//! - **Open Inference Protocol v2** (KServe, Triton) REST: health, metadata, inference with JSON
//!   tensors and Triton's binary-data extension ([`routes::v2`], [`tensor`]).
//! - **OpenAI-compatible**: models, chat completions (streamed or whole), embeddings,
//!   transcriptions ([`routes::openai`]).
//! - **Dynamic batching** of concurrent requests per model ([`batcher`]) and **continuous
//!   batching** of generations ([`models::llm`]).
//! - **Operations**: Prometheus metrics ([`metrics`]), request ids and JSON request logs, an API
//!   key, body and queue limits, timeouts, panics answered with 500, graceful shutdown
//!   ([`server`]).
//!
//! Layer: serving (above models and training). Compute runs on one worker thread per model, never
//! on the async runtime: a forward pass would stall every connection.

#![forbid(unsafe_code)]

pub mod batcher;
pub mod error;
pub mod metrics;
pub mod models;
pub mod options;
pub mod routes;
pub mod server;
pub mod tensor;

pub use batcher::BatchPolicy;
pub use error::{ApiError, Flavor};
pub use metrics::Metrics;
pub use models::llm::GenerationLimits;
pub use models::{Kind, ModelSpec, Served};
pub use options::{ServeFile, ServeOptions, API_KEY_ENV};
pub use server::{bind, run, termination, AppState};

use ferrite_core::{Error, Result};
use std::sync::Arc;

/// Loads every model (each on its own worker thread).
///
/// # Errors
/// Two models of one name, no models, or a model's load error (naming it and its file).
pub fn load_models(specs: &[ModelSpec], metrics: &Arc<Metrics>, limits: &GenerationLimits) -> Result<Vec<Served>> {
    if specs.is_empty() {
        return Err(Error::Invalid {
            op: "serve",
            detail: "no models to serve: name at least one with --model NAME=PATH or in --config".into(),
        });
    }
    let mut out: Vec<Served> = Vec::with_capacity(specs.len());
    for spec in specs {
        if out.iter().any(|m| m.name == spec.name) {
            return Err(Error::Invalid {
                op: "serve",
                detail: format!("two models are named '{}'", spec.name),
            });
        }
        let served = Served::load(spec, metrics.clone(), limits).map_err(|e| Error::Invalid {
            op: "serve",
            detail: format!("model '{}' ({}): {e}", spec.name, spec.path.display()),
        })?;
        out.push(served);
    }
    Ok(out)
}
