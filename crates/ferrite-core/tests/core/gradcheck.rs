//! Finite-difference gradient checks for every differentiable op, including broadcasting,
//! non-contiguous (transposed / sliced) inputs and tensors used more than once.

use ferrite_core::testing::{gradcheck, gradcheck_with, GradcheckOptions};
use ferrite_core::{CrossEntropyOptions, Rng, Tensor};

fn randn(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::randn_with(&mut Rng::new(seed), shape).unwrap()
}

/// Values bounded away from 0 (for log, sqrt, div, pow, rsqrt, recip).
fn positive(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::uniform_with(&mut Rng::new(seed), shape, 0.5, 2.0).unwrap()
}

/// Values bounded away from the kinks at 0 (relu, abs, clamp edges).
fn away_from_zero(seed: u64, shape: &[usize]) -> Tensor {
    let x = randn(seed, shape);
    let s = x.sign().unwrap();
    x.add(&s.mul_scalar(0.1).unwrap()).unwrap()
}

#[test]
fn unary_ops() {
    let x = randn(1, &[3, 4]);
    let p = positive(2, &[3, 4]);
    let a = away_from_zero(3, &[3, 4]);
    gradcheck(|t| t[0].neg(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].exp(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].log(), std::slice::from_ref(&p)).unwrap();
    gradcheck(|t| t[0].sqrt(), std::slice::from_ref(&p)).unwrap();
    gradcheck(|t| t[0].rsqrt(), std::slice::from_ref(&p)).unwrap();
    gradcheck(|t| t[0].recip(), std::slice::from_ref(&p)).unwrap();
    gradcheck(|t| t[0].sqr(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].abs(), std::slice::from_ref(&a)).unwrap();
    gradcheck(|t| t[0].relu(), std::slice::from_ref(&a)).unwrap();
    gradcheck(|t| t[0].gelu(false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].gelu(true), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].silu(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].sigmoid(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].tanh(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].affine(-1.5, 0.25), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].powf(2.5), std::slice::from_ref(&p)).unwrap();
    gradcheck(|t| t[0].powf(-1.5), std::slice::from_ref(&p)).unwrap();
    gradcheck(|t| t[0].clamp(-0.45, 0.55), std::slice::from_ref(&a)).unwrap();
}

#[test]
fn unary_ops_on_non_contiguous_input() {
    let x = randn(4, &[4, 3]);
    gradcheck(|t| t[0].t()?.exp(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].narrow(0, 1, 2)?.tanh(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].t()?.gelu(false)?.sum(&[1], false), &[x]).unwrap();
}

#[test]
fn binary_ops_with_broadcasting() {
    let a = randn(5, &[2, 3, 4]);
    let b = randn(6, &[3, 1]);
    let bp = positive(7, &[3, 1]);
    let ap = positive(8, &[2, 3, 4]);
    gradcheck(|t| t[0].add(&t[1]), &[a.clone(), b.clone()]).unwrap();
    gradcheck(|t| t[0].sub(&t[1]), &[a.clone(), b.clone()]).unwrap();
    gradcheck(|t| t[0].mul(&t[1]), &[a.clone(), b.clone()]).unwrap();
    gradcheck(|t| t[0].div(&t[1]), &[a.clone(), bp.clone()]).unwrap();
    gradcheck(|t| t[0].pow(&t[1]), &[ap.clone(), b.clone()]).unwrap();
    // maximum/minimum: shift one operand so no ties fall within eps.
    let c = a.add_scalar(0.05).unwrap();
    gradcheck(|t| t[0].maximum(&t[1]), &[c.clone(), b.clone()]).unwrap();
    gradcheck(|t| t[0].minimum(&t[1]), &[c.clone(), b.clone()]).unwrap();
    // Scalar (0-d) broadcast on the left.
    gradcheck(|t| t[1].mul(&t[0]), &[a.clone(), Tensor::scalar(1.7)]).unwrap();
}

#[test]
fn binary_ops_on_views_and_reused_tensors() {
    let a = randn(9, &[4, 3]);
    let b = randn(10, &[3, 4]);
    // Transposed operand against a contiguous one.
    gradcheck(|t| t[0].t()?.mul(&t[1]), &[a.clone(), b.clone()]).unwrap();
    // Sliced operand.
    gradcheck(
        |t| t[0].narrow(1, 1, 2)?.add(&t[1].t()?.narrow(1, 0, 2)?),
        &[a.clone(), b.clone()],
    )
    .unwrap();
    // Reuse: x·x + exp(x) + x — gradients accumulate across three uses.
    gradcheck(
        |t| t[0].mul(&t[0])?.add(&t[0].exp()?)?.add(&t[0]),
        std::slice::from_ref(&a),
    )
    .unwrap();
    // Broadcast view via expand.
    gradcheck(|t| t[0].narrow(0, 0, 1)?.expand([5, 3])?.mul_scalar(2.0), &[a]).unwrap();
}

#[test]
fn reductions() {
    let x = randn(11, &[2, 3, 4]);
    gradcheck(|t| t[0].sum(&[], false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].sum(&[1], false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].sum(&[0, 2], true), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].sum(&[0], false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].mean(&[-1], false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].mean(&[0, 1], true), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].max(&[2], false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].max(&[0, 1], true), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].min(&[1], false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].var(&[2], true, false), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].var(&[0, 2], false, true), std::slice::from_ref(&x)).unwrap();
    // On a permuted view.
    gradcheck(|t| t[0].permute(&[2, 0, 1])?.sum(&[0], false), &[x]).unwrap();
}

#[test]
fn matmul_all_forms() {
    let a = randn(12, &[3, 4]);
    let b = randn(13, &[4, 5]);
    gradcheck(|t| t[0].matmul(&t[1]), &[a.clone(), b.clone()]).unwrap();
    // Transposed operands without a copy.
    let at = randn(14, &[4, 3]);
    let bt = randn(15, &[5, 4]);
    gradcheck(|t| t[0].t()?.matmul(&t[1].t()?), &[at, bt]).unwrap();
    // Batched with broadcast batch dims.
    let ba = randn(16, &[2, 1, 3, 4]);
    let bb = randn(17, &[3, 4, 2]);
    gradcheck(|t| t[0].matmul(&t[1]), &[ba, bb]).unwrap();
    // Batched lhs against a shared 2-D rhs (folded into one product).
    let x = randn(18, &[2, 3, 4]);
    gradcheck(|t| t[0].matmul(&t[1]), &[x.clone(), b.clone()]).unwrap();
    // Vector forms.
    let v = randn(19, &[4]);
    gradcheck(|t| t[0].matmul(&t[1]), &[v.clone(), b.clone()]).unwrap();
    gradcheck(|t| t[0].matmul(&t[1]), &[a.clone(), v.clone()]).unwrap();
    // Reuse: a @ a^T.
    gradcheck(|t| t[0].matmul(&t[0].t()?), &[a]).unwrap();
}

#[test]
fn fused_linear() {
    let x = randn(35, &[2, 3, 4]);
    let w = randn(36, &[5, 4]);
    let b = randn(37, &[5]);
    gradcheck(|t| t[0].linear(&t[1], Some(&t[2])), &[x.clone(), w.clone(), b]).unwrap();
    gradcheck(|t| t[0].linear(&t[1], None), &[x.clone(), w.clone()]).unwrap();
    // Non-contiguous input and weight, and the weight reused.
    gradcheck(
        |t| {
            t[0].transpose(0, 1)?
                .linear(&t[1].t()?.t()?, None)?
                .add(&t[1].sum_all()?)
        },
        &[x, w],
    )
    .unwrap();
}

#[test]
fn views_and_joins() {
    let x = randn(20, &[2, 3, 4]);
    let y = randn(21, &[2, 2, 4]);
    gradcheck(|t| t[0].reshape([6, -1]), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].permute(&[1, 2, 0])?.reshape([12, 2]), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].transpose(0, 2)?.contiguous(), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].narrow(1, 1, 2), std::slice::from_ref(&x)).unwrap();
    gradcheck(
        |t| t[0].unsqueeze(1)?.squeeze(1)?.flatten(0, 1),
        std::slice::from_ref(&x),
    )
    .unwrap();
    gradcheck(
        |t| Tensor::cat(&[t[0].clone(), t[1].clone()], 1),
        &[x.clone(), y.clone()],
    )
    .unwrap();
    gradcheck(
        |t| Tensor::stack(&[t[0].clone(), t[0].mul_scalar(2.0)?], 0),
        std::slice::from_ref(&y),
    )
    .unwrap();
    gradcheck(
        |t| {
            let parts = t[0].split(2, 2)?;
            parts[0].mul(&parts[1])
        },
        std::slice::from_ref(&x),
    )
    .unwrap();
    gradcheck(|t| t[0].chunk(3, 1)?[2].exp(), std::slice::from_ref(&x)).unwrap();
    // Through f32 and back: f32 rounding needs a larger step and looser tolerance.
    let o = GradcheckOptions {
        eps: 1e-3,
        atol: 1e-3,
        rtol: 1e-3,
        ..Default::default()
    };
    gradcheck_with(
        |t| {
            t[0].to_dtype(ferrite_core::DType::F32)?
                .to_dtype(ferrite_core::DType::F64)
        },
        &[y],
        o,
    )
    .unwrap();
}

#[test]
fn indexing_ops() {
    let table = randn(22, &[5, 3]);
    let ids = Tensor::from_vec(vec![4i64, 0, 4, 2], [4]).unwrap();
    gradcheck(|t| t[0].index_select(0, &t[1]), &[table.clone(), ids.clone()]).unwrap();
    let cols = Tensor::from_vec(vec![2i64, 0, -1], [3]).unwrap(); // -1 counts from the end
    gradcheck(|t| t[0].t()?.index_select(0, &t[1]), &[table.clone(), cols]).unwrap();
    let ids2 = Tensor::from_vec(vec![1i64, 3, 3, 0, 2, 4], [2, 3]).unwrap();
    gradcheck(|t| t[0].embedding(&t[1]), &[table.clone(), ids2]).unwrap();
    let x = randn(23, &[3, 4]);
    let gi = Tensor::from_vec(vec![0i64, 3, 3, 1, 2, 2], [3, 2]).unwrap();
    gradcheck(|t| t[0].gather(1, &t[1]), &[x.clone(), gi.clone()]).unwrap();
    let src = randn(24, &[3, 2]);
    gradcheck(|t| t[0].scatter_add(1, &t[1], &t[2]), &[x.clone(), gi, src]).unwrap();
    let mask = x.gt_scalar(0.0).unwrap();
    let y = randn(25, &[4]);
    gradcheck(
        |t| Tensor::where_cond(&t[2], &t[0], &t[1]),
        &[x.clone(), y, mask.clone()],
    )
    .unwrap();
    gradcheck(|t| t[0].masked_fill(&t[1], -3.0), &[x, mask]).unwrap();
}

#[test]
fn fused_nn_ops() {
    let x = randn(26, &[3, 5]);
    gradcheck(|t| t[0].softmax(-1), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].softmax(0), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].log_softmax(-1), std::slice::from_ref(&x)).unwrap();
    gradcheck(|t| t[0].t()?.log_softmax(-1), std::slice::from_ref(&x)).unwrap();
    let w = randn(27, &[5]);
    let b = randn(28, &[5]);
    gradcheck(
        |t| t[0].layer_norm(&[5], Some(&t[1]), Some(&t[2]), 1e-5),
        &[x.clone(), w.clone(), b.clone()],
    )
    .unwrap();
    gradcheck(|t| t[0].layer_norm(&[5], None, None, 1e-5), std::slice::from_ref(&x)).unwrap();
    let x3 = randn(29, &[2, 3, 4]);
    let w34 = randn(30, &[3, 4]);
    gradcheck(
        |t| t[0].layer_norm(&[3, 4], Some(&t[1]), None, 1e-5),
        &[x3.clone(), w34],
    )
    .unwrap();
    gradcheck(
        |t| t[0].t()?.layer_norm(&[3], None, None, 1e-5),
        std::slice::from_ref(&x),
    )
    .unwrap();
    gradcheck(|t| t[0].rms_norm(&[5], Some(&t[1]), 1e-6), &[x.clone(), w.clone()]).unwrap();
    gradcheck(|t| t[0].rms_norm(&[4], None, 1e-6), &[x3]).unwrap();
    let targets = Tensor::from_vec(vec![1i64, 4, -100], [3]).unwrap();
    for smoothing in [0.0, 0.1] {
        let o = CrossEntropyOptions {
            ignore_index: -100,
            label_smoothing: smoothing,
        };
        gradcheck(|t| t[0].cross_entropy(&t[1], o), &[x.clone(), targets.clone()]).unwrap();
    }
    let seq_logits = randn(31, &[2, 3, 4]);
    let seq_t = Tensor::from_vec(vec![0i64, 3, 1, 2, 2, 0], [2, 3]).unwrap();
    gradcheck(
        |t| t[0].cross_entropy(&t[1], CrossEntropyOptions::default()),
        &[seq_logits, seq_t],
    )
    .unwrap();
    let target = randn(32, &[3, 5]);
    gradcheck(|t| t[0].mse_loss(&t[1]), &[x.clone(), target]).unwrap();
}

#[test]
fn dropout_gradient_matches_its_mask() {
    // Dropout draws a fresh mask per call, so check the rule directly: grad = mask / (1-p).
    ferrite_core::manual_seed(7);
    let x = Tensor::ones([1000]).unwrap().requires_grad_(true);
    let y = x.dropout(0.25, true).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let yv = y.to_vec::<f32>().unwrap();
    let gv = g.get(&x).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(yv, gv);
    let kept = yv.iter().filter(|&&v| v != 0.0).count();
    assert!((650..850).contains(&kept), "kept {kept}");
    assert!(yv.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    assert_eq!(
        x.dropout(0.25, false).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0; 1000]
    );
}

#[test]
fn large_inputs_use_random_directions() {
    let a = randn(33, &[40, 30]);
    let b = randn(34, &[30, 20]);
    let o = GradcheckOptions {
        max_elementwise: 100,
        ..Default::default()
    };
    gradcheck_with(|t| t[0].matmul(&t[1])?.gelu(false), &[a, b], o).unwrap();
}
