//! Fuzzing the request parsers through the whole server: mutants of valid request bodies go to
//! a live server over loopback, and each must get an answer below 500 — a 2xx, or a 4xx in the
//! route's error shape — and the server must stay up. A 5xx, a dropped connection, a hang or a
//! malformed error body is a finding (rules and budget: `ferrite_core::fuzz`; longer campaigns:
//! `scripts/fuzz.sh MINUTES serve`).

use crate::http::{parse, request};
use crate::{mlp_run, spec, TestServer};
use ferrite_core::fuzz::{self, Mutator, Target};
use ferrite_serve::{BatchPolicy, ServeOptions};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// A server for fuzzing: generation capped at 4 tokens so any chat mutant stays quick.
fn server() -> SocketAddr {
    static S: OnceLock<TestServer> = OnceLock::new();
    S.get_or_init(|| {
        let policy = BatchPolicy {
            max_batch: 16,
            max_wait: Duration::from_millis(1),
            queue_bound: 64,
        };
        let mut options = ServeOptions {
            max_body_bytes: 1 << 20,
            ..ServeOptions::default()
        };
        options.generation.max_tokens_cap = 4;
        TestServer::start(
            &[
                spec("mlp", mlp_run(), policy),
                spec("minilm", &crate::minilm(), policy),
                spec("smol", &crate::smollm2(), policy),
                spec("whisper", &crate::whisper(), policy),
            ],
            options,
        )
    })
    .addr
}

fn target(name: &'static str, mut seeds: Vec<Vec<u8>>, mutator: Mutator, ci_cases: usize) -> Target {
    seeds.extend(fuzz::stored_corpus(&crate::repo(), name));
    Target {
        name,
        seeds,
        mutator,
        ci_cases,
    }
}

/// The rules for one reply: below 500, and a 4xx carries the route's error shape.
fn judge(status: u16, body: &[u8], openai: bool) -> Result<bool, String> {
    if status >= 500 {
        return Err(format!("status {status}: {}", String::from_utf8_lossy(body)));
    }
    if status >= 400 {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("{status} with a non-JSON body ({e})"))?;
        let ok = if openai {
            v["error"]["message"].is_string() && v["error"]["type"].is_string()
        } else {
            v["error"].is_string()
        };
        if !ok {
            return Err(format!("{status} without the error shape: {v}"));
        }
        return Ok(false);
    }
    Ok(true)
}

fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8], openai: bool) -> Result<bool, String> {
    let r = request(addr, "POST", path, headers, body);
    judge(r.status, &r.body, openai)
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// v2 JSON inference bodies (FP32 rows, BYTES texts, requested outputs): 1,500 cases.
#[test]
fn v2_infer_json() {
    let addr = server();
    let seeds = vec![
        bytes(
            &json!({"id": "a", "inputs": [{"name": "input", "shape": [2, 10], "datatype": "FP32",
            "data": [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.86, 87], [48, 1, 21.6, 87, 183, 103.2, 70, 3, 3.89, 69]]}],
            "outputs": [{"name": "prediction", "parameters": {"binary_data": false}}]}),
        ),
        bytes(
            &json!({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a cat", "ein Hund"]}],
            "parameters": {"binary_data_output": true}, "model": "minilm"}),
        ),
    ];
    fuzz::run(target("v2-infer-json", seeds, Mutator::Text, 1500), move |b| {
        // The second seed names its model in a field the protocol ignores; route both by shape.
        let model = if String::from_utf8_lossy(b).contains("BYTES") {
            "minilm"
        } else {
            "mlp"
        };
        post(addr, &format!("/v2/models/{model}/infer"), &[], b, false)
    });
}

/// Triton's binary extension: a case is `HEADER_LENGTH\n` then the body, both mutated: 1,500 cases.
#[test]
fn v2_infer_binary() {
    let addr = server();
    let head = json!({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": 40}}],
        "outputs": [{"name": "prediction", "parameters": {"binary_data": true}}]})
    .to_string();
    let mut seed = format!("{}\n{head}", head.len()).into_bytes();
    seed.extend((0..10).flat_map(|i| (i as f32 * 7.5).to_le_bytes()));
    let thead = json!({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 13}}]}).to_string();
    let mut tseed = format!("{}\n{thead}", thead.len()).into_bytes();
    for t in ["cat", "a dog"] {
        tseed.extend((t.len() as u32).to_le_bytes());
        tseed.extend(t.as_bytes());
    }
    fuzz::run(
        target("v2-infer-binary", vec![seed, tseed], Mutator::Binary, 1500),
        move |b| {
            let (len, body) = match b.iter().position(|&c| c == b'\n') {
                Some(i) => (String::from_utf8_lossy(&b[..i]).to_string(), &b[i + 1..]),
                None => (String::new(), b),
            };
            let model = if String::from_utf8_lossy(body).contains("BYTES") {
                "minilm"
            } else {
                "mlp"
            };
            // A header value must be visible ASCII; anything else is what a client library refuses.
            let len: String = len.chars().filter(|c| c.is_ascii_graphic()).collect();
            let headers: Vec<(&str, &str)> = if len.is_empty() {
                vec![]
            } else {
                vec![("Inference-Header-Content-Length", &len)]
            };
            post(addr, &format!("/v2/models/{model}/infer"), &headers, body, false)
        },
    );
}

/// OpenAI chat and embedding bodies: 600 cases (chat answers at most 4 tokens).
#[test]
fn openai_json() {
    let addr = server();
    let chat = json!({"model": "smol", "messages": [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_tokens": 2, "temperature": 0.7,
        "top_p": 0.9, "seed": 3, "stop": ["\n"], "stream": false, "stream_options": {"include_usage": true}});
    let emb = json!({"model": "minilm", "input": ["one", "two"], "encoding_format": "base64"});
    fuzz::run(
        target("openai-json", vec![bytes(&chat), bytes(&emb)], Mutator::Text, 600),
        move |b| {
            let path = if String::from_utf8_lossy(b).contains("messages") {
                "/v1/chat/completions"
            } else {
                "/v1/embeddings"
            };
            let r = request(addr, "POST", path, &[], b);
            if r.header("content-type") == Some("text/event-stream") {
                // A stream: 200 whose events end with [DONE].
                let text = r.text();
                return if text.ends_with("data: [DONE]\n\n") {
                    Ok(true)
                } else {
                    Err(format!("stream cut off: {text:?}"))
                };
            }
            judge(r.status, &r.body, true)
        },
    );
}

/// Transcription uploads: a multipart form with a tenth of a second of audio (a valid
/// one runs Whisper): 60 cases.
#[test]
fn openai_multipart() {
    let addr = server();
    let mut wav = Vec::new();
    let samples: Vec<i16> = (0..1600).map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16).collect();
    let data_len = (samples.len() * 2) as u32;
    wav.extend(b"RIFF");
    wav.extend((36 + data_len).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    wav.extend(16u32.to_le_bytes());
    wav.extend(1u16.to_le_bytes());
    wav.extend(1u16.to_le_bytes());
    wav.extend(16000u32.to_le_bytes());
    wav.extend(32000u32.to_le_bytes());
    wav.extend(2u16.to_le_bytes());
    wav.extend(16u16.to_le_bytes());
    wav.extend(b"data");
    wav.extend(data_len.to_le_bytes());
    wav.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    let (ct, body) = crate::openai::multipart(&[("model", "whisper")], &wav);
    let mut seed = format!("{ct}\n").into_bytes();
    seed.extend(body);
    fuzz::run(target("openai-multipart", vec![seed], Mutator::Binary, 60), move |b| {
        let (ct, body) = match b.iter().position(|&c| c == b'\n') {
            Some(i) => (String::from_utf8_lossy(&b[..i]).to_string(), &b[i + 1..]),
            None => (String::new(), b),
        };
        let ct: String = ct.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect();
        post(
            addr,
            "/v1/audio/transcriptions",
            &[("Content-Type", ct.trim())],
            body,
            true,
        )
    });
    // Still up after every target.
    let r = parse(&{
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(&crate::http::encode("GET", "/v2/health/ready", &[], b""))
            .unwrap();
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
        v
    });
    assert_eq!(r.status, 200);
}
