#!/usr/bin/env python3
"""Write tests/reference/core_ops.json: PyTorch reference values (forward and
backward) for ferrite's core ops.

Run:  tools/.venv/bin/python tools/make_core_reference.py

Everything is float32; seed torch.manual_seed(0). Each case stores its
inputs, params, output, a fixed random `grad_output` g (same shape as the
output) and `grads`: d/d(input) of (output * g).sum() for every float input.
Floats are written as the shortest decimal that round-trips to the exact
float32 value (parse them as f32). Tensors are {"shape": [...], "data": [flat
row-major]}; a scalar has shape [] and one datum; integer inputs (targets)
have integer data.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "reference", "core_ops.json")


def f32(v):
    # shortest decimal that round-trips to this float32, as a Python float
    return float(np.format_float_scientific(np.float32(v), unique=True))


def enc(t):
    t = t.detach().contiguous()
    shape = list(t.shape)
    flat = t.reshape(-1).tolist()
    if t.dtype.is_floating_point:
        assert t.dtype == torch.float32, t.dtype
        data = [f32(v) for v in flat]
    else:
        data = [int(v) for v in flat]
    return {"shape": shape, "data": data}


def randn(*shape):
    return torch.randn(tuple(shape), dtype=torch.float32)


def case(name, op, params, inputs, fn):
    """inputs: dict name -> tensor (float ones get gradients); fn(**leaves)."""
    leaves = {}
    for k, v in inputs.items():
        v = v.detach().clone()
        if v.dtype.is_floating_point:
            v.requires_grad_(True)
        leaves[k] = v
    out = fn(**leaves)
    g = randn(*out.shape)
    (out * g).sum().backward()
    grads = {k: enc(v.grad) for k, v in leaves.items() if v.dtype.is_floating_point}
    return {
        "name": name,
        "op": op,
        "params": params,
        "inputs": {k: enc(v) for k, v in inputs.items()},
        "output": enc(out),
        "grad_output": enc(g),
        "grads": grads,
    }


def rms_norm(x, w, eps):
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), w, eps=eps)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cases = []

    cases.append(case("softmax_last", "softmax", {"dim": -1},
                      {"x": randn(3, 5)}, lambda x: F.softmax(x, dim=-1)))
    cases.append(case("softmax_dim0", "softmax", {"dim": 0},
                      {"x": randn(4, 3, 2)}, lambda x: F.softmax(x, dim=0)))
    cases.append(case("log_softmax_last", "log_softmax", {"dim": -1},
                      {"x": randn(3, 7) * 10}, lambda x: F.log_softmax(x, dim=-1)))

    lin = torch.linspace(-5, 5, 41, dtype=torch.float32)
    cases.append(case("gelu_erf", "gelu", {"approximate": "none"},
                      {"x": lin}, lambda x: F.gelu(x, approximate="none")))
    cases.append(case("gelu_tanh", "gelu", {"approximate": "tanh"},
                      {"x": lin}, lambda x: F.gelu(x, approximate="tanh")))
    cases.append(case("silu", "silu", {}, {"x": lin}, lambda x: F.silu(x)))

    cases.append(case("layer_norm", "layer_norm", {"eps": 1e-5},
                      {"x": randn(4, 8), "weight": randn(8), "bias": randn(8)},
                      lambda x, weight, bias: F.layer_norm(x, (8,), weight, bias, 1e-5)))
    cases.append(case("rms_norm", "rms_norm", {"eps": 1e-6},
                      {"x": randn(4, 8), "weight": randn(8)},
                      lambda x, weight: rms_norm(x, weight, 1e-6)))

    logits = randn(6, 5)
    targets = torch.randint(0, 5, (6,), dtype=torch.int64)
    cases.append(case("cross_entropy_plain", "cross_entropy",
                      {"ignore_index": -100, "label_smoothing": 0.0},
                      {"logits": logits, "targets": targets},
                      lambda logits, targets: F.cross_entropy(
                          logits, targets, ignore_index=-100, label_smoothing=0.0)))
    logits = randn(6, 5)
    targets = torch.randint(0, 5, (6,), dtype=torch.int64)
    targets[2] = -100
    cases.append(case("cross_entropy_smooth_ignore", "cross_entropy",
                      {"ignore_index": -100, "label_smoothing": 0.1},
                      {"logits": logits, "targets": targets},
                      lambda logits, targets: F.cross_entropy(
                          logits, targets, ignore_index=-100, label_smoothing=0.1)))

    cases.append(case("bmm_broadcast", "matmul", {},
                      {"a": randn(2, 1, 3, 4), "b": randn(3, 4, 5)},
                      lambda a, b: torch.matmul(a, b)))
    cases.append(case("matmul_transposed", "matmul_bt", {},
                      {"a": randn(4, 6), "b": randn(5, 6)},
                      lambda a, b: a @ b.T))

    doc = {"generator": "tools/make_core_reference.py",
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
