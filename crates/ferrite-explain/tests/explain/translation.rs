//! Attention maps of a translation run: a small char-level model trained for a few steps on
//! number words; the cross-attention rows are the produced tokens, the columns the source
//! tokens, every row is a probability distribution, and bad parts/layers/methods are named.

use ferrite_explain::*;
use ferrite_train::seq2seq::{train_translation, TranslateRunOptions};
use std::path::PathBuf;

#[test]
fn translation_attention_maps() {
    let dir = std::env::temp_dir().join(format!("ferrite-explain-translate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let words = [("one", "un"), ("two", "deux"), ("three", "trois"), ("four", "quatre")];
    let mut tsv = String::from("source\ttarget\n");
    for i in 0..200 {
        let (a, b) = (words[i % 4], words[(i / 4) % 4]);
        tsv.push_str(&format!("{} {}\t{} {}\n", a.0, b.0, a.1, b.1));
    }
    std::fs::write(dir.join("pairs.tsv"), tsv).unwrap();
    let config = "task = \"translate\"\nseed = 1\n[data]\ntrain = \"pairs.tsv\"\nvalid_fraction = 0.05\ntest_fraction = 0.05\nmax_tokens = 16\n[tokenizer]\nkind = \"char\"\n[model]\nd_model = 16\nheads = 2\nencoder_layers = 1\ndecoder_layers = 2\nffn = 32\ndropout = 0.0\nactivation = \"relu\"\nnorm_first = true\nmax_positions = 32\n[training]\nbatch_tokens = 256\nlr = 3e-3\nwarmup_steps = 2\nvalid_every = 4\nmax_steps = 4\n[decode]\nbeam = 1\n";
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let run: PathBuf = dir.join("run");
    let opts = TranslateRunOptions {
        out: Some(run.clone()),
        ..Default::default()
    };
    train_translation(&dir.join("run.toml"), &opts).unwrap();

    let m = ferrite_train::seq2seq::TranslationModel::load(&run).unwrap();
    let a = translation_attention(&m, "two one", 1).unwrap();
    // Columns: the source's tokens + </s>; rows: the produced tokens + </s>.
    assert_eq!(a.cross.keys.len(), m.tokenizer.encode("two one").unwrap().len() + 1);
    assert_eq!(a.cross.keys.last().map(String::as_str), Some("</s>"));
    assert_eq!(a.encoder.queries, a.cross.keys);
    assert_eq!(a.cross.queries, a.decoder.keys);
    assert_eq!(a.cross.queries.last().map(String::as_str), Some("</s>"));
    let produced: String = a.cross.queries[..a.cross.queries.len() - 1].concat();
    assert_eq!(produced.replace('▁', " ").trim(), a.translation.trim());
    assert_eq!((a.cross.layers, a.cross.heads, a.encoder.layers), (2, 2, 1));
    for maps in [&a.encoder, &a.decoder, &a.cross] {
        let k = maps.keys.len();
        for m in maps.maps.iter().flatten() {
            assert_eq!(m.len(), maps.queries.len() * k);
            assert!(m.chunks(k).all(|row| (row.iter().sum::<f32>() - 1.0).abs() < 1e-4));
        }
    }
    // The decoder never attends ahead.
    let d = a.decoder.select(0, Some(0)).unwrap();
    let t = a.decoder.keys.len();
    assert!((0..t).all(|i| (i + 1..t).all(|j| d[i * t + j] == 0.0)));

    let png = dir.join("cross.png");
    let req = TextRequest::Attention {
        layer: None,
        head: None,
        part: None,
    };
    let v = explain_text_run(&run, "two one", &req, &png).unwrap();
    assert_eq!(v["part"], "cross");
    assert_eq!(v["layer"], 1);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let bad = TextRequest::Attention {
        layer: Some(2),
        head: None,
        part: Some(AttentionPart::Decoder),
    };
    let e = explain_text_run(&run, "two one", &bad, &png).unwrap_err().to_string();
    assert!(e.contains("layer 2") && e.contains("2 layers"), "{e}");
    let e = explain_text_run(
        &run,
        "two",
        &TextRequest::Attribution(ExplainOptions::new(Method::Saliency)),
        &png,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--method attention"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}
