//! Bad input gets a clear error naming what is wrong, never a panic.

use ferrite_core::Tensor;
use ferrite_train::run::{train_from_config, RunOptions};
use ferrite_train::{Dense, Sequential, TrainConfig};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrite-bad-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config_with(dir: &Path, csv: &str, extra_data: &str, extra_top: &str) -> PathBuf {
    config_of_kind(dir, csv, extra_data, &format!("task = \"regression\"\n{extra_top}"))
}

fn config_of_kind(dir: &Path, csv: &str, extra_data: &str, extra_top: &str) -> PathBuf {
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    let cfg = format!(
        "seed = 1\nepochs = 1\n{extra_top}\n[data]\npath = \"d.csv\"\ntarget = \"y\"\ntest_split = 0.25\n{extra_data}\n\
         [model]\nlayers = [{{ type = \"dense\", units = 1 }}]\n[optimizer]\nname = \"adam\"\nlr = 0.01\n"
    );
    let p = dir.join("c.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn run_err(cfg: &Path) -> String {
    let out = cfg.parent().unwrap().join("run");
    train_from_config(
        cfg,
        &RunOptions {
            out: Some(out),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string()
}

const GOOD: &str = "a,b,y\n1,2,3\n2,3,5\n3,4,7\n4,5,9\n5,6,11\n6,7,13\n7,8,15\n8,9,17\n";

#[test]
fn non_numeric_cell_names_file_line_and_column() {
    let d = tmp("cell");
    let e = run_err(&config_with(&d, "a,b,y\n1,2,3\n2,oops,5\n", "", ""));
    assert!(
        e.contains("d.csv") && e.contains("line 3") && e.contains("column 'b'") && e.contains("oops"),
        "{e}"
    );
}

#[test]
fn missing_column_is_named() {
    let d = tmp("col");
    let e = run_err(&config_with(&d, GOOD, "features = [\"a\", \"c\"]", ""));
    assert!(e.contains("d.csv") && e.contains("'c'"), "{e}");
}

#[test]
fn input_width_mismatch_names_both_shapes() {
    let m = Sequential::new(&[10]).add(Dense::new(1)).unwrap();
    let e = m
        .forward(&Tensor::zeros([4, 8]).unwrap(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[4, 8]") && e.contains("[4, 10]"), "{e}");
}

#[test]
fn unknown_toml_key_is_named() {
    let d = tmp("key");
    let cfg = config_with(&d, GOOD, "", "learning_rat = 0.1");
    let e = TrainConfig::from_file(&cfg).unwrap_err().to_string();
    assert!(e.contains("c.toml") && e.contains("learning_rat"), "{e}");
    let cfg = config_with(&d, GOOD, "shufle = true", "");
    let e = run_err(&cfg);
    assert!(e.contains("shufle"), "{e}");
}

#[test]
fn a_config_must_say_its_kind_of_run() {
    let d = tmp("kind");
    for (top, want) in [
        ("", "does not say what kind of run"),
        ("task = \"ranking\"", "is not a kind of run"),
    ] {
        let e = run_err(&config_of_kind(&d, GOOD, "", top));
        assert!(
            e.contains("c.toml") && e.contains(want) && e.contains("\"regression\", \"classification\", \"translate\""),
            "{e}"
        );
    }
    // The old place of the task, under [data], is an unknown key there.
    let e = run_err(&config_with(&d, GOOD, "task = \"regression\"", ""));
    assert!(e.contains("unknown field `task`"), "{e}");
}

#[test]
fn empty_splits_are_refused_by_name() {
    let d = tmp("empty");
    // 8 rows, 25% test → 6 train rows; a validation split of 0.01 rounds to none.
    let e = run_err(&config_with(&d, GOOD, "validation_split = 0.01", ""));
    assert!(e.contains("validation split has no rows"), "{e}");
}

#[test]
fn corrupt_or_truncated_checkpoint_names_the_file() {
    let d = tmp("ckpt");
    let m = Sequential::new(&[2]).add(Dense::new(3)).unwrap();
    let p = d.join("model.safetensors");
    m.save(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = Sequential::load(&p).err().unwrap().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::write(&p, b"garbage").unwrap();
    let e = Sequential::load(&p).err().unwrap().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );
    let e = Sequential::load(d.join("missing.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.safetensors"), "{e}");
}
