//! BLEU, chrF and 13a tokenization against sacreBLEU, from `tests/reference/text.json`
//! (written by `tools/make_text_reference.py`; the sacreBLEU version is recorded in the file).

use ferrite_text::{corpus_bleu, corpus_chrf, tokenize_13a};
use serde_json::Value;

/// Absolute tolerance on scores in 0..100. The implementation follows sacreBLEU's operation order, so results agree
/// to the last bit or two; 1e-6 leaves room for a different `exp`/`ln` in libm without hiding real differences (one
/// n-gram more or less changes a score by far more).
const TOL: f64 = 1e-6;

fn reference() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/text.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("text.json is valid JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array of strings")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn close(name: &str, what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL,
        "{name}: {what} = {got}, sacreBLEU gives {want}"
    );
}

#[test]
fn reference_records_sacrebleu_version() {
    let r = reference();
    assert!(r["sacrebleu_version"].as_str().is_some_and(|v| v.starts_with("2.")));
    assert!(r["corpora"].as_array().is_some_and(|c| c.len() >= 5));
}

#[test]
fn corpus_bleu_matches_sacrebleu() {
    for case in reference()["corpora"].as_array().expect("corpora") {
        let name = case["name"].as_str().expect("name");
        let (hyps, refs) = (strings(&case["hyps"]), strings(&case["refs"]));
        let want = &case["bleu"];
        let got = corpus_bleu(&hyps, &refs).expect("equal lengths");
        assert_eq!(
            got.sys_len as u64,
            want["sys_len"].as_u64().expect("sys_len"),
            "{name}: sys_len"
        );
        assert_eq!(
            got.ref_len as u64,
            want["ref_len"].as_u64().expect("ref_len"),
            "{name}: ref_len"
        );
        close(name, "bp", got.bp, want["bp"].as_f64().expect("bp"));
        for (n, p) in want["precisions"].as_array().expect("precisions").iter().enumerate() {
            close(
                name,
                &format!("precision {}", n + 1),
                got.precisions[n],
                p.as_f64().expect("precision"),
            );
        }
        close(name, "score", got.score, want["score"].as_f64().expect("score"));
    }
}

#[test]
fn corpus_chrf_matches_sacrebleu() {
    for case in reference()["corpora"].as_array().expect("corpora") {
        let name = case["name"].as_str().expect("name");
        let got = corpus_chrf(&strings(&case["hyps"]), &strings(&case["refs"])).expect("equal lengths");
        close(name, "chrF", got, case["chrf"].as_f64().expect("chrf"));
    }
}

#[test]
fn tokenize_13a_matches_sacrebleu() {
    for case in reference()["tokenize_13a"].as_array().expect("tokenize_13a") {
        let input = case["input"].as_str().expect("input");
        assert_eq!(
            tokenize_13a(input),
            case["output"].as_str().expect("output"),
            "input {input:?}"
        );
    }
}
