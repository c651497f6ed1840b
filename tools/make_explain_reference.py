#!/usr/bin/env python3
"""Write tests/reference/explain.json: Captum reference attributions (saliency,
input x gradient, integrated gradients, occlusion, a zero-noise SmoothGrad) for
two tiny PyTorch models with fixed weights.

Run:  tools/.venv/bin/pip install --no-deps -r tools/requirements-explain.txt
      tools/.venv/bin/python tools/make_explain_reference.py

Float32, torch.manual_seed(0), one thread. Tensors are {"shape": [...], "data":
[flat row-major]} with floats written as the shortest decimal that round-trips
to the exact float32 value (parse them as f32); the `enc` helper comes from
make_core_reference.py. Random draws, in this order after manual_seed(0): the
mlp's default init, the cnn's default init, mlp x, cnn x, the mlp IG baseline
(NoiseTunnel's zero-noise draws come after all of them).

Top level:
  "generator": this script, "captum": captum.__version__, "torch": torch.__version__,
  "tolerance": "abs 1e-4 + 1e-4*|ref| (float32 model, same quadrature)",
  "models": {name: {"input_shape": [...] (one sample, no batch dim),
                    "params": {state_dict key: T}}},
  "cases": [...]

Models (nn.Sequential, eval(); parameter names are the Sequential's
"<index>.weight" / "<index>.bias"; Linear weight [out,in], Conv2d weight
[O,C,kh,kw], PyTorch layouts):
  mlp  input [4]:       0 Linear(4,8), 1 Tanh, 2 Linear(8,3)           -> [N,3]
  cnn  input [1,6,6]:   0 Conv2d(1,3,3,padding=1), 1 ReLU, 2 AvgPool2d(2),
                        3 Flatten (C,H,W order), 4 Linear(27,4)         -> [N,4]

Every case: "name", "model", "method", "x" T [N, *input_shape], "target" [N
ints] (one output index per sample), "output" T = model(x) [N,K],
"attributions" T (same shape as x), plus per method (F_t(z) = model(z)[t]):
  saliency              "abs": bool. grad_x F_t(x); |.| when abs is true.
  input_x_gradient      x * grad_x F_t(x).
  integrated_gradients  "baseline" T (same shape as x), "n_steps" S,
                        "quadrature" (captum `method`: gausslegendre,
                        riemann_left/right/middle/trapezoid), "alphas" [S],
                        "weights" [S], "delta" T [N].
                        attr = (x-b) * sum_k weights[k] * grad F_t(b + alphas[k](x-b));
                        delta = sum(attr over a sample) - (F_t(x) - F_t(b)).
                        alphas/weights are plain JSON arrays holding exactly what
                        captum.attr._utils.approximation_methods.approximation_parameters
                        returned (float64 values, Python repr); Captum casts the
                        weights to float32 before use. Riemann with S steps:
                        weights all 1/S (trapezoid: first and last 1/(2S), so
                        they sum to (S-1)/S, not 1, although its alphas are
                        spaced 1/(S-1): Captum's trapezoid is biased and its
                        delta does not shrink like a true trapezoid rule);
                        alphas = float32 torch.linspace: left k/S, right (k+1)/S,
                        middle (k+1/2)/S, trapezoid k/(S-1), k = 0..S-1.
                        gausslegendre: numpy leggauss(S) nodes u, weights w ->
                        alphas (1+u)/2, weights w/2.
  occlusion             "window" [per-sample dims], "strides" [same length],
                        "baseline" 0.0. Window origins along each dim are
                        0, s, 2s, ... (ceil((D-w)/s)+1 of them; here D-w is always
                        a multiple of s). For each window position p the window
                        in every sample is set to the baseline and
                        d_p = F_t(x) - F_t(x occluded at p); a feature's
                        attribution is the mean of d_p over the windows that
                        contain it (sum / number of covering windows).
  smoothgrad_zero_noise "nt_samples" 4, "stdevs" 0.0, "abs": false.
                        NoiseTunnel(Saliency).attribute(nt_type="smoothgrad"):
                        the mean over nt_samples of the plain gradient at
                        x + N(0, stdevs^2) = the plain gradient here.

Before writing, the script re-derives every attribution itself (float64 copies
of the models, its own quadrature and occlusion loops) and asserts agreement
with Captum to the stated tolerance.
"""
import copy
import json
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_core_reference import enc  # noqa: E402

import captum  # noqa: E402
from captum.attr import (  # noqa: E402
    InputXGradient, IntegratedGradients, NoiseTunnel, Occlusion, Saliency)
from captum.attr._utils.approximation_methods import approximation_parameters  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "reference", "explain.json")
TOLERANCE = "abs 1e-4 + 1e-4*|ref| (float32 model, same quadrature)"


def close(a, ref, what):
    a = a.detach().double()
    ref = ref.detach().double()
    assert a.shape == ref.shape, (what, a.shape, ref.shape)
    err = (a - ref).abs()
    ok = bool((err <= 1e-4 + 1e-4 * ref.abs()).all())
    assert ok, f"{what}: max err {err.max().item():.3g}"
    return err.max().item()


def grad_target(model, z, target):
    """d/dz of model(z)[i, target[i]] summed over i (float64 or float32)."""
    z = z.detach().clone().requires_grad_(True)
    out = model(z)
    sel = out[torch.arange(z.shape[0]), torch.as_tensor(target)]
    (g,) = torch.autograd.grad(sel.sum(), z)
    return g


def pick(out, target):
    return out[torch.arange(out.shape[0]), torch.as_tensor(target)]


def base_case(name, model_name, method, model, x, target):
    with torch.no_grad():
        out = model(x)
    return {"name": name, "model": model_name, "method": method, "x": enc(x),
            "target": list(target), "output": enc(out)}


def saliency_case(name, model_name, model, model64, x, target, abs_):
    attr = Saliency(model).attribute(x, target=target, abs=abs_)
    g = grad_target(model64, x.double(), target)
    err = close(attr, g.abs() if abs_ else g, name)
    c = base_case(name, model_name, "saliency", model, x, target)
    c["abs"] = abs_
    c["attributions"] = enc(attr)
    return c, err


def ixg_case(name, model_name, model, model64, x, target):
    attr = InputXGradient(model).attribute(x, target=target)
    g = grad_target(model64, x.double(), target)
    err = close(attr, x.double() * g, name)
    c = base_case(name, model_name, "input_x_gradient", model, x, target)
    c["attributions"] = enc(attr)
    return c, err


def check_quadrature(method, n, alphas, weights):
    k = np.arange(n, dtype=np.float64)
    if method == "gausslegendre":
        u, w = np.polynomial.legendre.leggauss(n)
        ea, ew = 0.5 * (1 + u), 0.5 * w
    else:
        ew = np.full(n, 1.0 / n)
        kind = method.split("_")[1]
        if kind == "trapezoid":
            ew[0] /= 2
            ew[-1] /= 2
        ea = {"left": k / n, "right": (k + 1) / n, "middle": (k + 0.5) / n,
              "trapezoid": k / (n - 1)}[kind]
    assert np.allclose(alphas, ea, atol=1e-7, rtol=0), method
    assert np.allclose(weights, ew, atol=1e-12, rtol=0), method


def ig_case(name, model_name, model, model64, x, target, baseline, n_steps, method):
    step_sizes_fn, alphas_fn = approximation_parameters(method)
    weights, alphas = step_sizes_fn(n_steps), alphas_fn(n_steps)
    check_quadrature(method, n_steps, alphas, weights)
    attr, delta = IntegratedGradients(model).attribute(
        x, baselines=baseline, target=target, n_steps=n_steps, method=method,
        return_convergence_delta=True)
    # own float64 evaluation with the same alphas / (float32) weights
    x64, b64 = x.double(), baseline.double()
    w32 = torch.tensor(weights).float().double()
    total = torch.zeros_like(x64)
    for a, w in zip(alphas, w32):
        total += w * grad_target(model64, b64 + a * (x64 - b64), target)
    ref = total * (x64 - b64)
    err = close(attr, ref, name)
    with torch.no_grad():
        ref_delta = (ref.reshape(x.shape[0], -1).sum(1)
                     - (pick(model64(x64), target) - pick(model64(b64), target)))
    close(delta, ref_delta, name + " delta")
    c = base_case(name, model_name, "integrated_gradients", model, x, target)
    c.update({"baseline": enc(baseline), "n_steps": n_steps, "quadrature": method,
              "alphas": [float(a) for a in alphas], "weights": [float(w) for w in weights],
              "delta": enc(delta.float()), "attributions": enc(attr)})
    return c, err, delta.abs().max().item()


def occlusion_ref(model64, x, target, window, strides, baseline):
    """Own loop: mean over the covering windows of F_t(x) - F_t(occluded)."""
    x64 = x.double()
    dims = x.shape[1:]
    counts = [(d - w + s - 1) // s + 1 for d, w, s in zip(dims, window, strides)]
    total = torch.zeros_like(x64)
    cover = torch.zeros(dims, dtype=torch.float64)
    with torch.no_grad():
        f0 = pick(model64(x64), target)
        for pos in np.ndindex(*counts):
            sl = tuple(slice(p * s, p * s + w) for p, s, w in zip(pos, strides, window))
            xo = x64.clone()
            xo[(slice(None),) + sl] = baseline
            d = f0 - pick(model64(xo), target)
            mask = torch.zeros(dims, dtype=torch.float64)
            mask[sl] = 1.0
            total += d.reshape((-1,) + (1,) * len(dims)) * mask
            cover += mask
    assert bool((cover > 0).all())
    return total / cover


def occlusion_case(name, model_name, model, model64, x, target, window, strides):
    attr = Occlusion(model).attribute(x, target=target, sliding_window_shapes=tuple(window),
                                      strides=tuple(strides), baselines=0.0)
    err = close(attr, occlusion_ref(model64, x, target, window, strides, 0.0), name)
    c = base_case(name, model_name, "occlusion", model, x, target)
    c.update({"window": list(window), "strides": list(strides), "baseline": 0.0,
              "attributions": enc(attr)})
    return c, err


def smoothgrad_case(name, model_name, model, model64, x, target):
    attr = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=4, stdevs=0.0, target=target, abs=False)
    err = close(attr, grad_target(model64, x.double(), target), name)
    c = base_case(name, model_name, "smoothgrad_zero_noise", model, x, target)
    c.update({"nt_samples": 4, "stdevs": 0.0, "abs": False, "attributions": enc(attr)})
    return c, err


def main():
    # Saliency / InputXGradient switch requires_grad on for x and back off again
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    torch.manual_seed(0)
    torch.set_num_threads(1)

    mlp = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                        nn.Flatten(), nn.Linear(27, 4)).eval()
    x_mlp = torch.randn(3, 4)
    x_cnn = torch.randn(2, 1, 6, 6)
    b_mlp = torch.randn(3, 4)
    t_mlp, t_cnn = [0, 2, 1], [3, 0]

    mlp64 = copy.deepcopy(mlp).double()
    cnn64 = copy.deepcopy(cnn).double()

    models = {
        "mlp": {"input_shape": [4],
                "params": {k: enc(v) for k, v in mlp.state_dict().items()}},
        "cnn": {"input_shape": [1, 6, 6],
                "params": {k: enc(v) for k, v in cnn.state_dict().items()}},
    }
    assert list(models["mlp"]["params"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(models["cnn"]["params"]) == ["0.weight", "0.bias", "4.weight", "4.bias"]

    M = {"mlp": (mlp, mlp64, x_mlp, t_mlp), "cnn": (cnn, cnn64, x_cnn, t_cnn)}
    cases, report = [], []

    def add(res):
        cases.append(res[0])
        report.append((res[0]["name"],) + tuple(res[1:]))

    for m in ("mlp", "cnn"):
        add(saliency_case(f"saliency_{m}_abs", m, *M[m], True))
    add(saliency_case("saliency_mlp_signed", "mlp", *M["mlp"], False))
    for m in ("mlp", "cnn"):
        add(ixg_case(f"input_x_gradient_{m}", m, *M[m]))

    zeros_mlp = torch.zeros_like(x_mlp)
    add(ig_case("ig_mlp_zero_gausslegendre64", "mlp", *M["mlp"], zeros_mlp, 64,
                "gausslegendre"))
    add(ig_case("ig_mlp_randn_trapezoid20", "mlp", *M["mlp"], b_mlp, 20,
                "riemann_trapezoid"))
    for kind in ("left", "right", "middle"):
        add(ig_case(f"ig_mlp_zero_{kind}10", "mlp", *M["mlp"], zeros_mlp, 10,
                    f"riemann_{kind}"))
    add(ig_case("ig_cnn_zero_gausslegendre64", "cnn", *M["cnn"], torch.zeros_like(x_cnn),
                64, "gausslegendre"))
    add(ig_case("ig_cnn_half_trapezoid32", "cnn", *M["cnn"], torch.full_like(x_cnn, 0.5),
                32, "riemann_trapezoid"))

    add(occlusion_case("occlusion_cnn_2x2_stride1", "cnn", *M["cnn"], [1, 2, 2], [1, 1, 1]))
    add(occlusion_case("occlusion_cnn_2x2_stride2", "cnn", *M["cnn"], [1, 2, 2], [1, 2, 2]))
    add(occlusion_case("occlusion_mlp_w2_stride1", "mlp", *M["mlp"], [2], [1]))

    add(smoothgrad_case("smoothgrad_zero_noise_mlp", "mlp", *M["mlp"]))

    # the cnn's gradients are only stable across implementations if no pre-ReLU value
    # sits on the kink at any point where a gradient is taken
    for c in cases:
        if c["model"] == "cnn" and c["method"] != "occlusion":
            xs = torch.tensor(c["x"]["data"], dtype=torch.float64).reshape(c["x"]["shape"])
            pts = [xs]
            if "alphas" in c:
                b = torch.tensor(c["baseline"]["data"], dtype=torch.float64).reshape(xs.shape)
                pts = [b + a * (xs - b) for a in c["alphas"]]
            with torch.no_grad():
                margin = min(cnn64[0](z).abs().min().item() for z in pts)
            assert margin > 1e-5, (c["name"], margin)
            print(f"  {c['name']:32s} min |pre-ReLU| {margin:.3g}")
    for r in report:
        extra = f"  max|delta| {r[2]:.3g}" if len(r) > 2 else ""
        print(f"  {r[0]:32s} max err vs own float64 {r[1]:.3g}{extra}")
    # the mlp (tanh) is smooth along the path, so 64 Gauss-Legendre nodes are exact
    # to float32 rounding; the cnn's ReLU kinks leave a real ~1e-3 quadrature error
    for r in report:
        if r[0] == "ig_mlp_zero_gausslegendre64":
            assert r[2] < 1e-5, r

    doc = {"generator": "tools/make_explain_reference.py", "captum": captum.__version__,
           "torch": torch.__version__, "tolerance": TOLERANCE, "models": models}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # one model / case per line: compact but diff-friendly
    head = json.dumps({k: doc[k] for k in ("generator", "captum", "torch", "tolerance")})[:-1]
    mods = ",\n".join(f"  {json.dumps(k)}: " + json.dumps(v, separators=(",", ":"))
                      for k, v in models.items())
    body = ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in cases)
    with open(OUT, "w") as f:
        f.write(head + ',\n "models": {\n' + mods + '\n },\n "cases": [\n' + body + "\n ]}\n")
    json.load(open(OUT))  # sanity
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(cases)} cases, "
          f"{os.path.getsize(OUT)} bytes (captum {captum.__version__}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
