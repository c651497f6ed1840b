//! The seed's Keras example in ferrite: Dense(64, relu) → Dense(64, relu) → Dense(1), Adam + MSE,
//! 10 epochs, evaluated on a held-out split of scikit-learn's diabetes data.
//!
//! Run: `cargo run --release -p ferrite --example seed_mlp`

use ferrite::prelude::*;
use ferrite::train::{csv::Table, data};

fn main() -> Result<()> {
    // Data: 442 patients × 10 features; standardize with training-split statistics.
    let table = Table::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/diabetes.csv"))?;
    let all = Dataset::new(
        table.select(&table.other_columns(&["target".into()]))?,
        table.select(&["target".into()])?,
    )?;
    let (train_idx, test_idx) = data::train_test_indices(all.len(), 0.2, 42)?;
    let (mut train, mut test) = (all.subset(&train_idx)?, all.subset(&test_idx)?);
    let (sx, sy) = (data::Standardizer::fit(&train.x)?, data::Standardizer::fit(&train.y)?);
    for d in [&mut train, &mut test] {
        d.x = sx.transform(&d.x)?;
        d.y = sy.transform(&d.y)?;
    }

    // The model, as in Keras.
    let mut model = Sequential::new(&[10])
        .add(Dense::new(64).activation(Activation::Relu))?
        .add(Dense::new(64).activation(Activation::Relu))?
        .add(Dense::new(1))?;
    model.compile(Adam::keras(1e-3), Loss::Mse, &[]);
    model.fit(
        &train,
        &FitOptions {
            epochs: 10,
            batch_size: 32,
            ..Default::default()
        },
        &mut [],
    )?;
    let loss = model.evaluate(&test, 32)?["loss"];

    println!("test MSE (standardized target): {loss:.4}");
    Ok(())
}
