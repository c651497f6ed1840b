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

/// The standard config with another `test_split`.
fn with_test_split(dir: &Path, split: &str) -> PathBuf {
    let cfg = config_with(dir, GOOD, "", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("test_split = 0.25", &format!("test_split = {split}"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// A finished run of the standard config in a fresh scratch folder: (folder, run directory).
fn trained_run(name: &str) -> (PathBuf, PathBuf) {
    let d = tmp(name);
    let cfg = config_with(&d, GOOD, "", "");
    let out = d.join("run");
    let opts = RunOptions {
        out: Some(out.clone()),
        ..Default::default()
    };
    train_from_config(&cfg, &opts).unwrap();
    (d, out)
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
    // 8 rows, 5% test → no test rows: refused naming the split, not an empty mean later.
    let e = run_err(&with_test_split(&d, "0.05"));
    assert!(e.contains("test_split") && e.contains("leaves no test rows"), "{e}");
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

/// Runs a config whose `[data]`/top level get `extra_data`/`extra_top` and whose CSV is `csv`;
/// the error must name the file and contain every one of `want`.
fn refused(name: &str, csv: &str, extra_data: &str, extra_top: &str, want: &[&str]) {
    let d = tmp(name);
    let e = run_err(&config_with(&d, csv, extra_data, extra_top));
    for w in want {
        assert!(e.contains(w), "{name}: '{w}' missing from: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn missing_and_infinite_cells_are_refused_or_dropped_never_saved() {
    let nan = "a,b,y\n1,2,3\n2,3,5\n3,nan,7\n4,5,9\n5,6,11\n6,7,13\n7,8,15\n8,9,17\n";
    refused(
        "nan",
        nan,
        "",
        "",
        &["d.csv", "line 4, column 'b'", "missing value", "missing = \"drop\""],
    );
    refused(
        "inf",
        &nan.replace("nan", "-inf"),
        "",
        "",
        &["line 4, column 'b'", "infinite"],
    );
    refused("empty-cell", &nan.replace("nan", ""), "", "", &["line 4, column 'b'"]);
    // Dropped: the run trains on the 7 complete rows, and its scalers hold no NaN.
    let d = tmp("drop");
    let cfg = config_with(&d, nan, "missing = \"drop\"", "");
    let out = d.join("run");
    train_from_config(
        &cfg,
        &RunOptions {
            out: Some(out.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let scaler = std::fs::read_to_string(out.join("scaler.json")).unwrap();
    // serde writes a NaN statistic as null; only the optional keys after them may be null.
    let stats = &scaler[..scaler.find("\"image_shape\"").unwrap()];
    assert!(
        !stats.contains("null") && !stats.to_lowercase().contains("nan"),
        "{scaler}"
    );
    ferrite_train::run::open_run(&out).unwrap();
}

#[test]
fn class_labels_are_whole_numbers_within_the_output() {
    let cls = "task = \"classification\"";
    let labels = |l: &str| format!("a,y\n1,0\n2,1\n3,{l}\n4,0\n5,1\n6,0\n7,1\n8,0\n");
    let run = |name: &str, label: &str, want: &[&str]| {
        let d = tmp(name);
        std::fs::write(d.join("d.csv"), labels(label)).unwrap();
        let cfg = d.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "{cls}\nseed = 1\nepochs = 1\n[data]\npath = \"d.csv\"\ntarget = \"y\"\ntest_split = 0.25\n\
                 [model]\nlayers = [{{ type = \"dense\", units = 2 }}]\n[optimizer]\nname = \"adam\"\nlr = 0.01\n\
                 [training]\nloss = \"cross_entropy\"\n"
            ),
        )
        .unwrap();
        let e = run_err(&cfg);
        for w in want {
            assert!(e.contains(w), "{name}: '{w}' missing from: {e}");
        }
    };
    run(
        "fraction",
        "1.5",
        &["d.csv", "line 4, column 'y'", "1.5", "whole number"],
    );
    run("negative", "-1", &["line 4", "negative"]);
    run("nan-label", "nan", &["line 4, column 'y'", "missing value"]);
    run("too-big", "2", &["d.csv", "class label 2 is out of range", "2 units"]);
}

#[test]
fn columns_must_be_distinct_and_the_target_not_a_feature() {
    refused(
        "target-feature",
        GOOD,
        "features = [\"a\", \"y\"]",
        "",
        &["d.csv", "target column 'y'"],
    );
    refused("twice", GOOD, "features = [\"a\", \"a\"]", "", &["'a' twice"]);
    refused(
        "dup-header",
        &GOOD.replace("a,b,y", "a,a,y"),
        "",
        "",
        &["d.csv", "'a' appears twice"],
    );
    refused("no-rows", "a,b,y\n", "", "", &["d.csv", "no data rows"]);
}

#[test]
fn nonsense_values_are_refused_with_key_and_range() {
    let e = run_err(&with_test_split(&tmp("split0"), "0.0"));
    assert!(
        e.contains("c.toml") && e.contains("data.test_split: 0 must be in (0, 1)"),
        "{e}"
    );
    let d = tmp("opt");
    let cfg = config_with(&d, GOOD, "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "lr = 0.01\n",
        "lr = -0.01\nbeta1 = 2.0\neps = 0.0\nclip_value = 0.0\n[training]\nthreads = 100000\n",
    );
    std::fs::write(
        &cfg,
        text.replace("units = 1 }]", "units = 0 }, { type = \"layer_norm\", eps = -1.0 }]"),
    )
    .unwrap();
    let e = run_err(&cfg);
    for w in [
        "c.toml",
        "optimizer.lr: -0.01",
        "optimizer.beta1: 2 must be in [0, 1)",
        "optimizer.eps: 0 must be a number above 0",
        "optimizer.clip_value: 0",
        "training.threads: 100000",
        "model.layers[0].units: 0 must be at least 1",
        "model.layers[1].eps: -1",
    ] {
        assert!(e.contains(w), "'{w}' missing from: {e}");
    }
    // A flag's value is checked as the file's is.
    let d = tmp("flag");
    let e = train_from_config(
        &config_with(&d, GOOD, "", ""),
        &RunOptions {
            out: Some(d.join("run")),
            epochs: Some(0),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("epochs: 0 must be at least 1"), "{e}");
}

#[test]
fn resume_refuses_a_changed_config_by_key() {
    let d = tmp("resume-changed");
    let cfg = config_with(&d, GOOD, "", "");
    let out = d.join("run");
    train_from_config(
        &cfg,
        &RunOptions {
            out: Some(out.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace("lr = 0.01", "lr = 0.5");
    std::fs::write(&cfg, text).unwrap();
    let e = train_from_config(
        &cfg,
        &RunOptions {
            out: Some(out.clone()),
            epochs: Some(2),
            resume: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("optimizer.lr: 0.01 → 0.5") && e.contains("only epochs"),
        "{e}"
    );
    // More epochs (and nothing else) is what resuming is for.
    let text = std::fs::read_to_string(&cfg).unwrap().replace("lr = 0.5", "lr = 0.01");
    std::fs::write(&cfg, text).unwrap();
    let s = train_from_config(
        &cfg,
        &RunOptions {
            out: Some(out),
            epochs: Some(2),
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.epochs, 2);
}

/// A run handed to a command for another kind of run is named as what it is, with the command
/// that uses it — not a TOML error about keys the other kind's config lacks, nor a missing file.
#[test]
fn a_run_of_another_kind_is_named_with_the_command_that_uses_it() {
    use ferrite_train::finetune::Classifier;
    use ferrite_train::run::open_run;
    use ferrite_train::seq2seq::TranslationModel;
    let (d, out) = trained_run("wrong-kind");
    let e = TranslationModel::load(&out).err().unwrap().to_string();
    assert!(
        e.contains("a regression run; ferrite translate needs a translate run") && e.contains("ferrite predict"),
        "{e}"
    );
    let e = Classifier::open(&out).err().unwrap().to_string();
    assert!(
        e.contains("a regression run; classify needs") && e.contains("ferrite predict"),
        "{e}"
    );
    std::fs::write(out.join("config.toml"), "task = \"translate\"\n").unwrap();
    let e = open_run(&out).err().unwrap().to_string();
    assert!(
        e.contains("a translate run;") && e.contains("regression or classification") && e.contains("ferrite translate"),
        "{e}"
    );
    std::fs::remove_dir_all(d).ok();
}

/// What the config decides but only shows once data is loaded or training runs (a validation
/// monitor with no validation rows, a diverging learning rate) names the config to edit.
#[test]
fn errors_the_config_causes_name_the_config() {
    let d = tmp("config-causes");
    let cfg = config_with(&d, GOOD, "", "[early_stopping]\nmonitor = \"val_loss\"\npatience = 2\n");
    let e = run_err(&cfg);
    assert!(
        e.contains("c.toml") && e.contains("early_stopping.monitor") && e.contains("data.validation_split above 0"),
        "{e}"
    );
    let cfg = config_with(&d, GOOD, "", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("lr = 0.01", "lr = 1e30")
        .replace("epochs = 1", "epochs = 5");
    std::fs::write(&cfg, text).unwrap();
    let e = run_err(&cfg);
    assert!(e.contains("c.toml") && e.contains("loss became"), "{e}");
    std::fs::remove_dir_all(d).ok();
}

/// Found by scripts/hostile.sh: a table with only its target column (a panic in the kernels), a
/// seed no TOML file can hold again (a run that could never be loaded), a NaN time budget.
#[test]
fn no_features_unsavable_seeds_and_nan_budgets_are_refused() {
    let d = tmp("hostile-found");
    let cfg = config_with(&d, "y\n1\n2\n3\n4\n5\n6\n7\n8\n", "", "");
    let e = run_err(&cfg);
    assert!(
        e.contains("d.csv") && e.contains("no feature columns besides the target 'y'"),
        "{e}"
    );
    let cfg = config_with(&d, GOOD, "", "");
    let opts = |seed: Option<u64>, max_minutes: Option<f64>| RunOptions {
        out: Some(d.join("run")),
        seed,
        max_minutes,
        ..Default::default()
    };
    let e = train_from_config(&cfg, &opts(Some(u64::MAX), None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.toml") && e.contains("seed: 18446744073709551615 must be at most"),
        "{e}"
    );
    let e = train_from_config(&cfg, &opts(None, Some(f64::NAN)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_minutes: NaN must be a number above 0"), "{e}");
    std::fs::remove_dir_all(d).ok();
}

/// A run directory whose `scaler.json` is damaged or disagrees with its config is named when the
/// run opens (it used to surface as a standardizer shape mismatch at predict time).
#[test]
fn a_damaged_scaler_file_is_named_when_the_run_opens() {
    use ferrite_train::run::open_run;
    let (d, out) = trained_run("scaler");
    let path = out.join("scaler.json");
    let good: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut short = good.clone();
    short["x"]["mean"].as_array_mut().unwrap().pop();
    std::fs::write(&path, short.to_string()).unwrap();
    let e = open_run(&out).err().unwrap().to_string();
    assert!(
        e.contains("scaler.json") && e.contains("x has 1 means and 2 scales"),
        "{e}"
    );
    let mut zero = good.clone();
    zero["x"]["std"][0] = serde_json::json!(0.0);
    std::fs::write(&path, zero.to_string()).unwrap();
    let e = open_run(&out).err().unwrap().to_string();
    assert!(e.contains("scaler.json") && e.contains("not above 0"), "{e}");
    std::fs::write(&path, good.to_string()).unwrap();
    let config = out.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("task = \"regression\"", "task = \"classification\""),
    )
    .unwrap();
    let e = open_run(&out).err().unwrap().to_string();
    assert!(
        e.contains("scaler.json") && e.contains("written for a regression run") && e.contains("classification"),
        "{e}"
    );
    // A run killed before it finished has a checkpoint but no final model: say so, and how to
    // continue it, rather than "cannot read model.safetensors".
    std::fs::write(&config, text).unwrap();
    std::fs::remove_file(out.join("model.safetensors")).unwrap();
    let e = open_run(&out).err().unwrap().to_string();
    assert!(e.contains("training has not finished") && e.contains("--resume"), "{e}");
    std::fs::remove_dir_all(d).ok();
}
