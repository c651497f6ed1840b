//! `ferrite privacy epsilon`: the privacy a DP-SGD run spends (ε at δ) for a sample rate, noise
//! multiplier and step count — or, with `--target-epsilon`, the noise multiplier that spends at
//! most that ε. The accountants are ferrite's own (`ferrite-train/src/privacy`), matching
//! Opacus's RDP and PRV accountants.

use crate::common::{print_json, print_line, Common};
use clap::{Args, Subcommand};
use ferrite::train::privacy::{self, Accountant, AccountantKind, PRV_EPS_ERROR};
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
    }
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
    let (rdp, prv) = match args.accountant {
        AccountantKind::Rdp => {
            let (_, order) = ledger.epsilon_rdp(args.delta)?;
            let (classic_epsilon, classic_order) = ledger.epsilon_rdp_classic(args.delta)?;
            (
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
            (None, Some(bounds))
        }
    };
    let report = EpsilonReport {
        accountant: args.accountant.name(),
        sample_rate: args.sample_rate,
        noise_multiplier: noise,
        steps,
        delta: args.delta,
        epsilon: ledger.epsilon(args.delta)?,
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
