//! Explaining a trained run (`ferrite explain RUN_DIR --input … --method …`): one input sample
//! of a `Sequential` run (a CSV row, or an image file for image runs) → attributions for the
//! chosen output, a picture, and the numbers as JSON.
//!
//! Layer: explain. Attributions are with respect to the model's input as the model sees it
//! (after the run's standardization); baselines are given in raw input units and standardized
//! the same way, so "black" means a black image whatever the normalization.

use crate::gradient_methods::{input_x_gradient, saliency, smooth_grad, SmoothGradOptions};
use crate::integrated::{integrated_gradients, IgOptions};
use crate::occlusion::{occlusion, OcclusionOptions};
use crate::pictures::{plot_feature_attribution, plot_image_attribution};
use crate::target::{outputs_2d, Target};
use ferrite_core::{no_grad, Error, Result, Tensor};
use ferrite_train::config::Task;
use ferrite_train::csv::Table;
use ferrite_train::run::{open_run, read_image_rows, SavedRun};
use serde::Serialize;
use std::path::Path;

/// The attribution methods `ferrite explain` offers for trained runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Saliency,
    InputXGradient,
    SmoothGrad,
    IntegratedGradients,
    Occlusion,
    /// Attention of the class token over the image patches (Vision Transformer runs) or, for
    /// text models, the attention maps (see `text_run`).
    Attention,
}

impl Method {
    /// Parses `saliency`, `grad_x_input` (`input_x_gradient`), `smoothgrad`, `ig`
    /// (`integrated_gradients`), `occlusion`.
    pub fn parse(s: &str) -> Result<Method> {
        Ok(match s {
            "saliency" => Method::Saliency,
            "grad_x_input" | "input_x_gradient" => Method::InputXGradient,
            "smoothgrad" | "smooth_grad" => Method::SmoothGrad,
            "ig" | "integrated_gradients" => Method::IntegratedGradients,
            "occlusion" => Method::Occlusion,
            "attention" => Method::Attention,
            other => {
                return Err(Error::Invalid {
                    op: "explain",
                    detail: format!(
                        "unknown method '{other}' (saliency, grad_x_input, smoothgrad, ig, occlusion, attention)"
                    ),
                });
            }
        })
    }
}

/// The reference input of integrated gradients and the fill of occlusion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Baseline {
    /// The training data's mean (0 after standardization): the default for tables.
    Mean,
    /// Every raw input value `v` (0 = a black image: the default for images).
    Value(f32),
}

impl Baseline {
    /// `mean`, `black` (= 0) or a number in raw input units.
    pub fn parse(s: &str) -> Result<Baseline> {
        match s {
            "mean" => Ok(Baseline::Mean),
            "black" | "zero" => Ok(Baseline::Value(0.0)),
            v => v.parse().map(Baseline::Value).map_err(|_| Error::Invalid {
                op: "explain",
                detail: format!("baseline '{v}' is not 'mean', 'black' or a number"),
            }),
        }
    }
}

/// What to explain and how.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    pub method: Method,
    /// Output index (class); default: the predicted class, or output 0 for regression.
    pub target: Option<usize>,
    /// CSV row (0-based, data rows) when the input is a CSV.
    pub row: usize,
    /// Default: black for images, the mean for tables.
    pub baseline: Option<Baseline>,
    pub ig: IgOptions,
    pub smooth: SmoothGradOptions,
    /// Occlusion window and strides per axis of a sample; defaults: about 1/7 of an image side
    /// with half-window strides, single features for tables.
    pub window: Option<Vec<usize>>,
    pub strides: Option<Vec<usize>>,
    /// Attention: the layer (default: the last) and head (default: the mean over heads).
    pub layer: Option<usize>,
    pub head: Option<usize>,
}

impl ExplainOptions {
    /// Defaults: 64 integrated-gradients steps with the midpoint rule (`riemann_middle`), not
    /// Captum's Gauss–Legendre: the runs explained here are ReLU/max-pool networks whose gradient
    /// jumps along the path, where Gauss–Legendre's smoothness assumption fails. Measured on the
    /// digits CNN, 49 test images, 64 steps: completeness gap median 0.17% / max 0.78% with the
    /// midpoint rule, 0.23% / 1.09% with Gauss–Legendre.
    pub fn new(method: Method) -> Self {
        ExplainOptions {
            method,
            target: None,
            row: 0,
            baseline: None,
            ig: IgOptions {
                quadrature: crate::integrated::Quadrature::RiemannMiddle,
                ..IgOptions::default()
            },
            smooth: SmoothGradOptions::default(),
            window: None,
            strides: None,
            layer: None,
            head: None,
        }
    }
}

/// Integrated gradients' completeness check for the explained sample.
#[derive(Clone, Debug, Serialize)]
pub struct Completeness {
    pub steps: usize,
    pub f_baseline: f64,
    /// Σ attributions − (f(x) − f(baseline)).
    pub delta: f64,
    /// |delta| / |f(x) − f(baseline)|.
    pub completeness_gap: f64,
}

/// The result of explaining one sample (the `--json` output).
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub method: Method,
    pub target: usize,
    pub target_name: Option<String>,
    /// The explained output's value f(x) (a logit for classifiers).
    pub output: f64,
    /// The model's predicted class (classification runs).
    pub predicted: Option<usize>,
    /// Per-sample input shape; `attributions` is flat in that shape's row-major order.
    pub shape: Vec<usize>,
    /// Feature names (tables).
    pub features: Option<Vec<String>>,
    pub attributions: Vec<f32>,
    #[serde(flatten)]
    pub completeness: Option<Completeness>,
    /// The picture written.
    pub picture: String,
}

/// Raw `[1, F]` input: an image file for image runs, else row `row` of a CSV.
fn raw_input(run: &SavedRun, input: &Path, row: usize) -> Result<Tensor> {
    if let Some(shape) = &run.scalers.image_shape
        && ferrite_train::image_folder::is_image_file(input)
    {
        return read_image_rows(input, shape, run.config.data.resize);
    }
    let table = Table::read(input)?;
    if row >= table.rows.len() {
        return Err(Error::file(
            input,
            format!("row {row} does not exist ({} data rows)", table.rows.len()),
        ));
    }
    table.select(&run.scalers.features)?.narrow(0, row, 1)?.contiguous()
}

fn default_window(shape: &[usize]) -> (Vec<usize>, Vec<usize>) {
    match shape {
        [c, h, w] => {
            let k = (h.max(w) / 7).max(2).min(*h.min(w));
            (vec![*c, k, k], vec![*c, (k / 2).max(1), (k / 2).max(1)])
        }
        _ => (vec![1; shape.len()], vec![1; shape.len()]),
    }
}

/// The class token's attention over the patches (layer `opts.layer`, default the last; head
/// `opts.head`, default the mean over heads), spread over each patch's pixels: `[1, C, H, W]`.
fn class_token_attention(run: &SavedRun, x: &Tensor, opts: &ExplainOptions) -> Result<Tensor> {
    let patch = run.model.layer_configs().iter().find_map(|l| match l {
        ferrite_train::LayerConfig::PatchEmbed { patch, .. } => Some(*patch),
        _ => None,
    });
    let (Some(patch), &[c, h, w]) = (patch, &x.shape()[1..]) else {
        return Err(Error::Invalid {
            op: "explain",
            detail: "attention needs a Vision Transformer run (patch_embed + transformer_encoder layers); use ig, saliency, grad_x_input, smoothgrad or occlusion".into(),
        });
    };
    let (_, attentions) = run.model.forward_with_attention(x)?;
    let maps = crate::text::AttentionMaps::from_layers("", Vec::new(), Vec::new(), &attentions)?;
    let layer = opts.layer.unwrap_or(maps.layers.saturating_sub(1));
    let m = maps.select(layer, opts.head)?;
    let (gh, gw) = (h / patch, w / patch);
    let tokens = 1 + gh * gw;
    if m.len() != tokens * tokens {
        return Err(Error::Invalid {
            op: "explain",
            detail: format!(
                "attention over {} tokens, expected {tokens} (class token + {gh}×{gw} patches)",
                (m.len() as f64).sqrt()
            ),
        });
    }
    let mut px = vec![0.0f32; c * h * w];
    for ch in 0..c {
        for y in 0..h {
            for xx in 0..w {
                px[(ch * h + y) * w + xx] = m[1 + (y / patch) * gw + xx / patch];
            }
        }
    }
    Tensor::from_vec(px, [1, c, h, w])
}

/// Explains one input of the run in `dir` and writes the picture to `out` (PNG).
///
/// # Errors
/// An unreadable run or input, a CSV row or target class out of range, an unknown method, and
/// the methods' own errors (window sizes, baselines).
pub fn explain_run(dir: &Path, input: &Path, opts: &ExplainOptions, out: &Path) -> Result<Explanation> {
    let run = open_run(dir)?;
    let raw = raw_input(&run, input, opts.row)?;
    let x = run.scalers.prepare_x(&raw)?;
    let shape = x.shape()[1..].to_vec();
    let model = |t: &Tensor| run.model.forward(t, false);
    let y = {
        let _g = no_grad();
        outputs_2d(model(&x)?, 1)?.to_f64_vec()
    };
    let classification = run.scalers.task == Task::Classification;
    let predicted =
        classification.then(|| ferrite_models::argmax(&y.iter().map(|&v| v as f32).collect::<Vec<_>>()) as usize);
    let target_id = opts.target.or(predicted).unwrap_or(0);
    let target = Target::All(target_id);
    target.resolve(1, y.len())?;
    let image = run.scalers.image_shape.is_some();
    let baseline_raw = match opts
        .baseline
        .unwrap_or(if image { Baseline::Value(0.0) } else { Baseline::Mean })
    {
        Baseline::Mean => None,
        Baseline::Value(v) => Some(Tensor::full(raw.shape(), v)?),
    };
    let baseline = match baseline_raw {
        Some(b) => run.scalers.prepare_x(&b)?,
        None => Tensor::zeros(x.shape())?,
    };
    let mut completeness = None;
    let attr = match opts.method {
        Method::Saliency => saliency(&model, &x, &target, true)?,
        Method::InputXGradient => input_x_gradient(&model, &x, &target)?,
        Method::SmoothGrad => smooth_grad(&model, &x, &target, &opts.smooth)?,
        Method::IntegratedGradients => {
            let r = integrated_gradients(&model, &x, &baseline, &target, &opts.ig)?;
            completeness = Some(Completeness {
                steps: opts.ig.steps,
                f_baseline: r.f_baseline[0],
                delta: r.delta[0],
                completeness_gap: r.completeness_gap()[0],
            });
            r.attributions
        }
        Method::Occlusion => {
            let (w, s) = default_window(&shape);
            let mut o = OcclusionOptions::new(opts.window.clone().unwrap_or(w), opts.strides.clone().unwrap_or(s));
            o.baseline = baseline.to_vec::<f32>()?;
            occlusion(&model, &x, &target, &o)?
        }
        Method::Attention => class_token_attention(&run, &x, opts)?,
    };
    let attributions = attr.to_vec::<f32>()?;
    let names = run.scalers.class_names.clone().or(run.config.data.class_names.clone());
    let name_of = |i: usize| names.as_ref().and_then(|n| n.get(i).cloned());
    let mut caption = if opts.method == Method::Attention {
        let head = opts.head.map_or("mean of heads".to_string(), |h| format!("head {h}"));
        let layer = opts.layer.map_or("last layer".to_string(), |l| format!("layer {l}"));
        format!("class-token attention over the patches ({layer}, {head})")
    } else {
        format!(
            "{} for {} (output {:.3})",
            serde_json::to_value(opts.method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            name_of(target_id).map_or(format!("output {target_id}"), |n| format!("class '{n}'")),
            y[target_id]
        )
    };
    if let Some(p) = predicted {
        caption += &format!(", predicted {}", name_of(p).unwrap_or(p.to_string()));
    }
    if let Some(c) = &completeness {
        caption += &format!(", completeness gap {:.3}%", 100.0 * c.completeness_gap);
    }
    if image {
        plot_image_attribution(&raw.to_vec::<f32>()?, &attributions, &shape, &caption, out)?;
    } else {
        plot_feature_attribution(&run.scalers.features, &attributions, &caption, out)?;
    }
    Ok(Explanation {
        method: opts.method,
        target: target_id,
        target_name: name_of(target_id),
        output: y[target_id],
        predicted,
        shape,
        features: (!image).then(|| run.scalers.features.clone()),
        attributions,
        completeness,
        picture: out.display().to_string(),
    })
}
