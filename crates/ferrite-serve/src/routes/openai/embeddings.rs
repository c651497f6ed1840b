//! `POST /v1/embeddings`: one vector per input text, as JSON floats or — what the `openai`
//! client asks for by default — base64 of the little-endian f32 bytes.
//!
//! Layer: serving.

use super::fields::{self, Object};
use super::{answer, model_of_kind};
use crate::error::{ApiError, ApiResult};
use crate::models::{Backend, Kind};
use crate::server::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Texts per request at most (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

pub async fn embeddings(State(state): State<Arc<AppState>>, body: Body) -> Response {
    let o = match fields::object(body, state.options.max_body_bytes).await {
        Ok(o) => o,
        Err(e) => return answer(None, Err(e)),
    };
    let model = fields::required_string(&o, "model").map(str::to_string);
    let r = match &model {
        Ok(m) => run(&state, m, &o).await,
        Err(e) => Err(e.clone()),
    };
    answer(model.as_deref().ok(), r)
}

async fn run(state: &AppState, model: &str, o: &Object) -> ApiResult<Response> {
    let served = model_of_kind(state, model, Kind::Embedding, "/v1/embeddings")?;
    let Backend::Embedding(b) = &served.backend else {
        return Err(ApiError::internal("an embedding model without a batcher"));
    };
    let texts = fields::strings(o, "input")
        .map_err(|_| {
            ApiError::bad_field(
                "input",
                "'input' must be a string or a list of strings (token ids are not accepted)",
            )
        })?
        .ok_or_else(|| ApiError::bad_field("input", "'input' is required"))?;
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(ApiError::bad_field(
            "input",
            format!("'input' must hold 1 to {MAX_INPUTS} texts, got {}", texts.len()),
        ));
    }
    let base64 = match fields::string(o, "encoding_format")? {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_field(
                "encoding_format",
                format!("'encoding_format' must be float or base64, got '{other}'"),
            ));
        }
    };
    if let Some(d) = fields::uint(o, "dimensions")? {
        return Err(ApiError::bad_field(
            "dimensions",
            format!("model '{model}' gives vectors of its own width; 'dimensions' ({d}) is not supported"),
        ));
    }
    let n = texts.len();
    let out = b.submit(texts, n).await?;
    let data: Vec<Value> = out
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(encode_base64(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": out.tokens, "total_tokens": out.tokens},
    }))
    .into_response())
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::encode_base64(plain.as_bytes()), coded);
        }
    }
}
