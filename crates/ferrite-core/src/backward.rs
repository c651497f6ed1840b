//! Backward rules: one function, one match arm per primitive in [`Op`], written with ordinary
//! tensor ops (run with recording off). Each arm returns one gradient per `op.inputs()` entry, in
//! order, `None` for non-differentiable inputs (indices, masks).
//!
//! Layer: core (autodiff).

use crate::dtype::DType;
use crate::error::Result;
use crate::op::Op;
use crate::ops::nn_backward as nb;
use crate::tensor::Tensor;
use ferrite_kernels::elementwise::BinaryFn;
use ferrite_kernels::reduce::ReduceFn;

fn mask_f(mask: &Tensor, like: &Tensor) -> Result<Tensor> {
    mask.to_dtype(like.dtype())
}

/// Gradients of `op`'s inputs given its output `out` and the upstream gradient `g`.
pub(crate) fn input_grads(op: &Op, out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    Ok(match op {
        Op::Unary(x, f) => vec![Some(Tensor::unary_backward(g, x, out, *f)?)],
        Op::Affine { mul, .. } => vec![Some(g.mul_scalar(*mul)?)],
        Op::Powf(x, e) => vec![Some(g.mul(&x.powf(e - 1.0)?)?.mul_scalar(*e)?)],
        Op::Clamp { x, min, max } => {
            let inside = mask_f(&x.ge_scalar(*min)?, g)?.mul(&mask_f(&x.le_scalar(*max)?, g)?)?;
            vec![Some(g.mul(&inside)?)]
        }
        Op::Binary(a, b, f) => {
            let (need_a, need_b) = (a.requires_grad(), b.requires_grad());
            let (ga, gb) = match f {
                BinaryFn::Add => (need_a.then(|| g.clone()), need_b.then(|| g.clone())),
                BinaryFn::Sub => (need_a.then(|| g.clone()), if need_b { Some(g.neg()?) } else { None }),
                BinaryFn::Mul => (
                    if need_a { Some(g.mul(b)?) } else { None },
                    if need_b { Some(g.mul(a)?) } else { None },
                ),
                BinaryFn::Div => (
                    if need_a { Some(g.div(b)?) } else { None },
                    if need_b { Some(g.mul(out)?.div(b)?.neg()?) } else { None },
                ),
                BinaryFn::Pow => (
                    if need_a {
                        Some(g.mul(b)?.mul(&a.pow(&b.add_scalar(-1.0)?)?)?)
                    } else {
                        None
                    },
                    if need_b {
                        Some(g.mul(out)?.mul(&a.log()?)?)
                    } else {
                        None
                    },
                ),
                BinaryFn::Maximum | BinaryFn::Minimum => {
                    let pick_a = if *f == BinaryFn::Maximum { a.ge(b)? } else { a.le(b)? };
                    let m = mask_f(&pick_a, g)?;
                    (Some(g.mul(&m)?), Some(g.mul(&m.affine(-1.0, 1.0)?)?))
                }
            };
            vec![
                ga.map(|t| t.sum_to(a.shape())).transpose()?,
                gb.map(|t| t.sum_to(b.shape())).transpose()?,
            ]
        }
        Op::Reduce { x, f, dims, keepdim } => {
            let mut keep_shape = x.shape().to_vec();
            for &d in dims {
                keep_shape[d] = 1;
            }
            let gk = if *keepdim { g.clone() } else { g.reshape(&keep_shape)? };
            let gx = match f {
                ReduceFn::Sum => gk.broadcast_to(x.shape())?,
                ReduceFn::Max | ReduceFn::Min => {
                    let yk = out.reshape(&keep_shape)?;
                    let m = mask_f(&x.eq(&yk)?, g)?;
                    let dims_i: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
                    let count = m.sum(&dims_i, true)?;
                    m.mul(&gk.div(&count)?)?
                }
            };
            vec![Some(gx)]
        }
        Op::Matmul(a, b) => {
            let ga = if a.requires_grad() {
                Some(g.matmul(&b.t()?)?.sum_to(a.shape())?)
            } else {
                None
            };
            let gb = if b.requires_grad() {
                Some(a.t()?.matmul(g)?.sum_to(b.shape())?)
            } else {
                None
            };
            vec![ga, gb]
        }
        Op::Linear { x, weight, bias } => {
            let (k, n) = (weight.shape()[1], weight.shape()[0]);
            // Rows from the leading dims: numel / k or numel / n is wrong when k or n is 0.
            let m: usize = x.shape()[..x.ndim() - 1].iter().product();
            let g2 = g.reshape([m, n])?; // (M, out)
            let mut v = vec![
                if x.requires_grad() {
                    Some(g.matmul(weight)?)
                } else {
                    None
                },
                if weight.requires_grad() {
                    Some(g2.t()?.matmul(&x.reshape([m, k])?)?)
                } else {
                    None
                },
            ];
            if bias.is_some() {
                v.push(Some(g2.sum(&[0], false)?));
            }
            v
        }
        Op::Reshape(x) => vec![Some(g.reshape(x.shape())?)],
        Op::Permute(_, p) => {
            let mut inv = vec![0isize; p.len()];
            for (i, &d) in p.iter().enumerate() {
                inv[d] = i as isize;
            }
            vec![Some(g.permute(&inv)?)]
        }
        Op::Narrow { x, dim, start } => vec![Some(crate::ops::pad_into_zeros(g, x.shape(), *dim, *start)?)],
        Op::Expand(x) => vec![Some(g.sum_to(x.shape())?)],
        Op::Copy(_) => vec![Some(g.clone())],
        Op::ToDType(x) => vec![Some(g.to_dtype(x.dtype())?)],
        Op::Cat(xs, d) => {
            let mut start = 0;
            let mut out = Vec::with_capacity(xs.len());
            for x in xs {
                let len = x.shape()[*d];
                out.push(Some(g.narrow(*d as isize, start, len)?));
                start += len;
            }
            out
        }
        Op::IndexSelect { x, index, dim } => {
            vec![Some(crate::ops::index_add_zeros(g, x.shape(), *dim, index)?), None]
        }
        Op::Gather { x, index, dim } => {
            let zeros = Tensor::full_dtype(x.shape(), 0.0, g.dtype())?;
            vec![Some(zeros.scatter_add(*dim as isize, index, &g.contiguous()?)?), None]
        }
        Op::ScatterAdd { index, dim, .. } => {
            vec![Some(g.clone()), None, Some(g.gather(*dim as isize, index)?)]
        }
        Op::Where { cond, a, b } => {
            let zero = Tensor::full_dtype([0usize; 0], 0.0, g.dtype())?;
            let ga = Tensor::where_cond(cond, g, &zero)?.sum_to(a.shape())?;
            let gb = Tensor::where_cond(cond, &zero, g)?.sum_to(b.shape())?;
            vec![None, Some(ga), Some(gb)]
        }
        Op::BatchNorm { x, weight, bias, saved } => {
            let (dx, dw, db) = crate::ops::batch_norm_backward(x, weight.as_ref(), g, saved)?;
            let mut v = vec![Some(dx)];
            if weight.is_some() {
                v.push(Some(dw));
            }
            if bias.is_some() {
                v.push(Some(db));
            }
            v
        }
        Op::Conv2d { x, weight, bias, shape } => {
            let (dx, dw, db) = crate::ops::conv2d_backward(x, weight, g, shape)?;
            let mut v = vec![dx, dw];
            if bias.is_some() {
                v.push(Some(db));
            }
            v
        }
        Op::Unfold { geometry, .. } => vec![Some(g.fold_geometry(*geometry)?)],
        Op::Fold { geometry, .. } => vec![Some(g.unfold_geometry(*geometry)?)],
        Op::Pool2d { x, kind, h, w } => vec![Some(crate::ops::pool2d_backward(x, g, *kind, h, w)?)],
        Op::Softmax(_) => vec![Some(nb::softmax_backward(out, g, false)?)],
        Op::LogSoftmax(_) => vec![Some(nb::softmax_backward(out, g, true)?)],
        Op::LayerNorm {
            x,
            weight,
            bias,
            len,
            eps,
        } => {
            let (dx, dw, db) = nb::layer_norm_backward(x, weight.as_ref(), g, *len, *eps)?;
            let mut v = vec![Some(dx)];
            if let Some(w) = weight {
                v.push(Some(dw.reshape(w.shape())?));
            }
            if let Some(b) = bias {
                v.push(Some(db.reshape(b.shape())?));
            }
            v
        }
        Op::RmsNorm { x, weight, len, eps } => {
            let (dx, dw) = nb::rms_norm_backward(x, weight.as_ref(), g, *len, *eps)?;
            let mut v = vec![Some(dx)];
            if let Some(w) = weight {
                v.push(Some(dw.reshape(w.shape())?));
            }
            v
        }
        Op::CrossEntropy {
            logits,
            targets,
            ignore_index,
            label_smoothing,
            count,
        } => {
            let gs = g.item()?;
            let dl = nb::cross_entropy_backward(logits, targets, gs, *ignore_index, *label_smoothing, *count)?;
            debug_assert!(targets.dtype() == DType::I64);
            vec![Some(dl), None]
        }
    })
}
