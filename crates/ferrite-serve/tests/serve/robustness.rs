//! Auth, limits, hostile connections and graceful shutdown.

use crate::http::{encode, get, post_json, request};
use crate::{mlp_run, shared, spec, TestServer};
use ferrite_serve::{BatchPolicy, ServeOptions};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn mlp_body() -> serde_json::Value {
    json!({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": [50, 1, 25, 90, 180, 100, 50, 4, 4.5, 90]}]})
}

#[test]
fn the_api_key_guards_everything_but_health_and_metrics() {
    let options = ServeOptions {
        api_key: Some("s3cret".into()),
        ..ServeOptions::default()
    };
    let s = TestServer::start(&[spec("mlp", mlp_run(), BatchPolicy::default())], options);
    assert_eq!(get(s.addr, "/v2/health/ready").status, 200);
    assert_eq!(get(s.addr, "/v2/health/live").status, 200);
    assert_eq!(get(s.addr, "/metrics").status, 200);
    let r = post_json(s.addr, "/v2/models/mlp/infer", &mlp_body());
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert!(r.json()["error"].as_str().unwrap().contains("API key"));
    let r = get(s.addr, "/v1/models");
    assert_eq!(
        (r.status, r.json()["error"]["type"].clone()),
        (401, json!("authentication_error"))
    );
    let body = mlp_body().to_string();
    let wrong = request(
        s.addr,
        "POST",
        "/v2/models/mlp/infer",
        &[("Authorization", "Bearer nope")],
        body.as_bytes(),
    );
    assert_eq!(wrong.status, 401);
    let ok = request(
        s.addr,
        "POST",
        "/v2/models/mlp/infer",
        &[("Authorization", "Bearer s3cret")],
        body.as_bytes(),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(get(s.addr, "/v2/models/mlp").status, 401);
    s.shutdown().unwrap();
}

#[test]
fn an_oversize_body_is_413_and_request_ids_are_echoed() {
    let options = ServeOptions {
        max_body_bytes: 4096,
        ..ServeOptions::default()
    };
    let s = TestServer::start(&[spec("mlp", mlp_run(), BatchPolicy::default())], options);
    let big = vec![b' '; 10_000];
    let r = request(s.addr, "POST", "/v2/models/mlp/infer", &[], &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("4096"));
    let r = request(s.addr, "POST", "/v1/embeddings", &[], &big);
    assert_eq!(r.status, 413);
    assert!(r.json()["error"]["message"].is_string());
    let r = request(s.addr, "GET", "/v2/health/ready", &[("X-Request-Id", "abc-123")], b"");
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let r = get(s.addr, "/v2/health/ready");
    assert!(!r.header("x-request-id").unwrap_or_default().is_empty());
    assert_eq!(get(s.addr, "/v2/health/ready").status, 200);
    s.shutdown().unwrap();
}

/// 10,000 connections in four waves of 2,500 held open at once (the test process holds both
/// ends, and its descriptor limit is 20,000), then dropped: silent, half a request, half a header.
/// Eight threads open each wave faster than one server thread accepts: the accept backlog
/// (4096) must absorb the burst, or dropped SYNs cost a second each (tokio's default of 1024 made
/// this test take 55 s).
#[test]
fn ten_thousand_dropped_connections_leave_the_server_ready() {
    let s = shared();
    let started = Instant::now();
    let partial = encode("POST", "/v2/models/mlp/infer", &[], mlp_body().to_string().as_bytes());
    let addr = s.addr;
    for _ in 0..4 {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let partial = partial.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..2500 / 8 + usize::from(t < 2500 % 8) {
                        let Ok(mut c) = TcpStream::connect(addr) else { continue };
                        match (i + t) % 3 {
                            0 => {}
                            1 => drop(c.write_all(&partial[..partial.len() / 2])),
                            _ => drop(c.write_all(b"GET /v2/health/ready HTTP/1.1\r\n")),
                        }
                        held.push(c);
                    }
                    held.len()
                })
            })
            .collect();
        let opened: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(opened, 2500, "connections refused");
        assert_eq!(get(s.addr, "/v2/health/ready").status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(120));
    let r = get(s.addr, "/v2/health/ready");
    assert_eq!(r.status, 200);
    assert_eq!(post_json(s.addr, "/v2/models/mlp/infer", &mlp_body()).status, 200);
}

#[test]
fn shutdown_lets_running_requests_finish_and_takes_no_new_ones() {
    let policy = BatchPolicy {
        max_batch: 8,
        max_wait: Duration::from_millis(100),
        queue_bound: 8,
    };
    let mut s = TestServer::start(
        &[spec("mlp", mlp_run(), policy), spec("smol", &crate::smollm2(), policy)],
        ServeOptions::default(),
    );
    let addr = s.addr;
    // A generation in flight when shutdown begins.
    let body = json!({"model": "smol", "messages": [{"role": "user", "content": "Count to twenty."}], "max_tokens": 40, "temperature": 0});
    let running = std::thread::spawn(move || post_json(addr, "/v1/chat/completions", &body));
    std::thread::sleep(Duration::from_millis(300));
    // A kept-alive connection opened before shutdown.
    let mut kept = TcpStream::connect(addr).unwrap();
    s.begin_shutdown();
    let done = running.join().unwrap();
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["usage"]["completion_tokens"], 40);
    // New connections are refused once the listener is closed.
    let start = Instant::now();
    loop {
        if TcpStream::connect(addr).is_err() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the listener stayed open");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A request on a connection from before is turned away (or the connection is closed).
    let _ = kept.write_all(&encode(
        "POST",
        "/v2/models/mlp/infer",
        &[],
        mlp_body().to_string().as_bytes(),
    ));
    let mut reply = Vec::new();
    let _ = kept.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 503"), "{text}");
    s.wait().unwrap();
}
