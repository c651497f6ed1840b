//! Zero-size dimensions, op by op: every op either gives PyTorch's result (a tensor with a zero
//! dimension, zeros for an empty sum, NaN for an empty mean) or a named error — never a panic.
//! Ordinary configs reach these (an empty validation split, a 1-row CSV, a layer of 0 units).

use ferrite_core::{Conv2dOptions, CrossEntropyOptions, Pool2dOptions, Result, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, failing the test with `what` if it panics; returns its result.
fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what} panicked on a zero-size input"))
}

fn shape_of(what: &str, f: impl FnOnce() -> Result<Tensor>) -> Vec<usize> {
    match no_panic(what, f) {
        Ok(t) => t.shape().to_vec(),
        Err(e) => panic!("{what}: PyTorch gives a result here, ferrite said: {e}"),
    }
}

fn refused(what: &str, f: impl FnOnce() -> Result<Tensor>) {
    if let Ok(t) = no_panic(what, f) {
        panic!("{what}: expected a named error, got a tensor of shape {:?}", t.shape());
    }
}

#[test]
fn elementwise_and_views_keep_the_zero_dimension() {
    let e = Tensor::zeros([0, 3]).unwrap().requires_grad_(true);
    let row = Tensor::ones([1, 3]).unwrap();
    for (name, r) in [
        ("relu", e.relu()),
        ("exp", e.exp()),
        ("gelu", e.gelu(false)),
        ("sigmoid", e.sigmoid()),
        ("add broadcast", e.add(&row)),
        ("mul", e.mul(&e)),
        ("mul_scalar", e.mul_scalar(2.0)),
        ("softmax", e.softmax(-1)),
        ("log_softmax", e.log_softmax(-1)),
        ("layer_norm", e.layer_norm(&[3], None, None, 1e-5)),
        ("rms_norm", e.rms_norm(&[3], None, 1e-5)),
        ("dropout", e.dropout(0.5, true)),
        ("contiguous of transpose", e.t().and_then(|t| t.contiguous())),
        ("cat", Tensor::cat(&[e.clone(), row.clone()], 0)),
    ] {
        let t = no_panic(name, || r).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(
            t.shape() == [0, 3] || t.shape() == [3, 0] || t.shape() == [1, 3],
            "{name}: {:?}",
            t.shape()
        );
    }
    assert_eq!(
        shape_of("softmax over an empty row", || Tensor::zeros([2, 0])?.softmax(-1)),
        [2, 0]
    );
    refused("add of mismatched shapes", || e.add(&Tensor::ones([2, 3])?));
}

#[test]
fn reductions_of_nothing_follow_pytorch() {
    let e = Tensor::zeros([0, 3]).unwrap();
    // sum of nothing is 0, mean of nothing NaN (torch.zeros(0, 3).mean(0) == [nan, nan, nan]).
    assert_eq!(
        no_panic("sum", || e.sum(&[0], false)).unwrap().to_vec::<f32>().unwrap(),
        [0.0; 3]
    );
    assert_eq!(no_panic("sum_all", || e.sum_all()).unwrap().item().unwrap(), 0.0);
    let mean = no_panic("mean", || e.mean(&[0], false))
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(mean.len() == 3 && mean.iter().all(|v| v.is_nan()), "{mean:?}");
    assert!(no_panic("mean_all", || e.mean_all()).unwrap().item().unwrap().is_nan());
    // Reducing the non-empty axis keeps the empty one.
    assert_eq!(shape_of("sum over dim 1", || e.sum(&[1], false)), [0]);
    assert_eq!(shape_of("mean over dim 1", || e.mean(&[1], false)), [0]);
    assert_eq!(shape_of("max over dim 1", || e.max(&[1], false)), [0]);
    // max and argmax of nothing have no answer: torch raises, so do we.
    refused("max over an empty dim", || e.max(&[0], false));
    refused("argmax over an empty dim", || e.argmax(0, false));
    refused("var over an empty dim", || e.var(&[0], true, false));
}

#[test]
fn products_and_layers_with_zero_units() {
    let x = Tensor::ones([4, 5]).unwrap();
    // A dense layer of 0 units: weight [0, 5] → output [4, 0].
    let w0 = Tensor::zeros([0, 5]).unwrap().requires_grad_(true);
    assert_eq!(
        shape_of("linear to 0 units", || x.linear(&w0, Some(&Tensor::zeros([0])?))),
        [4, 0]
    );
    // A dense layer with no input features (a table with only its target column): each row is
    // the bias, and the gradients still flow to it.
    let none = Tensor::zeros([4, 0]).unwrap();
    let w = Tensor::zeros([3, 0]).unwrap().requires_grad_(true);
    let b = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3])
        .unwrap()
        .requires_grad_(true);
    let y = no_panic("linear from 0 features", || none.linear(&w, Some(&b))).unwrap();
    assert_eq!(y.shape(), [4, 3]);
    assert_eq!(y.to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0].repeat(4));
    let grads = no_panic("backward of linear from 0 features", || y.sum_all()?.backward()).unwrap();
    assert_eq!(grads.get(&b).unwrap().to_vec::<f32>().unwrap(), [4.0; 3]);
    assert_eq!(grads.get(&w).unwrap().shape(), [3, 0]);
    // An empty inner dimension gives zeros, an empty batch an empty result.
    let inner = no_panic("matmul over k = 0", || {
        Tensor::zeros([2, 0])?.matmul(&Tensor::zeros([0, 3])?)
    })
    .unwrap();
    assert_eq!(inner.to_vec::<f32>().unwrap(), [0.0; 6]);
    assert_eq!(
        shape_of("matmul of 0 rows", || Tensor::zeros([0, 5])?
            .matmul(&Tensor::ones([5, 3])?)),
        [0, 3]
    );
    assert_eq!(
        shape_of("batched matmul of 0 batches", || Tensor::zeros([0, 2, 5])?
            .matmul(&Tensor::ones([0, 5, 3])?)),
        [0, 2, 3]
    );
    // Indexing with no indices, embedding of no ids.
    let ids = Tensor::from_vec(Vec::<i64>::new(), [0]).unwrap();
    assert_eq!(shape_of("index_select of nothing", || x.index_select(0, &ids)), [0, 5]);
    assert_eq!(shape_of("embedding of no ids", || x.embedding(&ids)), [0, 5]);
    // A batch of no images through conv and pooling.
    let imgs = Tensor::zeros([0, 1, 6, 6]).unwrap();
    let k = Tensor::ones([2, 1, 3, 3]).unwrap();
    assert_eq!(
        shape_of("conv2d of 0 images", || imgs.conv2d(&k, None, Conv2dOptions::default())),
        [0, 2, 4, 4]
    );
    assert_eq!(
        shape_of("max_pool2d of 0 images", || imgs.max_pool2d(Pool2dOptions::new(2))),
        [0, 1, 3, 3]
    );
}

#[test]
fn losses_and_backward_over_an_empty_batch() {
    // torch: F.mse_loss of empty tensors is NaN (mean of nothing); cross_entropy likewise.
    let p = Tensor::zeros([0, 1]).unwrap().requires_grad_(true);
    let mse = no_panic("mse_loss", || p.mse_loss(&Tensor::zeros([0, 1])?)).unwrap();
    assert!(mse.item().unwrap().is_nan());
    let logits = Tensor::zeros([0, 4]).unwrap().requires_grad_(true);
    let none = Tensor::from_vec(Vec::<i64>::new(), [0]).unwrap();
    let ce = no_panic("cross_entropy", || {
        logits.cross_entropy(&none, CrossEntropyOptions::default())
    })
    .unwrap();
    assert!(ce.item().unwrap().is_nan());
    // Gradients flow back to empty leaves as empty gradients.
    let w = Tensor::ones([3, 2]).unwrap().requires_grad_(true);
    let x = Tensor::zeros([0, 3]).unwrap();
    let loss = no_panic("forward", || x.matmul(&w)?.relu()?.sum_all()).unwrap();
    let grads = no_panic("backward", || loss.backward()).unwrap();
    assert_eq!(grads.get(&w).unwrap().to_vec::<f32>().unwrap(), [0.0; 6]);
}
