//! Convolution, pooling and batch norm: forward values, gradients and running statistics checked
//! against PyTorch (`tests/reference/vision.json`, written by `tools/make_vision_reference.py`),
//! finite-difference gradchecks (including strided/transposed inputs and reused tensors), and the
//! errors a user gets for bad geometry.
//!
//! Tolerance against PyTorch: |ferrite − torch| ≤ 2e-5 + 1e-4·|torch| elementwise in f32 (different
//! summation orders), as for the core ops.

use ferrite_core::testing::{assert_close, gradcheck, load_reference, ref_tensor};
use ferrite_core::{BatchNormOptions, Conv1dOptions, Conv2dOptions, Pool2dOptions, Result, Rng, Tensor};
use std::collections::BTreeMap;

const ATOL: f64 = 2e-5;
const RTOL: f64 = 1e-4;

fn pair(v: &serde_json::Value) -> [usize; 2] {
    [v[0].as_u64().unwrap() as usize, v[1].as_u64().unwrap() as usize]
}
fn num(v: &serde_json::Value) -> usize {
    v.as_u64().unwrap() as usize
}
fn refd(case: &serde_json::Value, key: &str) -> Tensor {
    ref_tensor(&case[key]).unwrap().to_f32().unwrap()
}

fn run_case(case: &serde_json::Value, x: &BTreeMap<String, Tensor>) -> Result<Tensor> {
    let p = &case["params"];
    let t = |k: &str| x[k].clone();
    let bias = x.get("bias");
    Ok(match case["op"].as_str().unwrap() {
        "conv2d" => {
            let o = Conv2dOptions {
                stride: pair(&p["stride"]),
                padding: pair(&p["padding"]),
                dilation: pair(&p["dilation"]),
                groups: num(&p["groups"]),
            };
            t("x").conv2d(&t("weight"), bias, o)?
        }
        "conv1d" => {
            let o = Conv1dOptions {
                stride: num(&p["stride"]),
                padding: num(&p["padding"]),
                dilation: num(&p["dilation"]),
                groups: num(&p["groups"]),
            };
            t("x").conv1d(&t("weight"), bias, o)?
        }
        "max_pool2d" => t("x").max_pool2d(Pool2dOptions {
            kernel: pair(&p["kernel"]),
            stride: pair(&p["stride"]),
            padding: pair(&p["padding"]),
            dilation: pair(&p["dilation"]),
        })?,
        "avg_pool2d" => t("x").avg_pool2d(
            Pool2dOptions {
                kernel: pair(&p["kernel"]),
                stride: pair(&p["stride"]),
                padding: pair(&p["padding"]),
                dilation: [1, 1],
            },
            p["count_include_pad"].as_bool().unwrap(),
        )?,
        "adaptive_avg_pool2d" => t("x").adaptive_avg_pool2d(pair(&p["output_size"]))?,
        op @ ("batch_norm_train" | "batch_norm_eval") => {
            let training = op == "batch_norm_train";
            let (rm, rv) = if training {
                (refd(case, "running_mean_in"), refd(case, "running_var_in"))
            } else {
                (refd(case, "running_mean"), refd(case, "running_var"))
            };
            let o = BatchNormOptions {
                training,
                momentum: p["momentum"].as_f64().unwrap_or(0.1),
                eps: p["eps"].as_f64().unwrap(),
            };
            let y = t("x").batch_norm(Some((&rm, &rv)), Some(&t("weight")), Some(&t("bias")), o)?;
            if training {
                let name = case["name"].as_str().unwrap();
                let (wm, wv) = (refd(case, "running_mean_out"), refd(case, "running_var_out"));
                assert_close(
                    &rm.to_f64_vec(),
                    &wm.to_f64_vec(),
                    ATOL,
                    RTOL,
                    &format!("{name} running_mean"),
                );
                assert_close(
                    &rv.to_f64_vec(),
                    &wv.to_f64_vec(),
                    ATOL,
                    RTOL,
                    &format!("{name} running_var"),
                );
            }
            y
        }
        other => panic!("unknown op {other} in reference file"),
    })
}

#[test]
fn forward_backward_and_running_stats_match_pytorch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/reference/vision.json");
    let r = load_reference(path).unwrap();
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "expected at least 20 reference cases");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut inputs = BTreeMap::new();
        for (k, v) in case["inputs"].as_object().unwrap() {
            inputs.insert(k.clone(), ref_tensor(v).unwrap().to_f32().unwrap().requires_grad_(true));
        }
        let y = run_case(case, &inputs).unwrap();
        let want = ref_tensor(&case["output"]).unwrap();
        assert_eq!(y.shape(), want.shape.as_slice(), "{name}: output shape");
        assert_close(&y.to_f64_vec(), &want.data, ATOL, RTOL, &format!("{name} forward"));
        let grads = y.backward_with(&refd(case, "grad_output")).unwrap();
        for (k, v) in case["grads"].as_object().unwrap() {
            let want = ref_tensor(v).unwrap();
            let got = grads
                .get(&inputs[k])
                .unwrap_or_else(|| panic!("{name}: no gradient for {k}"));
            assert_eq!(got.shape(), want.shape.as_slice(), "{name}: grad shape of {k}");
            assert_close(
                &got.to_f64_vec(),
                &want.data,
                ATOL,
                RTOL,
                &format!("{name} grad of {k}"),
            );
        }
    }
}

fn randn(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::randn_with(&mut Rng::new(seed), shape).unwrap()
}

#[test]
fn conv_gradchecks() {
    let x = randn(1, &[2, 4, 5, 6]);
    let w = randn(2, &[6, 2, 3, 2]);
    let b = randn(3, &[6]);
    let o = Conv2dOptions {
        stride: [2, 1],
        padding: [1, 2],
        dilation: [1, 2],
        groups: 2,
    };
    gradcheck(|t| t[0].conv2d(&t[1], Some(&t[2]), o), &[x.clone(), w, b]).unwrap();
    // A transposed (non-contiguous) input, a pointwise kernel, and one tensor used twice.
    let w1 = randn(4, &[3, 4, 1, 1]);
    gradcheck(
        |t| t[0].transpose(2, 3)?.conv2d(&t[1], None, Conv2dOptions::default()),
        &[x.clone(), w1],
    )
    .unwrap();
    let ws = randn(5, &[4, 4, 3, 3]);
    gradcheck(
        |t| {
            let h = t[0].conv2d(&t[1], None, Conv2dOptions::default().padding(1))?;
            h.tanh()?.conv2d(&t[1], None, Conv2dOptions::default().stride(2))
        },
        &[x.clone(), ws],
    )
    .unwrap();
    let x1 = randn(6, &[2, 3, 9]);
    let w1d = randn(7, &[4, 3, 3]);
    let o1 = Conv1dOptions {
        stride: 2,
        padding: 1,
        dilation: 2,
        groups: 1,
    };
    gradcheck(|t| t[0].conv1d(&t[1], None, o1), &[x1, w1d]).unwrap();
    gradcheck(
        |t| t[0].unfold2d([2, 3], Conv2dOptions::default().padding(1).stride(2)),
        &[x],
    )
    .unwrap();
}

#[test]
fn pooling_and_batch_norm_gradchecks() {
    // Distinct values, so no window's maximum is a tie the finite difference could flip.
    let x = Tensor::from_vec(
        (0..2 * 3 * 7 * 6)
            .map(|i| ((i * 37) % 251) as f32 / 50.0)
            .collect::<Vec<_>>(),
        [2, 3, 7, 6],
    )
    .unwrap();
    gradcheck(
        |t| t[0].max_pool2d(Pool2dOptions::new(3).stride(2).padding(1)),
        std::slice::from_ref(&x),
    )
    .unwrap();
    gradcheck(
        |t| t[0].avg_pool2d(Pool2dOptions::new(3).stride(2).padding(1), true),
        std::slice::from_ref(&x),
    )
    .unwrap();
    gradcheck(
        |t| t[0].avg_pool2d(Pool2dOptions::new(2).padding(1), false),
        std::slice::from_ref(&x),
    )
    .unwrap();
    gradcheck(|t| t[0].adaptive_avg_pool2d([4, 4]), std::slice::from_ref(&x)).unwrap();
    gradcheck(
        |t| t[0].transpose(2, 3)?.max_pool2d(Pool2dOptions::new(2)),
        std::slice::from_ref(&x),
    )
    .unwrap();
    let (w, b) = (randn(8, &[3]), randn(9, &[3]));
    for training in [true, false] {
        let o = BatchNormOptions {
            training,
            ..Default::default()
        };
        gradcheck(
            |t| {
                let (rm, rv) = (
                    Tensor::zeros([3])?.to_dtype(t[0].dtype())?,
                    Tensor::ones([3])?.to_dtype(t[0].dtype())?,
                );
                t[0].batch_norm(Some((&rm, &rv)), Some(&t[1]), Some(&t[2]), o)
            },
            &[x.clone(), w.clone(), b.clone()],
        )
        .unwrap();
    }
    gradcheck(
        |t| t[0].batch_norm(None, None, None, BatchNormOptions::default()),
        &[randn(10, &[6, 3])],
    )
    .unwrap();
}

#[test]
fn bad_geometry_gets_errors_naming_the_shapes() {
    let x = Tensor::zeros([1, 3, 8, 8]).unwrap();
    let w = Tensor::zeros([4, 2, 3, 3]).unwrap();
    let e = x.conv2d(&w, None, Conv2dOptions::default()).unwrap_err().to_string();
    assert!(
        e.contains("conv2d") && e.contains("[1, 3, 8, 8]") && e.contains("[4, 2, 3, 3]"),
        "{e}"
    );
    let big = Tensor::zeros([4, 3, 9, 9]).unwrap();
    let e = x.conv2d(&big, None, Conv2dOptions::default()).unwrap_err().to_string();
    assert!(e.contains("conv2d") && e.contains("[1, 3, 8, 8]"), "{e}");
    let e = x
        .conv2d(
            &Tensor::zeros([4, 3, 3, 3]).unwrap(),
            Some(&Tensor::zeros([3]).unwrap()),
            Conv2dOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("bias"), "{e}");
    let e = x
        .conv2d(
            &Tensor::zeros([4, 1, 3, 3]).unwrap(),
            None,
            Conv2dOptions::default().groups(2),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("groups"), "{e}");
    let e = Tensor::zeros([3, 8])
        .unwrap()
        .conv2d(&w, None, Conv2dOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("[3, 8]"), "{e}");
    let e = x.max_pool2d(Pool2dOptions::new(2).padding(2)).unwrap_err().to_string();
    assert!(e.contains("max_pool2d") && e.contains("padding"), "{e}");
    let e = x.max_pool2d(Pool2dOptions::new(9)).unwrap_err().to_string();
    assert!(e.contains("[1, 3, 8, 8]"), "{e}");
    let e = x.adaptive_avg_pool2d([0, 2]).unwrap_err().to_string();
    assert!(e.contains("adaptive_avg_pool2d"), "{e}");
    let e = x
        .batch_norm(
            None,
            Some(&Tensor::ones([4]).unwrap()),
            None,
            BatchNormOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch_norm") && e.contains("[4]"), "{e}");
    let one = Tensor::zeros([1, 3]).unwrap();
    assert!(one.batch_norm(None, None, None, BatchNormOptions::default()).is_err());
    let eval = BatchNormOptions {
        training: false,
        ..Default::default()
    };
    assert!(x
        .batch_norm(None, None, None, eval)
        .unwrap_err()
        .to_string()
        .contains("running"));
}
