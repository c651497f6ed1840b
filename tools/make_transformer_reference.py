#!/usr/bin/env python3
"""Write tests/reference/transformer.json: PyTorch reference values for
multi-head attention, Transformer encoder/decoder layers and the sinusoidal
positional encoding.

Run:  tools/.venv/bin/python tools/make_transformer_reference.py

Everything is float32, seed torch.manual_seed(0), one thread. Modules are
built with dropout=0.0, batch_first=True, and put in eval(). Right after
construction EVERY parameter is re-randomized so that a wrong parameter
mapping cannot hide: Linear / MultiheadAttention weights and biases ~
N(0, 0.3); LayerNorm weight = 1 + 0.1*N(0,1), bias = 0.1*N(0,1).

Each case: {"name", "module", "config", "params", "inputs", "outputs"} and,
for mha_self / encoder_post_ln / decoder_post_ln, "grads". `params` uses
PyTorch's exact state_dict key names (e.g. "self_attn.in_proj_weight",
"self_attn.out_proj.weight", "linear1.weight", "norm1.weight",
"multihead_attn.in_proj_weight"). in_proj_weight is [3E, E] with rows
q | k | v; Linear weights are [out, in] (y = x W^T + b). Masks are stored in
`inputs` as uint8 0/1 tensors where 1 means "masked out" (True in PyTorch's
bool masks): key-padding masks are 1 at padded positions, causal masks are 1
strictly above the diagonal. The sequence lengths that produced the padding
masks are in `config` as plain int lists ("lengths", "memory_lengths",
"tgt_lengths"). Grads: `inputs["grad_output"]` is a fixed random g shaped
like outputs["out"]; `grads` holds d/d(param) and d/d(float input) of
(out * g).sum(), keyed by the state_dict name or the input name. In mha_self
x is passed as query, key and value at once, so grads["x"] is the sum of the
three paths.

Fast path: in eval mode PyTorch may route nn.MultiheadAttention and
nn.TransformerEncoderLayer through fused "fast path" kernels
(torch._native_multi_head_attention / torch._transformer_encoder_layer_fwd).
This script disables them with torch.backends.mha.set_fastpath_enabled(False)
and additionally runs every forward with grad enabled on inputs that require
grad (which by itself also rules the fast path out), so all stored values come
from the ordinary math path; forward and backward come from the same call.
(With torch 2.15.0 a probe showed that for a single TransformerEncoderLayer
the fast path does NOT zero padded rows; it only differs by float rounding,
~4e-7. Padded rows of the output are therefore ordinary values: the queries at
padded positions are still computed, only the padded keys are masked.)
Every forward output, and every stored grad, is also checked here against an
independent float64 re-implementation (autograd through it for the grads;
max abs diff < 1e-5) before it is written.

Semantics worth knowing when re-implementing:
  * scores = (q / sqrt(head_dim)) @ k^T, masked entries -> -inf, softmax
    over keys; key_padding_mask and attn_mask are OR-ed.
  * need_weights=True, average_attn_weights=False gives per-head weights
    [B, H, Lq, Lk]; average_attn_weights=True gives their mean over heads
    [B, Lq, Lk].
  * Encoder layer, post-LN: x = norm1(x + SA(x)); x = norm2(x + FF(x)).
    Pre-LN (norm_first): x = x + SA(norm1(x)); x = x + FF(norm2(x)).
    FF(x) = linear2(act(linear1(x))); "gelu" is the exact erf GELU.
  * Decoder layer, post-LN: x = norm1(x + SA(x, tgt_mask, tgt_kpm));
    x = norm2(x + CA(x, memory, memory_kpm)); x = norm3(x + FF(x)).
    Pre-LN: x = x + SA(norm1(x)); x = x + CA(norm2(x), memory);
    x = x + FF(norm3(x)). Memory is NOT normalized by the layer.
  * LayerNorm eps = 1e-5 (biased variance).
  * sinusoidal_pe: the PyTorch tutorial table, computed in float32:
    div_term = exp(arange(0, d, 2) * (-ln(10000) / d));
    pe[:, 0::2] = sin(pos * div_term); pe[:, 1::2] = cos(pos * div_term).

Floats are written as the shortest decimal that round-trips to the exact
float32 value (parse them as f32). Tensors are {"shape": [...], "data":
[flat row-major]}; uint8 masks have integer data.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "reference", "transformer.json")

E, H, FF_DIM = 8, 2, 16
TOL = 1e-5


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


def pad_mask(lengths, L):
    """uint8 [B, L], 1 at padded positions (j >= length)."""
    return (torch.arange(L)[None, :] >= torch.tensor(lengths)[:, None]).to(torch.uint8)


def causal_mask(L):
    """uint8 [L, L], 1 strictly above the diagonal."""
    return torch.triu(torch.ones(L, L, dtype=torch.uint8), diagonal=1)


def randomize(module):
    ln_params = set()
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            ln_params.add(id(m.weight))
            ln_params.add(id(m.bias))
    with torch.no_grad():
        for name, p in module.named_parameters():
            if id(p) in ln_params:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.1 * randn(*p.shape))
                else:
                    p.copy_(0.1 * randn(*p.shape))
            else:
                p.normal_(0.0, 0.3)
    return module


def state(module):
    sd = module.state_dict()
    return {k: enc(v) for k, v in sd.items()}


def close(name, got, ref):
    d = (got.detach().double() - ref).abs().max().item()
    assert d < TOL, f"{name}: max abs diff {d} vs float64 re-implementation"


# ---------------------------------------------------------------- float64 math
def d64(t):
    return t.detach().double()


def p64(module, requires_grad=False):
    """float64 copies of the state_dict (leaves for autograd if asked)."""
    return {k: v.detach().double().requires_grad_(requires_grad)
            for k, v in module.state_dict().items()}


def check_grads(name, module, ref_fn, leaves, g, grads):
    """grads of (ref_fn(params64, **inputs64) * g).sum() in float64 vs the stored ones."""
    p = p64(module, True)
    xs = {k: d64(v).requires_grad_(True) for k, v in leaves.items()}
    (ref_fn(p, **xs) * g.double()).sum().backward()
    for k, t in list(p.items()) + list(xs.items()):
        got = torch.tensor(grads[k]["data"]).view(t.shape)
        close(f"{name}.grad[{k}]", got, t.grad)


def ref_mha(p, pre, q, k, v, kpm=None, attn_mask=None):
    """p: state_dict, pre: key prefix ('' or 'self_attn.'); masks bool/uint8 (1 = masked).
    Returns out [B, Lq, E] and per-head weights [B, H, Lq, Lk] in float64."""
    W, b = p[pre + "in_proj_weight"], p[pre + "in_proj_bias"]
    Wq, Wk, Wv = W[:E], W[E:2 * E], W[2 * E:]
    bq, bk, bv = b[:E], b[E:2 * E], b[2 * E:]
    B, Lq, Lk, hd = q.shape[0], q.shape[1], k.shape[1], E // H
    Q = (q @ Wq.T + bq).view(B, Lq, H, hd).transpose(1, 2)
    K = (k @ Wk.T + bk).view(B, Lk, H, hd).transpose(1, 2)
    V = (v @ Wv.T + bv).view(B, Lk, H, hd).transpose(1, 2)
    s = (Q / math.sqrt(hd)) @ K.transpose(-1, -2)
    m = torch.zeros(B, 1, Lq, Lk, dtype=torch.bool)
    if kpm is not None:
        m = m | kpm.bool()[:, None, None, :]
    if attn_mask is not None:
        m = m | attn_mask.bool()[None, None]
    s = s.masked_fill(m, float("-inf"))
    w = torch.softmax(s, dim=-1)
    o = (w @ V).transpose(1, 2).reshape(B, Lq, E)
    o = o @ p[pre + "out_proj.weight"].T + p[pre + "out_proj.bias"]
    return o, w


def ref_ln(p, name, x):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * p[name + ".weight"] + p[name + ".bias"]


def ref_ff(p, x, act):
    h = x @ p["linear1.weight"].T + p["linear1.bias"]
    h = torch.relu(h) if act == "relu" else F.gelu(h)
    return h @ p["linear2.weight"].T + p["linear2.bias"]


def ref_encoder(p, x, kpm, act, norm_first):
    sa = lambda y: ref_mha(p, "self_attn.", y, y, y, kpm=kpm)[0]
    if norm_first:
        x = x + sa(ref_ln(p, "norm1", x))
        return x + ref_ff(p, ref_ln(p, "norm2", x), act)
    x = ref_ln(p, "norm1", x + sa(x))
    return ref_ln(p, "norm2", x + ref_ff(p, x, act))


def ref_decoder(p, x, mem, tgt_mask, tgt_kpm, mem_kpm, act, norm_first):
    sa = lambda y: ref_mha(p, "self_attn.", y, y, y, kpm=tgt_kpm, attn_mask=tgt_mask)[0]
    ca = lambda y: ref_mha(p, "multihead_attn.", y, mem, mem, kpm=mem_kpm)[0]
    if norm_first:
        x = x + sa(ref_ln(p, "norm1", x))
        x = x + ca(ref_ln(p, "norm2", x))
        return x + ref_ff(p, ref_ln(p, "norm3", x), act)
    x = ref_ln(p, "norm1", x + sa(x))
    x = ref_ln(p, "norm2", x + ca(x))
    return ref_ln(p, "norm3", x + ref_ff(p, x, act))


# ---------------------------------------------------------------- cases
def leaf(t):
    return t.detach().clone().requires_grad_(True)


def grads_of(module, out, leaves):
    """backward (out * g).sum(); returns g and {param/input name: grad}."""
    g = randn(*out.shape)
    (out * g).sum().backward()
    grads = {k: enc(p.grad) for k, p in module.named_parameters()}
    for k, v in leaves.items():
        grads[k] = enc(v.grad)
    return g, grads


def case_mha_self():
    mha = randomize(nn.MultiheadAttention(E, H, dropout=0.0, batch_first=True)).eval()
    lengths = [5, 3]
    x = randn(2, 5, E)
    kpm = pad_mask(lengths, 5)
    causal = causal_mask(5)
    xl = leaf(x)
    out, w = mha(xl, xl, xl, key_padding_mask=kpm.bool(), attn_mask=causal.bool(),
                 need_weights=True, average_attn_weights=False)
    with torch.no_grad():
        out_nm, w_avg = mha(x, x, x, need_weights=True, average_attn_weights=True)
    p = p64(mha)
    ro, rw = ref_mha(p, "", d64(x), d64(x), d64(x), kpm=kpm, attn_mask=causal)
    close("mha_self.out", out, ro)
    close("mha_self.weights", w, rw)
    ro, rw = ref_mha(p, "", d64(x), d64(x), d64(x))
    close("mha_self.out_nomask", out_nm, ro)
    close("mha_self.weights_avg", w_avg, rw.mean(1))
    g, grads = grads_of(mha, out, {"x": xl})
    check_grads("mha_self", mha,
                lambda p, x: ref_mha(p, "", x, x, x, kpm=kpm, attn_mask=causal)[0],
                {"x": x}, g, grads)
    return {
        "name": "mha_self",
        "module": "MultiheadAttention",
        "config": {"embed_dim": E, "num_heads": H, "dropout": 0.0, "bias": True,
                   "batch_first": True, "lengths": lengths,
                   "call": "mha(x, x, x, key_padding_mask, attn_mask, need_weights=True, "
                           "average_attn_weights=False) -> out, weights; "
                           "mha(x, x, x, need_weights=True, average_attn_weights=True) "
                           "-> out_nomask, weights_avg"},
        "params": state(mha),
        "inputs": {"x": enc(x), "key_padding_mask": enc(kpm), "attn_mask": enc(causal),
                   "grad_output": enc(g)},
        "outputs": {"out": enc(out), "weights": enc(w),
                    "out_nomask": enc(out_nm), "weights_avg": enc(w_avg)},
        "grads": grads,
    }


def case_mha_cross():
    mha = randomize(nn.MultiheadAttention(E, H, dropout=0.0, batch_first=True)).eval()
    lengths = [6, 2]
    q = randn(2, 4, E)
    mem = randn(2, 6, E)
    kpm = pad_mask(lengths, 6)
    with torch.no_grad():
        out, w = mha(q, mem, mem, key_padding_mask=kpm.bool(),
                     need_weights=True, average_attn_weights=False)
    ro, rw = ref_mha(p64(mha), "", d64(q), d64(mem), d64(mem), kpm=kpm)
    close("mha_cross.out", out, ro)
    close("mha_cross.weights", w, rw)
    return {
        "name": "mha_cross",
        "module": "MultiheadAttention",
        "config": {"embed_dim": E, "num_heads": H, "dropout": 0.0, "bias": True,
                   "batch_first": True, "memory_lengths": lengths,
                   "call": "mha(query, memory, memory, key_padding_mask, need_weights=True, "
                           "average_attn_weights=False) -> out, weights"},
        "params": state(mha),
        "inputs": {"query": enc(q), "memory": enc(mem), "key_padding_mask": enc(kpm)},
        "outputs": {"out": enc(out), "weights": enc(w)},
    }


def case_encoder(name, activation, norm_first, with_grads):
    layer = randomize(nn.TransformerEncoderLayer(
        d_model=E, nhead=H, dim_feedforward=FF_DIM, dropout=0.0, activation=activation,
        batch_first=True, norm_first=norm_first)).eval()
    lengths = [5, 3]
    src = randn(2, 5, E)
    kpm = pad_mask(lengths, 5)
    sl = leaf(src)
    out = layer(sl, src_key_padding_mask=kpm.bool())
    close(name + ".out", out,
          ref_encoder(p64(layer), d64(src), kpm, activation, norm_first))
    c = {
        "name": name,
        "module": "TransformerEncoderLayer",
        "config": {"d_model": E, "nhead": H, "dim_feedforward": FF_DIM, "dropout": 0.0,
                   "activation": activation, "layer_norm_eps": 1e-5, "batch_first": True,
                   "norm_first": norm_first, "lengths": lengths,
                   "call": "layer(src, src_key_padding_mask=...)"},
        "params": state(layer),
        "inputs": {"src": enc(src), "src_key_padding_mask": enc(kpm)},
        "outputs": {"out": enc(out)},
    }
    if with_grads:
        g, grads = grads_of(layer, out, {"src": sl})
        check_grads(name, layer,
                    lambda p, src: ref_encoder(p, src, kpm, activation, norm_first),
                    {"src": src}, g, grads)
        c["inputs"]["grad_output"] = enc(g)
        c["grads"] = grads
    return c


def case_decoder(name, activation, norm_first, with_grads):
    layer = randomize(nn.TransformerDecoderLayer(
        d_model=E, nhead=H, dim_feedforward=FF_DIM, dropout=0.0, activation=activation,
        batch_first=True, norm_first=norm_first)).eval()
    tgt_lengths, mem_lengths = [4, 2], [6, 3]
    tgt = randn(2, 4, E)
    mem = randn(2, 6, E)
    tgt_mask = causal_mask(4)
    tgt_kpm = pad_mask(tgt_lengths, 4)
    mem_kpm = pad_mask(mem_lengths, 6)
    tl, ml = leaf(tgt), leaf(mem)
    out = layer(tl, ml, tgt_mask=tgt_mask.bool(), tgt_key_padding_mask=tgt_kpm.bool(),
                memory_key_padding_mask=mem_kpm.bool())
    close(name + ".out", out,
          ref_decoder(p64(layer), d64(tgt), d64(mem), tgt_mask, tgt_kpm, mem_kpm,
                      activation, norm_first))
    c = {
        "name": name,
        "module": "TransformerDecoderLayer",
        "config": {"d_model": E, "nhead": H, "dim_feedforward": FF_DIM, "dropout": 0.0,
                   "activation": activation, "layer_norm_eps": 1e-5, "batch_first": True,
                   "norm_first": norm_first, "tgt_lengths": tgt_lengths,
                   "memory_lengths": mem_lengths,
                   "call": "layer(tgt, memory, tgt_mask=..., tgt_key_padding_mask=..., "
                           "memory_key_padding_mask=...)"},
        "params": state(layer),
        "inputs": {"tgt": enc(tgt), "memory": enc(mem), "tgt_mask": enc(tgt_mask),
                   "tgt_key_padding_mask": enc(tgt_kpm),
                   "memory_key_padding_mask": enc(mem_kpm)},
        "outputs": {"out": enc(out)},
    }
    if with_grads:
        g, grads = grads_of(layer, out, {"tgt": tl, "memory": ml})
        check_grads(name, layer,
                    lambda p, tgt, memory: ref_decoder(p, tgt, memory, tgt_mask, tgt_kpm,
                                                       mem_kpm, activation, norm_first),
                    {"tgt": tgt, "memory": mem}, g, grads)
        c["inputs"]["grad_output"] = enc(g)
        c["grads"] = grads
    return c


def case_sinusoidal_pe(max_len=10, d=E):
    position = torch.arange(max_len).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    ang = pos / torch.pow(10000.0, torch.arange(0, d, 2, dtype=torch.float64) / d)
    ref = torch.stack([torch.sin(ang), torch.cos(ang)], dim=-1).reshape(max_len, d)
    close("sinusoidal_pe", pe, ref)
    return {
        "name": "sinusoidal_pe",
        "module": "SinusoidalPositionalEncoding",
        "config": {"max_len": max_len, "d_model": d,
                   "formula": "div_term = exp(arange(0, d, 2) * (-ln(10000)/d)) in float32; "
                              "pe[pos, 2i] = sin(pos*div_term[i]); "
                              "pe[pos, 2i+1] = cos(pos*div_term[i])"},
        "params": {},
        "inputs": {},
        "outputs": {"pe": enc(pe)},
    }


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.backends.mha.set_fastpath_enabled(False)
    cases = [
        case_mha_self(),
        case_mha_cross(),
        case_encoder("encoder_post_ln", "relu", False, True),
        case_encoder("encoder_pre_ln_gelu", "gelu", True, False),
        case_decoder("decoder_post_ln", "relu", False, True),
        case_decoder("decoder_pre_ln", "relu", True, False),
        case_sinusoidal_pe(),
    ]

    doc = {"generator": "tools/make_transformer_reference.py",
           "torch_version": torch.__version__,
           "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # one case per line: compact but diff-friendly
    head = json.dumps({k: doc[k] for k in ("generator", "torch_version")})[:-1]
    body = ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in cases)
    with open(OUT, "w") as f:
        f.write(head + ',\n "cases": [\n' + body + "\n ]}\n")
    back = json.load(open(OUT))  # sanity: loads, shapes match data lengths
    for c in back["cases"]:
        for group in ("params", "inputs", "outputs", "grads"):
            for k, t in c.get(group, {}).items():
                assert len(t["data"]) == math.prod(t["shape"]), (c["name"], group, k)
    size = os.path.getsize(OUT)
    assert size < 200_000, size
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(cases)} cases, {size} bytes")


if __name__ == "__main__":
    main()
