//! `ferrite explain --model RUN --input FILE --method …`: why a trained run gave its answer for
//! one input (a CSV row or an image file); `ferrite explain --model RUN "text" --method …` for a
//! fine-tuned text classifier, a translation run or a GGUF language model; `--input clip.wav`
//! for a Whisper model directory.

use crate::common::{print_json, print_line, Common};
use clap::{Args, ValueEnum};
use ferrite::explain::{
    explain_audio_run, explain_run, explain_text_run, is_sequential_run, is_whisper_model, AttentionPart, Baseline,
    ExplainOptions, Explanation, Method, Quadrature, TextRequest,
};
use ferrite::{Error, Result};
use std::path::PathBuf;

/// Attribution methods and attention maps.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    /// |∂output/∂input|.
    Saliency,
    /// input × gradient.
    GradXInput,
    /// Gradients averaged over noisy copies of the input (--samples, --stdev).
    Smoothgrad,
    /// Integrated gradients from a baseline (--steps, --quadrature, --baseline).
    Ig,
    /// Output change when windows of the input are replaced by the baseline (--window, --strides).
    Occlusion,
    /// Attention maps (Vision Transformers, text models, translation, GGUF models, Whisper).
    Attention,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Saliency => Method::Saliency,
            MethodArg::GradXInput => Method::InputXGradient,
            MethodArg::Smoothgrad => Method::SmoothGrad,
            MethodArg::Ig => Method::IntegratedGradients,
            MethodArg::Occlusion => Method::Occlusion,
            MethodArg::Attention => Method::Attention,
        }
    }
}

/// Integrated-gradients quadrature rules (Captum's, plus ferrite's adaptive one).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum QuadratureArg {
    /// Midpoint rule: best on ReLU networks.
    RiemannMiddle,
    /// Gauss–Legendre nodes (Captum's default).
    Gausslegendre,
    RiemannLeft,
    RiemannRight,
    RiemannTrapezoid,
    /// Midpoint rule, then cells holding a ReLU kink halved until the attributions add up to
    /// within 0.5% (up to 16× --steps gradients).
    Adaptive,
}

impl From<QuadratureArg> for Quadrature {
    fn from(q: QuadratureArg) -> Self {
        match q {
            QuadratureArg::RiemannMiddle => Quadrature::RiemannMiddle,
            QuadratureArg::Gausslegendre => Quadrature::GaussLegendre,
            QuadratureArg::RiemannLeft => Quadrature::RiemannLeft,
            QuadratureArg::RiemannRight => Quadrature::RiemannRight,
            QuadratureArg::RiemannTrapezoid => Quadrature::RiemannTrapezoid,
            QuadratureArg::Adaptive => Quadrature::Adaptive,
        }
    }
}

/// Which attention of an encoder–decoder model.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum PartArg {
    /// Output tokens over source tokens or audio frames.
    Cross,
    /// Source tokens (or audio frames) over themselves.
    Encoder,
    /// Output tokens over earlier output tokens.
    Decoder,
}

impl From<PartArg> for AttentionPart {
    fn from(p: PartArg) -> Self {
        match p {
            PartArg::Cross => AttentionPart::Cross,
            PartArg::Encoder => AttentionPart::Encoder,
            PartArg::Decoder => AttentionPart::Decoder,
        }
    }
}

fn parse_baseline(s: &str) -> std::result::Result<Baseline, String> {
    Baseline::parse(s).map_err(|e| e.to_string())
}

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite explain --model runs/digits --input data/digits.csv --row 5 --method ig --out ig.png
  ferrite explain --model runs/sentiment \"the food was wonderful\" --method attention --out attention.html
  ferrite explain --model .cache/assets/whisper-tiny-en --input fox.wav --method attention --json")]
pub struct ExplainArgs {
    /// A run directory (`ferrite train` or `ferrite finetune`), a Hugging Face
    /// sequence-classification directory, a GGUF language model (with TEXT) or a Whisper model
    /// directory (with --input clip.wav).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The text to explain (text classifiers, translation runs, GGUF models).
    #[arg(conflicts_with = "input")]
    text: Option<String>,
    /// A CSV with the run's feature columns (see --row), an image file for image runs, or a WAV
    /// file for a Whisper model.
    #[arg(long, value_name = "FILE", required_unless_present = "text")]
    input: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "ig")]
    method: MethodArg,
    /// Attention: the layer to show (default: the last).
    #[arg(long)]
    layer: Option<usize>,
    /// Attention: one head (default: every head and their mean).
    #[arg(long)]
    head: Option<usize>,
    /// Attention of a translation run or Whisper (default: cross).
    #[arg(long, value_enum)]
    part: Option<PartArg>,
    /// Output (class) to explain; default: the predicted class (output 0 for regression).
    #[arg(long)]
    target: Option<usize>,
    /// Data row of a CSV input (0-based).
    #[arg(long, default_value_t = 0)]
    row: usize,
    /// Baseline for ig and occlusion: mean, black (0) or a raw input value. Default: black for
    /// images, mean for tables.
    #[arg(long, value_parser = parse_baseline)]
    baseline: Option<Baseline>,
    /// Integrated-gradients steps.
    #[arg(long, default_value_t = 64)]
    steps: usize,
    #[arg(long, value_enum, default_value = "riemann-middle")]
    quadrature: QuadratureArg,
    /// SmoothGrad: noisy samples.
    #[arg(long, default_value_t = 25)]
    samples: usize,
    /// SmoothGrad: the noise's standard deviation (model-input units).
    #[arg(long, default_value_t = 0.15)]
    stdev: f64,
    /// SmoothGrad: the noise's seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Occlusion window, comma-separated, one size per axis of a sample (e.g. 1,4,4).
    #[arg(long, value_delimiter = ',')]
    window: Option<Vec<usize>>,
    /// Occlusion strides, comma-separated.
    #[arg(long, value_delimiter = ',')]
    strides: Option<Vec<usize>>,
    /// The picture to write: PNG, or `.html` for text and attention (coloured tokens, or
    /// attention maps with a layer/head picker).
    #[arg(long, value_name = "FILE", default_value = "explanation.png")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    args.common.apply()?;
    if let Some(text) = &args.text {
        return run_text(&args, text);
    }
    let input = args.input.clone().ok_or_else(|| Error::Invalid {
        op: "explain",
        detail: "give --input (a CSV, an image or a WAV file) or a text".into(),
    })?;
    if is_whisper_model(&args.model) {
        let v = explain_audio_run(&args.model, &input, &attention_request(&args), &args.out)?;
        return print_report(&v, &args);
    }
    let e = explain_run(&args.model, &input, &options(&args), &args.out)?;
    print_explanation(&e, args.common.json)
}

fn options(args: &ExplainArgs) -> ExplainOptions {
    let mut opts = ExplainOptions::new(args.method.into());
    opts.target = args.target;
    opts.row = args.row;
    opts.baseline = args.baseline;
    opts.ig.steps = args.steps;
    opts.ig.quadrature = args.quadrature.into();
    opts.smooth.samples = args.samples;
    opts.smooth.stdev = args.stdev;
    opts.smooth.seed = args.seed;
    opts.window = args.window.clone();
    opts.strides = args.strides.clone();
    opts.layer = args.layer;
    opts.head = args.head;
    opts
}

fn run_text(args: &ExplainArgs, text: &str) -> Result<()> {
    if is_sequential_run(&args.model) {
        return Err(Error::Invalid {
            op: "explain",
            detail: format!(
                "{} is a `ferrite train` run of tables or images: give --input (a CSV or an image), not a text",
                args.model.display()
            ),
        });
    }
    let v = explain_text_run(&args.model, text, &attention_request(args), &args.out)?;
    print_report(&v, args)
}

/// Attention with the layer/head/part flags for `--method attention`, else attributions.
fn attention_request(args: &ExplainArgs) -> TextRequest {
    match args.method {
        MethodArg::Attention => TextRequest::Attention {
            layer: args.layer,
            head: args.head,
            part: args.part.map(Into::into),
        },
        _ => TextRequest::Attribution(options(args)),
    }
}

/// Prints a text/speech report: the JSON, or the picture, token scores and completeness gap.
fn print_report(v: &serde_json::Value, args: &ExplainArgs) -> Result<()> {
    if args.common.json {
        return print_json(v);
    }
    let what = args
        .text
        .clone()
        .or_else(|| args.input.as_ref().map(|p| p.display().to_string()));
    print_line(&format!(
        "{} for {:?}: picture {}",
        v["method"],
        what.unwrap_or_default(),
        args.out.display()
    ))?;
    if let Some(t) = v["transcript"].as_str() {
        print_line(&format!("transcript: {t}"))?;
    }
    if let (Some(tokens), Some(scores)) = (v["tokens"].as_array(), v["token_scores"].as_array()) {
        for (t, s) in tokens.iter().zip(scores) {
            print_line(&format!(
                "{:>16} {:+.5}",
                t.as_str().unwrap_or(""),
                s.as_f64().unwrap_or(0.0)
            ))?;
        }
    }
    if let Some(gap) = v["completeness_gap"].as_f64() {
        print_line(&format!("completeness gap {:.4}%", 100.0 * gap))?;
    }
    Ok(())
}

fn print_explanation(e: &Explanation, json: bool) -> Result<()> {
    if json {
        return print_json(e);
    }
    let name = e.target_name.clone().unwrap_or_else(|| e.target.to_string());
    print_line(&format!(
        "explained output {} ({name}) = {:.4}; picture: {}",
        e.target, e.output, e.picture
    ))?;
    if let Some(c) = &e.completeness {
        print_line(&format!(
            "integrated gradients, {} steps: Σ attributions − (f(x) − f(baseline)) = {:.3e} (completeness gap {:.4}%)",
            c.steps,
            c.delta,
            100.0 * c.completeness_gap
        ))?;
    }
    if let Some(names) = &e.features {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| e.attributions[b].abs().total_cmp(&e.attributions[a].abs()));
        for &j in order.iter().take(10) {
            print_line(&format!("{:>16} {:+.5}", names[j], e.attributions[j]))?;
        }
    }
    Ok(())
}
