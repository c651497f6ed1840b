#!/usr/bin/env python3
"""Side-by-side ferrite vs PyTorch benchmarks, alternating runs on the same machine, with ratios.

  tools/.venv/bin/python tools/compare.py matmul  [--rounds 3]
  tools/.venv/bin/python tools/compare.py op-overhead [--rounds 3]
  tools/.venv/bin/python tools/compare.py mlp [--rounds 3]
  tools/.venv/bin/python tools/compare.py conv2d [--rounds 3]   (3x3, 64->64 on [32, 64, 32, 32]; forward and
                                                                forward + backward at 1 and 2 threads)
  tools/.venv/bin/python tools/compare.py vision-epoch [--rounds 2] [--epochs 2]
      Fashion-MNIST CNN (examples/fashion-cnn.toml vs tools/train_vision_torch.py, same network and
      pipeline) at 2 threads: mean epoch time of the training pass; which one runs first alternates
  tools/.venv/bin/python tools/compare.py transformer-step [--rounds 3]   (d 256, 8 heads, 2+2 layers, ffn 1024,
                                                                          batch 32, len 32, vocab 1000; 1 and 2 threads)
  tools/.venv/bin/python tools/compare.py embed [--rounds 3] [--model .cache/assets/all-MiniLM-L6-v2]
      [--threads 1,2] [--engines ferrite,torch,onnx] [--iters K (torch/onnx only)]
      sentence embedding (tools/bench_embed.py): ferrite vs PyTorch eager vs ONNX Runtime, for
      (batch 1, len 16), (batch 1, len 128), (batch 32, len 128) at each thread count; ratios
      torch_ms/ferrite_ms and onnx_ms/ferrite_ms (>1 = ferrite faster). Without a ferrite binary
      (or one that fails `bench embed`) it says so on stderr and still runs the other two.

Builds nothing: run `cargo build --release -p ferrite-cli` first. Each round runs ferrite and
PyTorch (which goes first alternates between rounds); per measurement the median over rounds is kept
(machines here are shared and noisy, so the ratio from one interleaved session is what matters).
Prints a Markdown table; for matmul also the ratio of each round (ferrite and PyTorch measured
back to back) and their median.
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
    """Records a command printed: one JSON document holding an array (`ferrite ... --json`), or
    one JSON object per line (the Python side)."""
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    records = []
    for l in out.splitlines():
        l = l.strip()
        if l.startswith("["):
            records.extend(json.loads(l))
        elif l.startswith("{"):
            records.append(json.loads(l))
    return records


def commands(which):
    if which == "matmul":
        return [FERRITE, "bench", "matmul", "--json"], [PY, "tools/bench_torch.py", "matmul"]
    if which == "op-overhead":
        return [FERRITE, "bench", "op-overhead", "--json"], [PY, "tools/bench_torch.py", "op-overhead"]
    if which == "mlp":
        return [FERRITE, "bench", "mlp", "--json"], None
    if which == "transformer-step":
        return [FERRITE, "bench", "transformer-step", "--threads", "1,2", "--json"], "transformer-step"
    if which == "conv2d":
        return [FERRITE, "bench", "conv2d", "--json"], [PY, "tools/bench_torch.py", "conv2d"]
    raise SystemExit(f"unknown benchmark {which}")


def key(rec):
    if rec.get("bench") == "matmul":
        return f"matmul {rec['m']}x{rec['k']}x{rec['n']} t{rec['threads']}"
    if rec.get("bench") == "op-overhead":
        return "op-overhead"
    if rec.get("bench") in ("transformer-step", "conv2d"):
        return f"{rec['bench']} t{rec['threads']}"
    return rec["task"]


def torch_mlp():
    a = lines([PY, "tools/seed_mlp_torch.py", "--threads", "1"])
    b = lines([PY, "tools/seed_mlp_torch.py", "--synthetic", "--threads", "1"])
    return a + b


def torch_transformer_step():
    return [r for t in ("1", "2") for r in lines([PY, "tools/bench_torch.py", "transformer-step", "--threads", t])]


EMBED_CASES = [(1, 16), (1, 128), (32, 128)]


def embed_cmd(engine, model, batch, length, threads, iters):
    if engine == "ferrite":
        cmd = [FERRITE, "bench", "embed"]
    else:
        cmd = [PY, "tools/bench_embed.py", "--engine", engine]
    cmd += ["--model", model, "--batch", str(batch), "--len", str(length), "--threads", str(threads), "--json"]
    if iters and engine != "ferrite":  # `ferrite bench embed` has no --iters (it times ~2 s, >= 5 calls)
        cmd += ["--iters", str(iters)]
    return cmd


def embed(args):
    engines = [e for e in args.engines.split(",") if e]
    threads = [int(t) for t in args.threads.split(",") if t]
    if "ferrite" in engines and not os.path.exists(FERRITE):
        print(f"# {FERRITE} not found (cargo build --release -p ferrite-cli): skipping ferrite", file=sys.stderr)
        engines.remove("ferrite")
    if "onnx" in engines:  # export the ONNX model once, before anything is timed
        subprocess.run(embed_cmd("onnx", args.model, 1, 8, 1, 1), cwd=ROOT, check=True, capture_output=True)
    res = {}
    for rnd in range(args.rounds):
        for t in threads:
            for b, n in EMBED_CASES:
                for e in list(engines):
                    try:
                        recs = [r for r in lines(embed_cmd(e, args.model, b, n, t, args.iters))
                                if r.get("bench") == "embed"]
                    except (subprocess.CalledProcessError, OSError) as err:
                        msg = (getattr(err, "stderr", None) or str(err)).strip().splitlines()
                        msg = [m for m in msg if "error" in m.lower()] or msg[-3:]
                        print(f"# {e} failed ({' | '.join(msg[:3])}): skipping {e}", file=sys.stderr)
                        engines.remove(e)
                        continue
                    res.setdefault((t, b, n, e), []).extend(recs)
                    if recs:
                        print(f"# round {rnd + 1} t{t} b{b} len{n} {e}: {recs[-1]['ms']:.2f} ms", file=sys.stderr)

    def med(t, b, n, e, field="ms"):
        rs = res.get((t, b, n, e))
        return statistics.median(r[field] for r in rs) if rs else None

    def fmt(x, spec=".2f", suffix=""):
        return "n/a" if x is None else f"{x:{spec}}{suffix}"

    print("| embed (batch x len) | threads | ferrite ms | PyTorch ms | ONNX Runtime ms | torch/ferrite | onnx/ferrite "
          "| peak RSS MB ferrite / torch / onnx |")
    print("|---|---|---|---|---|---|---|---|")
    for t in threads:
        for b, n in EMBED_CASES:
            f, tm, om = (med(t, b, n, e) for e in ("ferrite", "torch", "onnx"))
            rt = tm / f if f and tm else None
            ro = om / f if f and om else None
            rss = " / ".join(fmt(med(t, b, n, e, "peak_rss_mb"), ".0f") for e in ("ferrite", "torch", "onnx"))
            print(f"| {b} x {n} | {t} | {fmt(f)} | {fmt(tm)} | {fmt(om)} | {fmt(rt, '.2f', 'x')} | "
                  f"{fmt(ro, '.2f', 'x')} | {rss} |")


def vision_epoch(args):
    """Mean epoch seconds (training pass only, both sides) of the Fashion-MNIST CNN at 2 threads."""
    import tempfile
    res = {"ferrite": [], "pytorch": []}

    def ferrite():
        with tempfile.TemporaryDirectory() as out:
            env = dict(os.environ, FERRITE_NUM_THREADS="2")
            subprocess.run([FERRITE, "train", "examples/fashion-cnn.toml", "--epochs", str(args.epochs), "--out", out,
                            "--json"], cwd=ROOT, check=True, capture_output=True, env=env)
            with open(os.path.join(out, "metrics.jsonl")) as f:
                secs = [json.loads(l)["seconds"] for l in f if l.strip()]
        res["ferrite"].append(sum(secs) / len(secs))

    def pytorch():
        recs = lines([PY, "tools/train_vision_torch.py", "--epochs", str(args.epochs), "--threads", "2", "--json"])
        res["pytorch"].append(recs[-1]["mean_epoch_seconds"])

    for rnd in range(args.rounds):
        order = (ferrite, pytorch) if rnd % 2 == 0 else (pytorch, ferrite)
        for run in order:
            run()
        print(f"# round {rnd + 1}: ferrite {res['ferrite'][-1]:.1f} s, PyTorch {res['pytorch'][-1]:.1f} s per epoch",
              file=sys.stderr)
    print("| round | ferrite s/epoch | PyTorch s/epoch | PyTorch / ferrite |")
    print("|---|---|---|---|")
    for i, (f, t) in enumerate(zip(res["ferrite"], res["pytorch"])):
        print(f"| {i + 1} | {f:.1f} | {t:.1f} | {t / f:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["matmul", "op-overhead", "mlp", "transformer-step", "embed", "conv2d",
                                      "vision-epoch"])
    ap.add_argument("--epochs", type=int, default=2, help="vision-epoch only")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache", "assets", "all-MiniLM-L6-v2"), help="embed only")
    ap.add_argument("--threads", default="1,2", help="embed only: thread counts")
    ap.add_argument("--engines", default="ferrite,torch,onnx", help="embed only")
    ap.add_argument("--iters", type=int, default=None, help="embed only: timed calls per run (default ~2 s)")
    args = ap.parse_args()
    if args.which == "embed":
        return embed(args)
    if args.which == "vision-epoch":
        return vision_epoch(args)
    fer_cmd, torch_cmd = commands(args.which)
    fer, tor = {}, {}
    def run_ferrite():
        for r in lines(fer_cmd):
            fer.setdefault(key(r), []).append(r)

    def run_torch():
        if torch_cmd is None:
            torch_recs = torch_mlp()
        elif torch_cmd == "transformer-step":
            torch_recs = torch_transformer_step()
        else:
            torch_recs = lines(torch_cmd)
        for r in torch_recs:
            tor.setdefault(key(r), []).append(r)

    for i in range(args.rounds):
        # Which one runs first alternates, so a machine that slows down or speeds up over a round
        # does not favour either side.
        for run in ((run_ferrite, run_torch) if i % 2 == 0 else (run_torch, run_ferrite)):
            run()
    metric = {"matmul": ("gflops", True), "op-overhead": ("add_backward_us", False), "mlp": ("epoch_ms", False),
              "transformer-step": ("step_ms", False), "conv2d": ("fwd_bwd_ms", False)}[args.which]
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
        if args.which == "matmul":
            ratios = [a[field] / b[field] for a, b in zip(fer[k], tor[k])]
            extra = (f" per round: {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}x,"
                     f" min {min(ratios):.2f}x |")
        if args.which == "conv2d":
            ff = statistics.median(r["fwd_ms"] for r in fer[k])
            tf = statistics.median(r["fwd_ms"] for r in tor[k])
            per_round = ", ".join(f"{b['fwd_bwd_ms'] / a['fwd_bwd_ms']:.2f}" for a, b in zip(fer[k], tor[k]))
            extra = f" forward {ff:.1f} vs {tf:.1f} ms ({tf / ff:.2f}x); fwd+bwd ratio per round: {per_round} |"
        print(f"| {k} | {f:.3f} | {t:.3f} | {ratio:.2f}x |{extra}")


if __name__ == "__main__":
    main()
