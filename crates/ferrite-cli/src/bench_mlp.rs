//! `ferrite bench mlp`: the training-loop time of the seed MLP, side by side with
//! `tools/seed_mlp_torch.py` (same data, split, standardization, model, batch size; one thread).
//!
//! Timed per epoch: the shuffle, batch gathering, forward, loss, backward and Adam step — the
//! same work the PyTorch script times. Reported: median epoch time and time per step.

use crate::bench::Report;
use ferrite::prelude::*;
use ferrite::train::data::{splitmix64, train_test_indices, DataLoader, Standardizer};
use ferrite::train::{csv::Table, Dataset};
use ferrite::Rng;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

fn model(inputs: usize) -> Result<Sequential> {
    let mut m = Sequential::new(&[inputs])
        .add(Dense::new(64).activation(Activation::Relu))?
        .add(Dense::new(64).activation(Activation::Relu))?
        .add(Dense::new(1))?;
    m.compile(Adam::new(1e-3), Loss::Mse, &[]);
    Ok(m)
}

/// Median epoch seconds and steps per epoch over `epochs` epochs.
fn time_epochs(m: &mut Sequential, data: &Dataset, batch: usize, epochs: usize) -> Result<(f64, usize)> {
    let mut times = Vec::new();
    let mut steps = 0;
    for epoch in 0..epochs {
        let started = Instant::now();
        let mut rng = Rng::new(splitmix64(epoch as u64));
        steps = 0;
        for b in DataLoader::new(data, batch, Some(&mut rng), false)? {
            let b = b?;
            m.train_step(&b.x, &b.y, None)?;
            steps += 1;
        }
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], steps))
}

pub fn run(diabetes: &Path, report: &mut Report) -> Result<()> {
    set_num_threads(1);
    manual_seed(42);
    let table = Table::read(diabetes)?;
    let all = Dataset::new(
        table.select(&table.other_columns(&["target".into()]))?,
        table.select(&["target".into()])?,
    )?;
    let (tr, _) = train_test_indices(all.len(), 0.2, 42)?;
    let mut train = all.subset(&tr)?;
    train.x = Standardizer::fit(&train.x)?.transform(&train.x)?;
    train.y = Standardizer::fit(&train.y)?.transform(&train.y)?;
    let mut m = model(10)?;
    let (epoch, steps) = time_epochs(&mut m, &train, 32, 10)?;
    report.emit(
        json!({"impl": "ferrite", "task": "seed-mlp", "threads": 1, "epochs": 10, "epoch_ms": epoch * 1e3,
               "step_us": epoch * 1e6 / steps as f64, "steps_per_epoch": steps}),
        format!(
            "seed MLP (diabetes, batch 32): {:.3} ms/epoch, {:.1} µs/step",
            epoch * 1e3,
            epoch * 1e6 / steps as f64
        ),
    )?;

    // 100k rows × 10 features, y = Σ sin(x) + 0.1·noise (as tools/seed_mlp_torch.py --synthetic).
    let x = Tensor::randn([100_000, 10])?;
    let xv = x.to_vec::<f32>()?;
    let noise = Tensor::randn([100_000])?.to_vec::<f32>()?;
    let y: Vec<f32> = xv
        .chunks(10)
        .zip(&noise)
        .map(|(r, n)| r.iter().map(|v| v.sin()).sum::<f32>() + 0.1 * n)
        .collect();
    let synth = Dataset::new(x, Tensor::from_vec(y, [100_000, 1])?)?;
    let mut m = model(10)?;
    let (epoch, steps) = time_epochs(&mut m, &synth, 1024, 3)?;
    report.emit(
        json!({"impl": "ferrite", "task": "synthetic-100k", "threads": 1, "batch": 1024, "epoch_ms": epoch * 1e3,
               "step_us": epoch * 1e6 / steps as f64, "steps_per_epoch": steps}),
        format!(
            "synthetic 100k (batch 1024): {:.1} ms/epoch, {:.1} µs/step",
            epoch * 1e3,
            epoch * 1e6 / steps as f64
        ),
    )?;
    Ok(())
}
