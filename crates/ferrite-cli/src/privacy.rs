//! `ferrite privacy epsilon`: the privacy a DP-SGD run spends (ε at δ) for a sample rate, noise
//! multiplier and step count — or, with `--target-epsilon`, the noise multiplier that spends at
//! most that ε. The accountants are ferrite's own (`ferrite-train/src/privacy`), matching
//! Opacus's RDP and PRV accountants.

use crate::common::{print_json, print_line, Common};
use clap::{Args, Subcommand};
use ferrite::train::privacy::{self, Accountant, AccountantKind, PRV_EPS_ERROR};
use ferrite::train::run::{read_history, RunSummary};
use ferrite::train::{plot_privacy_utility, UtilityCurve};
use ferrite::{Error, Result};
use serde::Serialize;

#[derive(Args)]
pub struct PrivacyArgs {
    #[command(subcommand)]
    command: PrivacyCommand,
}

#[derive(Subcommand)]
enum PrivacyCommand {
    /// ε spent at δ by DP-SGD steps (Poisson sampling at rate q, noise multiplier σ).
    #[command(after_help = "Examples:
  ferrite privacy epsilon --sample-rate 0.004267 --noise 1.1 --steps 14062 --delta 1e-5
  ferrite privacy epsilon --sample-rate 0.04 --noise 1.5 --epochs 90 --delta 1e-5 --accountant prv --json
  ferrite privacy epsilon --sample-rate 0.004267 --target-epsilon 3 --steps 14062 --delta 1e-5")]
    Epsilon(EpsilonArgs),
    /// The privacy–utility curve of DP-SGD runs: a metric against ε spent, one line per run.
    #[command(after_help = "Example:
  ferrite train examples/digits-dp.toml --out runs/dp-a && ferrite train other-sigma.toml --out runs/dp-b
  ferrite privacy curve --model runs/dp-a --model runs/dp-b --out privacy-utility.png --json")]
    Curve(CurveArgs),
}

#[derive(Args)]
struct CurveArgs {
    /// A DP-SGD run directory (`ferrite train` with a [privacy] section); repeat for several.
    #[arg(long, value_name = "RUN", required = true)]
    model: Vec<std::path::PathBuf>,
    /// The PNG to write.
    #[arg(long, value_name = "FILE.png")]
    out: std::path::PathBuf,
    /// The logged metric on the y axis (default: val_accuracy when logged, else accuracy).
    #[arg(long)]
    metric: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct EpsilonArgs {
    /// Sampling rate q: the chance each example joins a batch (batch size / dataset size).
    #[arg(long, value_name = "Q")]
    sample_rate: f64,
    /// Noise multiplier σ (noise standard deviation / clipping norm).
    #[arg(
        long,
        value_name = "SIGMA",
        conflicts_with = "target_epsilon",
        required_unless_present = "target_epsilon"
    )]
    noise: Option<f64>,
    /// Solve for the noise multiplier that spends at most this ε instead.
    #[arg(long, value_name = "EPS")]
    target_epsilon: Option<f64>,
    /// Number of steps.
    #[arg(
        long,
        value_name = "T",
        conflicts_with = "epochs",
        required_unless_present = "epochs"
    )]
    steps: Option<u64>,
    /// Number of epochs instead: steps = floor(epochs / q), as Opacus counts them.
    #[arg(long, value_name = "N")]
    epochs: Option<f64>,
    /// δ, the probability the guarantee may fail (use δ < 1/n for n examples).
    #[arg(long, value_name = "DELTA")]
    delta: f64,
    /// rdp (Opacus's default) or prv (tighter; ε is an upper bound within ±0.01).
    #[arg(long, default_value = "rdp", value_name = "rdp|prv")]
    accountant: AccountantKind,
    #[command(flatten)]
    common: Common,
}

/// What `--json` prints.
#[derive(Serialize)]
struct EpsilonReport {
    accountant: &'static str,
    sample_rate: f64,
    noise_multiplier: f64,
    steps: u64,
    delta: f64,
    /// The guarantee: RDP with Balle et al.'s conversion, or PRV's upper bound.
    epsilon: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdp: Option<RdpDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prv: Option<privacy::prv::PrvEpsilon>,
}

#[derive(Serialize)]
struct RdpDetail {
    /// The order α that gives ε.
    order: f64,
    /// ε by the classic conversion (Mironov 2017), as TF-Privacy's tutorials report it.
    classic_epsilon: f64,
    classic_order: f64,
}

pub fn run(args: PrivacyArgs) -> Result<()> {
    match args.command {
        PrivacyCommand::Epsilon(args) => run_epsilon(args),
        PrivacyCommand::Curve(args) => run_curve(args),
    }
}

/// The keys a run logged in its first epoch, for error messages.
fn logged(history: &ferrite::train::History) -> String {
    history
        .epochs
        .first()
        .map(|l| l.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// What `privacy curve --json` prints per run.
#[derive(Serialize)]
struct CurveReport {
    run: String,
    label: String,
    metric: String,
    /// `[ε, metric]` after each epoch.
    points: Vec<[f64; 2]>,
}

fn run_curve(args: CurveArgs) -> Result<()> {
    args.common.apply()?;
    let mut curves = Vec::new();
    let mut reports = Vec::new();
    for dir in &args.model {
        let history = read_history(&dir.join("metrics.jsonl"))?;
        let summary_path = dir.join("summary.json");
        let text = std::fs::read_to_string(&summary_path).map_err(|e| Error::File {
            path: summary_path.display().to_string(),
            detail: format!("cannot read: {e}"),
        })?;
        let summary: RunSummary = serde_json::from_str(&text).map_err(|e| Error::File {
            path: summary_path.display().to_string(),
            detail: format!("not a run summary: {e}"),
        })?;
        let Some(privacy) = summary.privacy else {
            return Err(Error::File {
                path: dir.display().to_string(),
                detail: "not a DP-SGD run: its summary has no privacy section (train with a [privacy] section)".into(),
            });
        };
        let metric = args.metric.clone().unwrap_or_else(|| {
            if history.get("val_accuracy").is_empty() {
                "accuracy".into()
            } else {
                "val_accuracy".into()
            }
        });
        let (eps, values) = (history.get("epsilon"), history.get(&metric));
        if values.len() != eps.len() || values.is_empty() {
            return Err(Error::File {
                path: dir.join("metrics.jsonl").display().to_string(),
                detail: format!(
                    "no {metric:?} logged with epsilon every epoch (logged: {})",
                    logged(&history)
                ),
            });
        }
        let points: Vec<(f64, f64)> = eps.into_iter().zip(values).collect();
        let label = format!("σ = {:.3}, C = {}", privacy.noise_multiplier, privacy.max_grad_norm);
        reports.push(CurveReport {
            run: dir.display().to_string(),
            label: label.clone(),
            metric: metric.clone(),
            points: points.iter().map(|&(e, m)| [e, m]).collect(),
        });
        curves.push(UtilityCurve { label, points });
    }
    let metric = reports.first().map(|r| r.metric.clone()).unwrap_or_default();
    plot_privacy_utility(&curves, &metric, &args.out)?;
    if args.common.json {
        return print_json(&reports);
    }
    for r in &reports {
        let last = r.points.last().copied().unwrap_or([f64::NAN; 2]);
        print_line(&format!(
            "{}: {} → {} = {:.4} at ε = {:.3}",
            r.run, r.label, r.metric, last[1], last[0]
        ))?;
    }
    print_line(&format!("wrote {}", args.out.display()))
}

fn run_epsilon(args: EpsilonArgs) -> Result<()> {
    args.common.apply()?;
    privacy::check_step(args.sample_rate, args.noise.unwrap_or(1.0))?;
    privacy::check_delta(args.delta)?;
    let steps = match (args.steps, args.epochs) {
        (Some(steps), _) => steps,
        (None, Some(epochs)) if epochs.is_finite() && epochs > 0.0 => (epochs / args.sample_rate).floor() as u64,
        (None, other) => {
            return Err(Error::Invalid {
                op: "privacy epsilon",
                detail: format!("--epochs {} must be a positive number", other.unwrap_or(f64::NAN)),
            })
        }
    };
    let noise = match (args.noise, args.target_epsilon) {
        (Some(noise), _) => noise,
        (None, Some(target)) => {
            privacy::noise_multiplier(args.accountant, target, args.delta, args.sample_rate, steps, 0.01)?.0
        }
        (None, None) => {
            return Err(Error::Invalid {
                op: "privacy epsilon",
                detail: "give --noise or --target-epsilon".into(),
            })
        }
    };
    let ledger = Accountant::with_steps(args.accountant, args.sample_rate, noise, steps)?;
    // ε once per accountant: the guarantee is RDP's (Balle) value or PRV's upper bound.
    let (epsilon, rdp, prv) = match args.accountant {
        AccountantKind::Rdp => {
            let (epsilon, order) = ledger.epsilon_rdp(args.delta)?;
            let (classic_epsilon, classic_order) = ledger.epsilon_rdp_classic(args.delta)?;
            (
                epsilon,
                Some(RdpDetail {
                    order,
                    classic_epsilon,
                    classic_order,
                }),
                None,
            )
        }
        AccountantKind::Prv => {
            let bounds = privacy::prv::epsilon(ledger.history(), args.delta, PRV_EPS_ERROR, args.delta / 1000.0)?;
            (bounds.upper, None, Some(bounds))
        }
    };
    let report = EpsilonReport {
        accountant: args.accountant.name(),
        sample_rate: args.sample_rate,
        noise_multiplier: noise,
        steps,
        delta: args.delta,
        epsilon,
        target_epsilon: args.target_epsilon,
        rdp,
        prv,
    };
    if args.common.json {
        return print_json(&report);
    }
    if let Some(target) = report.target_epsilon {
        print_line(&format!(
            "noise multiplier σ = {:.4} spends ε ≤ {target}",
            report.noise_multiplier
        ))?;
    }
    print_line(&format!(
        "ε = {:.4} at δ = {:e} after {} steps (q = {}, σ = {}; {} accountant)",
        report.epsilon, report.delta, report.steps, report.sample_rate, report.noise_multiplier, report.accountant
    ))?;
    if let Some(rdp) = &report.rdp {
        print_line(&format!(
            "best order α = {}; the classic conversion gives ε = {:.4} (α = {})",
            rdp.order, rdp.classic_epsilon, rdp.classic_order
        ))?;
    }
    if let Some(prv) = &report.prv {
        print_line(&format!(
            "estimate {:.4}; the true ε lies in [{:.4}, {:.4}]",
            prv.estimate, prv.lower, prv.upper
        ))?;
    }
    Ok(())
}
