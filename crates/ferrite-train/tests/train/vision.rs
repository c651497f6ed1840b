//! Image models in `Sequential`: conv/pool/batch-norm layers from configs, batch-norm statistics
//! saved and restored with the weights, and clear errors for bad image data (truncated IDX files,
//! train and test images of different sizes, channel counts that do not match the first layer).

use ferrite_core::{DType, Tensor};
use ferrite_nn::LinearInit;
use ferrite_train::model::{LayerConfig, Padding, Size2};
use ferrite_train::run::prepare_data;
use ferrite_train::{Sequential, TrainConfig};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrite-vision-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_cnn() -> Sequential {
    let conv = LayerConfig::Conv2d {
        filters: 4,
        kernel_size: Size2::One(3),
        stride: Size2::One(1),
        padding: Padding::Size(Size2::One(1)),
        dilation: Size2::One(1),
        groups: 1,
        activation: Default::default(),
        use_bias: true,
    };
    let layers = vec![
        conv,
        LayerConfig::BatchNorm {
            momentum: 0.1,
            eps: 1e-5,
        },
        LayerConfig::MaxPool2d {
            pool_size: Size2::One(2),
            stride: None,
            padding: None,
        },
        LayerConfig::GlobalAvgPool2d,
        LayerConfig::Dense {
            units: 3,
            activation: Default::default(),
            use_bias: true,
        },
    ];
    let mut m = Sequential::with_options(&[2, 6, 6], 0, LinearInit::Pytorch);
    for l in layers {
        m = m.add(l).unwrap();
    }
    m
}

#[test]
fn shapes_flow_through_conv_layers_and_batch_norm_state_is_saved() {
    let m = small_cnn();
    assert_eq!(m.output_shape(), &[3]);
    // Buffers are state, not parameters: the optimizer never sees them.
    assert!(m.parameters().iter().all(|(n, _)| !n.contains("running")));
    assert!(m.var_map().state().iter().any(|(n, _)| n == "1.running_var"));
    let x = Tensor::randn([8, 2, 6, 6]).unwrap();
    m.forward(&x, true).unwrap();
    let rm = m.var_map().get("1.running_mean").unwrap().to_vec::<f32>().unwrap();
    assert!(rm.iter().any(|v| *v != 0.0), "training forward updates running_mean");
    let tracked = m.var_map().get("1.num_batches_tracked").unwrap();
    assert_eq!(tracked.dtype(), DType::I64);
    assert_eq!(tracked.to_vec::<i64>().unwrap(), vec![1]);
    let before = m.forward(&x, false).unwrap().to_vec::<f32>().unwrap();

    let dir = tmp("ckpt");
    m.save(dir.join("m.safetensors")).unwrap();
    let back = Sequential::load(dir.join("m.safetensors")).unwrap();
    assert_eq!(
        back.var_map().get("1.running_mean").unwrap().to_vec::<f32>().unwrap(),
        rm
    );
    assert_eq!(back.forward(&x, false).unwrap().to_vec::<f32>().unwrap(), before);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn wrong_channel_count_names_both_shapes() {
    let m = small_cnn();
    let e = m
        .forward(&Tensor::zeros([1, 3, 6, 6]).unwrap(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[1, 3, 6, 6]") && e.contains("[1, 2, 6, 6]"), "{e}");
    // A conv that cannot follow a flat input, and a kernel larger than the image.
    let flat = Sequential::new(&[10]).add(LayerConfig::Conv2d {
        filters: 1,
        kernel_size: Size2::One(3),
        stride: Size2::One(1),
        padding: Padding::default(),
        dilation: Size2::One(1),
        groups: 1,
        activation: Default::default(),
        use_bias: true,
    });
    assert!(flat.err().unwrap().to_string().contains("[10]"));
}

fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
    b.extend(data);
    std::fs::write(path, b).unwrap();
}

fn idx_config(dir: &Path) -> TrainConfig {
    let text = format!(
        "task = \"classification\"\nepochs = 1\n[data]\npath = \"{}\"\nformat = \"idx\"\n[model]\nlayers = [{{ type = \"flatten\" }}, {{ type = \"dense\", units = 10 }}]\n[optimizer]\nname = \"adam\"\nlr = 0.001\n",
        dir.display()
    );
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    TrainConfig::from_file(&p).unwrap()
}

#[test]
fn bad_idx_data_gets_clear_errors() {
    let dir = tmp("idx");
    write_idx(&dir.join("train-images-idx3-ubyte"), &[4, 5, 5], &[1; 100]);
    write_idx(&dir.join("train-labels-idx1-ubyte"), &[4], &[0, 1, 2, 3]);
    write_idx(&dir.join("t10k-images-idx3-ubyte"), &[2, 5, 5], &[1; 50]);
    write_idx(&dir.join("t10k-labels-idx1-ubyte"), &[2], &[0, 1]);
    let cfg = idx_config(&dir);
    let d = prepare_data(&cfg, None).unwrap();
    assert_eq!(d.train.x.shape(), &[4, 1, 5, 5]);
    assert_eq!(d.test.x.shape(), &[2, 1, 5, 5]);

    // Test images of another size than the training images.
    write_idx(&dir.join("t10k-images-idx3-ubyte"), &[2, 4, 4], &[1; 32]);
    let e = prepare_data(&cfg, None).err().unwrap().to_string();
    assert!(e.contains("[5, 5]") && e.contains("[4, 4]"), "{e}");
    // A truncated image file.
    write_idx(&dir.join("t10k-images-idx3-ubyte"), &[2, 5, 5], &[1; 31]);
    let e = prepare_data(&cfg, None).err().unwrap().to_string();
    assert!(e.contains("t10k-images-idx3-ubyte") && e.contains("truncated"), "{e}");
    // Labels that do not match the images.
    write_idx(&dir.join("t10k-images-idx3-ubyte"), &[2, 5, 5], &[1; 50]);
    write_idx(&dir.join("t10k-labels-idx1-ubyte"), &[3], &[0, 1, 2]);
    let e = prepare_data(&cfg, None).err().unwrap().to_string();
    assert!(e.contains("t10k-labels-idx1-ubyte"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn csv_image_shape_must_hold_the_feature_columns() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut cfg = TrainConfig::from_file(root.join("examples/digits-cnn.toml")).unwrap();
    let d = prepare_data(&cfg, None).unwrap();
    assert_eq!(d.train.x.shape()[1..], [1, 8, 8]);
    // Standardized per channel: the training pixels have mean 0 and std 1 overall.
    let v = d.train.x.to_vec::<f32>().unwrap();
    let mean = v.iter().map(|&a| a as f64).sum::<f64>() / v.len() as f64;
    assert!(mean.abs() < 1e-4, "{mean}");
    cfg.data.image_shape = Some(vec![1, 8, 7]);
    let e = prepare_data(&cfg, None).err().unwrap().to_string();
    assert!(
        e.contains("digits.csv") && e.contains("[1, 8, 7]") && e.contains("64"),
        "{e}"
    );
}

/// A tiny Vision Transformer (2×2 patches of the 8×8 digits → 16 tokens + class token) built from
/// config layers learns the digits: the whole ViT path (patch embedding, class token, positions,
/// pre-LN encoder layers, class-token pooling) trains end to end.
#[test]
fn tiny_vit_learns_digits() {
    use ferrite_nn::{Activation, Adam, Loss};
    use ferrite_train::{FitOptions, Metric};
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let cfg = TrainConfig::from_file(root.join("examples/digits-cnn.toml")).unwrap();
    let data = prepare_data(&cfg, None).unwrap();
    let layers = [
        LayerConfig::PatchEmbed { patch: 2, dim: 32 },
        LayerConfig::TransformerEncoder {
            heads: 4,
            ffn: 64,
            layers: 2,
            dropout: 0.0,
            activation: Activation::Gelu,
            norm_first: true,
        },
        LayerConfig::LayerNorm { eps: 1e-5 },
        LayerConfig::ClassToken,
        LayerConfig::Dense {
            units: 10,
            activation: Activation::Linear,
            use_bias: true,
        },
    ];
    let mut m = Sequential::with_options(&[1, 8, 8], 0, LinearInit::Pytorch);
    for l in layers {
        m = m.add(l).unwrap();
    }
    assert_eq!(m.output_shape(), &[10]);
    assert!(m.parameters().iter().any(|(n, _)| n == "0.class_token"));
    m.compile(
        Adam::new(3e-3),
        Loss::parse("cross_entropy").unwrap(),
        &[Metric::Accuracy],
    );
    let opts = FitOptions {
        epochs: 8,
        batch_size: 32,
        ..Default::default()
    };
    m.fit(&data.train, &opts, &mut []).unwrap();
    let acc = m.evaluate(&data.test, 256).unwrap()["accuracy"];
    assert!(acc >= 0.85, "tiny ViT digits accuracy {acc}");
    // Patches must tile the image.
    let bad = Sequential::new(&[1, 8, 8]).add(LayerConfig::PatchEmbed { patch: 3, dim: 8 });
    assert!(bad.err().unwrap().to_string().contains("patch size 3"));
}

/// Writes the digits as 8-bit grayscale PNGs in `ImageFolder` layout: `root/{train,test}/<digit>/`.
fn write_digit_folders(root: &Path) {
    let table = ferrite_train::csv::Table::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/digits.csv")).unwrap();
    let (train, test) = ferrite_train::data::train_test_indices(table.rows.len(), 0.2, 0).unwrap();
    for (split, rows) in [("train", train), ("test", test)] {
        for i in rows {
            let row = &table.rows[i];
            let label = row[64] as usize;
            let dir = root.join(split).join(format!("digit{label}"));
            std::fs::create_dir_all(&dir).unwrap();
            let img = image::GrayImage::from_fn(8, 8, |x, y| {
                image::Luma([(row[(y * 8 + x) as usize] * 255.0 / 16.0).round() as u8])
            });
            img.save(dir.join(format!("{i:04}.png"))).unwrap();
        }
    }
}

/// An image folder of PNGs trains like the CSV digits, with random crops; the class names come
/// from the directories; `predict` reads image files; and size or channel problems are named.
#[test]
fn image_folder_with_augmentation_trains_and_predicts() {
    use ferrite_train::run::{predict_run, train_from_config, RunOptions};
    let root = tmp("folder");
    write_digit_folders(&root.join("digits"));
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/digits-cnn.toml")).unwrap();
    let model_part = &example[example.find("[model]").unwrap()..];
    let config = format!(
        "task = \"classification\"\nseed = 0\nepochs = 12\n[data]\npath = \"digits\"\nformat = \"image_folder\"\n[augment]\ncrop_padding = 1\n{model_part}"
    );
    std::fs::write(root.join("c.toml"), &config).unwrap();
    let cfg = TrainConfig::from_file(root.join("c.toml")).unwrap();
    let data = prepare_data(&cfg, None).unwrap();
    assert_eq!(data.train.x.shape(), &[1438, 1, 8, 8]);
    assert_eq!(data.test.x.shape(), &[359, 1, 8, 8]);
    let names: Vec<String> = (0..10).map(|d| format!("digit{d}")).collect();
    assert_eq!(data.scalers.class_names.as_ref().unwrap(), &names);

    let run = root.join("run");
    let opts = RunOptions {
        out: Some(run.clone()),
        ..Default::default()
    };
    let summary = train_from_config(&root.join("c.toml"), &opts).unwrap();
    let acc = summary.test["test_accuracy"];
    eprintln!("image folder run: {summary:?}");
    assert!(acc >= 0.95, "image-folder digits with random crops: accuracy {acc}");
    assert!(run.join("confusion_matrix.png").exists() && run.join("misclassified.png").exists());
    let preds = predict_run(&run, &root.join("digits/test/digit3")).unwrap();
    let threes = preds.iter().filter(|&&p| p == 3.0).count();
    assert!(threes as f64 >= 0.9 * preds.len() as f64, "{preds:?}");
    let one = predict_run(
        &run,
        &root.join("digits/test/digit3").join(
            std::fs::read_dir(root.join("digits/test/digit3"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .file_name(),
        ),
    )
    .unwrap();
    assert_eq!(one.len(), 1);

    // An RGB image where the run expects grayscale is converted; one of another size is named.
    let odd = root.join("digits/test/digit3/zz-odd.png");
    image::RgbImage::new(9, 8).save(&odd).unwrap();
    let e = prepare_data(&cfg, None).err().unwrap().to_string();
    assert!(
        e.contains("zz-odd.png") && e.contains("8×9") && e.contains("8×8"),
        "{e}"
    );
    let e = predict_run(&run, &odd).unwrap_err().to_string();
    assert!(e.contains("[1, 8, 9]") && e.contains("[1, 8, 8]"), "{e}");
    // A test class the training folder does not have.
    std::fs::remove_file(&odd).unwrap();
    std::fs::create_dir_all(root.join("digits/test/letterA")).unwrap();
    let e = prepare_data(&cfg, None).err().unwrap().to_string();
    assert!(e.contains("'letterA'"), "{e}");
    // Augmentation needs images.
    let csv_cfg = TrainConfig::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed-mlp.toml")).unwrap();
    let text = toml::to_string(&csv_cfg).unwrap() + "\n[augment]\nhorizontal_flip = true\n";
    std::fs::write(root.join("mlp.toml"), text).unwrap();
    let e = train_from_config(
        &root.join("mlp.toml"),
        &RunOptions {
            out: Some(root.join("mlp")),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("[augment] needs image data"), "{e}");
    std::fs::remove_dir_all(root).ok();
}

/// The acceptance run: the Vision Transformer of `examples/fashion-vit.toml` (4×4 patches, four
/// pre-LN layers) on Fashion-MNIST reaches ≥ 85% test accuracy (87.6% measured, see
/// docs/BENCHMARKS.md). Needs `bash scripts/fetch-assets.sh fashion`.
#[test]
#[cfg_attr(not(feature = "slow"), ignore = "slow: scripts/acceptance.sh runs it")]
fn slow_fashion_vit_reaches_85_percent() {
    use ferrite_train::run::{train_from_config, RunOptions};
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    ferrite_core::testing::cached_asset(&root, "fashion-mnist", "train-images-idx3-ubyte.gz");
    let out = std::env::temp_dir().join(format!("ferrite-vit-slow-{}", std::process::id()));
    let opts = RunOptions {
        out: Some(out.clone()),
        ..Default::default()
    };
    let s = train_from_config(&root.join("examples/fashion-vit.toml"), &opts).unwrap();
    let acc = s.test["test_accuracy"];
    eprintln!("fashion ViT: test accuracy {acc:.4} in {:.0} s", s.seconds);
    assert!(acc >= 0.85, "fashion ViT test accuracy {acc}");
    std::fs::remove_dir_all(out).ok();
}
