//! OpenAI-compatible routes: `GET /v1/models`, chat completions (whole or streamed as
//! server-sent events), embeddings (float or base64) and audio transcriptions. Errors come in
//! OpenAI's `{"error": {"message", "type", "param", "code"}}` shape, `param` naming the field.
//!
//! Layer: serving.

mod audio;
mod chat;
mod embeddings;
mod fields;

use crate::error::{ApiError, ApiResult, Flavor};
use crate::models::{Kind, Served};
use crate::server::{AppState, ModelLabel};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/audio/transcriptions", post(audio::transcriptions))
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let data: Vec<serde_json::Value> = state
        .models
        .values()
        .map(|m| json!({"id": m.name, "object": "model", "created": state.started, "owned_by": "ferrite"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// The served model a request's `model` field names, which must be of `kind`.
///
/// # Errors
/// 404 for an unknown model, 400 for one of another kind (both naming `model`).
fn model_of_kind<'s>(state: &'s AppState, name: &str, kind: Kind, route: &str) -> ApiResult<&'s Served> {
    let m = state.model(name).map_err(|e| e.param("model"))?;
    if m.kind != kind {
        return Err(ApiError::bad_field(
            "model",
            format!(
                "model '{name}' is a {} model; {route} needs a {} model",
                m.kind.name(),
                kind.name()
            ),
        ));
    }
    Ok(m)
}

/// A handler's answer with the model label for metrics, errors in OpenAI's shape.
fn answer(model: Option<&str>, r: ApiResult<Response>) -> Response {
    let mut r = r.unwrap_or_else(|e| e.flavor(Flavor::OpenAi).into_response());
    if let Some(m) = model {
        r.extensions_mut().insert(ModelLabel(m.to_string()));
    }
    r
}
