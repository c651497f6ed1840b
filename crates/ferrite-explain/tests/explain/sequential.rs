//! Explaining trained `Sequential` runs: integrated gradients' completeness on the seed MLP
//! (diabetes) and the digits CNN, the model-randomization sanity check of Adebayo et al. (2018),
//! and the errors for targets, rows and windows that do not exist.

use ferrite_core::Tensor;
use ferrite_explain::*;
use ferrite_train::run::{build_model, prepare_data, train_from_config, RunOptions};
use ferrite_train::{Sequential, TrainConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Trains `config` into `out` (its own seed, or `seed`) and reopens the run.
fn train(config: &str, out: &Path, seed: Option<u64>) -> (TrainConfig, Sequential) {
    let opts = RunOptions {
        out: Some(out.to_path_buf()),
        seed,
        ..Default::default()
    };
    train_from_config(&root().join(config), &opts).unwrap();
    let run = ferrite_train::run::open_run(out).unwrap();
    (run.config, run.model)
}

/// A run trained once per test binary and shared by every test that only reads it.
struct SharedRun {
    dir: PathBuf,
    config: TrainConfig,
    model: Sequential,
}

fn shared(cell: &'static OnceLock<SharedRun>, config: &str, name: &str) -> &'static SharedRun {
    cell.get_or_init(|| {
        let dir = tmp(name);
        let (config, model) = train(config, &dir, None);
        SharedRun { dir, config, model }
    })
}

/// The seed MLP on diabetes, trained once.
fn mlp_run() -> &'static SharedRun {
    static RUN: OnceLock<SharedRun> = OnceLock::new();
    shared(&RUN, "examples/seed-mlp.toml", "shared-mlp")
}

/// The digits CNN, trained once.
fn digits_run() -> &'static SharedRun {
    static RUN: OnceLock<SharedRun> = OnceLock::new();
    shared(&RUN, "examples/digits-cnn.toml", "shared-digits")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferrite-explain-{name}-{}", std::process::id()))
}

/// Spearman rank correlation (no ties expected among float saliencies).
fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let ranks = |v: &[f32]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        idx.iter().enumerate().for_each(|(k, &i)| r[i] = k as f64);
        r
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let mean = (n - 1.0) / 2.0;
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - mean) * (y - mean)).sum();
    let var: f64 = ra.iter().map(|x| (x - mean) * (x - mean)).sum();
    cov / var
}

#[test]
fn integrated_gradients_are_complete_on_the_seed_mlp_and_the_digits_cnn() {
    let opts = ExplainOptions::new(Method::IntegratedGradients);
    for (run, name) in [(mlp_run(), "mlp"), (digits_run(), "digits")] {
        let (dir, cfg, model) = (&run.dir, &run.config, &run.model);
        let data = prepare_data(cfg, None).unwrap();
        let n = data.test.len().min(64);
        let x = data.test.x.narrow(0, 0, n).unwrap().contiguous().unwrap();
        let f = |t: &Tensor| model.forward(t, false);
        // Each sample's predicted class (or the regression output).
        let y = f(&x).unwrap();
        let target = if y.shape()[1] > 1 {
            Target::PerSample(
                y.argmax(-1, false)
                    .unwrap()
                    .to_f64_vec()
                    .iter()
                    .map(|&v| v as usize)
                    .collect(),
            )
        } else {
            Target::All(0)
        };
        // Baseline: the training mean (0 after standardization) for the table, black for images.
        let baseline = if name == "mlp" {
            Tensor::zeros(&x.shape()[1..]).unwrap()
        } else {
            let black = Tensor::zeros([1, 64]).unwrap();
            let s = ferrite_train::run::open_run(dir).unwrap().scalers;
            s.prepare_x(&black).unwrap().reshape(&x.shape()[1..]).unwrap()
        };
        // ReLU networks are piecewise linear along the path, and every kink a quadrature cell
        // straddles costs accuracy: at 64 steps most samples are well inside 1% but a few, with a
        // small f(x) − f(b), are not (measured: MLP median 0.4%, 12 of 64 over 1%, worst 22%;
        // CNN median 0.2%, worst 1.6–3.2%); 1024 Gauss–Legendre steps bring all under 0.4%, and
        // the adaptive rule from 64 steps all under 0.3% with a median of 92 (MLP) and 226 (CNN)
        // gradient evaluations.
        let fine = IgOptions {
            steps: 1024,
            quadrature: Quadrature::GaussLegendre,
            batch_rows: 4096,
        };
        // The adaptive rule starts from the same 64 midpoint cells and halves those whose
        // forward values show a kink, so every sample adds up.
        let adaptive = IgOptions {
            quadrature: Quadrature::Adaptive,
            ..opts.ig
        };
        for (ig, check_all) in [(opts.ig, false), (fine, true), (adaptive, true)] {
            let r = integrated_gradients(&f, &x, &baseline, &target, &ig).unwrap();
            let mut gaps = r.completeness_gap();
            gaps.sort_by(f64::total_cmp);
            let (median, worst) = (gaps[n / 2], gaps[n - 1]);
            let mut evals = r.gradient_evaluations.clone();
            evals.sort_unstable();
            eprintln!(
                "{name}: {n} samples, {} steps {:?}: completeness gap median {:.3}%, worst {:.3}%; \
                 gradient evaluations median {}, max {}",
                ig.steps,
                ig.quadrature,
                100.0 * median,
                100.0 * worst,
                evals[n / 2],
                evals[n - 1]
            );
            assert!(median < 0.01, "{name}: gaps {gaps:?}");
            if check_all {
                assert!(worst < 0.01, "{name}: gaps {gaps:?}");
            }
        }
        // The run-level path (CSV row → picture + numbers) agrees.
        let png = dir.join("ig.png");
        let input = root().join(if name == "mlp" {
            "data/diabetes.csv"
        } else {
            "data/digits.csv"
        });
        let mut fine_opts = opts.clone();
        fine_opts.ig = fine;
        fine_opts.row = 5;
        let e = explain_run(dir, &input, &fine_opts, &png).unwrap();
        assert!(e.completeness.as_ref().unwrap().completeness_gap < 0.01);
        assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    }
}

/// Adebayo et al. (2018): a saliency method that explains the model must change when the model's
/// weights are replaced by random ones. Saliency maps of the trained digits CNN are compared
/// (Spearman rank correlation of |gradient| per image) with those of the same network freshly
/// initialized, and with those of a second network trained from another seed as a control.
#[test]
fn saliency_changes_when_weights_are_randomized() {
    let dir_b = tmp("adebayo-b");
    let (cfg, trained) = (&digits_run().config, &digits_run().model);
    let (_, other) = train("examples/digits-cnn.toml", &dir_b, Some(7));
    let data = prepare_data(cfg, None).unwrap();
    let mut random_cfg = cfg.clone();
    random_cfg.seed = 12345;
    let random = build_model(&random_cfg, &[1, 8, 8]).unwrap();
    let x = data.test.x.narrow(0, 0, 128).unwrap().contiguous().unwrap();
    let target = Target::PerSample(
        data.test
            .y
            .narrow(0, 0, 128)
            .unwrap()
            .to_f64_vec()
            .iter()
            .map(|&v| v as usize)
            .collect(),
    );
    let maps = |m: &Sequential| {
        let f = |t: &Tensor| m.forward(t, false);
        saliency(&f, &x, &target, true).unwrap().to_vec::<f32>().unwrap()
    };
    let (a, b, r) = (maps(trained), maps(&other), maps(&random));
    let mean_rho =
        |p: &[f32], q: &[f32]| p.chunks(64).zip(q.chunks(64)).map(|(u, v)| spearman(u, v)).sum::<f64>() / 128.0;
    let (control, randomized) = (mean_rho(&a, &b), mean_rho(&a, &r));
    eprintln!("Spearman ρ of |saliency|: trained vs other seed {control:.3}, trained vs randomized {randomized:.3}");
    // Measured: 0.21 against the other seed, 0.10 against random weights (128 test images).
    assert!(
        randomized < 0.3 && control > randomized + 0.05,
        "control {control}, randomized {randomized}"
    );
    std::fs::remove_dir_all(dir_b).ok();
}

/// A small Vision Transformer on the digits: the class token's attention over the 4×4 grid of
/// 2×2 patches, spread over the pixels, is what `--method attention` draws.
#[test]
fn vision_transformer_attention_over_patches() {
    let dir = tmp("vit");
    std::fs::create_dir_all(&dir).unwrap();
    let example = std::fs::read_to_string(root().join("examples/digits-cnn.toml")).unwrap();
    let data_part = &example[example.find("[data]").unwrap()..example.find("[model]").unwrap()];
    let data_part = data_part.replace(
        "../data/digits.csv",
        &root().join("data/digits.csv").display().to_string(),
    );
    let config = format!(
        "task = \"classification\"\nseed = 0\nepochs = 3\n{data_part}[model]\nlayers = [\n  {{ type = \"patch_embed\", patch = 2, dim = 16 }},\n  {{ type = \"transformer_encoder\", heads = 2, ffn = 32, layers = 2 }},\n  {{ type = \"layer_norm\" }},\n  {{ type = \"class_token\" }},\n  {{ type = \"dense\", units = 10 }},\n]\n[optimizer]\nname = \"adam\"\nlr = 3e-3\n[training]\nloss = \"sparse_categorical_crossentropy\"\n"
    );
    std::fs::write(dir.join("vit.toml"), config).unwrap();
    let run = dir.join("run");
    let opts = RunOptions {
        out: Some(run.clone()),
        ..Default::default()
    };
    train_from_config(&dir.join("vit.toml"), &opts).unwrap();
    let png = dir.join("attention.png");
    let csv = root().join("data/digits.csv");
    let mut o = ExplainOptions::new(Method::Attention);
    let e = explain_run(&run, &csv, &o, &png).unwrap();
    assert_eq!(e.shape, [1, 8, 8]);
    // Each 2×2 patch's pixels share its attention; the class token keeps the rest of the row.
    let a = &e.attributions;
    assert!((0..8).all(|y| (0..8).all(|x| a[y * 8 + x] == a[(y / 2 * 2) * 8 + x / 2 * 2])));
    let patch_sum: f32 = (0..4).flat_map(|gy| (0..4).map(move |gx| a[gy * 16 + gx * 2])).sum();
    assert!(patch_sum > 0.0 && patch_sum <= 1.0 + 1e-5, "{patch_sum}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    o.layer = Some(0);
    o.head = Some(1);
    explain_run(&run, &csv, &o, &png).unwrap();
    o.head = Some(2);
    let err = explain_run(&run, &csv, &o, &png).unwrap_err().to_string();
    assert!(err.contains("head 2") && err.contains("2 heads"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn missing_targets_rows_and_windows_are_named() {
    let dir = &mlp_run().dir;
    let csv = root().join("data/diabetes.csv");
    let png = dir.join("x.png");
    let mut opts = ExplainOptions::new(Method::Saliency);
    opts.target = Some(1);
    let e = explain_run(dir, &csv, &opts, &png).unwrap_err().to_string();
    assert!(e.contains("target 1") && e.contains("1 output "), "{e}");
    opts.target = None;
    opts.row = 442;
    let e = explain_run(dir, &csv, &opts, &png).unwrap_err().to_string();
    assert!(e.contains("row 442") && e.contains("442 data rows"), "{e}");
    let mut occ = ExplainOptions::new(Method::Occlusion);
    occ.window = Some(vec![11]);
    let e = explain_run(dir, &csv, &occ, &png).unwrap_err().to_string();
    assert!(e.contains("[11]") && e.contains("[10]"), "{e}");
    let e = explain_run(dir, &csv, &ExplainOptions::new(Method::Attention), &png)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a Vision Transformer run"), "{e}");
    assert!(Method::parse("lime")
        .unwrap_err()
        .to_string()
        .contains("unknown method 'lime'"));
}
