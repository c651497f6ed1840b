//! `ferrite embed --model DIR "text" …` (sentence embeddings) and `ferrite similarity --model DIR
//! "a" "b" …` (cosine similarity of every pair), with a pretrained sentence-transformers model.

use crate::common::{print_json, print_line, texts_or_stdin, Common};
use clap::Args;
use ferrite::models::{cosine, SentenceEmbedder};
use ferrite::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite embed --model .cache/assets/all-MiniLM-L6-v2 \"A sentence\" --json
  ferrite embed --model .cache/assets/all-MiniLM-L6-v2 < sentences.txt")]
pub struct EmbedArgs {
    /// A model directory (config.json, model.safetensors, tokenizer.json), e.g.
    /// .cache/assets/all-MiniLM-L6-v2 after `bash scripts/fetch-assets.sh minilm`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Texts to embed (default: one per line on standard input).
    texts: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
#[command(after_help = "Example:
  ferrite similarity --model .cache/assets/all-MiniLM-L6-v2 \"The weather is lovely today.\" \"It's so sunny outside!\"")]
pub struct SimilarityArgs {
    /// A model directory (see `ferrite embed`).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Two or more texts (default: one per line on standard input).
    texts: Vec<String>,
    #[command(flatten)]
    common: Common,
}

pub fn run_embed(args: EmbedArgs) -> Result<()> {
    args.common.apply()?;
    let model = SentenceEmbedder::load(&args.model)?;
    let texts = texts_or_stdin(args.texts)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = model.embed(&refs)?;
    if args.common.json {
        let rows: Vec<serde_json::Value> = texts
            .iter()
            .zip(&vectors)
            .map(|(t, v)| serde_json::json!({"text": t, "embedding": v}))
            .collect();
        return print_json(&rows);
    }
    for (t, v) in texts.iter().zip(&vectors) {
        let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.4}")).collect();
        print_line(&format!("{t}\t[{}, … ({} dims)]", head.join(", "), v.len()))?;
    }
    Ok(())
}

pub fn run_similarity(args: SimilarityArgs) -> Result<()> {
    args.common.apply()?;
    let texts = texts_or_stdin(args.texts)?;
    if texts.len() < 2 {
        return Err(Error::Invalid {
            op: "similarity",
            detail: "give at least two texts".into(),
        });
    }
    let model = SentenceEmbedder::load(&args.model)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let v = model.embed(&refs)?;
    let matrix: Vec<Vec<f32>> = v.iter().map(|a| v.iter().map(|b| cosine(a, b)).collect()).collect();
    if args.common.json {
        return print_json(&serde_json::json!({"texts": texts, "similarity": matrix}));
    }
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            print_line(&format!("{:.4}\t{}\t{}", matrix[i][j], texts[i], texts[j]))?;
        }
    }
    Ok(())
}
