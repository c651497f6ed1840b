//! `ferrite transcribe --model DIR --input clip.wav`: speech to text with a Whisper model in
//! CTranslate2 format (e.g. `.cache/assets/whisper-tiny-en`, from `scripts/fetch-assets.sh`).

use crate::common::{minutes, print_json, print_line, Common};
use clap::Args;
use ferrite::models::formats::wav::read_wav;
use ferrite::models::{check_beam, Whisper};
use ferrite::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  espeak-ng -w fox.wav \"The quick brown fox jumps over the lazy dog.\"
  ferrite transcribe --model .cache/assets/whisper-tiny-en --input fox.wav
  ferrite transcribe --model .cache/assets/whisper-tiny-en --input a.wav --input b.wav --beam 4 --json")]
pub struct TranscribeArgs {
    /// A CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// 16-bit PCM WAV files (any sample rate; longer than 30 s is decoded window by window);
    /// repeat for several.
    #[arg(long, value_name = "FILE", required = true)]
    input: Vec<PathBuf>,
    /// Beam size (1 = greedy).
    #[arg(long, default_value_t = 1)]
    beam: usize,
    /// Refuse audio longer than this many minutes (a damaged header can make a small file look
    /// hours long; raise it for long recordings).
    #[arg(long, value_name = "MINUTES", default_value_t = 120.0, value_parser = minutes)]
    max_audio_minutes: f64,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: TranscribeArgs) -> Result<()> {
    args.common.apply()?;
    let model = Whisper::load(&args.model)?;
    let mut all = Vec::new();
    check_beam(args.beam)?;
    for wav in &args.input {
        let audio = read_wav(wav)?;
        let minutes = audio.samples.len() as f64 / audio.rate as f64 / 60.0;
        if minutes > args.max_audio_minutes {
            return Err(Error::file(
                wav,
                format!(
                    "holds {minutes:.1} minutes of audio, more than --max-audio-minutes {}",
                    args.max_audio_minutes
                ),
            ));
        }
        let t = model.transcribe_audio(&audio, args.beam)?;
        if args.common.json {
            let mut v = serde_json::to_value(&t).map_err(|e| ferrite::Error::Invalid {
                op: "transcribe",
                detail: e.to_string(),
            })?;
            v["file"] = serde_json::json!(wav.display().to_string());
            all.push(v);
        } else {
            print_line(&t.text)?;
        }
    }
    if args.common.json {
        print_json(&all)?;
    }
    Ok(())
}
