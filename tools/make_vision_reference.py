#!/usr/bin/env python3
"""Write tests/reference/vision.json: PyTorch reference values (forward and
backward) for ferrite's vision ops (convolution, pooling, batch norm).

Run:  tools/.venv/bin/python tools/make_vision_reference.py

Same format as tests/reference/core_ops.json (the helpers are imported from
make_core_reference.py): float32, seed torch.manual_seed(0), one thread. Each
case stores its inputs, params, output, a fixed random `grad_output` g (same
shape as the output) and `grads`: d/d(input) of (output * g).sum() for every
float input. Floats are the shortest decimals that round-trip to the exact
float32 value (parse them as f32). Tensors are {"shape": [...], "data": [flat
row-major]}.

Ops and params (PyTorch semantics, NCHW / NCL layouts):
  conv2d               stride/padding/dilation [h,w], groups; x [N,C,H,W],
                       weight [O,C/groups,kh,kw], bias [O] (absent = no bias).
  conv1d               stride/padding/dilation/groups as ints; x [N,C,L],
                       weight [O,C/groups,k], bias [O].
  max_pool2d           kernel/stride/padding/dilation [h,w]; padding is -inf,
                       ceil_mode False. Inputs are randn (no ties).
  avg_pool2d           kernel/stride/padding [h,w], count_include_pad; ceil_mode
                       False, no divisor_override.
  adaptive_avg_pool2d  output_size [oh,ow]; bin i of n over a size-S axis is
                       [floor(i*S/n), ceil((i+1)*S/n)).
  batch_norm_train     eps, momentum; x [N,C,...], weight [C], bias [C].
                       Normalizes with the biased batch variance; extra keys
                       running_mean_in / running_var_in (buffers before) and
                       running_mean_out / running_var_out (after):
                       rm' = (1-m)*rm + m*mean, rv' = (1-m)*rv + m*var_unbiased
                       (var_unbiased = sum((x-mean)^2) / (n-1), n = N*H*W).
  batch_norm_eval      eps; normalizes with the extra keys running_mean /
                       running_var (not differentiated); grads for x, weight,
                       bias.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_core_reference import case, enc, randn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "reference", "vision.json")


def conv2d_case(name, n, c, h, w, o, kh, kw, stride, padding, dilation, groups, bias=True):
    params = {"stride": list(stride), "padding": list(padding),
              "dilation": list(dilation), "groups": groups}
    inputs = {"x": randn(n, c, h, w), "weight": randn(o, c // groups, kh, kw)}
    if bias:
        inputs["bias"] = randn(o)

    def fn(x, weight, bias=None):
        return F.conv2d(x, weight, bias, stride=tuple(stride), padding=tuple(padding),
                        dilation=tuple(dilation), groups=groups)
    return case(name, "conv2d", params, inputs, fn)


def conv1d_case(name, n, c, length, o, k, stride, padding, dilation, groups, bias=True):
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    inputs = {"x": randn(n, c, length), "weight": randn(o, c // groups, k)}
    if bias:
        inputs["bias"] = randn(o)

    def fn(x, weight, bias=None):
        return F.conv1d(x, weight, bias, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
    return case(name, "conv1d", params, inputs, fn)


def max_pool_case(name, shape, kernel, stride, padding, dilation):
    params = {"kernel": list(kernel), "stride": list(stride),
              "padding": list(padding), "dilation": list(dilation)}
    return case(name, "max_pool2d", params, {"x": randn(*shape)},
                lambda x: F.max_pool2d(x, tuple(kernel), tuple(stride), tuple(padding),
                                       tuple(dilation)))


def avg_pool_case(name, shape, kernel, stride, padding, count_include_pad):
    params = {"kernel": list(kernel), "stride": list(stride),
              "padding": list(padding), "count_include_pad": count_include_pad}
    return case(name, "avg_pool2d", params, {"x": randn(*shape)},
                lambda x: F.avg_pool2d(x, tuple(kernel), tuple(stride), tuple(padding),
                                       count_include_pad=count_include_pad))


def adaptive_case(name, shape, output_size):
    return case(name, "adaptive_avg_pool2d", {"output_size": list(output_size)},
                {"x": randn(*shape)},
                lambda x: F.adaptive_avg_pool2d(x, tuple(output_size)))


def batch_norm_train_case(name, shape, eps=1e-5, momentum=0.1):
    c = shape[1]
    inputs = {"x": randn(*shape), "weight": randn(c), "bias": randn(c)}
    rm_in = randn(c) * 0.1
    rv_in = torch.rand(c, dtype=torch.float32) + 0.5
    # buffers live outside `inputs`: case() never makes them leaves, and
    # F.batch_norm updates these clones in place
    rm, rv = rm_in.clone(), rv_in.clone()
    out = case(name, "batch_norm_train", {"eps": eps, "momentum": momentum}, inputs,
               lambda x, weight, bias: F.batch_norm(x, rm, rv, weight, bias, training=True,
                                                    momentum=momentum, eps=eps))
    out["running_mean_in"] = enc(rm_in)
    out["running_var_in"] = enc(rv_in)
    out["running_mean_out"] = enc(rm)
    out["running_var_out"] = enc(rv)
    return out


def batch_norm_eval_case(name, shape, eps=1e-5):
    c = shape[1]
    inputs = {"x": randn(*shape), "weight": randn(c), "bias": randn(c)}
    rm = randn(c) * 0.1
    rv = torch.rand(c, dtype=torch.float32) + 0.5
    out = case(name, "batch_norm_eval", {"eps": eps}, inputs,
               lambda x, weight, bias: F.batch_norm(x, rm, rv, weight, bias, training=False,
                                                    eps=eps))
    out["running_mean"] = enc(rm)
    out["running_var"] = enc(rv)
    return out


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cases = []

    # conv2d
    cases.append(conv2d_case("conv2d_3x3_pad1", 2, 3, 6, 6, 4, 3, 3,
                             (1, 1), (1, 1), (1, 1), 1))
    cases.append(conv2d_case("conv2d_stride2_rect", 2, 3, 7, 5, 4, 2, 3,
                             (2, 2), (0, 0), (1, 1), 1))
    cases.append(conv2d_case("conv2d_dilation2", 2, 3, 6, 6, 4, 3, 3,
                             (1, 1), (2, 2), (2, 2), 1))
    cases.append(conv2d_case("conv2d_groups2_nobias", 2, 4, 5, 5, 6, 3, 3,
                             (1, 1), (1, 1), (1, 1), 2, bias=False))
    cases.append(conv2d_case("conv2d_depthwise", 2, 3, 5, 5, 3, 3, 3,
                             (1, 1), (1, 1), (1, 1), 3))
    cases.append(conv2d_case("conv2d_1x1", 2, 3, 5, 5, 4, 1, 1,
                             (1, 1), (0, 0), (1, 1), 1))

    # conv1d
    cases.append(conv1d_case("conv1d_k3_pad1", 2, 3, 10, 4, 3, 1, 1, 1, 1))
    cases.append(conv1d_case("conv1d_stride2_dilation2", 2, 3, 11, 4, 3, 2, 1, 2, 1))

    # max_pool2d
    cases.append(max_pool_case("max_pool2d_2x2_s2", (2, 3, 6, 6),
                               (2, 2), (2, 2), (0, 0), (1, 1)))
    cases.append(max_pool_case("max_pool2d_3x3_s2_pad1", (1, 2, 7, 7),
                               (3, 3), (2, 2), (1, 1), (1, 1)))
    cases.append(max_pool_case("max_pool2d_rect_dilation", (1, 1, 7, 8),
                               (2, 3), (1, 2), (0, 0), (2, 1)))

    # avg_pool2d
    cases.append(avg_pool_case("avg_pool2d_2x2_s2", (2, 3, 6, 6),
                               (2, 2), (2, 2), (0, 0), True))
    cases.append(avg_pool_case("avg_pool2d_3x3_s2_pad1_incl", (1, 2, 7, 7),
                               (3, 3), (2, 2), (1, 1), True))
    cases.append(avg_pool_case("avg_pool2d_3x3_s2_pad1_excl", (1, 2, 7, 7),
                               (3, 3), (2, 2), (1, 1), False))

    # adaptive_avg_pool2d
    cases.append(adaptive_case("adaptive_avg_pool2d_7x7_to_3x3", (2, 2, 7, 7), (3, 3)))
    cases.append(adaptive_case("adaptive_avg_pool2d_6x5_to_4x2", (1, 2, 6, 5), (4, 2)))
    cases.append(adaptive_case("adaptive_avg_pool2d_5x5_to_1x1", (2, 3, 5, 5), (1, 1)))

    # batch norm
    cases.append(batch_norm_train_case("batch_norm2d_train", (4, 3, 5, 5)))
    cases.append(batch_norm_train_case("batch_norm1d_train", (8, 3)))
    cases.append(batch_norm_eval_case("batch_norm2d_eval", (2, 3, 4, 4)))

    doc = {"generator": "tools/make_vision_reference.py",
           "torch_version": torch.__version__,
           "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # one case per line: compact but diff-friendly
    head = json.dumps({k: doc[k] for k in ("generator", "torch_version")})[:-1]
    body = ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in cases)
    with open(OUT, "w") as f:
        f.write(head + ',\n "cases": [\n' + body + "\n ]}\n")
    json.load(open(OUT))  # sanity
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(cases)} cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
