//! Representative misuse returns an error whose message names the op and the shapes or index.

use ferrite_core::{CrossEntropyOptions, DType, Tensor};

fn msg<T: std::fmt::Debug>(r: ferrite_core::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn matmul_inner_dimension_mismatch_names_both_shapes() {
    let a = Tensor::zeros([2, 3]).unwrap();
    let b = Tensor::zeros([4, 5]).unwrap();
    let m = msg(a.matmul(&b));
    assert!(
        m.contains("matmul") && m.contains("[2, 3]") && m.contains("[4, 5]"),
        "{m}"
    );
    let v = Tensor::zeros([4]).unwrap();
    let m = msg(v.matmul(&a));
    assert!(m.contains("matmul") && m.contains("[4]") && m.contains("[2, 3]"), "{m}");
    let m = msg(Tensor::zeros([2, 2, 3])
        .unwrap()
        .matmul(&Tensor::zeros([3, 3, 1]).unwrap()));
    assert!(
        m.contains("batch") && m.contains("[2, 2, 3]") && m.contains("[3, 3, 1]"),
        "{m}"
    );
}

#[test]
fn incompatible_broadcast_names_op_and_shapes() {
    let a = Tensor::zeros([3, 2]).unwrap();
    let b = Tensor::zeros([3]).unwrap();
    for (r, op) in [(a.add(&b), "add"), (a.mul(&b), "mul"), (a.gt(&b), "gt")] {
        let m = msg(r);
        assert!(m.contains(op) && m.contains("[3, 2]") && m.contains("[3]"), "{m}");
    }
    let m = msg(a.broadcast_to([4, 4]));
    assert!(
        m.contains("broadcast_to") && m.contains("[3, 2]") && m.contains("[4, 4]"),
        "{m}"
    );
}

#[test]
fn index_out_of_range_names_the_index() {
    let t = Tensor::zeros([5, 3]).unwrap();
    let ids = Tensor::from_vec(vec![1i64, 7], [2]).unwrap();
    let m = msg(t.index_select(0, &ids));
    assert!(
        m.contains("index_select") && m.contains('7') && m.contains("size 5"),
        "{m}"
    );
    let m = msg(t.narrow(1, 2, 2));
    assert!(m.contains("narrow") && m.contains("[5, 3]"), "{m}");
    let gi = Tensor::from_vec(vec![0i64, 3], [2, 1]).unwrap();
    let m = msg(Tensor::zeros([2, 3]).unwrap().gather(1, &gi));
    assert!(m.contains("gather") && m.contains('3'), "{m}");
    let m = msg(t.sum(&[2], false));
    assert!(
        m.contains("sum") && m.contains("dimension 2") && m.contains("[5, 3]"),
        "{m}"
    );
    let logits = Tensor::zeros([2, 3]).unwrap();
    let targets = Tensor::from_vec(vec![0i64, 3], [2]).unwrap();
    let m = msg(logits.cross_entropy(&targets, CrossEntropyOptions::default()));
    assert!(m.contains("cross_entropy") && m.contains("index 3"), "{m}");
}

#[test]
fn reshape_to_wrong_element_count_names_both_shapes() {
    let t = Tensor::zeros([2, 3]).unwrap();
    let m = msg(t.reshape([4, 2]));
    assert!(
        m.contains("reshape") && m.contains("[2, 3]") && m.contains("[4, 2]"),
        "{m}"
    );
    let m = msg(t.reshape([4, -1]));
    assert!(m.contains("reshape") && m.contains("[4, -1]"), "{m}");
    let m = msg(Tensor::from_vec(vec![1.0f32; 5], [2, 3]));
    assert!(m.contains("from_vec") && m.contains("[2, 3]"), "{m}");
}

#[test]
fn other_misuse_is_an_error_not_a_panic() {
    let t = Tensor::zeros([2, 3]).unwrap();
    assert!(msg(t.permute(&[0, 0])).contains("permute"));
    assert!(msg(t.squeeze(0)).contains("squeeze"));
    assert!(msg(t.layer_norm(&[2], None, None, 1e-5)).contains("layer_norm"));
    assert!(msg(t.to_dtype(DType::I64).unwrap().exp()).contains("I64"));
    assert!(msg(t.backward()).contains("one-element"));
    assert!(msg(t.sum_all().unwrap().backward()).contains("does not require grad"));
    assert!(msg(Tensor::cat(&[t.clone(), Tensor::zeros([3, 3]).unwrap()], 1)).contains("cat"));
    assert!(msg(t.split(0, 0)).contains("split"));
    assert!(msg(Tensor::zeros([2, -1])).contains("negative"));
    assert!(msg(t.dropout(1.5, true)).contains("dropout"));
    let f16 = t.to_dtype(DType::F16).unwrap();
    assert!(msg(f16.matmul(&f16.t().unwrap())).contains("F16"));
    assert!(msg(t.mul(&t.to_dtype(DType::F64).unwrap())).contains("dtypes must match"));
}
