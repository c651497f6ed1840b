//! Transfer learning end to end with the real all-MiniLM-L6-v2 (fetched by
//! `scripts/fetch-assets.sh`): a linear probe and a full fine-tune on a small sentiment set, the
//! saved run reloaded by `Classifier`, and bad input rejected with clear errors.

use ferrite_train::finetune::{finetune_run, Classifier, DataOptions, FinetuneArgs, FinetuneOptions};
use std::path::{Path, PathBuf};

fn model_dir() -> PathBuf {
    ferrite_core::testing::cached_asset(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        "all-MiniLM-L6-v2",
        "model.safetensors",
    )
}

/// 480 short reviews, half positive, half negative, as CSV with a quoted text column.
fn write_reviews(path: &Path) {
    let subjects = [
        "the movie",
        "this phone",
        "the food",
        "our trip",
        "the service",
        "that book",
    ];
    let good = ["wonderful", "great", "excellent", "delightful", "fantastic"];
    let bad = ["terrible", "awful", "horrible", "disappointing", "dreadful"];
    let tails = [
        "",
        " today",
        " honestly",
        " again",
        " for me",
        " in the end",
        ", as always",
        " overall",
    ];
    let mut csv = String::from("sentiment,review\n");
    for s in subjects {
        for (g, b) in good.iter().zip(bad) {
            for t in tails {
                csv.push_str(&format!("positive,\"{s} was {g}{t}\"\nnegative,\"{s} was {b}{t}\"\n"));
            }
        }
    }
    std::fs::write(path, csv).unwrap();
}

fn args(data: &Path, options: FinetuneOptions) -> FinetuneArgs {
    FinetuneArgs {
        model: model_dir(),
        data: data.to_path_buf(),
        data_options: DataOptions {
            text_column: "review".into(),
            label_column: "sentiment".into(),
            ..DataOptions::default()
        },
        options,
        from_scratch: false,
    }
}

#[test]
fn probe_and_finetune_minilm_then_classify() {
    let tmp = std::env::temp_dir().join(format!("ferrite-finetune-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let data = tmp.join("reviews.csv");
    write_reviews(&data);

    // Linear probe on frozen MiniLM features: sentiment is linearly separable in its space.
    let probe = FinetuneOptions {
        freeze_encoder: true,
        epochs: 30,
        lr: 3e-3,
        max_len: 32,
        ..FinetuneOptions::default()
    };
    let run = tmp.join("probe");
    let s = finetune_run(&args(&data, probe), Some(&run)).unwrap();
    assert_eq!(s.labels, vec!["negative", "positive"]);
    assert_eq!(s.n_train + s.n_valid + s.n_test, 480);
    assert_eq!(s.trainable_params, 384 * 2 + 2, "only the classifier trains in a probe");
    assert!(s.test_accuracy >= 0.9, "probe test accuracy {}", s.test_accuracy);
    for f in [
        "train.jsonl",
        "valid.jsonl",
        "test.jsonl",
        "labels.json",
        "summary.json",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let c = Classifier::open(&run).unwrap();
    let p = c
        .classify(&["the food was wonderful", "the service was awful"])
        .unwrap();
    assert_eq!((p[0].label.as_str(), p[1].label.as_str()), ("positive", "negative"));
    let total: f32 = p[0].probabilities.iter().map(|x| x.1).sum();
    assert!((total - 1.0).abs() < 1e-5);

    // Full fine-tuning with layer-wise LR decay: every weight trains, the run completes and saves.
    let full = FinetuneOptions {
        epochs: 1,
        batch_size: 16,
        lr: 5e-5,
        layer_lr_decay: 0.9,
        max_len: 32,
        ..FinetuneOptions::default()
    };
    let mut a = args(&data, full);
    a.data_options.train_limit = Some(48);
    let s = finetune_run(&a, Some(&tmp.join("full"))).unwrap();
    assert_eq!(s.n_train, 48);
    assert_eq!(s.steps, 3);
    assert!(s.trainable_params > 22_000_000);
    assert!(Classifier::open(&tmp.join("full")).is_ok());

    // Bad input: a missing column names the columns there are; a missing model names the path.
    let mut bad = args(&data, FinetuneOptions::default());
    bad.data_options.text_column = "text".into();
    let e = finetune_run(&bad, Some(&tmp.join("bad"))).err().unwrap().to_string();
    assert!(
        e.contains("no column \"text\"") && e.contains("sentiment, review"),
        "{e}"
    );
    bad.model = tmp.join("no-such-model");
    let e = finetune_run(&bad, Some(&tmp.join("bad"))).err().unwrap().to_string();
    assert!(e.contains("no-such-model") && e.contains("not found"), "{e}");
    std::fs::remove_dir_all(&tmp).ok();
}

/// The acceptance run: every MiniLM weight fine-tuned (layer-wise decay) on the 480 reviews for
/// two epochs reaches ≥ 90% test accuracy.
#[test]
#[cfg_attr(not(feature = "slow"), ignore = "slow: scripts/acceptance.sh runs it")]
fn slow_full_finetune_learns_sentiment() {
    let tmp = std::env::temp_dir().join(format!("ferrite-finetune-slow-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let data = tmp.join("reviews.csv");
    write_reviews(&data);
    let full = FinetuneOptions {
        epochs: 2,
        batch_size: 16,
        lr: 5e-5,
        layer_lr_decay: 0.9,
        max_len: 32,
        ..FinetuneOptions::default()
    };
    let s = finetune_run(&args(&data, full), Some(&tmp.join("full"))).unwrap();
    eprintln!(
        "full fine-tune: test accuracy {:.3} in {:.0} s",
        s.test_accuracy, s.train_seconds
    );
    assert!(
        s.test_accuracy >= 0.9,
        "full fine-tune test accuracy {}",
        s.test_accuracy
    );
    std::fs::remove_dir_all(&tmp).ok();
}

/// A private linear probe: DP-SGD on the head over frozen MiniLM features (Poisson batches,
/// per-example clipping, σ solved for ε = 4) still separates the reviews, and reports its ε;
/// DP-SGD through the whole encoder is refused by name.
#[test]
fn private_probe_learns_within_its_budget() {
    let tmp = std::env::temp_dir().join(format!("ferrite-finetune-dp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let data = tmp.join("reviews.csv");
    write_reviews(&data);
    let privacy = ferrite_train::privacy::dp_sgd::PrivacyConfig {
        target_epsilon: Some(4.0),
        noise_multiplier: None,
        max_grad_norm: 1.0,
        delta: 1e-3,
        accountant: ferrite_train::privacy::AccountantKind::Rdp,
        sampling: ferrite_train::privacy::dp_sgd::Sampling::Poisson,
    };
    let probe = FinetuneOptions {
        freeze_encoder: true,
        epochs: 40,
        lr: 2.0,
        batch_size: 128,
        weight_decay: 0.0,
        max_len: 32,
        privacy: Some(privacy.clone()),
        ..FinetuneOptions::default()
    };
    let s = finetune_run(&args(&data, probe.clone()), Some(&tmp.join("probe"))).unwrap();
    let p = s.privacy.as_ref().unwrap();
    assert!(p.epsilon <= 4.0 && p.epsilon > 3.9 && p.guaranteed, "{p:?}");
    assert!(
        s.test_accuracy >= 0.9,
        "private probe test accuracy {}",
        s.test_accuracy
    );
    let whole = FinetuneOptions {
        freeze_encoder: false,
        ..probe
    };
    let e = finetune_run(&args(&data, whole), Some(&tmp.join("whole")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("frozen encoder") && e.contains("per-example gradients"),
        "{e}"
    );
    std::fs::remove_dir_all(tmp).ok();
}
