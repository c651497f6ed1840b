//! Open Inference Protocol v2 (KServe, Triton) over REST: health, server and model metadata,
//! readiness, and inference with JSON or binary tensors.
//!
//! Layer: serving.

use crate::error::{ApiError, ApiResult};
use crate::server::{AppState, ModelLabel};
use crate::tensor::{encode_response, parse_request};
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The one version every model is served as.
pub const VERSION: &str = "1";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{model}", get(model_metadata))
        .route("/v2/models/{model}/ready", get(model_ready))
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}", get(versioned_metadata))
        .route("/v2/models/{model}/versions/{version}/ready", get(versioned_ready))
        .route("/v2/models/{model}/versions/{version}/infer", post(versioned_infer))
}

/// Reads a body up to the server's limit.
///
/// # Errors
/// 413 past the limit; 400 when the client breaks off.
pub async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    to_bytes(body, limit).await.map_err(|e| {
        let too_big = std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit"))
            || e.to_string().contains("length limit");
        if too_big {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than this server's limit of {limit} bytes"),
            )
        } else {
            ApiError::bad(format!("cannot read the request body: {e}"))
        }
    })
}

async fn server_metadata() -> Json<serde_json::Value> {
    Json(json!({
        "name": "ferrite",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({"live": true}))
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.ready.load(Ordering::SeqCst);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"ready": ready}))).into_response()
}

fn check_version(model: &str, version: &str) -> ApiResult<()> {
    if version != VERSION {
        return Err(ApiError::not_found(format!(
            "model '{model}' has no version '{version}' (it is served as version {VERSION})"
        )));
    }
    Ok(())
}

async fn model_metadata(State(state): State<Arc<AppState>>, Path(model): Path<String>) -> ApiResult<Response> {
    let m = state.model(&model)?;
    Ok(labelled(&model, Json(m.metadata()).into_response()))
}

async fn versioned_metadata(
    State(state): State<Arc<AppState>>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_version(&model, &version)?;
    model_metadata(State(state), Path(model)).await
}

async fn model_ready(State(state): State<Arc<AppState>>, Path(model): Path<String>) -> ApiResult<Response> {
    state.model(&model)?;
    let ready = state.ready.load(Ordering::SeqCst);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(labelled(
        &model,
        (status, Json(json!({"name": model, "ready": ready}))).into_response(),
    ))
}

async fn versioned_ready(
    State(state): State<Arc<AppState>>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_version(&model, &version)?;
    model_ready(State(state), Path(model)).await
}

fn labelled(model: &str, mut r: Response) -> Response {
    r.extensions_mut().insert(ModelLabel(model.to_string()));
    r
}

async fn infer(
    State(state): State<Arc<AppState>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = run_infer(&state, &model, &headers, body).await;
    labelled(&model, answer.unwrap_or_else(IntoResponse::into_response))
}

async fn versioned_infer(
    State(state): State<Arc<AppState>>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = check_version(&model, &version) {
        return labelled(&model, e.into_response());
    }
    infer(State(state), Path(model), headers, body).await
}

const HEADER_LEN: &str = "inference-header-content-length";

async fn run_infer(state: &AppState, model: &str, headers: &HeaderMap, body: Body) -> ApiResult<Response> {
    let m = state.model(model)?;
    let header_len = match headers.get(HEADER_LEN) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| ApiError::bad("Inference-Header-Content-Length must be a byte count"))?,
        ),
    };
    let bytes = read_body(body, state.options.max_body_bytes).await?;
    let req = parse_request(&bytes, header_len)?;
    let outputs = m.infer(&req).await?;
    let enc = encode_response(model, VERSION, &req, outputs)?;
    let mut r = Response::new(Body::from(enc.body));
    let h = r.headers_mut();
    match enc.header_len {
        Some(n) => {
            h.insert(
                header::CONTENT_TYPE,
                "application/octet-stream"
                    .parse()
                    .map_err(|_| ApiError::internal("header"))?,
            );
            h.insert(HEADER_LEN, n.into());
        }
        None => {
            h.insert(
                header::CONTENT_TYPE,
                "application/json".parse().map_err(|_| ApiError::internal("header"))?,
            );
        }
    }
    Ok(r)
}
