//! OpenAI-compatible embeddings, transcriptions and model list, against the CLI's answers.

use crate::http::{get, post_json, request};
use crate::shared;
use ferrite_models::SentenceEmbedder;
use serde_json::{json, Value};

fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{x} vs {y}");
    }
}

#[test]
fn models_are_listed() {
    let v = get(shared().addr, "/v1/models").json();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["minilm", "mlp", "smol", "whisper"]);
}

#[test]
fn embeddings_float_and_base64_equal_the_cli_and_v2() {
    let s = shared();
    let texts = ["A man is eating food.", "The weather is lovely today.", "x"];
    let want = SentenceEmbedder::load(crate::minilm()).unwrap().embed(&texts).unwrap();
    let r = post_json(s.addr, "/v1/embeddings", &json!({"model": "minilm", "input": texts}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() >= 3);
    for (i, w) in want.iter().enumerate() {
        let got: Vec<f32> = v["data"][i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(v["data"][i]["index"], i);
        // Texts padded to the batch's longest give the same vectors up to float rounding.
        close(&got, w, 1e-5);
    }
    // The openai client's default: base64 of little-endian f32.
    let v = post_json(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "minilm", "input": texts[1], "encoding_format": "base64"}),
    )
    .json();
    let bytes = decode_base64(v["data"][0]["embedding"].as_str().unwrap());
    let got: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    close(&got, &want[1], 1e-5);
    // The same model over v2 BYTES.
    let v = post_json(
        s.addr,
        "/v2/models/minilm/infer",
        &json!({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [texts[0]]}]}),
    )
    .json();
    assert_eq!(v["outputs"][0]["shape"], json!([1, 384]));
    let got: Vec<f32> = v["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    close(&got, &want[0], 1e-5);
}

#[test]
fn embedding_errors_name_the_field() {
    let s = shared();
    let cases: [(Value, u16, &str); 6] = [
        (json!({"input": "x"}), 400, "model"),
        (json!({"model": "nope", "input": "x"}), 404, "model"),
        (json!({"model": "mlp", "input": "x"}), 400, "model"),
        (json!({"model": "minilm", "input": [1, 2]}), 400, "input"),
        (json!({"model": "minilm", "input": []}), 400, "input"),
        (
            json!({"model": "minilm", "input": "x", "encoding_format": "hex"}),
            400,
            "encoding_format",
        ),
    ];
    for (body, status, param) in cases {
        let r = post_json(s.addr, "/v1/embeddings", &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["param"], param, "{body}: {e}");
        assert!(e["message"].is_string() && e["type"].is_string(), "{e}");
    }
    let r = request(s.addr, "POST", "/v1/embeddings", &[], b"[1,2");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
}

/// A multipart form with `fields` and a `file`.
pub fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "ferrite-test-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").bytes());
    }
    body.extend(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.wav\"\r\nContent-Type: audio/wav\r\n\r\n").bytes(),
    );
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn speech_wav() -> Vec<u8> {
    let path = crate::tmp("speech").join("fox.wav");
    if !path.is_file() {
        let ok = std::process::Command::new("espeak-ng")
            .args([
                "-w",
                path.to_str().unwrap(),
                "The quick brown fox jumps over the lazy dog.",
            ])
            .status()
            .expect("espeak-ng is installed by scripts/fetch-assets.sh");
        assert!(ok.success());
    }
    std::fs::read(path).unwrap()
}

#[test]
fn transcription_equals_the_cli_and_bad_audio_is_a_400() {
    let s = shared();
    let wav = speech_wav();
    let audio = ferrite_models::formats::wav::parse_wav(std::path::Path::new("fox.wav"), &wav).unwrap();
    let want = ferrite_models::Whisper::load(crate::whisper())
        .unwrap()
        .transcribe_audio(&audio, 1)
        .unwrap()
        .text;
    let (ct, body) = multipart(&[("model", "whisper")], &wav);
    let r = request(
        s.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[("Content-Type", &ct)],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["text"], want.as_str());
    assert!(want.to_lowercase().contains("quick brown fox"), "{want}");
    let (ct, body) = multipart(&[("model", "whisper"), ("response_format", "text")], &wav);
    let r = request(
        s.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[("Content-Type", &ct)],
        &body,
    );
    assert_eq!(r.text(), want);
    // A WAV with a bad header.
    let mut bad = wav.clone();
    bad[8..12].copy_from_slice(b"WAVX");
    let (ct, body) = multipart(&[("model", "whisper")], &bad);
    let r = request(
        s.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[("Content-Type", &ct)],
        &body,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "file");
    // A truncated multipart body.
    let (ct, body) = multipart(&[("model", "whisper")], &wav);
    let r = request(
        s.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[("Content-Type", &ct)],
        &body[..body.len() / 2],
    );
    assert!(r.status == 400, "{} {}", r.status, r.text());
    // No file; not multipart at all.
    let (ct, body) = multipart(&[("model", "whisper")], b"");
    let no_file = String::from_utf8_lossy(&body).replace("name=\"file\"", "name=\"other\"");
    let r = request(
        s.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[("Content-Type", &ct)],
        no_file.as_bytes(),
    );
    assert_eq!((r.status, r.json()["error"]["param"].clone()), (400, json!("file")));
    let r = post_json(s.addr, "/v1/audio/transcriptions", &json!({"model": "whisper"}));
    assert_eq!(r.status, 400);
}
