//! `ferrite transcribe --model DIR clip.wav`: speech to text with a Whisper model in
//! CTranslate2 format (e.g. `.cache/assets/whisper-tiny-en`, from `scripts/fetch-assets.sh`).

use clap::Args;
use ferrite::models::Whisper;
use ferrite::{set_num_threads, Result};
use std::path::PathBuf;

#[derive(Args)]
pub struct TranscribeArgs {
    /// A CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// 16-bit PCM WAV files (any sample rate; longer than 30 s is decoded window by window).
    #[arg(required = true)]
    audio: Vec<PathBuf>,
    /// Beam size (1 = greedy).
    #[arg(long, default_value_t = 1)]
    beam: usize,
    /// Kernel threads (default: FERRITE_NUM_THREADS or all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object per file: text, token ids per window, audio and wall seconds.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TranscribeArgs) -> Result<()> {
    if let Some(t) = args.threads {
        set_num_threads(t);
    }
    let model = Whisper::load(&args.model)?;
    for wav in &args.audio {
        let t = model.transcribe_file(wav, args.beam)?;
        if args.json {
            let mut v = serde_json::to_value(&t).unwrap_or_default();
            v["file"] = serde_json::json!(wav.display().to_string());
            println!("{v}");
        } else {
            println!("{}", t.text);
        }
    }
    Ok(())
}
