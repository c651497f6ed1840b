//! Open Inference Protocol v2: every route, JSON and binary tensors, batching, and the errors.

use crate::http::{get, post_json, request};
use crate::{mlp_run, shared};
use ferrite_serve::BatchPolicy;
use serde_json::{json, Value};
use std::time::Duration;

/// The first rows of the bundled diabetes data (features only).
fn rows(n: usize) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(crate::repo().join("data/diabetes.csv")).unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| l.split(',').take(10).map(|v| v.parse().unwrap()).collect())
        .collect()
}

/// What `ferrite predict` answers for those rows.
fn cli_predictions(rows: &[Vec<f32>]) -> Vec<f64> {
    let csv = crate::tmp("predict").join("rows.csv");
    let mut text = String::from("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n");
    for r in rows {
        text.push_str(&r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    std::fs::write(&csv, text).unwrap();
    ferrite_train::run::predict_run(mlp_run(), &csv).unwrap()
}

fn infer_body(rows: &[Vec<f32>]) -> Value {
    json!({"id": "req-7", "inputs": [{"name": "input", "shape": [rows.len(), 10], "datatype": "FP32", "data": rows}]})
}

#[test]
fn health_metadata_and_readiness() {
    let s = shared();
    assert_eq!(get(s.addr, "/v2/health/live").status, 200);
    let r = get(s.addr, "/v2/health/ready");
    assert_eq!((r.status, r.json()["ready"].clone()), (200, json!(true)));
    let meta = get(s.addr, "/v2").json();
    assert_eq!(meta["name"], "ferrite");
    assert!(meta["extensions"]
        .as_array()
        .unwrap()
        .contains(&json!("binary_tensor_data")));
    let m = get(s.addr, "/v2/models/mlp").json();
    assert_eq!(
        m["inputs"][0],
        json!({"name": "input", "datatype": "FP32", "shape": [-1, 10]})
    );
    assert_eq!(
        m["outputs"][0],
        json!({"name": "prediction", "datatype": "FP64", "shape": [-1]})
    );
    assert_eq!(m["versions"], json!(["1"]));
    assert_eq!(get(s.addr, "/v2/models/mlp/versions/1").json(), m);
    let e = get(s.addr, "/v2/models/mlp/versions/2");
    assert_eq!(e.status, 404);
    assert!(e.json()["error"].as_str().unwrap().contains("no version '2'"));
    assert_eq!(get(s.addr, "/v2/models/mlp/ready").json()["ready"], true);
    assert_eq!(get(s.addr, "/v2/models/mlp/versions/1/ready").status, 200);
    let e = get(s.addr, "/v2/models/nope");
    assert_eq!(e.status, 404);
    assert!(e.json()["error"]
        .as_str()
        .unwrap()
        .contains("model 'nope' is not served"));
    let m = get(s.addr, "/v2/models/minilm").json();
    assert_eq!(
        m["inputs"][0],
        json!({"name": "text", "datatype": "BYTES", "shape": [-1]})
    );
    assert_eq!(m["outputs"][0]["shape"], json!([-1, 384]));
}

#[test]
fn json_inference_equals_the_cli_and_echoes_the_id() {
    let s = shared();
    let x = rows(3);
    let r = post_json(s.addr, "/v2/models/mlp/infer", &infer_body(&x));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(
        (v["id"].clone(), v["model_name"].clone(), v["model_version"].clone()),
        (json!("req-7"), json!("mlp"), json!("1"))
    );
    let out = &v["outputs"][0];
    assert_eq!(
        (out["name"].clone(), out["datatype"].clone(), out["shape"].clone()),
        (json!("prediction"), json!("FP64"), json!([3]))
    );
    let got: Vec<f64> = out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(got, cli_predictions(&x));
    // The versioned route answers the same.
    let v2 = post_json(s.addr, "/v2/models/mlp/versions/1/infer", &infer_body(&x)).json();
    assert_eq!(v2["outputs"], v["outputs"]);
}

#[test]
fn binary_tensors_in_and_out() {
    let s = shared();
    let x = rows(2);
    let head = json!({
        "inputs": [{"name": "input", "shape": [2, 10], "datatype": "FP32", "parameters": {"binary_data_size": 80}}],
        "outputs": [{"name": "prediction", "parameters": {"binary_data": true}}],
    })
    .to_string();
    let mut body = head.clone().into_bytes();
    body.extend(x.iter().flatten().flat_map(|v| v.to_le_bytes()));
    let len = head.len().to_string();
    let r = request(
        s.addr,
        "POST",
        "/v2/models/mlp/infer",
        &[("Inference-Header-Content-Length", &len)],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let n: usize = r.header("inference-header-content-length").unwrap().parse().unwrap();
    let header: Value = serde_json::from_slice(&r.body[..n]).unwrap();
    assert_eq!(header["outputs"][0]["parameters"]["binary_data_size"], 16);
    assert!(header["outputs"][0].get("data").is_none());
    let got: Vec<f64> = r.body[n..]
        .chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, cli_predictions(&x));
    // binary_data_output asks for every output in binary.
    let mut req = infer_body(&x);
    req["parameters"] = json!({"binary_data_output": true});
    let r = post_json(s.addr, "/v2/models/mlp/infer", &req);
    assert!(r.header("inference-header-content-length").is_some());
}

#[test]
fn bad_requests_name_what_is_wrong() {
    let s = shared();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP64", "data": vec![0; 10]}]}),
            "input 'input': expected datatype FP32, got FP64",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 9], "datatype": "FP32", "data": vec![0; 9]}]}),
            "input 'input': expected shape [-1, 10], got [1, 9]",
        ),
        (
            json!({"inputs": [{"name": "input", "shape": [2, 10], "datatype": "FP32", "data": vec![0; 10]}]}),
            "holds 20 elements, 'data' has 10",
        ),
        (
            json!({"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP32", "data": vec![0; 10]}]}),
            "input 'x' is not an input of model 'mlp'",
        ),
        (json!({"inputs": []}), "input 'input' is missing"),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": vec![0; 10]}], "outputs": [{"name": "nope"}]}),
            "output 'nope' is not an output",
        ),
    ];
    for (body, want) in cases {
        let r = post_json(s.addr, "/v2/models/mlp/infer", &body);
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(want), "{body}: {msg}");
    }
    let r = request(s.addr, "POST", "/v2/models/mlp/infer", &[], b"{\"inputs\": [");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("malformed"));
    // A header length that lies.
    let r = request(
        s.addr,
        "POST",
        "/v2/models/mlp/infer",
        &[("Inference-Header-Content-Length", "9999")],
        b"{}",
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("Inference-Header-Content-Length is 9999"));
    let r = request(
        s.addr,
        "POST",
        "/v2/models/mlp/infer",
        &[("Inference-Header-Content-Length", "-3")],
        b"{}",
    );
    assert_eq!(r.status, 400);
    // Unknown routes and methods answer in the v2 shape.
    let r = get(s.addr, "/v2/nothing");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    let r = get(s.addr, "/v2/models/mlp/infer");
    assert_eq!(r.status, 405);
}

#[test]
fn concurrent_requests_are_batched_and_equal_unbatched_answers() {
    let s = crate::TestServer::start(
        &[crate::spec(
            "mlp",
            mlp_run(),
            BatchPolicy {
                max_batch: 64,
                max_wait: Duration::from_millis(200),
                queue_bound: 64,
            },
        )],
        ferrite_serve::ServeOptions::default(),
    );
    let all = rows(16);
    let alone = cli_predictions(&all);
    let addr = s.addr;
    let threads: Vec<_> = all
        .iter()
        .cloned()
        .map(|row| std::thread::spawn(move || post_json(addr, "/v2/models/mlp/infer", &infer_body(&[row])).json()))
        .collect();
    for (t, want) in threads.into_iter().zip(alone) {
        let v = t.join().unwrap();
        let got = v["outputs"][0]["data"][0].as_f64().unwrap();
        // Rows in a batch go through the same kernels as alone; allow for a different summation
        // order in the product (relative 1e-6).
        assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{got} vs {want}");
    }
    let passes = s.metrics.value("ferrite_batch_size", &[("model", "mlp")]);
    assert!(passes < 16.0, "16 concurrent requests took {passes} forward passes");
    let metrics = get(addr, "/metrics").text();
    assert!(metrics.contains("ferrite_batch_size_count{model=\"mlp\"}"), "{metrics}");
    assert!(
        metrics.contains("ferrite_requests_total{model=\"mlp\",route=\"/v2/models/{model}/infer\",status=\"200\"} 16"),
        "{metrics}"
    );
    s.shutdown().unwrap();
}

/// An image classifier (the digits CNN, one epoch): `[-1, 1, 8, 8]` pixels in, class ids and
/// probabilities out, equal to `ferrite predict` on the same rows.
#[test]
fn an_image_classifier_takes_pixels_and_gives_classes_and_probabilities() {
    let dir = crate::tmp("digits");
    let run = dir.join("run");
    let opts = ferrite_train::run::RunOptions {
        out: Some(run.clone()),
        epochs: Some(1),
        ..Default::default()
    };
    ferrite_train::run::train_from_config(&crate::repo().join("examples/digits-cnn.toml"), &opts).unwrap();
    let text = std::fs::read_to_string(crate::repo().join("data/digits.csv")).unwrap();
    let lines: Vec<&str> = text.lines().take(4).collect();
    let csv = dir.join("rows.csv");
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let want = ferrite_train::run::predict_run(&run, &csv).unwrap();
    let pixels: Vec<f32> = lines[1..]
        .iter()
        .flat_map(|l| {
            l.split(',')
                .take(64)
                .map(|v| v.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let s = crate::TestServer::start(
        &[crate::spec("digits", &run, BatchPolicy::default())],
        ferrite_serve::ServeOptions::default(),
    );
    let m = get(s.addr, "/v2/models/digits").json();
    assert_eq!(m["inputs"][0]["shape"], json!([-1, 1, 8, 8]));
    assert_eq!(
        m["outputs"][0],
        json!({"name": "prediction", "datatype": "INT64", "shape": [-1]})
    );
    let v = post_json(
        s.addr,
        "/v2/models/digits/infer",
        &json!({"inputs": [{"name": "input", "shape": [3, 1, 8, 8], "datatype": "FP32", "data": pixels}]}),
    )
    .json();
    let ids: Vec<f64> = v["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(ids, want);
    assert_eq!(v["outputs"][1]["name"], "probabilities");
    assert_eq!(v["outputs"][1]["shape"], json!([3, 10]));
    let p: Vec<f64> = v["outputs"][1]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (row, &id) in p.chunks(10).zip(&ids) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(best as f64, id);
    }
    s.shutdown().unwrap();
}
