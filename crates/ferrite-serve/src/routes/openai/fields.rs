//! Reading an OpenAI request body field by field, so each mistake is a 400 naming its field
//! (`param`): clients send many fields ferrite ignores, so bodies are read as JSON objects, not
//! strict structs.
//!
//! Layer: serving.

use crate::error::{ApiError, ApiResult};
use crate::routes::v2::read_body;
use axum::body::Body;
use serde_json::{Map, Value};

pub type Object = Map<String, Value>;

/// The body as a JSON object.
///
/// # Errors
/// 413 past the size limit, 400 for malformed JSON or a non-object.
pub async fn object(body: Body, limit: usize) -> ApiResult<Object> {
    let bytes = read_body(body, limit).await?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::bad("the request body must be a JSON object")),
        Err(e) => Err(ApiError::bad(format!("malformed JSON in the request body: {e}"))),
    }
}

fn wrong(key: &str, want: &str, got: &Value) -> ApiError {
    ApiError::bad_field(key, format!("'{key}' must be {want}, got {got}"))
}

/// An optional field that, when present and not null, satisfies `read`.
fn optional<'a, T>(
    o: &'a Object,
    key: &str,
    want: &str,
    read: impl Fn(&'a Value) -> Option<T>,
) -> ApiResult<Option<T>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v).map(Some).ok_or_else(|| wrong(key, want, v)),
    }
}

pub fn string<'a>(o: &'a Object, key: &str) -> ApiResult<Option<&'a str>> {
    optional(o, key, "a string", Value::as_str)
}

pub fn required_string<'a>(o: &'a Object, key: &str) -> ApiResult<&'a str> {
    string(o, key)?.ok_or_else(|| ApiError::bad_field(key, format!("'{key}' is required")))
}

pub fn uint(o: &Object, key: &str) -> ApiResult<Option<u64>> {
    optional(o, key, "a whole number ≥ 0", Value::as_u64)
}

pub fn number(o: &Object, key: &str) -> ApiResult<Option<f64>> {
    optional(o, key, "a number", Value::as_f64)
}

pub fn boolean(o: &Object, key: &str) -> ApiResult<Option<bool>> {
    optional(o, key, "true or false", Value::as_bool)
}

/// A string or a list of strings (`stop`, embedding `input`).
pub fn strings(o: &Object, key: &str) -> ApiResult<Option<Vec<String>>> {
    optional(o, key, "a string or a list of strings", |v| match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
        _ => None,
    })
}
