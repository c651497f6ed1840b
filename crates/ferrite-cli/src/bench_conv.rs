//! `ferrite bench conv2d`: one 3×3, 64→64-channel convolution (with bias, padding 1) on a
//! `[32, 64, 32, 32]` input, forward and forward + backward (gradients of input, weight and bias),
//! side by side with `tools/bench_torch.py conv2d` (same shapes, PyTorch's default init).

use crate::bench::{time_per_call, Report};
use ferrite::prelude::*;
use serde_json::json;

const BATCH: usize = 32;
const CHANNELS: usize = 64;
const HW: usize = 32;
const KERNEL: usize = 3;

pub fn run(threads: &[usize], report: &mut Report) -> Result<()> {
    manual_seed(0);
    let vars = VarMap::new();
    let opts = Conv2dOptions::default().padding(1);
    let conv = Conv2d::new(
        &VarBuilder::new(&vars, 0),
        CHANNELS,
        CHANNELS,
        [KERNEL, KERNEL],
        opts,
        true,
        LinearInit::Pytorch,
    )?;
    let x = Tensor::randn([BATCH, CHANNELS, HW, HW])?.requires_grad_(true);
    let g = Tensor::randn([BATCH, CHANNELS, HW, HW])?;
    for &t in threads {
        set_num_threads(t);
        let mut err = None;
        let mut keep = |r: Result<()>| {
            if let Err(e) = r {
                err = Some(e);
            }
        };
        let fwd = time_per_call(|| keep(conv.forward(&x, true).map(drop)));
        let fwd_bwd = time_per_call(|| keep(conv.forward(&x, true).and_then(|y| y.backward_with(&g)).map(drop)));
        if let Some(e) = err {
            return Err(e);
        }
        report.emit(
                        json!({"bench": "conv2d", "impl": "ferrite", "batch": BATCH, "channels": CHANNELS, "hw": HW,
                   "kernel": KERNEL, "threads": t, "fwd_ms": (fwd * 1e6).round() / 1e3,
                   "fwd_bwd_ms": (fwd_bwd * 1e6).round() / 1e3}),
            format!(
                "conv2d {BATCH}x{CHANNELS}x{HW}x{HW}, {KERNEL}x{KERNEL}, {CHANNELS} out, threads={t}: forward {:.2} ms, forward+backward {:.2} ms",
                fwd * 1e3,
                fwd_bwd * 1e3
            ),
        )?;
    }
    Ok(())
}
