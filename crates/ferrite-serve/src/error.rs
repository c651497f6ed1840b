//! One error type for every route, answered in the shape its protocol's clients parse: Open
//! Inference Protocol v2 says `{"error": "message"}`; OpenAI says `{"error": {"message", "type",
//! "param", "code"}}`. The status says whose fault it was (4xx: the request, naming the field;
//! 5xx: the server), and a full queue adds `Retry-After`.
//!
//! Layer: serving.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which protocol's error shape a route answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    V2,
    OpenAi,
}

impl Flavor {
    /// The flavour of a request path: OpenAI's under `/v1/`, v2's elsewhere.
    pub fn of_path(path: &str) -> Flavor {
        if path.starts_with("/v1/") || path == "/v1" {
            Flavor::OpenAi
        } else {
            Flavor::V2
        }
    }
}

/// A failed request.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The request field at fault (OpenAI's `param`), when there is one.
    pub param: Option<String>,
    /// Seconds a client should wait before retrying (a full queue, shutting down).
    pub retry_after: Option<u64>,
    pub flavor: Flavor,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
            retry_after: None,
            flavor: Flavor::V2,
        }
    }

    /// 400: the request is malformed or out of range.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 400 naming the field at fault.
    pub fn bad_field(param: &str, message: impl Into<String>) -> Self {
        Self::bad(message).param(param)
    }

    /// 404: no such model (or version, or route).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500: the server failed; the message is what the log says too.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503 with `Retry-After`: a model's queue is full, or the server is shutting down.
    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, message);
        e.retry_after = Some(retry_after);
        e
    }

    pub fn param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// A model failure: the model's own messages name what was wrong with the input (a shape,
    /// a token, a file), so they are the client's fault unless proven otherwise.
    pub fn model(e: ferrite_core::Error) -> Self {
        Self::bad(e.to_string())
    }

    /// OpenAI's error `type` for this status.
    fn openai_type(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            404 => "not_found_error",
            429 | 503 => "server_overloaded",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.flavor {
            Flavor::V2 => json!({ "error": self.message }),
            Flavor::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.openai_type(),
                    "param": self.param,
                    "code": self.status.as_u16().to_string(),
                }
            }),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;
