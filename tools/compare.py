#!/usr/bin/env python3
"""Side-by-side ferrite vs PyTorch benchmarks, alternating runs on the same machine, with ratios.

  tools/.venv/bin/python tools/compare.py matmul  [--rounds 3]
  tools/.venv/bin/python tools/compare.py op-overhead [--rounds 3]
  tools/.venv/bin/python tools/compare.py mlp [--rounds 3]
  tools/.venv/bin/python tools/compare.py transformer-step [--rounds 3]   (d 256, 8 heads, 2+2 layers, ffn 1024,
                                                                          batch 32, len 32, vocab 1000; 1 and 2 threads)

Builds nothing: run `cargo build --release -p ferrite-cli` first. Each round runs ferrite, then
PyTorch; per measurement the median over rounds is kept (machines here are shared and noisy, so
the ratio from one interleaved session is what matters). Prints a Markdown table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRITE = os.path.join(ROOT, "target", "release", "ferrite")
PY = sys.executable


def lines(cmd):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip().startswith("{")]


def commands(which):
    if which == "matmul":
        return [FERRITE, "bench", "matmul", "--json"], [PY, "tools/bench_torch.py", "matmul"]
    if which == "op-overhead":
        return [FERRITE, "bench", "op-overhead", "--json"], [PY, "tools/bench_torch.py", "op-overhead"]
    if which == "mlp":
        return [FERRITE, "bench", "mlp", "--json"], None
    if which == "transformer-step":
        return [FERRITE, "bench", "transformer-step", "--threads", "1,2", "--json"], "transformer-step"
    raise SystemExit(f"unknown benchmark {which}")


def key(rec):
    if rec.get("bench") == "matmul":
        return f"matmul {rec['m']}x{rec['k']}x{rec['n']} t{rec['threads']}"
    if rec.get("bench") == "op-overhead":
        return "op-overhead"
    if rec.get("bench") == "transformer-step":
        return f"transformer-step t{rec['threads']}"
    return rec["task"]


def torch_mlp():
    a = lines([PY, "tools/seed_mlp_torch.py", "--threads", "1"])
    b = lines([PY, "tools/seed_mlp_torch.py", "--synthetic", "--threads", "1"])
    return a + b


def torch_transformer_step():
    return [r for t in ("1", "2") for r in lines([PY, "tools/bench_torch.py", "transformer-step", "--threads", t])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["matmul", "op-overhead", "mlp", "transformer-step"])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    fer_cmd, torch_cmd = commands(args.which)
    fer, tor = {}, {}
    for _ in range(args.rounds):
        for r in lines(fer_cmd):
            fer.setdefault(key(r), []).append(r)
        if torch_cmd is None:
            torch_recs = torch_mlp()
        elif torch_cmd == "transformer-step":
            torch_recs = torch_transformer_step()
        else:
            torch_recs = lines(torch_cmd)
        for r in torch_recs:
            tor.setdefault(key(r), []).append(r)
    metric = {"matmul": ("gflops", True), "op-overhead": ("add_backward_us", False), "mlp": ("epoch_ms", False),
              "transformer-step": ("step_ms", False)}[args.which]
    field, higher_better = metric
    print(f"| {args.which} | ferrite {field} | PyTorch {field} | ferrite advantage |")
    print("|---|---|---|---|")
    for k in fer:
        if k not in tor:
            continue
        f = statistics.median(r[field] for r in fer[k])
        t = statistics.median(r[field] for r in tor[k])
        ratio = f / t if higher_better else t / f
        extra = ""
        if args.which == "transformer-step":
            fr = statistics.median(r["peak_rss_mb"] for r in fer[k])
            tr = statistics.median(r["peak_rss_mb"] for r in tor[k])
            ft = statistics.median(r["tokens_per_s"] for r in fer[k])
            tt = statistics.median(r["tokens_per_s"] for r in tor[k])
            extra = f" tokens/s {ft:.0f} vs {tt:.0f}; peak RSS {fr:.0f} MB vs {tr:.0f} MB |"
        print(f"| {k} | {f:.3f} | {t:.3f} | {ratio:.2f}x |{extra}")


if __name__ == "__main__":
    main()
