//! Every optimizer fits a small known function below a stated loss bound.

use ferrite_core::{manual_seed, Tensor};
use ferrite_nn::{Activation, Adam, Loss, Optimizer, RmsProp, Sgd};
use ferrite_train::{Dataset, Dense, FitOptions, Sequential};

/// y = sin(x₀) + 0.5·x₁² − x₂ on 512 points in [−2, 2]³ (variance ≈ 2.0).
fn data() -> Dataset {
    manual_seed(11);
    let x = Tensor::uniform([512, 3], -2.0, 2.0).unwrap();
    let c = |i: usize| x.narrow(1, i, 1).unwrap();
    let y = c(0)
        .sin_approx()
        .add(&c(1).sqr().unwrap().mul_scalar(0.5).unwrap())
        .unwrap()
        .sub(&c(2))
        .unwrap();
    Dataset::new(x, y).unwrap()
}

trait SinApprox {
    fn sin_approx(&self) -> Tensor;
}
impl SinApprox for Tensor {
    /// sin via its values (the target needs no gradient).
    fn sin_approx(&self) -> Tensor {
        let v: Vec<f32> = self.to_vec::<f32>().unwrap().iter().map(|x| x.sin()).collect();
        Tensor::from_vec(v, self.shape()).unwrap()
    }
}

fn final_loss(opt: impl Optimizer + 'static, epochs: usize) -> f64 {
    let mut m = Sequential::with_options(&[3], 5, ferrite_nn::LinearInit::Keras)
        .add(Dense::new(32).activation(Activation::Tanh))
        .unwrap()
        .add(Dense::new(32).activation(Activation::Tanh))
        .unwrap()
        .add(Dense::new(1))
        .unwrap();
    m.compile(opt, Loss::Mse, &[]);
    let d = data();
    m.fit(
        &d,
        &FitOptions {
            epochs,
            batch_size: 32,
            seed: 3,
            ..Default::default()
        },
        &mut [],
    )
    .unwrap();
    m.evaluate(&d, 512).unwrap()["loss"]
}

#[test]
fn each_optimizer_fits_a_known_function() {
    // Bounds: the target's variance is ~2.0; each optimizer must explain > 97.5% of it.
    type Run = Box<dyn Fn() -> f64>;
    let cases: Vec<(&str, Run, f64)> = vec![
        ("sgd", Box::new(|| final_loss(Sgd::new(0.05), 60)), 0.05),
        (
            "sgd+momentum",
            Box::new(|| final_loss(Sgd::momentum(0.02, 0.9, false), 60)),
            0.05,
        ),
        (
            "sgd+nesterov",
            Box::new(|| final_loss(Sgd::momentum(0.02, 0.9, true), 60)),
            0.05,
        ),
        ("adam", Box::new(|| final_loss(Adam::new(3e-3), 60)), 0.05),
        ("adamw", Box::new(|| final_loss(Adam::adamw(3e-3, 0.01), 60)), 0.05),
        ("rmsprop", Box::new(|| final_loss(RmsProp::new(1e-3), 60)), 0.05),
    ];
    for (name, run, bound) in cases {
        let l = run();
        eprintln!("{name}: final MSE {l:.4} (bound {bound})");
        assert!(l < bound, "{name}: final MSE {l:.4} not below {bound}");
    }
}
