//! Chat completions: equal to `ferrite chat`, the streaming format byte for byte, continuous
//! batching, a disconnect stopping its generation, and the limits.

use crate::http::{encode, parse, post_json};
use crate::shared;
use ferrite_models::generation::{chatml_prompt, Message};
use ferrite_models::{LanguageModel, Strategy};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const QUESTION: &str = "What is the capital of France?";

fn model() -> &'static LanguageModel {
    static M: OnceLock<LanguageModel> = OnceLock::new();
    M.get_or_init(|| LanguageModel::open(crate::smollm2()).unwrap())
}

/// What `ferrite chat` answers (greedy) to one user message.
fn cli_answer(question: &str, max_tokens: usize) -> (String, usize, usize) {
    let m = model();
    let messages = [Message {
        role: "user".into(),
        content: question.into(),
    }];
    let prompt = chatml_prompt(&messages, m.default_system().unwrap().as_deref());
    let ids = m.encode(&prompt).unwrap();
    let g = m.generate(&ids, max_tokens, &Strategy::Greedy, |_| {}).unwrap();
    (g.text, ids.len(), g.ids.len())
}

fn chat(question: &str, max_tokens: usize, stream: bool) -> Value {
    json!({
        "model": "smol",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

#[test]
fn a_completion_equals_the_cli() {
    let s = shared();
    let r = post_json(s.addr, "/v1/chat/completions", &chat(QUESTION, 12, false));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let (text, prompt_tokens, completion_tokens) = cli_answer(QUESTION, 12);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": text})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens})
    );
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    // The v2 route runs the same generation on a raw prompt.
    let v = post_json(
        s.addr,
        "/v2/models/smol/infer",
        &json!({"inputs": [
            {"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["Once upon a time"]},
            {"name": "max_tokens", "shape": [1], "datatype": "INT32", "data": [8]},
        ]}),
    )
    .json();
    let m = model();
    let ids = m.encode("Once upon a time").unwrap();
    let want = m.generate(&ids, 8, &Strategy::Greedy, |_| {}).unwrap().text;
    assert_eq!(v["outputs"][0]["data"][0], want.as_str());
}

#[test]
fn the_stream_is_openai_server_sent_events_byte_for_byte() {
    let s = shared();
    let r = post_json(s.addr, "/v1/chat/completions", &chat(QUESTION, 10, true));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text:?}");
    let events: Vec<&str> = text.split_inclusive("\n\n").collect();
    for e in &events {
        assert!(
            e.starts_with("data: ") && e.ends_with("\n\n") && !e[6..e.len() - 2].contains('\n'),
            "{e:?}"
        );
    }
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e[6..e.len() - 2]).unwrap())
        .collect();
    let id = chunks[0]["id"].clone();
    for c in &chunks {
        assert_eq!(
            (c["object"].as_str(), &c["id"], &c["model"]),
            (Some("chat.completion.chunk"), &id, &json!("smol"))
        );
        // Serialized exactly as the chunk's own JSON: one line, no spaces added.
        let line = format!("data: {c}\n\n");
        assert!(text.contains(&line));
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let n = chunks.len();
    let (last, usage) = (&chunks[n - 2], &chunks[n - 1]);
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert_eq!(usage["choices"], json!([]));
    let content: String = chunks[1..n - 2]
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["finish_reason"].is_null() && c["usage"].is_null());
            c["choices"][0]["delta"]["content"].as_str().unwrap().to_string()
        })
        .collect();
    let (want, _, tokens) = cli_answer(QUESTION, 10);
    assert_eq!(content, want);
    assert_eq!(usage["usage"]["completion_tokens"], tokens);
    // Without include_usage there is no usage chunk and no usage key.
    let mut body = chat(QUESTION, 3, true);
    body.as_object_mut().unwrap().remove("stream_options");
    let text = post_json(s.addr, "/v1/chat/completions", &body).text();
    assert!(!text.contains("usage"), "{text}");
}

#[test]
fn concurrent_streams_decode_together_and_answer_as_alone() {
    let s = shared();
    let questions = ["What is 2 + 2?", "Name a colour.", "Say hello.", QUESTION];
    let want: Vec<String> = questions.iter().map(|q| cli_answer(q, 16).0).collect();
    let addr = s.addr;
    let threads: Vec<_> = questions
        .iter()
        .map(|q| {
            let body = chat(q, 16, false);
            std::thread::spawn(move || post_json(addr, "/v1/chat/completions", &body).json())
        })
        .collect();
    for (t, w) in threads.into_iter().zip(want) {
        let v = t.join().unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], w.as_str());
    }
}

#[test]
fn sampling_is_seeded_and_stop_strings_cut_the_text() {
    let s = shared();
    let mut body = chat("Tell me a story.", 16, false);
    body["temperature"] = json!(0.9);
    body["seed"] = json!(7);
    let a = post_json(s.addr, "/v1/chat/completions", &body).json();
    let b = post_json(s.addr, "/v1/chat/completions", &body).json();
    assert_eq!(a["choices"][0]["message"], b["choices"][0]["message"]);
    // A stop string taken from the greedy answer ends it just before.
    let (full, _, _) = cli_answer(QUESTION, 12);
    let word = full.split_whitespace().nth(1).unwrap().to_string();
    let mut body = chat(QUESTION, 12, false);
    body["stop"] = json!([word]);
    let v = post_json(s.addr, "/v1/chat/completions", &body).json();
    let cut = &full[..full.find(&word).unwrap()];
    assert_eq!(v["choices"][0]["message"]["content"], cut);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[test]
fn limits_and_bad_fields_are_400s_naming_the_field() {
    let s = shared();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut over = chat(QUESTION, 65, false);
    cases.push((over.clone(), "max_tokens"));
    over["max_tokens"] = json!(-1);
    cases.push((over, "max_tokens"));
    let mut t = chat(QUESTION, 4, false);
    t["temperature"] = json!(3);
    cases.push((t, "temperature"));
    cases.push((json!({"model": "smol", "messages": []}), "messages"));
    cases.push((
        json!({"model": "smol", "messages": [{"role": "robot", "content": "x"}]}),
        "messages",
    ));
    cases.push((json!({"model": "smol", "messages": "hi"}), "messages"));
    cases.push((
        json!({"model": "minilm", "messages": [{"role": "user", "content": "x"}]}),
        "model",
    ));
    let mut n = chat(QUESTION, 4, false);
    n["n"] = json!(2);
    cases.push((n, "n"));
    for (body, param) in cases {
        let r = post_json(s.addr, "/v1/chat/completions", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["error"]["param"], param, "{body}");
    }
}

#[test]
fn a_client_that_disconnects_stops_its_generation() {
    let s = shared();
    let labels = [("model", "smol")];
    let cancelled = || s.metrics.value("ferrite_generations_cancelled_total", &labels);
    let before = cancelled();
    let mut stream = TcpStream::connect(s.addr).unwrap();
    let body = chat("Write a long essay about the sea.", 64, true).to_string();
    stream
        .write_all(&encode("POST", "/v1/chat/completions", &[], body.as_bytes()))
        .unwrap();
    // Read until the first content chunk has arrived, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while seen.windows(9).filter(|w| w == b"\"content\"").count() < 2 {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    drop(stream);
    let start = Instant::now();
    while cancelled() <= before {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the generation was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server still answers.
    let r = parse(&{
        let mut s2 = TcpStream::connect(s.addr).unwrap();
        s2.write_all(&encode("GET", "/v2/health/ready", &[], b"")).unwrap();
        let mut v = Vec::new();
        s2.read_to_end(&mut v).unwrap();
        v
    });
    assert_eq!(r.status, 200);
}
