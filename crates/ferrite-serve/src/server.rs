//! The server: shared state, the router, and the middleware every request passes — request id,
//! API key, readiness during shutdown, the per-request timeout, metrics and one structured log
//! line — and the run loop with graceful shutdown (readiness false, no new requests, in-flight
//! ones finish within the grace period).
//!
//! Layer: serving.

use crate::error::{ApiError, Flavor};
use crate::metrics::{Metrics, LATENCY_BUCKETS};
use crate::models::Served;
use crate::options::ServeOptions;
use crate::routes;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

/// What every handler shares.
pub struct AppState {
    pub models: BTreeMap<String, Served>,
    pub metrics: Arc<Metrics>,
    pub options: ServeOptions,
    /// False once shutdown has begun.
    pub ready: AtomicBool,
    /// Unix seconds at start (OpenAI's `created`).
    pub started: u64,
    next_id: AtomicU64,
}

impl AppState {
    pub fn new(models: Vec<Served>, metrics: Arc<Metrics>, options: ServeOptions) -> AppState {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        AppState {
            models: models.into_iter().map(|m| (m.name.clone(), m)).collect(),
            metrics,
            options,
            ready: AtomicBool::new(true),
            started,
            next_id: AtomicU64::new(1),
        }
    }

    /// The model named `name`.
    ///
    /// # Errors
    /// 404 naming it and the models served.
    pub fn model(&self, name: &str) -> Result<&Served, ApiError> {
        self.models.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.models.keys().map(String::as_str).collect();
            ApiError::not_found(format!(
                "model '{name}' is not served here (models: {})",
                names.join(", ")
            ))
        })
    }

    /// A fresh request id: the start time and a counter, so ids stay unique across restarts.
    fn request_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:x}-{n}", self.started)
    }
}

/// The model a response was for, set by handlers for the metrics and the log.
#[derive(Clone, Debug)]
pub struct ModelLabel(pub String);

/// The request id, given to handlers (OpenAI ids are built from it).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The route template of a path, so metrics have few label values whatever clients send.
fn route_label(path: &str) -> String {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "v2", "models", _, "versions", _, rest @ ..] => {
            format!("/v2/models/{{model}}/versions/{{version}}/{}", rest.join("/"))
        }
        ["", "v2", "models", _, rest @ ..] => format!("/v2/models/{{model}}/{}", rest.join("/")),
        _ if KNOWN_ROUTES.contains(&path) => path.to_string(),
        _ => "other".into(),
    }
    .trim_end_matches('/')
    .to_string()
}

const KNOWN_ROUTES: [&str; 10] = [
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models",
    "/metrics",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/audio/transcriptions",
    "/",
];

/// Routes open without the API key: probes and scrapers carry no secrets.
fn is_open(path: &str) -> bool {
    path.starts_with("/v2/health/") || path == "/metrics"
}

/// Compares without leaking the key's length or prefix through timing.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

async fn observe(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| state.request_id(), str::to_string);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let flavor = Flavor::of_path(&path);
    req.extensions_mut().insert(RequestId(id.clone()));
    let refused = if let Some(key) = &state.options.api_key
        && !is_open(&path)
    {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(g) if same_secret(g.as_bytes(), key.as_bytes()) => None,
            Some(_) => Some(ApiError::new(StatusCode::UNAUTHORIZED, "the API key is not valid")),
            None => Some(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this server needs an API key: send 'Authorization: Bearer KEY'",
            )),
        }
    } else {
        None
    };
    let refused = refused.or_else(|| {
        (!state.ready.load(Ordering::SeqCst) && !is_open(&path))
            .then(|| ApiError::unavailable("the server is shutting down", 5))
    });
    let mut response = match refused {
        Some(e) => e.flavor(flavor).into_response(),
        None => match tokio::time::timeout(state.options.timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the request took longer than this server's timeout of {} s",
                    state.options.timeout.as_secs_f64()
                ),
            )
            .flavor(flavor)
            .into_response(),
        },
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let status = response.status().as_u16().to_string();
    // Only served names become label values: a client must not grow the metrics with made-up ones.
    let model = response
        .extensions()
        .get::<ModelLabel>()
        .map(|m| m.0.as_str())
        .filter(|m| state.models.contains_key(*m))
        .unwrap_or("")
        .to_string();
    let route = route_label(&path);
    let seconds = started.elapsed().as_secs_f64();
    let m = &state.metrics;
    m.add(
        "ferrite_requests_total",
        "Requests by model, route and status.",
        &[("model", &model), ("route", &route), ("status", &status)],
        1.0,
    );
    m.observe(
        "ferrite_request_duration_seconds",
        "Seconds from request to response head, by route.",
        &[("route", &route)],
        &LATENCY_BUCKETS,
        seconds,
    );
    if state.options.log_requests {
        eprintln!(
            "{}",
            serde_json::json!({
                "ts": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
                "request_id": id, "method": method.as_str(), "path": path, "route": route,
                "model": model, "status": response.status().as_u16(), "ms": seconds * 1e3,
            })
        );
    }
    response
}

/// A handler that panicked: 500 in the route's shape, and the server goes on.
fn panic_response(p: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let text = crate::batcher::panic_text(p.as_ref());
    eprintln!(
        "{}",
        serde_json::json!({"level": "error", "msg": "handler panicked", "panic": text})
    );
    ApiError::internal(format!("internal error: {text}")).into_response()
}

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.options.max_body_bytes;
    routes::v2::routes()
        .merge(routes::openai::routes())
        .route("/metrics", axum::routing::get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_string();
    ApiError::not_found(format!("no route {} {path}", req.method()))
        .flavor(Flavor::of_path(&path))
        .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let path = req.uri().path().to_string();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {path}", req.method()),
    )
    .flavor(Flavor::of_path(&path))
    .into_response()
}

/// Serves `state` on `listener` until `shutdown` completes; then readiness goes false, the
/// listener closes, and in-flight requests get `options.grace` to finish.
///
/// # Errors
/// An I/O failure of the listener.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.options.grace;
    let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
    let flag = state.clone();
    let signal = async move {
        shutdown.await;
        flag.ready.store(false, Ordering::SeqCst);
        let _ = begun_tx.send(());
    };
    let app = router(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let deadline = async move {
        if begun_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = server => r,
        () = deadline => {
            eprintln!("{}", serde_json::json!({"level": "warn", "msg": "grace period over; requests still running were cut off"}));
            Ok(())
        }
    }
}

/// Connections the kernel queues for `accept` (Linux caps it at `net.core.somaxconn`). A burst
/// of clients beyond the queue has its SYNs dropped and retried a second later, so the queue is
/// sized for bursts of thousands rather than tokio's default 1024.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// Binds a listener on `host:port` with [`ACCEPT_BACKLOG`].
///
/// # Errors
/// An address that does not resolve or cannot be bound, named.
pub async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(ACCEPT_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} resolves to no address"))))
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_template() {
        assert_eq!(route_label("/v2/models/mlp/infer"), "/v2/models/{model}/infer");
        assert_eq!(
            route_label("/v2/models/mlp/versions/1/infer"),
            "/v2/models/{model}/versions/{version}/infer"
        );
        assert_eq!(route_label("/v2/models/mlp"), "/v2/models/{model}");
        assert_eq!(route_label("/v1/embeddings"), "/v1/embeddings");
        assert_eq!(route_label("/etc/passwd"), "other");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"abcd", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }
}
