//! Training 3 epochs, then resuming for 2 more, gives exactly the 5-epoch result — also after a
//! kill between the epoch's log line and its checkpoint, which must not log an epoch twice.

use ferrite_train::run::{train_from_config, RunOptions};
use std::path::PathBuf;

#[test]
fn resume_continues_exactly() {
    let cfg = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed-mlp.toml"));
    let tmp = std::env::temp_dir().join(format!("ferrite-resume-{}", std::process::id()));
    let (a, b) = (tmp.join("straight"), tmp.join("resumed"));
    let straight = train_from_config(
        &cfg,
        &RunOptions {
            out: Some(a),
            epochs: Some(5),
            ..Default::default()
        },
    )
    .unwrap();
    train_from_config(
        &cfg,
        &RunOptions {
            out: Some(b.clone()),
            epochs: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    // What `kill -9` after the log line but before the checkpoint leaves: a fourth line the
    // checkpoint never saw, and the checkpoint's temp file.
    let log = b.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap().replace("\"epoch\":3", "\"epoch\":4");
    text.push_str(&format!("{last}\n"));
    std::fs::write(&log, text).unwrap();
    let stale = b.join(".checkpoint.safetensors.4294967.0.tmp");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let resumed = train_from_config(
        &cfg,
        &RunOptions {
            out: Some(b.clone()),
            epochs: Some(5),
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(resumed.epochs, 5);
    let epochs: Vec<u64> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4, 5], "each epoch logged once");
    if std::path::Path::new("/proc/self").exists() {
        assert!(!stale.exists(), "the dead writer's temp file is cleaned up");
    }
    assert_eq!(
        straight.train_loss, resumed.train_loss,
        "final training loss must match exactly"
    );
    assert_eq!(straight.val_loss, resumed.val_loss);
    assert_eq!(straight.test["test_mse"], resumed.test["test_mse"]);
    std::fs::remove_dir_all(tmp).ok();
}
