//! `ferrite explain RUN_DIR --input FILE --method saliency|grad_x_input|smoothgrad|ig|occlusion
//! --out FILE.png`: why a trained run gave its answer for one input (a CSV row or an image file).

use clap::Args;
use ferrite::explain::{explain_run, Baseline, ExplainOptions, Method, Quadrature};
use ferrite::Result;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExplainArgs {
    /// A run directory written by `ferrite train`.
    run_dir: PathBuf,
    /// A CSV with the run's feature columns (see --row), or an image file for image runs.
    #[arg(long)]
    input: PathBuf,
    /// saliency, grad_x_input, smoothgrad, ig (integrated gradients) or occlusion.
    #[arg(long, default_value = "ig")]
    method: String,
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
    /// riemann_trapezoid.
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
    /// The picture to write (PNG).
    #[arg(long, default_value = "explanation.png")]
    out: PathBuf,
    /// Print the attributions, target and (ig) completeness gap as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let mut opts = ExplainOptions::new(Method::parse(&args.method)?);
    opts.target = args.target;
    opts.row = args.row;
    opts.baseline = args.baseline.as_deref().map(Baseline::parse).transpose()?;
    opts.ig.steps = args.steps;
    opts.ig.quadrature = Quadrature::parse(&args.quadrature)?;
    opts.smooth.samples = args.samples;
    opts.smooth.stdev = args.stdev;
    opts.window = args.window;
    opts.strides = args.strides;
    let e = explain_run(&args.run_dir, &args.input, &opts, &args.out)?;
    if args.json {
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
    Ok(())
}
