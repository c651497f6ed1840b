//! Training 3 epochs, then resuming for 2 more, gives exactly the 5-epoch result.

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
    let resumed = train_from_config(
        &cfg,
        &RunOptions {
            out: Some(b),
            epochs: Some(5),
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(resumed.epochs, 5);
    assert_eq!(
        straight.train_loss, resumed.train_loss,
        "final training loss must match exactly"
    );
    assert_eq!(straight.val_loss, resumed.val_loss);
    assert_eq!(straight.test["test_mse"], resumed.test["test_mse"]);
    std::fs::remove_dir_all(tmp).ok();
}
