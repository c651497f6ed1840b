//! DP-SGD in the training step: per-example clipping equals clipping each example's own
//! gradient, the noise has the standard deviation σ·C/(q·n), Poisson batches have the size they
//! should, a private run learns and spends no more than its target ε, and bad settings are named.

use ferrite_core::{Rng, Tensor};
use ferrite_nn::LinearInit;
use ferrite_nn::{Activation, Loss, Sgd};
use ferrite_train::keras::SequentialBatch;
use ferrite_train::model::{Dense, LayerConfig, Size2};
use ferrite_train::privacy::dp_sgd::{poisson_batch, DpSgd, Sampling};
use ferrite_train::privacy::AccountantKind;
use ferrite_train::run::{train_from_config, RunOptions};
use ferrite_train::{Sequential, TrainConfig, Trainable};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn settings(noise_multiplier: f64, max_grad_norm: f64, expected_batch_size: f64) -> DpSgd {
    DpSgd {
        noise_multiplier,
        max_grad_norm,
        sample_rate: 0.1,
        expected_batch_size,
        delta: 1e-5,
        accountant: AccountantKind::Rdp,
        sampling: Sampling::Poisson,
        target_epsilon: None,
    }
}

fn cnn() -> Sequential {
    let conv = LayerConfig::Conv2d {
        filters: 3,
        kernel_size: Size2::One(3),
        stride: Size2::One(1),
        padding: ferrite_train::model::Padding::Size(Size2::One(1)),
        dilation: Size2::One(1),
        groups: 1,
        activation: Activation::Tanh,
        use_bias: true,
    };
    let mut m = Sequential::with_options(&[2, 5, 5], 3, LinearInit::Pytorch)
        .add(conv)
        .unwrap()
        .add(LayerConfig::MaxPool2d {
            pool_size: Size2::One(2),
            stride: None,
            padding: None,
        })
        .unwrap()
        .add(LayerConfig::Flatten)
        .unwrap()
        .add(Dense::new(6).activation(Activation::Relu))
        .unwrap()
        .add(Dense::new(4))
        .unwrap();
    m.compile(
        Sgd::new(0.1),
        Loss::parse("sparse_categorical_crossentropy").unwrap(),
        &[],
    );
    m
}

fn batch(n: usize) -> SequentialBatch {
    let mut rng = Rng::new(11);
    let x = Tensor::randn_with(&mut rng, [n, 2, 5, 5])
        .unwrap()
        .mul_scalar(2.0)
        .unwrap();
    let y = Tensor::from_vec((0..n as i64).map(|i| i % 4).collect::<Vec<_>>(), [n]).unwrap();
    SequentialBatch {
        x,
        y,
        sample_weight: None,
    }
}

/// The clipped, summed gradient from one tapped backward pass equals clipping every example's
/// own gradient (one backward pass each) and summing — with a clipping norm that clips some
/// examples and not others.
#[test]
fn per_example_clipping_matches_one_backward_pass_per_example() {
    let model = cnn();
    let b = batch(6);
    let params = Trainable::parameters(&model);
    // Each example's own gradient and its norm.
    let own: Vec<Vec<Vec<f32>>> = (0..6)
        .map(|n| {
            let one = SequentialBatch {
                x: b.x.narrow(0, n, 1).unwrap(),
                y: b.y.narrow(0, n, 1).unwrap(),
                sample_weight: None,
            };
            let g = model.loss(&one, true).unwrap().backward().unwrap();
            params
                .iter()
                .map(|(_, p)| g.get(p).unwrap().to_vec::<f32>().unwrap())
                .collect()
        })
        .collect();
    let norms: Vec<f64> = own
        .iter()
        .map(|g| g.iter().flatten().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt())
        .collect();
    let mut sorted = norms.clone();
    sorted.sort_by(f64::total_cmp);
    let c = sorted[3]; // clips the three largest
    let dp = settings(0.0, c, 6.0);
    let mut taps = Vec::new();
    let grads = model.summed_loss_tapped(&b, &mut taps).unwrap().backward().unwrap();
    let private = dp.privatize(&taps, &grads, &params, 0).unwrap();
    for (k, (name, p)) in params.iter().enumerate() {
        let got = private.get(p).unwrap().to_vec::<f32>().unwrap();
        for (i, g) in got.iter().enumerate() {
            let want: f64 = (0..6)
                .map(|n| f64::from(own[n][k][i]) * (c / (norms[n] + 1e-6)).min(1.0))
                .sum::<f64>()
                / 6.0;
            assert!(
                (f64::from(*g) - want).abs() <= 1e-5 + 1e-4 * want.abs(),
                "{name}[{i}]: {g} vs {want}"
            );
        }
    }
}

/// With nothing to clip the noise alone is left: N(0, (σ·C)²) / (q·n) in every coordinate.
#[test]
fn noise_has_the_standard_deviation_dp_sgd_promises() {
    let model = Sequential::with_options(&[100], 0, LinearInit::Pytorch)
        .add(Dense::new(100))
        .unwrap();
    let params = Trainable::parameters(&model);
    let dp = settings(1.5, 2.0, 10.0);
    // An empty batch (a Poisson draw can be one): no taps, noise only.
    let noise = dp.privatize(&[], &Default::default(), &params, 42).unwrap();
    let values: Vec<f64> = params
        .iter()
        .flat_map(|(_, p)| noise.get(p).unwrap().to_vec::<f32>().unwrap())
        .map(f64::from)
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let want = 1.5 * 2.0 / 10.0;
    assert!(mean.abs() < 0.05 * want, "mean {mean}");
    assert!((std - want).abs() < 0.03 * want, "std {std} vs {want}");
    // The same seed gives the same noise; another seed other noise.
    let again = dp.privatize(&[], &Default::default(), &params, 42).unwrap();
    let other = dp.privatize(&[], &Default::default(), &params, 43).unwrap();
    let first = |s: &ferrite_core::GradStore| s.get(&params[0].1).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(first(&noise), first(&again));
    assert_ne!(first(&noise), first(&other));
}

#[test]
fn poisson_batches_have_the_expected_size() {
    let mut rng = Rng::new(5);
    let sizes: Vec<usize> = (0..400).map(|_| poisson_batch(&mut rng, 1000, 0.05).len()).collect();
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    // Binomial(1000, 0.05): mean 50, sd 6.9; the mean of 400 draws is within 1.
    assert!((mean - 50.0).abs() < 1.0, "mean batch size {mean}");
    assert!(sizes.iter().min() < sizes.iter().max());
}

/// `examples/digits-dp.toml`: a CNN trained with DP-SGD to ε ≤ 3 still learns the digits; every
/// epoch logs the ε spent so far, growing; a shuffled-batch run says its ε is no guarantee.
#[test]
fn private_cnn_learns_digits_within_its_budget() {
    let out = std::env::temp_dir().join(format!("ferrite-dp-digits-{}", std::process::id()));
    let s = train_from_config(
        &root().join("examples/digits-dp.toml"),
        &RunOptions {
            out: Some(out.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let p = s.privacy.as_ref().unwrap();
    assert!(p.epsilon <= 3.0 && p.epsilon > 2.9, "ε {}", p.epsilon);
    assert!(p.guaranteed);
    assert!(
        s.test["test_accuracy"] >= 0.85,
        "test accuracy {}",
        s.test["test_accuracy"]
    );
    let history = ferrite_train::run::read_history(&out.join("metrics.jsonl")).unwrap();
    let eps: Vec<f64> = history.epochs.iter().map(|l| l["epsilon"]).collect();
    assert!(eps.windows(2).all(|w| w[0] < w[1]), "{eps:?}");
    // Asking for more epochs than σ was solved for stops before passing the target.
    let s2 = train_from_config(
        &root().join("examples/digits-dp.toml"),
        &RunOptions {
            out: Some(out.clone()),
            resume: true,
            epochs: Some(30),
            ..Default::default()
        },
    )
    .unwrap();
    // σ stays the one the first 15 epochs used, so epoch 16 would pass ε = 3: no step is taken.
    let (p1, p2) = (s.privacy.as_ref().unwrap(), s2.privacy.as_ref().unwrap());
    assert_eq!(p2.noise_multiplier, p1.noise_multiplier);
    assert_eq!(p2.steps, p1.steps);
    assert!(p2.epsilon <= 3.0);
    std::fs::remove_dir_all(&out).ok();

    let mut cfg = TrainConfig::from_file(root().join("examples/digits-dp.toml")).unwrap();
    cfg.epochs = 1;
    cfg.privacy.as_mut().unwrap().sampling = Sampling::Shuffle;
    let path = std::env::temp_dir().join(format!("ferrite-dp-shuffle-{}.toml", std::process::id()));
    cfg.data.path = root().join("data/digits.csv");
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    let s3 = train_from_config(
        &path,
        &RunOptions {
            out: Some(out.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!s3.privacy.unwrap().guaranteed);
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_file(path).ok();
}

#[test]
fn bad_privacy_settings_are_named() {
    let write = |name: &str, edit: &dyn Fn(&mut TrainConfig)| {
        let mut cfg = TrainConfig::from_file(root().join("examples/digits-dp.toml")).unwrap();
        cfg.data.path = root().join("data/digits.csv");
        cfg.epochs = 1;
        edit(&mut cfg);
        let path = std::env::temp_dir().join(format!("ferrite-dp-bad-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
        let out = std::env::temp_dir().join(format!("ferrite-dp-bad-{name}-{}", std::process::id()));
        let err = train_from_config(
            &path,
            &RunOptions {
                out: Some(out.clone()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        std::fs::remove_file(path).ok();
        std::fs::remove_dir_all(out).ok();
        err
    };
    let e = write("bn", &|c| {
        c.model.layers.insert(
            1,
            LayerConfig::BatchNorm {
                momentum: 0.1,
                eps: 1e-5,
            },
        )
    });
    assert!(
        e.contains("layer 1 (batch_norm)") && e.contains("mixes the examples"),
        "{e}"
    );
    let e = write("both", &|c| c.privacy.as_mut().unwrap().noise_multiplier = Some(1.0));
    assert!(e.contains("exactly one of target_epsilon and noise_multiplier"), "{e}");
    let e = write("clip", &|c| c.optimizer.clip_norm = Some(1.0));
    assert!(e.contains("optimizer.clip_norm") && e.contains("max_grad_norm"), "{e}");
    let e = write("norm", &|c| c.privacy.as_mut().unwrap().max_grad_norm = 0.0);
    assert!(e.contains("privacy.max_grad_norm"), "{e}");
    let e = write("delta", &|c| c.privacy.as_mut().unwrap().delta = 2.0);
    assert!(e.contains("privacy.delta: 2"), "{e}");
    let e = write("eps", &|c| c.privacy.as_mut().unwrap().target_epsilon = Some(0.01));
    assert!(e.contains("smallest reachable ε"), "{e}");
}

/// Poisson sampling on a tiny set draws empty batches (here q = 1/3: a third of the steps); they
/// add noise alone and training goes on.
#[test]
fn empty_poisson_batches_are_noise_only_steps() {
    let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], [3, 2]).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 0], [3]).unwrap();
    let data = ferrite_train::Dataset::new(x, y).unwrap();
    let mut model = Sequential::with_options(&[2], 0, LinearInit::Pytorch)
        .add(Dense::new(2))
        .unwrap();
    model.compile(
        Sgd::new(0.1),
        Loss::parse("sparse_categorical_crossentropy").unwrap(),
        &[],
    );
    let opts = ferrite_train::FitOptions {
        epochs: 10,
        batch_size: 1,
        privacy: Some(ferrite_train::privacy::dp_sgd::PrivacyConfig {
            target_epsilon: None,
            noise_multiplier: Some(1.0),
            max_grad_norm: 1.0,
            delta: 0.1,
            accountant: AccountantKind::Rdp,
            sampling: Sampling::Poisson,
        }),
        ..Default::default()
    };
    let history = model.fit(&data, &opts, &mut []).unwrap();
    assert_eq!(history.epochs.len(), 10);
    assert_eq!(model.trainer_mut().unwrap().state.step, 30);
    assert!(history.epochs.iter().all(|l| l["epsilon"].is_finite()));
}
