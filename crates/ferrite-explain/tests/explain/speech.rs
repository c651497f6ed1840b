//! Attention maps of Whisper tiny.en (`scripts/fetch-assets.sh whisper`) over espeak-ng speech:
//! 4 layers × 6 heads of probability rows in every part, causal decoder rows, frames cut to the
//! audio, cross-attention that moves forward through the recording as the words do; PNG and HTML
//! pictures; a missing layer is named.

use ferrite_explain::*;
use std::path::Path;

#[test]
fn whisper_attention_over_speech() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = ferrite_core::testing::cached_asset(&root, "whisper-tiny-en", "model.bin");
    let dir = std::env::temp_dir().join(format!("ferrite-explain-speech-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("fox.wav");
    let status = std::process::Command::new("espeak-ng")
        .args([
            "-w",
            wav.to_str().unwrap(),
            "The quick brown fox jumps over the lazy dog.",
        ])
        .status()
        .expect("espeak-ng must be installed (.ci/run installs it)");
    assert!(status.success());
    let a = whisper_attention(&model, &wav).unwrap();
    assert!(a.translation.contains("lazy dog"), "{}", a.translation);
    // ~2.8 s of speech: ~140 frames of 20 ms.
    let frames = a.cross.keys.len();
    assert!((120..=160).contains(&frames), "{frames} frames");
    assert_eq!(a.encoder.keys.len(), frames);
    for part in [&a.encoder, &a.decoder, &a.cross] {
        assert_eq!((part.layers, part.heads), (4, 6));
        let k = part.keys.len();
        for m in part.maps.iter().flatten() {
            assert_eq!(m.len(), part.queries.len() * k);
            for (i, row) in m.chunks(k).enumerate() {
                // Rows over audio frames also weigh the silence padding after the audio, cut off
                // here: they sum to at most 1.
                let sum: f32 = row.iter().sum();
                if !std::ptr::eq(part, &a.decoder) {
                    assert!(sum > 0.0 && sum <= 1.0 + 1e-4);
                } else {
                    assert!((sum - 1.0).abs() < 1e-4, "row sums to {sum}");
                }
                if std::ptr::eq(part, &a.decoder) {
                    assert!(row[i + 1..].iter().all(|&v| v == 0.0), "causal");
                }
            }
        }
    }
    // Where each token listens, averaged over the heads of the last layer: the centre of mass
    // of " The" comes before that of " dog".
    let mean = a.cross.select(3, None).unwrap();
    let centre = |row: &[f32]| {
        let z: f32 = row.iter().sum();
        row.iter().enumerate().map(|(j, &v)| j as f32 * v).sum::<f32>() / z
    };
    let at = |word: &str| {
        let i = a
            .cross
            .queries
            .iter()
            .position(|q| q.trim() == word)
            .unwrap_or_else(|| panic!("{word} in {:?}", a.cross.queries));
        // The row of the position that read the token before `word` produced it.
        centre(&mean[i * frames..(i + 1) * frames])
    };
    let (the, dog) = (at("The"), at("dog"));
    eprintln!("cross-attention centre: 'The' {the:.1}, 'dog' {dog:.1} of {frames} frames");
    assert!(the < dog, "'The' at {the}, 'dog' at {dog}");
    for out in ["cross.png", "cross.html"] {
        let req = TextRequest::Attention {
            layer: None,
            head: None,
            part: None,
        };
        let v = explain_audio_run(&model, &wav, &req, &dir.join(out)).unwrap();
        assert!(v["transcript"].as_str().unwrap().contains("fox"));
        assert!(std::fs::metadata(dir.join(out)).unwrap().len() > 1000);
    }
    let req = TextRequest::Attention {
        layer: Some(4),
        head: None,
        part: Some(AttentionPart::Encoder),
    };
    let e = explain_audio_run(&model, &wav, &req, &dir.join("x.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer 4") && e.contains("4 layers"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}
