//! The `ferrite` binary end to end: train with `--json`, eval, predict, and a clear error exit.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn ferrite(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run ferrite")
}

#[test]
fn train_json_then_eval_and_predict() {
    let out = std::env::temp_dir().join(format!("ferrite-cli-{}", std::process::id()));
    let o = ferrite(&[
        "train",
        "examples/seed-mlp.toml",
        "--out",
        out.to_str().unwrap(),
        "--json",
        "--epochs",
        "30",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.lines().last().expect("a JSON line");
    let v: serde_json::Value = serde_json::from_str(last).expect("valid JSON");
    for k in ["run_dir", "epochs", "train_loss", "val_loss", "test_mse", "seconds"] {
        assert!(v.get(k).is_some(), "missing {k} in {last}");
    }
    // Progress goes to stderr as plain lines when not on a terminal.
    assert!(String::from_utf8_lossy(&o.stderr).contains("epoch 1/30"));

    let e = ferrite(&["eval", out.to_str().unwrap()]);
    assert!(e.status.success());
    let m: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(m["test_mse"], v["test_mse"]);

    let p = ferrite(&[
        "predict",
        out.to_str().unwrap(),
        "--input",
        "data/diabetes.csv",
        "--json",
    ]);
    assert!(p.status.success());
    let preds: Vec<f64> = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(preds.len(), 442);
    std::fs::remove_dir_all(out).ok();
}

#[test]
fn bad_config_exits_with_a_message_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("ferrite-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "task = \"regression\"\nepochs = 1\nbogus_key = 3\n").unwrap();
    let o = ferrite(&["train", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("bogus_key") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A reader that stops early (`| head -1`) ends the process quietly, without a panic message.
#[test]
fn a_closed_output_pipe_ends_the_process_without_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["bench", "matmul", "--threads", "1", "--json"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferrite");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"bench\":\"matmul\""), "{first}");
    // The reader is dropped here: the next line goes to a closed pipe.
    let out = child.wait_with_output().expect("wait for ferrite");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// Issue 7: the digits CNN config trains in seconds and its final `--json` line reports a test
/// accuracy of at least 0.95; `eval` of the saved run (batch-norm statistics included) agrees,
/// and `predict` reads the same CSV layout back into images.
#[test]
fn digits_cnn_trains_to_95_percent_and_reloads() {
    let out = std::env::temp_dir().join(format!("ferrite-cli-digits-{}", std::process::id()));
    let o = ferrite(&[
        "train",
        "examples/digits-cnn.toml",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap();
    let acc = v["test_accuracy"].as_f64().expect("test_accuracy");
    assert!(acc >= 0.95, "digits CNN test accuracy {acc} < 0.95");
    for picture in ["confusion_matrix.png", "misclassified.png", "loss_curve.png"] {
        let bytes = std::fs::read(out.join(picture)).unwrap_or_else(|e| panic!("{picture}: {e}"));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
            "{picture} is not a PNG image"
        );
    }

    let e = ferrite(&["eval", out.to_str().unwrap()]);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let m: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(
        m["test_accuracy"], v["test_accuracy"],
        "reloaded run must give the same accuracy"
    );

    let p = ferrite(&["predict", out.to_str().unwrap(), "--input", "data/digits.csv", "--json"]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let preds: Vec<f64> = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(preds.len(), 1797);

    // Why row 5 is a 5: integrated gradients sum to f(x) − f(black) within 1% (512 steps: see
    // ferrite-explain's tests for 64), and a PNG is drawn.
    let png = out.join("ig.png");
    let x = ferrite(&[
        "explain",
        out.to_str().unwrap(),
        "--input",
        "data/digits.csv",
        "--row",
        "5",
        "--method",
        "ig",
        "--steps",
        "512",
        "--quadrature",
        "gausslegendre",
        "--out",
        png.to_str().unwrap(),
        "--json",
    ]);
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let j: serde_json::Value = serde_json::from_slice(&x.stdout).unwrap();
    assert_eq!(j["target"], 5);
    assert_eq!(j["attributions"].as_array().unwrap().len(), 64);
    let gap = j["completeness_gap"].as_f64().expect("completeness_gap");
    assert!(gap < 0.01, "completeness gap {gap}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let bad = ferrite(&[
        "explain",
        out.to_str().unwrap(),
        "--input",
        "data/digits.csv",
        "--target",
        "12",
    ]);
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(msg.contains("target 12") && msg.contains("10 outputs"), "{msg}");
    std::fs::remove_dir_all(out).ok();
}

/// `ferrite generate --json` with SmolLM2 (fetched by `scripts/fetch-assets.sh smollm2`): the
/// issue's prompt and greedy ids, timing fields, and `ferrite chat` answering from stdin.
#[test]
fn generate_and_chat_with_smollm2() {
    let file = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let model = ferrite::testing::cached_asset(&root(), "smollm2", file).join(file);
    let m = model.to_str().unwrap();
    let o = ferrite(&[
        "generate",
        "--model",
        m,
        "--prompt",
        "Once upon a time, there was a little",
        "--max-tokens",
        "12",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<u64> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(ids, [8180, 3365, 20391, 617, 5732, 288, 1238, 281, 260, 2388, 30, 2306]);
    assert_eq!(v["text"], " girl named Emma who loved to play in the sun. She");
    assert!(v["generated_tokens_per_s"].as_f64().unwrap() > 0.0);

    let mut chat = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["chat", "--model", m, "--max-tokens", "24", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    chat.stdin
        .take()
        .unwrap()
        .write_all(b"What is the capital of Germany?\n")
        .unwrap();
    let out = chat.wait_with_output().unwrap();
    assert!(out.status.success());
    let reply: serde_json::Value = serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert!(reply["text"].as_str().unwrap().contains("Berlin"), "{reply}");
    assert_eq!(reply["prompt_ids"][0], 1, "the ChatML prompt starts with <|im_start|>");

    let bad = ferrite(&["generate", "--model", "Cargo.toml", "--prompt", "x"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a GGUF file"));
}
