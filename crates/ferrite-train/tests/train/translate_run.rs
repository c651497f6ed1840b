//! A translation run end to end on a small TSV (config → run directory → reload → translate →
//! eval), and the bad inputs the issue names: a TSV with a missing column, over-long pairs under
//! each policy, unknown characters, blank lines.

use ferrite_text::{write_tsv, Pair};
use ferrite_train::seq2seq::config::TooLong;
use ferrite_train::seq2seq::run::to_examples;
use ferrite_train::seq2seq::{eval_translation, train_translation, TranslateRunOptions, TranslationModel};
use std::path::{Path, PathBuf};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrite-translate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const WORDS: [(&str, &str); 8] = [
    ("open", "ouvrir"),
    ("the", "le"),
    ("file", "fichier"),
    ("close", "fermer"),
    ("window", "fenêtre"),
    ("save", "enregistrer"),
    ("new", "nouveau"),
    ("folder", "dossier"),
];

fn pairs(n: usize) -> Vec<Pair> {
    (0..n)
        .map(|i| {
            let idx = [i % 8, (i / 8) % 8, (i / 64) % 8];
            let src: Vec<&str> = idx.iter().map(|&j| WORDS[j].0).collect();
            let tgt: Vec<&str> = idx.iter().map(|&j| WORDS[j].1).collect();
            Pair::new(src.join(" "), tgt.join(" "))
        })
        .collect()
}

fn config(dir: &Path, extra_training: &str) -> PathBuf {
    write_tsv(&dir.join("pairs.tsv"), &pairs(400)).unwrap();
    let text = format!(
        r#"task = "translate"
seed = 3
[data]
train = "pairs.tsv"
valid_fraction = 0.05
test_fraction = 0.05
max_tokens = 16
[tokenizer]
kind = "char"
[model]
d_model = 32
heads = 4
encoder_layers = 1
decoder_layers = 1
ffn = 64
dropout = 0.1
activation = "relu"
norm_first = true
max_positions = 64
[training]
batch_tokens = 512
lr = 3e-3
warmup_steps = 5
valid_every = 4
{extra_training}
[decode]
beam = 2
"#
    );
    let p = dir.join("run.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_run_trains_reloads_translates_and_evaluates() {
    let dir = tmp_dir("e2e");
    let cfg = config(&dir, "max_steps = 8");
    let out = dir.join("run");
    let opts = TranslateRunOptions {
        out: Some(out.clone()),
        ..Default::default()
    };
    let s = train_translation(&cfg, &opts).unwrap();
    assert_eq!(s.training.steps, 8);
    assert!(s.train_pairs > 300 && s.test_pairs > 0);
    for f in [
        "config.toml",
        "tokenizer.json",
        "model.json",
        "model.safetensors",
        "summary.json",
        "data/test.tsv",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let m = TranslationModel::load(&out).unwrap();
    let hyps = m
        .translate(
            &["open the file".to_string(), "open the ☃".to_string()],
            &m.config.decode.strategy(1).unwrap(),
            &m.config.decode.options(),
        )
        .unwrap();
    assert_eq!(hyps.len(), 2);
    let e = eval_translation(&out, None, Some(1)).unwrap();
    assert_eq!(e.sentences, s.test_pairs);
    assert!((0.0..=100.0).contains(&e.bleu) && (0.0..=100.0).contains(&e.chrf));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tmp_dir("bad");
    // A missing column names the file and the line.
    std::fs::write(dir.join("broken.tsv"), "open\touvrir\n\nclose the window\n").unwrap();
    let cfg = config(&dir, "max_steps = 2");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("pairs.tsv", "broken.tsv");
    std::fs::write(&cfg, text).unwrap();
    let err = train_translation(&cfg, &TranslateRunOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("broken.tsv") && err.contains('3'), "{err}");

    // A config without a budget, and an unknown key.
    let cfg = config(&dir, "");
    let err = train_translation(&cfg, &TranslateRunOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("max_steps"), "{err}");
    let cfg = config(&dir, "max_steps = 2\nbatch_size = 3");
    let err = train_translation(&cfg, &TranslateRunOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("batch_size"), "{err}");
}

#[test]
fn over_long_pairs_follow_the_policy() {
    let tok = ferrite_text::TextTokenizer::train(ferrite_text::TokenizerKind::Char, 0, ["abcdef", "xyz"]).unwrap();
    let p = vec![Pair::new("abcdefabcdef", "xyz"), Pair::new("abc", "xyz")];
    let t = to_examples(&tok, &p, 6, TooLong::Truncate, "train").unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].src.len(), 6);
    assert_eq!(*t[0].src.last().unwrap(), ferrite_text::EOS);
    assert_eq!(to_examples(&tok, &p, 6, TooLong::Drop, "train").unwrap().len(), 1);
    let err = to_examples(&tok, &p, 6, TooLong::Error, "train")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("pair 1") && err.contains("max_tokens 6"), "{err}");
    // Unknown characters become <unk> instead of failing.
    let u = to_examples(&tok, &[Pair::new("a☃", "x")], 6, TooLong::Error, "train").unwrap();
    assert!(u[0].src.contains(&ferrite_text::UNK), "{:?}", u[0].src);
}
