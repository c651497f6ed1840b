//! Fuzz targets for every file ferrite reads: mutants of valid seeds go through the public
//! loaders, and each must load (and then run) or fail with an error that names the file — never a
//! panic, an abort or a hang (the rules and budget are in `ferrite::core::fuzz`).
//!
//! CI runs each target's `ci_cases` (stated per target below; the whole binary takes well under a
//! minute in a debug build). Longer campaigns: `scripts/fuzz.sh MINUTES [TARGET]`. Seeds are built
//! here or read from the repository (`tests/fixtures`, `examples/`, `data/`), plus the stored
//! corpus in `tests/fuzz/corpus/<target>/`.

mod seeds;

use ferrite::core::fuzz::{self, BoundedAlloc, Mutator, Target};
use ferrite::core::Tensor;
use ferrite::models::formats::ct2::Ct2Model;
use ferrite::models::formats::wav::parse_wav;
use ferrite::models::{EncoderInput, LanguageModel, PretrainedModel, Strategy};
use ferrite::text::{PretrainedTokenizer, TextTokenizer, TokenizerKind};
use ferrite::train::csv::{Missing, Table};
use ferrite::train::idx::parse_idx;
use ferrite::train::run::{open_run, predict_run, train_from_config, RunOptions};
use std::path::{Path, PathBuf};

#[global_allocator]
static ALLOC: BoundedAlloc = BoundedAlloc;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh scratch directory for one target (cases overwrite the same files in it).
fn scratch(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz").join(target);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `Ok(true)` for an accepted input, `Ok(false)` for an error that names one of `files` (or, for
/// files a config points at, is about a named file), and a broken rule otherwise.
fn named<T>(r: ferrite::core::Result<T>, files: &[&str]) -> Result<bool, String> {
    match r {
        Ok(_) => Ok(true),
        Err(ferrite::core::Error::File { .. }) if files.contains(&ANY_FILE) => Ok(false),
        Err(e) => {
            let msg = e.to_string();
            if files.iter().any(|f| msg.contains(f)) {
                Ok(false)
            } else {
                Err(format!("error does not name {files:?}: {msg}"))
            }
        }
    }
}

/// In [`named`]'s list: any error about a named file will do (a config may point anywhere).
const ANY_FILE: &str = "<any file>";

fn with_seeds(name: &'static str, mut seeds: Vec<Vec<u8>>, mutator: Mutator, ci_cases: usize) -> Target {
    seeds.extend(fuzz::stored_corpus(&repo(), name));
    Target {
        name,
        seeds,
        mutator,
        ci_cases,
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Hugging Face model directory with one file replaced by the case; a loaded model must encode.
fn hf_case(dir: &Path, file: &str, bytes: &[u8]) -> Result<bool, String> {
    std::fs::write(dir.join(file), bytes).unwrap();
    let loaded = PretrainedModel::load(dir, None).and_then(|(m, _)| {
        let input = EncoderInput {
            input_ids: Tensor::from_vec(vec![1i64, 5, 7, 2], [1, 4])?,
            attention_mask: Tensor::from_vec(vec![1i64; 4], [1, 4])?,
            token_type_ids: None,
        };
        m.encode(&input, false, false)
    });
    named(loaded, &["config.json", "model.safetensors"])
}

fn fixture_dir(target: &str, fixture: &str) -> PathBuf {
    let d = scratch(target);
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(repo().join("tests/fixtures").join(fixture).join(f), d.join(f)).unwrap();
    }
    d
}

/// safetensors: 4,000 cases (half of the mutations land in the JSON header).
#[test]
fn safetensors() {
    let dir = fixture_dir("safetensors", "tiny-bert");
    let seeds = vec![read("tests/fixtures/tiny-bert/model.safetensors")];
    fuzz::run(with_seeds("safetensors", seeds, Mutator::Binary, 4000), move |b| {
        hf_case(&dir, "model.safetensors", b)
    });
}

/// Hugging Face `config.json` (BERT, DistilBERT, RoBERTa): 3,000 cases, sizes and types spliced in.
#[test]
fn hf_config() {
    let dir = fixture_dir("hf-config", "tiny-bert");
    let seeds = vec![read("tests/fixtures/tiny-bert/config.json")];
    fuzz::run(with_seeds("hf-config", seeds, Mutator::Text, 3000), move |b| {
        hf_case(&dir, "config.json", b)
    });
}

/// A pretrained `tokenizer.json` (WordPiece, from the stored corpus): 3,000 cases; a loaded
/// tokenizer must encode and decode.
#[test]
fn hf_tokenizer() {
    let dir = scratch("hf-tokenizer");
    let path = dir.join("tokenizer.json");
    fuzz::run(with_seeds("hf-tokenizer", vec![], Mutator::Text, 3000), move |b| {
        std::fs::write(&path, b).unwrap();
        let r = PretrainedTokenizer::from_file(&path).and_then(|t| {
            let batch = t.encode_batch(&["hello world", "unknown ## tokens"], None)?;
            t.decode(&batch.ids[0])
        });
        named(r, &["tokenizer.json"])
    });
}

/// A translation run's own `tokenizer.json` (BPE with fixed specials): 3,000 cases.
#[test]
fn run_tokenizer() {
    let dir = scratch("run-tokenizer");
    let path = dir.join("tokenizer.json");
    let t = TextTokenizer::train(
        TokenizerKind::Bpe,
        40,
        ["open the file", "close the window", "save the folder"],
    )
    .unwrap();
    t.save(&path).unwrap();
    let seeds = vec![std::fs::read(&path).unwrap()];
    fuzz::run(with_seeds("run-tokenizer", seeds, Mutator::Text, 3000), move |b| {
        std::fs::write(&path, b).unwrap();
        let r = TextTokenizer::from_file(&path).and_then(|t| {
            let ids = t.encode("open the window")?;
            t.decode(&ids)
        });
        named(r, &["tokenizer.json"])
    });
}

/// GGUF: a one-block Llama with a byte-level BPE tokenizer in its metadata; 5,000 cases. A model
/// that opens must generate two tokens.
#[test]
fn gguf() {
    let dir = scratch("gguf");
    let path = dir.join("model.gguf");
    let seeds = vec![seeds::tiny_llama(64), seeds::tiny_llama(1 << 28)];
    fuzz::run(with_seeds("gguf", seeds, Mutator::Binary, 5000), move |b| {
        std::fs::write(&path, b).unwrap();
        let r = LanguageModel::open(&path).and_then(|m| m.generate(&[1, 2], 2, &Strategy::Greedy, |_| {}));
        named(r, &["model.gguf"])
    });
}

/// CTranslate2 `model.bin`: 5,000 cases; every variable of an opened file reads as a tensor or
/// a scalar, or fails naming the file.
#[test]
fn ct2() {
    let dir = scratch("ct2");
    let path = dir.join("model.bin");
    fuzz::run(
        with_seeds("ct2", vec![seeds::tiny_ct2()], Mutator::Binary, 5000),
        move |b| {
            std::fs::write(&path, b).unwrap();
            let m = match Ct2Model::open(&path) {
                Ok(m) => m,
                Err(e) => return named::<()>(Err(e), &["model.bin"]),
            };
            for (name, v) in &m.variables {
                let r = if v.dims.is_empty() {
                    m.scalar(name).map(drop)
                } else {
                    m.tensor(name).map(drop)
                };
                named(r, &["model.bin"])?;
            }
            for alias in m.aliases.keys() {
                named(m.tensor(alias), &["model.bin"])?;
            }
            Ok(true)
        },
    );
}

/// WAV: 5,000 cases from a PCM and a WAVE_FORMAT_EXTENSIBLE file.
#[test]
fn wav() {
    let seeds = vec![seeds::wav(false), seeds::wav(true)];
    fuzz::run(with_seeds("wav", seeds, Mutator::Binary, 5000), |b| {
        named(parse_wav(Path::new("fuzz.wav"), b), &["fuzz.wav"])
    });
}

/// IDX (MNIST-style): 5,000 cases from an image and a label file.
#[test]
fn idx() {
    let images: Vec<u8> = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3]
        .into_iter()
        .chain(0..18)
        .collect();
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 2, 7, 1];
    fuzz::run(with_seeds("idx", vec![images, labels], Mutator::Binary, 5000), |b| {
        named(parse_idx(Path::new("fuzz-idx3-ubyte"), b), &["fuzz-idx3-ubyte"])
    });
}

/// CSV tables: 3,000 cases from the head of the bundled diabetes table, read with each
/// `missing` policy; a table that parses must select its columns.
#[test]
fn csv() {
    let text = String::from_utf8(read("data/diabetes.csv")).unwrap();
    let head: String = text.lines().take(12).map(|l| format!("{l}\n")).collect();
    fuzz::run(with_seeds("csv", vec![head.into_bytes()], Mutator::Text, 3000), |b| {
        let path = Path::new("fuzz.csv");
        let text = String::from_utf8_lossy(b);
        let mut accepted = false;
        for missing in [Missing::Error, Missing::Drop] {
            let r = Table::parse_with(path, &text, missing).and_then(|t| {
                let names = t.other_columns(&[]);
                t.select(&names)
            });
            accepted |= named(r, &["fuzz.csv"])?;
        }
        Ok(accepted)
    });
}

const TINY_TABLE: &str = "a,b,y\n1,2,3\n2,3,5\n3,4,7\n4,5,9\n5,6,11\n6,7,13\n7,8,15\n8,9,17\n9,10,19\n10,11,21\n";

/// A training config (TOML) on a 10-row table: 600 cases, each a real run capped at two epochs;
/// every run that finishes must open and predict again (no run directory that cannot be loaded).
#[test]
fn train_config() {
    let dir = scratch("train-config");
    std::fs::write(dir.join("d.csv"), TINY_TABLE).unwrap();
    let seed =
        "seed = 1\nepochs = 2\ntask = \"regression\"\n[data]\npath = \"d.csv\"\ntarget = \"y\"\ntest_split = 0.2\n\
                validation_split = 0.2\n[model]\nlayers = [{ type = \"dense\", units = 4, activation = \"relu\" }, \
                { type = \"dense\", units = 1 }]\n[optimizer]\nname = \"adam\"\nlr = 0.01\n[training]\nbatch_size = 4\n\
                loss = \"mse\"\n";
    // The seed's MLP on its own data, beside the config (stored cases name it "diabetes.csv").
    std::fs::write(dir.join("diabetes.csv"), read("data/diabetes.csv")).unwrap();
    let mlp = String::from_utf8(read("examples/seed-mlp.toml")).unwrap();
    let mlp = mlp.replace("../data/diabetes.csv", "diabetes.csv");
    let seeds = vec![seed.as_bytes().to_vec(), mlp.into_bytes()];
    fuzz::run(with_seeds("train-config", seeds, Mutator::Text, 600), move |b| {
        let cfg = dir.join("c.toml");
        std::fs::write(&cfg, b).unwrap();
        let out = dir.join("run");
        let _ = std::fs::remove_dir_all(&out);
        let opts = RunOptions {
            out: Some(out.clone()),
            epochs: Some(2),
            max_minutes: Some(0.05),
            ..Default::default()
        };
        let r = train_from_config(&cfg, &opts);
        let ok = named(r, &["c.toml", ANY_FILE])?;
        if ok {
            open_run(&out).map_err(|e| format!("a finished run does not load: {e}"))?;
            let input = dir.join("d.csv");
            if let Err(e) = predict_run(&out, &input) {
                named::<()>(Err(e), &["d.csv"])?;
            }
        }
        Ok(ok)
    });
}

/// A translation config (TOML): 3,000 cases, parsed and range-checked.
#[test]
fn translate_config() {
    let dir = scratch("translate-config");
    let cfg = dir.join("t.toml");
    let seed = "task = \"translate\"\nseed = 1\n[data]\ntrain = \"pairs/train.tsv\"\nvalid_fraction = 0.1\ntest_fraction = 0.1\n\
                max_tokens = 24\n[tokenizer]\nkind = \"char\"\n[model]\nd_model = 16\nheads = 2\nencoder_layers = 1\n\
                decoder_layers = 1\nffn = 32\nmax_positions = 32\n[training]\nbatch_tokens = 256\nlr = 3e-3\nwarmup_steps = 2\n\
                valid_every = 2\nmax_steps = 4\n[decode]\nbeam = 2\n";
    fuzz::run(
        with_seeds("translate-config", vec![seed.as_bytes().to_vec()], Mutator::Text, 3000),
        move |b| {
            std::fs::write(&cfg, b).unwrap();
            named(ferrite::train::seq2seq::TranslateConfig::from_file(&cfg), &["t.toml"])
        },
    );
}
