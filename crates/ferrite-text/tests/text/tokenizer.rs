//! TextTokenizer: training, round trips, unknown characters, save/load, special ids.

use ferrite_text::{normalize_whitespace, TextTokenizer, TokenizerKind, BOS, EOS, PAD, UNK};
use std::path::PathBuf;

/// A few hundred English and French sentences from templates, deterministic.
fn corpus() -> Vec<String> {
    let en_subj = [
        "The cat",
        "My old dog",
        "A young teacher",
        "Our neighbours",
        "The little girl",
        "Paul",
    ];
    let en_verb = ["sees", "likes", "is painting", "found", "will visit", "didn't forget"];
    let en_obj = [
        "the red house.",
        "a blue bicycle!",
        "the market, today.",
        "3 apples?",
        "the well-known café.",
    ];
    let fr_subj = [
        "Le chat",
        "Mon vieux chien",
        "Une jeune professeure",
        "Nos voisins",
        "La petite fille",
        "Paul",
    ];
    let fr_verb = ["voit", "aime", "peint", "a trouvé", "visitera", "n'a pas oublié"];
    let fr_obj = [
        "la maison rouge.",
        "un vélo bleu !",
        "le marché, aujourd'hui.",
        "3 pommes ?",
        "le café « célèbre ».",
    ];
    let mut out = Vec::new();
    for (i, s) in en_subj.iter().enumerate() {
        for (j, v) in en_verb.iter().enumerate() {
            for (k, o) in en_obj.iter().enumerate() {
                out.push(format!("{s} {v} {o}"));
                out.push(format!("{} {} {}", fr_subj[i], fr_verb[j], fr_obj[k]));
            }
        }
    }
    out
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrite_text_tok_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn train(kind: TokenizerKind) -> TextTokenizer {
    let texts = corpus();
    TextTokenizer::train(kind, 300, texts.iter().map(String::as_str)).expect("train")
}

#[test]
fn round_trip_both_kinds() {
    let texts = corpus();
    assert!(texts.len() >= 300);
    for kind in [TokenizerKind::Char, TokenizerKind::Bpe] {
        let tok = train(kind);
        for s in &texts {
            let messy = format!("  {}\t\n", s.replace(' ', "  "));
            let ids = tok.encode(&messy).unwrap();
            assert!(!ids.contains(&UNK), "{kind:?}: {s}");
            assert!(ids.iter().all(|&id| id > UNK), "no special ids from plain text");
            assert_eq!(tok.decode(&ids).unwrap(), normalize_whitespace(&messy), "{kind:?}");
        }
        // Unicode whitespace (no-break, ideographic, line separator) is normalized like ASCII whitespace.
        let unicode_ws = "\u{a0}Le\u{a0}chat\u{3000}\u{202f}voit\u{2028}le marché.\u{85}";
        let ids = tok.encode(unicode_ws).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), normalize_whitespace(unicode_ws), "{kind:?}");
        assert_eq!(tok.decode(&ids).unwrap(), "Le chat voit le marché.");
        assert_eq!(tok.encode("").unwrap(), Vec::<u32>::new());
        assert_eq!(tok.encode(" \n ").unwrap(), Vec::<u32>::new());
        assert_eq!(tok.decode(&[]).unwrap(), "");
    }
}

#[test]
fn bpe_compresses_and_respects_vocab_size() {
    let (chars, bpe) = (train(TokenizerKind::Char), train(TokenizerKind::Bpe));
    // 300 is an upper bound: this small template corpus runs out of pairs to merge before reaching it.
    assert!(
        bpe.vocab_size() <= 300 && bpe.vocab_size() > 200,
        "bpe vocab {}",
        bpe.vocab_size()
    );
    let texts = corpus();
    let small = TextTokenizer::train(TokenizerKind::Bpe, 120, texts.iter().map(String::as_str)).unwrap();
    assert_eq!(small.vocab_size(), 120);
    assert!(chars.vocab_size() < 100, "char vocab {}", chars.vocab_size());
    let (mut n_char, mut n_bpe) = (0, 0);
    for s in corpus() {
        n_char += chars.encode(&s).unwrap().len();
        n_bpe += bpe.encode(&s).unwrap().len();
    }
    assert!(n_bpe * 2 < n_char, "bpe {n_bpe} tokens vs char {n_char}");
}

#[test]
fn unseen_characters_become_unk() {
    for kind in [TokenizerKind::Char, TokenizerKind::Bpe] {
        let tok = train(kind);
        let ids = tok.encode("Le chat ☃ voit Ω.").unwrap();
        assert_eq!(ids.iter().filter(|&&id| id == UNK).count(), 2, "{kind:?}: {ids:?}");
        assert_eq!(tok.decode(&ids).unwrap(), "Le chat <unk> voit <unk>.");
    }
}

#[test]
fn decode_skips_pad_bos_eos() {
    let tok = train(TokenizerKind::Bpe);
    let mut ids = vec![BOS];
    ids.extend(tok.encode("Paul aime le marché.").unwrap());
    ids.extend([EOS, PAD, PAD]);
    assert_eq!(tok.decode(&ids).unwrap(), "Paul aime le marché.");
}

#[test]
fn save_and_load_give_identical_encodings() {
    let dir = temp_dir("save");
    for kind in [TokenizerKind::Char, TokenizerKind::Bpe] {
        let tok = train(kind);
        let path = dir.join(format!("{kind:?}.json"));
        tok.save(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["model"]["type"], "BPE");
        let loaded = TextTokenizer::from_file(&path).unwrap();
        assert_eq!(loaded.kind(), kind);
        assert_eq!(loaded.vocab_size(), tok.vocab_size());
        for s in corpus().iter().chain([&"</s> inconnu ☃".to_string()]) {
            assert_eq!(loaded.encode(s).unwrap(), tok.encode(s).unwrap(), "{kind:?}: {s}");
        }
        for (id, token) in ["<pad>", "<s>", "</s>", "<unk>"].iter().enumerate() {
            assert_eq!(loaded.id_to_token(id as u32).as_deref(), Some(*token));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_is_deterministic() {
    let dir = temp_dir("determinism");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    train(TokenizerKind::Bpe).save(&a).unwrap();
    train(TokenizerKind::Bpe).save(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn from_file_errors_name_the_file() {
    let dir = temp_dir("errors");
    let missing = dir.join("missing.json");
    let err = TextTokenizer::from_file(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.json") && err.contains("cannot read"), "{err}");

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let err = TextTokenizer::from_file(&garbage).unwrap_err().to_string();
    assert!(err.contains("garbage.json") && err.contains("not valid JSON"), "{err}");

    // Swap the ids of "<s>" and "</s>": loading must refuse rather than silently mis-mark sequence ends.
    let good = dir.join("good.json");
    train(TokenizerKind::Char).save(&good).unwrap();
    let text = std::fs::read_to_string(&good).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["model"]["vocab"]["<s>"] = 2.into();
    json["model"]["vocab"]["</s>"] = 1.into();
    for t in json["added_tokens"].as_array_mut().unwrap() {
        let swapped = match t["content"].as_str() {
            Some("<s>") => 2,
            Some("</s>") => 1,
            _ => continue,
        };
        t["id"] = swapped.into();
    }
    let swapped = dir.join("swapped.json");
    std::fs::write(&swapped, json.to_string()).unwrap();
    let err = TextTokenizer::from_file(&swapped).unwrap_err().to_string();
    assert!(
        err.contains("swapped.json") && err.contains("\"<s>\" has id 2, expected id 1"),
        "{err}"
    );

    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["model"]["unk_token"] = serde_json::Value::Null;
    let no_unk = dir.join("no_unk.json");
    std::fs::write(&no_unk, json.to_string()).unwrap();
    let err = TextTokenizer::from_file(&no_unk).unwrap_err().to_string();
    assert!(err.contains("no_unk.json") && err.contains("unk_token"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
