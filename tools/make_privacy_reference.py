#!/usr/bin/env python3
"""Write tests/reference/privacy.json: reference values from Opacus 1.6.0's
differential-privacy accountants (RDP and PRV) for the Poisson-subsampled
Gaussian mechanism, so the Rust accountants can be compared against them.

Run:  bash tools/setup_privacy_venv.sh
      tools/.venv-privacy/bin/python tools/make_privacy_reference.py   # ~5 s

No torch. `opacus/__init__.py` imports torch (and the whole library), so the
opacus wheel is only unpacked (tools/.venv-privacy/opacus-1.6.0/, sha256-pinned
in setup_privacy_venv.sh) and this script registers a stub top-level `opacus`
package (empty, with __path__ pointing into the unpacked wheel) plus a stub
`opacus.optimizers` holding an empty `DPOptimizer` class (accountant.py imports
it only for a type hint of get_optimizer_hook_fn). `opacus.accountants` and its
submodules are then Opacus's own files, unchanged; an import hook refuses any
`torch` import, so nothing here runs torch.

Floats are Python repr (shortest round-trip decimal of the float64); parse
them as f64. Infinite values are written as null. History entries are Opacus's
order: (noise_multiplier sigma, sample_rate q, steps).

Top level:
  "generator": {"script", "opacus", "numpy", "scipy", "python"}
  "default_alphas": RDPAccountant.DEFAULT_ALPHAS, all written as floats:
      1 + x/10.0 for x in 1..=99 (1.1 .. 10.9), then 12.0 .. 63.0 (151 orders).
      Opacus takes the integer-order formula whenever float(alpha).is_integer()
      (2.0, 3.0, ..., 10.0 and 12..63), the fractional one otherwise.
  "rdp_orders": [{"q", "sigma", "steps": 1, "rdp": [151 x float|null]}]
      analysis.rdp.compute_rdp(q, noise_multiplier=sigma, steps=1,
      orders=default_alphas): the RDP of ONE step at each order (steps T scale
      it by T). q == 1 is the plain Gaussian: alpha / (2 sigma^2).
  "epsilon": [case], each case:
      "q", "sigma", "steps", "delta",
      "rdp_eps", "rdp_alpha": RDPAccountant.get_privacy_spent (Balle et al.
          2020, Thm 21): min over alpha of
          rdp(alpha) - (log(delta) + log(alpha)) / (alpha - 1) + log((alpha-1)/alpha),
          rdp = steps * rdp_orders-style vector; the argmin's order.
      "rdp_classic_eps", "rdp_classic_alpha": the classic conversion (TF
          Privacy's old compute_eps), min over alpha of
          rdp(alpha) - log(delta) / (alpha - 1), same rdp vector.
      "rdp_warnings": [str] UserWarnings Opacus raised in get_privacy_spent
          ("Optimal order is the smallest/largest alpha ...") — [] when none.
      "prv_eps": PRVAccountant.get_epsilon(delta, eps_error=0.01,
          delta_error=delta/1000): the upper bound, estimate + eps_error.
      "prv_eps_estimate": the middle value of DiscretePRV.compute_epsilon
          (same dprv, delta, delta_error, eps_error): epsilon at exactly delta.
      "prv_eps_lower": the first value (estimate at delta + delta_error,
          minus eps_error).
      "prv_eps_error": 0.01, "prv_delta_error": delta / 1000.
      "prv_domain": {"L", "mesh_size", "t_min", "t_max", "size"}:
          PRVAccountant._get_domain: L = compute_safe_domain_size(...) (RDP
          bound at delta_error/4 for the whole history and at
          delta_error/(8 * total steps) for one step of each entry, max with
          eps_error, + 3); mesh_size = eps_error / sqrt(total_steps *
          log(12 / delta_error) / 2); Domain.create_aligned(-L, L, mesh_size)
          (t_min, t_max, even point count size).
      "prv_warnings": [str] UserWarnings raised while computing the PRV values
          (its domain sizing calls the RDP accountant).
      "prv_error": null, or the exception text if the PRV accountant raised
          (then prv_eps, prv_eps_estimate, prv_eps_lower, prv_domain are null).
  "noise_multiplier": [{"target_epsilon", "target_delta", "sample_rate",
      "steps", "accountant" ("rdp"|"prv"), "epsilon_tolerance": 0.01,
      "sigma": utils.get_noise_multiplier(...) (sigma_high of its bisection:
          doubling from 20, then halving [0, sigma_high] until
          target_epsilon - eps_high <= epsilon_tolerance),
      "epsilon": that accountant's get_epsilon(target_delta) at sigma
          (PRV with its defaults: eps_error 0.01, delta_error delta/1000),
      "warnings": [str] UserWarnings from that last epsilon only}]
  "heterogeneous": [case] like "epsilon" cases, but "history":
      [{"sigma", "q", "steps"}, ...] (Opacus's history order) instead of
      q/sigma/steps; rdp = sum over entries of steps * rdp(q, sigma); the PRV
      composes each entry by FFT self-composition, then convolves them.

numpy RuntimeWarnings (log(0) in the PRV cdf for q = 1, where log(1 - q) =
-inf) are expected and not recorded.
"""

import importlib
import importlib.abc
import json
import math
import os
import platform
import sys
import time
import types
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPACUS_VERSION = "1.6.0"
OPACUS_SITE = os.path.join(ROOT, "tools", ".venv-privacy", f"opacus-{OPACUS_VERSION}")
OUT = os.path.join(ROOT, "tests", "reference", "privacy.json")

EPS_ERROR = 0.01


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"make_privacy_reference: refusing to import {name}")
        return None


def load_opacus_accountants():
    pkg_dir = os.path.join(OPACUS_SITE, "opacus")
    if not os.path.isfile(os.path.join(pkg_dir, "accountants", "analysis", "prv", "prvs.py")):
        sys.exit(f"{pkg_dir} missing: run  bash tools/setup_privacy_venv.sh")
    with open(os.path.join(pkg_dir, "version.py")) as f:
        if f'__version__ = "{OPACUS_VERSION}"' not in f.read():
            sys.exit(f"{pkg_dir}/version.py is not opacus {OPACUS_VERSION}")
    sys.meta_path.insert(0, _NoTorch())
    opacus = types.ModuleType("opacus")
    opacus.__path__ = [pkg_dir]
    opacus.__version__ = OPACUS_VERSION
    sys.modules["opacus"] = opacus
    optimizers = types.ModuleType("opacus.optimizers")

    class DPOptimizer:  # type-hint stand-in only
        pass

    optimizers.DPOptimizer = DPOptimizer
    sys.modules["opacus.optimizers"] = optimizers
    opacus.optimizers = optimizers
    mods = types.SimpleNamespace(
        accountants=importlib.import_module("opacus.accountants"),
        rdp=importlib.import_module("opacus.accountants.rdp"),
        prv=importlib.import_module("opacus.accountants.prv"),
        analysis_rdp=importlib.import_module("opacus.accountants.analysis.rdp"),
        utils=importlib.import_module("opacus.accountants.utils"),
    )
    for m in vars(mods).values():
        assert os.path.realpath(m.__file__).startswith(os.path.realpath(pkg_dir)), m.__file__
    assert "torch" not in sys.modules
    return mods


OP = load_opacus_accountants()
RDPAccountant = OP.rdp.RDPAccountant
PRVAccountant = OP.prv.PRVAccountant

import numpy as np  # noqa: E402  (after the loader: numpy is the venv's)
import scipy  # noqa: E402

ALPHAS = list(RDPAccountant.DEFAULT_ALPHAS)


def num(x):
    """float64 -> float, inf -> None (null); NaN is an error."""
    x = float(x)
    if math.isnan(x):
        raise ValueError("NaN in reference values")
    return None if math.isinf(x) else x


class Collect:
    """Records the UserWarnings raised inside the block (messages, in order);
    silences numpy's RuntimeWarnings."""

    def __enter__(self):
        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")
        self._np = np.errstate(divide="ignore", invalid="ignore", over="ignore")
        self._np.__enter__()
        return self

    def __exit__(self, *exc):
        self._np.__exit__(*exc)
        self._cm.__exit__(*exc)
        self.messages = [
            str(w.message) for w in self._log if issubclass(w.category, UserWarning)
        ]
        return False


def rdp_part(history, delta):
    """history: [(sigma, q, steps)]"""
    acc = RDPAccountant()
    acc.history = list(history)
    with Collect() as c:
        eps, alpha = acc.get_privacy_spent(delta=delta)
    rdp = sum(
        OP.analysis_rdp.compute_rdp(q=q, noise_multiplier=s, steps=n, orders=ALPHAS)
        for s, q, n in history
    )
    orders = np.array(ALPHAS, dtype=float)
    classic = rdp - math.log(delta) / (orders - 1)
    i = int(np.nanargmin(classic))
    return {
        "rdp_eps": num(eps),
        "rdp_alpha": num(alpha),
        "rdp_classic_eps": num(classic[i]),
        "rdp_classic_alpha": num(orders[i]),
        "rdp_warnings": c.messages,
    }


PRV_SECONDS = []


def prv_part(history, delta, label):
    delta_error = delta / 1000
    out = {
        "prv_eps": None,
        "prv_eps_estimate": None,
        "prv_eps_lower": None,
        "prv_eps_error": EPS_ERROR,
        "prv_delta_error": delta_error,
        "prv_domain": None,
        "prv_warnings": [],
        "prv_error": None,
    }
    acc = PRVAccountant()
    acc.history = list(history)
    t0 = time.perf_counter()
    t_eps = float("nan")
    with Collect() as c:
        try:
            eps = acc.get_epsilon(delta, eps_error=EPS_ERROR)
            t_eps = time.perf_counter() - t0
            dprv = acc._get_dprv(eps_error=EPS_ERROR, delta_error=delta_error)
            lower, estimate, upper = dprv.compute_epsilon(delta, delta_error, EPS_ERROR)
            if upper != eps:
                raise AssertionError(f"{label}: compute_epsilon upper {upper} != get_epsilon {eps}")
            prvs = [OP.prv.PoissonSubsampledGaussianPRV(q, s) for s, q, _ in history]
            steps = [n for _, _, n in history]
            L = OP.prv.compute_safe_domain_size(
                prvs=prvs, max_self_compositions=steps,
                eps_error=EPS_ERROR, delta_error=delta_error)
            dom = acc._get_domain(prvs=prvs, num_self_compositions=steps,
                                  eps_error=EPS_ERROR, delta_error=delta_error)
            mesh = EPS_ERROR / np.sqrt(sum(steps) * np.log(12 / delta_error) / 2)
            out.update(
                prv_eps=num(eps),
                prv_eps_estimate=num(estimate),
                prv_eps_lower=num(lower),
                prv_domain={
                    "L": num(L),
                    "mesh_size": num(mesh),
                    "t_min": num(dom.t_min),
                    "t_max": num(dom.t_max),
                    "size": int(dom.size),
                },
            )
        except (ValueError, RuntimeError) as e:
            out["prv_error"] = f"{type(e).__name__}: {e}"
    out["prv_warnings"] = c.messages
    dt = time.perf_counter() - t0
    PRV_SECONDS.append((label, t_eps))
    print(f"  prv {label}: get_epsilon {t_eps:.2f} s, {dt:.2f} s in all"
          + (f"  ERROR {out['prv_error']}" if out["prv_error"] else ""), file=sys.stderr)
    return out


RDP_ORDER_CASES = [(256 / 60000, 1.1), (0.04, 1.5), (0.01, 0.8), (1.0, 2.0), (0.5, 5.0)]

EPSILON_CASES = [  # q, sigma, steps, delta
    (256 / 60000, 1.1, 14062, 1e-5),
    (256 / 60000, 1.1, 14100, 1e-5),
    (0.04, 1.5, 2250, 1e-5),
    (0.01, 0.8, 1000, 1e-6),
    (0.001, 2.0, 100000, 1e-5),
    (0.1, 1.0, 100, 1e-5),
    (1.0, 5.0, 10, 1e-5),
    (0.02, 0.7, 500, 1e-5),
]

NOISE_CASES = [  # target_epsilon, target_delta, sample_rate, steps, accountant
    (3.0, 1e-5, 256 / 60000, 14062, "rdp"),
    (3.0, 1e-5, 256 / 60000, 14062, "prv"),
    (8.0, 1e-5, 0.04, 2250, "rdp"),
    (1.0, 1e-5, 0.01, 1000, "rdp"),
]

HETERO_CASES = [  # history [(sigma, q, steps)], delta
    ([(1.1, 0.01, 500), (1.5, 0.02, 300)], 1e-5),
]


def main():
    t_start = time.perf_counter()
    doc = {
        "generator": {
            "script": "tools/make_privacy_reference.py",
            "opacus": OPACUS_VERSION,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        "default_alphas": [float(a) for a in ALPHAS],
    }

    rows = []
    for q, s in RDP_ORDER_CASES:
        with Collect():
            rdp = OP.analysis_rdp.compute_rdp(q=q, noise_multiplier=s, steps=1, orders=ALPHAS)
        rows.append({"q": q, "sigma": s, "steps": 1, "rdp": [num(v) for v in rdp]})
    doc["rdp_orders"] = rows

    cases = []
    for q, s, n, d in EPSILON_CASES:
        case = {"q": q, "sigma": s, "steps": n, "delta": d}
        case.update(rdp_part([(s, q, n)], d))
        case.update(prv_part([(s, q, n)], d, f"q={q:.6g} sigma={s} steps={n} delta={d:g}"))
        cases.append(case)
    doc["epsilon"] = cases

    rows = []
    for eps_t, d, q, n, mech in NOISE_CASES:
        t0 = time.perf_counter()
        with Collect():
            sigma = OP.utils.get_noise_multiplier(
                target_epsilon=eps_t, target_delta=d, sample_rate=q, steps=n,
                accountant=mech, epsilon_tolerance=0.01)
        acc = OP.accountants.create_accountant(mechanism=mech)
        acc.history = [(sigma, q, n)]
        with Collect() as c:
            eps = acc.get_epsilon(delta=d)
        dt = time.perf_counter() - t0
        print(f"  noise {mech} eps={eps_t} q={q:.6g} steps={n}: sigma={sigma!r} "
              f"eps={float(eps)!r} ({dt:.2f} s)", file=sys.stderr)
        rows.append({
            "target_epsilon": eps_t, "target_delta": d, "sample_rate": q, "steps": n,
            "accountant": mech, "epsilon_tolerance": 0.01,
            "sigma": num(sigma), "epsilon": num(eps), "warnings": c.messages,
        })
    doc["noise_multiplier"] = rows

    cases = []
    for history, d in HETERO_CASES:
        case = {"history": [{"sigma": s, "q": q, "steps": n} for s, q, n in history], "delta": d}
        case.update(rdp_part(history, d))
        case.update(prv_part(history, d, f"heterogeneous {history} delta={d:g}"))
        cases.append(case)
    doc["heterogeneous"] = cases

    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(text)} bytes, "
          f"{time.perf_counter() - t_start:.1f} s; PRV cases "
          f"{sum(t for _, t in PRV_SECONDS):.1f} s in get_epsilon)", file=sys.stderr)


if __name__ == "__main__":
    main()
