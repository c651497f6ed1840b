//! `ferrite embed --model DIR "text" …` (sentence embeddings) and `ferrite similarity --model DIR
//! "a" "b" …` (cosine similarity of every pair), with a pretrained sentence-transformers model.

use clap::Args;
use ferrite::models::{cosine, SentenceEmbedder};
use ferrite::{Error, Result};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Args)]
pub struct EmbedArgs {
    /// A model directory (config.json, model.safetensors, tokenizer.json), e.g.
    /// .cache/assets/all-MiniLM-L6-v2 after `bash scripts/fetch-assets.sh minilm`.
    #[arg(long)]
    model: PathBuf,
    /// Texts to embed (default: one per line on standard input).
    texts: Vec<String>,
    /// Print one JSON object per text: {"text": …, "embedding": […]}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SimilarityArgs {
    /// A model directory (see `ferrite embed`).
    #[arg(long)]
    model: PathBuf,
    /// Two or more texts (default: one per line on standard input).
    texts: Vec<String>,
    /// Print the similarity matrix as JSON.
    #[arg(long)]
    json: bool,
}

/// The texts given as arguments, or else the non-blank lines of standard input.
pub(crate) fn texts_or_stdin(texts: Vec<String>) -> Result<Vec<String>> {
    if !texts.is_empty() {
        return Ok(texts);
    }
    std::io::stdin()
        .lock()
        .lines()
        .collect::<std::io::Result<Vec<String>>>()
        .map(|lines| lines.into_iter().filter(|l| !l.trim().is_empty()).collect())
        .map_err(|e| Error::Invalid {
            op: "standard input",
            detail: format!("cannot read standard input: {e}"),
        })
}

pub fn run_embed(args: EmbedArgs) -> Result<()> {
    let model = SentenceEmbedder::load(&args.model)?;
    let texts = texts_or_stdin(args.texts)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = model.embed(&refs)?;
    for (t, v) in texts.iter().zip(&vectors) {
        if args.json {
            println!("{}", serde_json::json!({"text": t, "embedding": v}));
        } else {
            let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:.4}")).collect();
            println!("{t}\t[{}, … ({} dims)]", head.join(", "), v.len());
        }
    }
    Ok(())
}

pub fn run_similarity(args: SimilarityArgs) -> Result<()> {
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
    if args.json {
        println!("{}", serde_json::json!({"texts": texts, "similarity": matrix}));
        return Ok(());
    }
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            println!("{:.4}\t{}\t{}", matrix[i][j], texts[i], texts[j]);
        }
    }
    Ok(())
}
