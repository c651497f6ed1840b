//! `POST /v1/audio/transcriptions`: a multipart form with a WAV `file` and a `model`; the text
//! as `{"text": …}` (or plain with `response_format=text`).
//!
//! Layer: serving.

use super::{answer, model_of_kind};
use crate::error::{ApiError, ApiResult};
use crate::models::{Backend, Kind};
use crate::server::AppState;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrite_models::formats::wav::{parse_wav, resample};
use ferrite_models::SAMPLE_RATE;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// Audio per request at most: 30 minutes.
const MAX_SECONDS: f64 = 1800.0;

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            status,
            format!("the upload is larger than this server's limit: {}", e.body_text()),
        );
    }
    ApiError::bad_field("file", format!("malformed multipart form: {}", e.body_text()))
}

/// The form's fields: `(model, file name, file bytes, response_format)`.
async fn read_form(mut form: Multipart) -> ApiResult<(String, String, Vec<u8>, String)> {
    let (mut model, mut file, mut format) = (None, None, "json".to_string());
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
                let filename = field.file_name().unwrap_or("upload.wav").to_string();
                let bytes = field.bytes().await.map_err(multipart_error)?;
                file = Some((filename, bytes.to_vec()));
            }
            "model" | "response_format" => {
                let text = field.text().await.map_err(multipart_error)?;
                if name == "model" {
                    model = Some(text);
                } else {
                    format = text;
                }
            }
            // language, prompt, temperature, timestamp_granularities: accepted, not used.
            _ => {
                field.bytes().await.map_err(multipart_error)?;
            }
        }
    }
    let model = model.ok_or_else(|| ApiError::bad_field("model", "'model' is required"))?;
    let (filename, bytes) = file.ok_or_else(|| ApiError::bad_field("file", "'file' (a WAV upload) is required"))?;
    Ok((model, filename, bytes, format))
}

pub async fn transcriptions(
    State(state): State<Arc<AppState>>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let form = match form {
        Ok(f) => f,
        Err(e) => {
            return answer(
                None,
                Err(ApiError::bad_field(
                    "file",
                    format!("expected a multipart/form-data upload: {}", e.body_text()),
                )),
            );
        }
    };
    match read_form(form).await {
        Ok((model, filename, bytes, format)) => {
            let r = run(&state, &model, &filename, &bytes, &format).await;
            answer(Some(&model), r)
        }
        Err(e) => answer(None, Err(e)),
    }
}

async fn run(state: &AppState, model: &str, filename: &str, bytes: &[u8], format: &str) -> ApiResult<Response> {
    let served = model_of_kind(state, model, Kind::Whisper, "/v1/audio/transcriptions")?;
    let Backend::Whisper(b) = &served.backend else {
        return Err(ApiError::internal("a Whisper model without a batcher"));
    };
    if !["json", "text"].contains(&format) {
        return Err(ApiError::bad_field(
            "response_format",
            format!("'response_format' must be json or text, got '{format}'"),
        ));
    }
    let audio = parse_wav(Path::new(filename), bytes).map_err(|e| ApiError::bad_field("file", e.to_string()))?;
    let seconds = audio.samples.len() as f64 / audio.rate.max(1) as f64;
    if seconds > MAX_SECONDS {
        return Err(ApiError::bad_field(
            "file",
            format!("the audio lasts {seconds:.0} s, more than this server's {MAX_SECONDS:.0} s"),
        ));
    }
    let samples = resample(&audio.samples, audio.rate, SAMPLE_RATE);
    let text = b.submit(samples, 1).await?;
    Ok(match format {
        "text" => text.into_response(),
        _ => Json(json!({"text": text})).into_response(),
    })
}
