//! `ferrite explain RUN_DIR --input FILE --method saliency|grad_x_input|smoothgrad|ig|occlusion
//! --out FILE.png`: why a trained run gave its answer for one input (a CSV row or an image file);
//! `ferrite explain RUN_DIR --text "…" --method ig|saliency|grad_x_input|smoothgrad|attention
//! --out FILE.html|png` for a fine-tuned text classifier; `ferrite explain WHISPER_DIR --input
//! clip.wav --method attention` for speech.

use clap::Args;
use ferrite::explain::{
    explain_audio_run, explain_run, explain_text_run, is_sequential_run, is_whisper_model, AttentionPart, Baseline,
    ExplainOptions, Explanation, Method, Quadrature, TextRequest,
};
use ferrite::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExplainArgs {
    /// A run directory written by `ferrite train` or `ferrite finetune`, a Hugging Face
    /// sequence-classification model directory, a GGUF language model (with --text) or a
    /// Whisper model directory (with --input clip.wav).
    run_dir: PathBuf,
    /// A CSV with the run's feature columns (see --row), an image file for image runs, or a WAV
    /// file for a Whisper model.
    #[arg(long, required_unless_present = "text")]
    input: Option<PathBuf>,
    /// The text to explain (text classifiers).
    #[arg(long, conflicts_with = "input")]
    text: Option<String>,
    /// saliency, grad_x_input, smoothgrad, ig (integrated gradients), occlusion (images and
    /// tables) or attention (text classifiers).
    #[arg(long, default_value = "ig")]
    method: String,
    /// Attention: the layer to show (default: the last).
    #[arg(long)]
    layer: Option<usize>,
    /// Attention: one head (default: every head and their mean).
    #[arg(long)]
    head: Option<usize>,
    /// Attention of a translation run or Whisper: cross (output tokens over source tokens or
    /// audio frames, the default), encoder or decoder.
    #[arg(long)]
    part: Option<String>,
    /// Output (class) to explain; default: the predicted class (output 0 for regression).
    #[arg(long)]
    target: Option<usize>,
    /// Data row of a CSV input (0-based).
    #[arg(long, default_value_t = 0)]
    row: usize,
    /// Baseline for ig and occlusion: `mean`, `black` (0) or a raw input value.
    /// Default: black for images, mean for tables.
    #[arg(long)]
    baseline: Option<String>,
    /// Integrated-gradients steps.
    #[arg(long, default_value_t = 64)]
    steps: usize,
    /// Integrated-gradients quadrature: riemann_middle (midpoint rule, the default: best on
    /// ReLU networks), gausslegendre (Captum's default), riemann_left, riemann_right,
    /// riemann_trapezoid, or adaptive (midpoint rule, then cells holding a ReLU kink halved until
    /// the attributions add up to within 0.5%; up to 16× --steps gradients).
    #[arg(long, default_value = "riemann_middle")]
    quadrature: String,
    /// SmoothGrad: noisy samples and the noise's standard deviation (model-input units).
    #[arg(long, default_value_t = 25)]
    samples: usize,
    #[arg(long, default_value_t = 0.15)]
    stdev: f64,
    /// Occlusion window and strides, comma-separated, one per axis of a sample (e.g. 1,4,4).
    #[arg(long, value_delimiter = ',')]
    window: Option<Vec<usize>>,
    #[arg(long, value_delimiter = ',')]
    strides: Option<Vec<usize>>,
    /// The picture to write: PNG, or for text classifiers `.html` (coloured tokens, or
    /// attention maps with a layer/head picker).
    #[arg(long, default_value = "explanation.png")]
    out: PathBuf,
    /// Print the attributions, target and (ig) completeness gap as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    if let Some(text) = &args.text {
        return run_text(&args, text);
    }
    let input = args.input.clone().ok_or_else(|| Error::Invalid {
        op: "explain",
        detail: "give --input (a CSV or an image) or --text".into(),
    })?;
    if is_whisper_model(&args.run_dir) {
        let v = explain_audio_run(&args.run_dir, &input, &attention_request(&args)?, &args.out)?;
        return print_report(&v, &args);
    }
    let opts = options(&args)?;
    let e = explain_run(&args.run_dir, &input, &opts, &args.out)?;
    print_explanation(&e, args.json);
    Ok(())
}

fn options(args: &ExplainArgs) -> Result<ExplainOptions> {
    let mut opts = ExplainOptions::new(Method::parse(&args.method)?);
    opts.target = args.target;
    opts.row = args.row;
    opts.baseline = args.baseline.as_deref().map(Baseline::parse).transpose()?;
    opts.ig.steps = args.steps;
    opts.ig.quadrature = Quadrature::parse(&args.quadrature)?;
    opts.smooth.samples = args.samples;
    opts.smooth.stdev = args.stdev;
    opts.window = args.window.clone();
    opts.strides = args.strides.clone();
    opts.layer = args.layer;
    opts.head = args.head;
    Ok(opts)
}

fn run_text(args: &ExplainArgs, text: &str) -> Result<()> {
    if is_sequential_run(&args.run_dir) {
        return Err(Error::Invalid {
            op: "explain",
            detail: format!(
                "{} is a `ferrite train` run: give --input (a CSV or an image), not --text",
                args.run_dir.display()
            ),
        });
    }
    let v = explain_text_run(&args.run_dir, text, &attention_request(args)?, &args.out)?;
    print_report(&v, args)
}

/// Attention with the layer/head/part flags for `--method attention`, else attributions.
fn attention_request(args: &ExplainArgs) -> Result<TextRequest> {
    Ok(if args.method == "attention" {
        TextRequest::Attention {
            layer: args.layer,
            head: args.head,
            part: args.part.as_deref().map(AttentionPart::parse).transpose()?,
        }
    } else {
        TextRequest::Attribution(options(args)?)
    })
}

/// Prints a text/speech report: the JSON, or the picture, token scores and completeness gap.
fn print_report(v: &serde_json::Value, args: &ExplainArgs) -> Result<()> {
    if args.json {
        println!("{v}");
    } else {
        let what = args
            .text
            .clone()
            .or_else(|| args.input.as_ref().map(|p| p.display().to_string()));
        println!(
            "{} for {:?}: picture {}",
            v["method"],
            what.unwrap_or_default(),
            args.out.display()
        );
        if let Some(t) = v["transcript"].as_str() {
            println!("transcript: {t}");
        }
        if let (Some(tokens), Some(scores)) = (v["tokens"].as_array(), v["token_scores"].as_array()) {
            for (t, s) in tokens.iter().zip(scores) {
                println!("{:>16} {:+.5}", t.as_str().unwrap_or(""), s.as_f64().unwrap_or(0.0));
            }
        }
        if let Some(gap) = v["completeness_gap"].as_f64() {
            println!("completeness gap {:.4}%", 100.0 * gap);
        }
    }
    Ok(())
}

fn print_explanation(e: &Explanation, json: bool) {
    if json {
        println!("{}", serde_json::to_string(&e).unwrap_or_default());
    } else {
        let name = e.target_name.clone().unwrap_or_else(|| e.target.to_string());
        println!(
            "explained output {} ({name}) = {:.4}; picture: {}",
            e.target, e.output, e.picture
        );
        if let Some(c) = &e.completeness {
            println!(
                "integrated gradients, {} steps: Σ attributions − (f(x) − f(baseline)) = {:.3e} (completeness gap {:.4}%)",
                c.steps,
                c.delta,
                100.0 * c.completeness_gap
            );
        }
        if let Some(names) = &e.features {
            let mut order: Vec<usize> = (0..names.len()).collect();
            order.sort_by(|&a, &b| e.attributions[b].abs().total_cmp(&e.attributions[a].abs()));
            for &j in order.iter().take(10) {
                println!("{:>16} {:+.5}", names[j], e.attributions[j]);
            }
        }
    }
}
