//! `POST /v1/chat/completions`: a conversation rendered with the model's chat template, answered
//! whole or streamed as server-sent events — `data: {chunk}\n\n` per `chat.completion.chunk`, the
//! first delta carrying the role, the last the `finish_reason`, a usage chunk when
//! `stream_options.include_usage` asks, then `data: [DONE]\n\n` (OpenAI's format byte for byte).
//!
//! Layer: serving.

use super::fields::{self, Object};
use super::{answer, model_of_kind};
use crate::error::{ApiError, ApiResult};
use crate::models::llm::{Event, Finished, GenParams, Prompt};
use crate::models::{Backend, Kind};
use crate::server::{AppState, RequestId};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ferrite_models::generation::Message;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

pub async fn completions(
    State(state): State<Arc<AppState>>,
    Extension(id): Extension<RequestId>,
    body: Body,
) -> Response {
    let o = match fields::object(body, state.options.max_body_bytes).await {
        Ok(o) => o,
        Err(e) => return answer(None, Err(e)),
    };
    let model = fields::required_string(&o, "model").map(str::to_string);
    let r = match &model {
        Ok(m) => run(&state, m, &o, &id.0).await,
        Err(e) => Err(e.clone()),
    };
    answer(model.as_deref().ok(), r)
}

/// The conversation of `messages`: each `{role, content}` with text content (a string, or a
/// list of `{"type": "text", "text": …}` parts).
fn messages(o: &Object) -> ApiResult<Vec<Message>> {
    let bad = |detail: String| ApiError::bad_field("messages", detail);
    let Some(Value::Array(items)) = o.get("messages") else {
        return Err(bad("'messages' must be a list of {role, content} objects".into()));
    };
    if items.is_empty() {
        return Err(bad("'messages' is empty".into()));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("messages[{i}] has no 'role' string")))?;
            if !["system", "developer", "user", "assistant"].contains(&role) {
                return Err(bad(format!(
                    "messages[{i}].role '{role}' is not system, developer, user or assistant"
                )));
            }
            let content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|p| {
                        match (
                            p.get("type").and_then(Value::as_str),
                            p.get("text").and_then(Value::as_str),
                        ) {
                            (Some("text"), Some(t)) => Ok(t),
                            _ => Err(bad(format!("messages[{i}].content has a part that is not text"))),
                        }
                    })
                    .collect::<ApiResult<Vec<&str>>>()?
                    .concat(),
                _ => return Err(bad(format!("messages[{i}] has no text 'content'"))),
            };
            // ChatML knows "system"; OpenAI's newer "developer" role means the same.
            let role = if role == "developer" { "system" } else { role };
            Ok(Message {
                role: role.into(),
                content,
            })
        })
        .collect()
}

/// Sampling fields, OpenAI's defaults (temperature 1, top_p 1) when absent.
fn params(o: &Object) -> ApiResult<GenParams> {
    let max_tokens = match fields::uint(o, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => fields::uint(o, "max_tokens")?,
    };
    if let Some(n) = fields::uint(o, "n")?
        && n != 1
    {
        return Err(ApiError::bad_field(
            "n",
            format!("this server makes one choice per request; n = {n}"),
        ));
    }
    Ok(GenParams {
        max_tokens: max_tokens.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        temperature: fields::number(o, "temperature")?.unwrap_or(1.0) as f32,
        top_p: fields::number(o, "top_p")?.unwrap_or(1.0) as f32,
        seed: match o.get("seed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .map(|s| s as u64)
                    .ok_or_else(|| ApiError::bad_field("seed", format!("'seed' must be a whole number, got {v}")))?,
            ),
        },
        stop: fields::strings(o, "stop")?.unwrap_or_default(),
    })
}

async fn run(state: &AppState, model: &str, o: &Object, request_id: &str) -> ApiResult<Response> {
    let served = model_of_kind(state, model, Kind::Llm, "/v1/chat/completions")?;
    let Backend::Llm(g) = &served.backend else {
        return Err(ApiError::internal("a language model without a generator"));
    };
    let messages = messages(o)?;
    let params = params(o)?;
    let stream = fields::boolean(o, "stream")?.unwrap_or(false);
    let include_usage = match o.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(so)) => fields::boolean(so, "include_usage")
            .map_err(|e| e.param("stream_options.include_usage"))?
            .unwrap_or(false),
        Some(v) => {
            return Err(ApiError::bad_field(
                "stream_options",
                format!("'stream_options' must be an object, got {v}"),
            ))
        }
    };
    let head = Head {
        id: format!("chatcmpl-{request_id}"),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(state.started, |d| d.as_secs()),
        model: model.to_string(),
    };
    if !stream {
        let done = g.complete(Prompt::Chat(messages), params).await?;
        return Ok(Json(head.completion(&done)).into_response());
    }
    let (first, rest) = g.start(Prompt::Chat(messages), params).await?;
    let body = Body::from_stream(sse(head, first, rest, include_usage));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// What every chunk of one completion shares.
struct Head {
    id: String,
    created: u64,
    model: String,
}

fn usage(f: &Finished) -> Value {
    json!({
        "prompt_tokens": f.prompt_tokens,
        "completion_tokens": f.completion_tokens,
        "total_tokens": f.prompt_tokens + f.completion_tokens,
    })
}

impl Head {
    fn completion(&self, f: &Finished) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": f.text},
                "logprobs": null,
                "finish_reason": f.reason.name(),
            }],
            "usage": usage(f),
        })
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, include_usage: bool) -> Value {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    }
}

fn data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// The event stream: the role, each piece of text, the finish, usage when asked, `[DONE]`. An
/// error after the stream began is sent as an `error` object (the status is already 200).
fn sse(
    head: Head,
    first: Event,
    rest: UnboundedReceiver<Event>,
    include_usage: bool,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let opening = data(&head.chunk(json!({"role": "assistant", "content": ""}), None, include_usage));
    let state = (head, Some(first), rest, false);
    let events = futures_util::stream::unfold(state, move |(head, pending, mut rest, ended)| async move {
        if ended {
            return None;
        }
        let event = match pending {
            Some(e) => e,
            None => rest.recv().await?,
        };
        let (bytes, ended) = match event {
            Event::Text(piece) => (data(&head.chunk(json!({"content": piece}), None, include_usage)), false),
            Event::Done(f) => {
                let mut out = data(&head.chunk(json!({}), Some(f.reason.name()), include_usage)).to_vec();
                if include_usage {
                    let mut u = head.chunk(json!({}), None, true);
                    u["choices"] = json!([]);
                    u["usage"] = usage(&f);
                    out.extend_from_slice(&data(&u));
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                (Bytes::from(out), true)
            }
            Event::Failed(e) => {
                let err = json!({"error": {"message": e.message, "type": "server_error", "param": null, "code": e.status.as_u16().to_string()}});
                let mut out = data(&err).to_vec();
                out.extend_from_slice(b"data: [DONE]\n\n");
                (Bytes::from(out), true)
            }
        };
        Some((Ok(bytes), (head, None, rest, ended)))
    });
    futures_util::stream::once(async move { Ok(opening) }).chain(events)
}
