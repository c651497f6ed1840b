//! Attention maps of a Whisper model over a recording: the first 30-second window is
//! transcribed, then run once more over its own transcript with every attention captured —
//! encoder self-attention over audio frames, decoder self-attention over tokens, and
//! cross-attention, which shows where in the audio each written token was heard.
//!
//! Layer: explain. Frames are the encoder's positions, 20 ms of audio each, labelled by time.

use crate::seq2seq::TranslationAttention;
use crate::text::AttentionMaps;
use crate::text_run::{write_attention, TextRequest};
use ferrite_core::{Error, Result, Tensor};
use ferrite_models::formats::wav::{read_wav, resample};
use ferrite_models::Whisper;
use ferrite_models::SAMPLE_RATE;
use serde_json::{json, Value};
use std::path::Path;

/// Seconds of audio per encoder position.
const FRAME_SECONDS: f64 = 0.02;

/// Whether `dir` holds a CTranslate2 Whisper model (`model.bin` and `config.json`).
pub fn is_whisper_model(dir: &Path) -> bool {
    dir.join("model.bin").is_file() && dir.join("config.json").is_file()
}

/// Transcribes `wav` with the Whisper model in `model` and returns the attention behind it, in
/// the shape translation attention has: `translation` holds the transcript, `encoder` frames
/// over frames, `decoder` tokens over tokens, `cross` tokens over frames.
///
/// # Errors
/// An unreadable model or WAV file (named), model failures.
pub fn whisper_attention(model: &Path, wav: &Path) -> Result<TranslationAttention> {
    let w = Whisper::load(model)?;
    let audio = read_wav(wav)?;
    let samples = resample(&audio.samples, audio.rate, SAMPLE_RATE);
    let a = w.attention_maps(&samples)?;
    let name = |i: u32| w.tokenizer.decode(&[i], false).unwrap_or_else(|_| format!("<{i}>"));
    // Decoder position t reads tokens[..=t] and emits the next token (the last one emits
    // <|endoftext|>): rows are labelled with what each position produced.
    let produced: Vec<String> = a
        .tokens
        .iter()
        .skip(1)
        .map(|&i| name(i))
        .chain(std::iter::once("<|endoftext|>".to_string()))
        .collect();
    let frames: Vec<String> = (0..a.frames)
        .map(|f| format!("{:.2}s", f as f64 * FRAME_SECONDS))
        .collect();
    let title = format!("{} → {}", wav.display(), a.transcript.text);
    let build = |layers: &[Tensor], queries: &[String], keys: &[String]| {
        AttentionMaps::from_layers(&title, queries.to_vec(), keys.to_vec(), layers)
    };
    Ok(TranslationAttention {
        encoder: build(&a.encoder, &frames, &frames)?,
        decoder: build(&a.decoder, &produced, &produced)?,
        cross: build(&a.cross, &produced, &frames)?,
        translation: a.transcript.text.clone(),
    })
}

/// `ferrite explain WHISPER_DIR --input clip.wav --method attention`: writes the picture of one
/// part (default: cross-attention) and returns the JSON report with the transcript.
///
/// # Errors
/// Attribution methods (only attention is offered for speech), a layer or head that does not
/// exist (named), unreadable files, model failures.
pub fn explain_audio_run(dir: &Path, wav: &Path, request: &TextRequest, out: &Path) -> Result<Value> {
    let TextRequest::Attention { layer, head, part } = request else {
        return Err(Error::Invalid {
            op: "explain",
            detail: "Whisper models are explained with --method attention".into(),
        });
    };
    let all = whisper_attention(dir, wav)?;
    let part = part.unwrap_or_default();
    let extra = json!({ "transcript": all.translation, "part": part });
    write_attention(all.part(part), *layer, *head, out, extra)
}
