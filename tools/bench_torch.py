#!/usr/bin/env python3
"""Side-by-side PyTorch (CPU) benchmarks for ferrite. One JSON object per line
on stdout.

  tools/.venv/bin/python tools/bench_torch.py matmul [--threads 1,2]
  tools/.venv/bin/python tools/bench_torch.py op-overhead
  tools/.venv/bin/python tools/bench_torch.py all [--threads 1,2]

matmul: C = A @ B (plain `a @ b`, a fresh output each call) for float32
contiguous row-major A[m,k], B[k,n]; square sizes 64..2048 and the training
shapes (32,64,64), (1024,256,256), (1024,256,1024), at each thread count
(torch.set_num_threads). gflops = 2*m*k*n / time / 1e9.

op-overhead (1 thread): one iteration of `c = a + b; c.backward(g)` on 64-element
tensors with requires_grad (g = ones(64) pre-made), and a forward-only
`a + b` under torch.no_grad().

Timing: warm up, then time batches of calls (a batch lasts about 1 ms, or one
call if a call is slower), until >= 0.3 s elapsed and >= 5 batches; report the
median per-call time over batches.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

MIN_TIME = 0.3
MIN_REPS = 5
BATCH_TARGET = 1e-3

SQUARE = [64, 128, 256, 512, 1024, 2048]
TRAINING = [(32, 64, 64), (1024, 256, 256), (1024, 256, 1024)]


def time_per_call(fn):
    """Median seconds per call of fn()."""
    # warm-up: at least 3 calls / 50 ms
    t0 = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t0 < 0.05:
        fn()
        n += 1
    est = (time.perf_counter() - t0) / n
    batch = max(1, int(BATCH_TARGET / max(est, 1e-9)))
    samples = []
    start = time.perf_counter()
    while len(samples) < MIN_REPS or time.perf_counter() - start < MIN_TIME:
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - t) / batch)
    return statistics.median(samples)


def emit(obj):
    print(json.dumps(obj), flush=True)


def bench_matmul(threads):
    shapes = [(s, s, s) for s in SQUARE] + TRAINING
    for t in threads:
        torch.set_num_threads(t)
        for m, k, n in shapes:
            a = torch.randn(m, k, dtype=torch.float32)
            b = torch.randn(k, n, dtype=torch.float32)
            sec = time_per_call(lambda: a @ b)
            emit({"bench": "matmul", "impl": "pytorch", "m": m, "k": k, "n": n,
                  "threads": t, "gflops": round(2 * m * k * n / sec / 1e9, 2),
                  "us": round(sec * 1e6, 3)})


def bench_op_overhead():
    torch.set_num_threads(1)
    a = torch.randn(64, requires_grad=True)
    b = torch.randn(64, requires_grad=True)
    g = torch.ones(64)

    def step():
        c = a + b
        c.backward(g)

    def fwd():
        with torch.no_grad():
            a + b

    bw = time_per_call(step)
    nograd = time_per_call(fwd)
    emit({"bench": "op-overhead", "impl": "pytorch", "elements": 64,
          "add_backward_us": round(bw * 1e6, 3), "add_nograd_us": round(nograd * 1e6, 3)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("which", choices=["matmul", "op-overhead", "all"])
    default_threads = sorted({1, os.cpu_count() or 1})
    ap.add_argument("--threads", default=",".join(map(str, default_threads)),
                    help="comma-separated thread counts for matmul (default: %(default)s)")
    args = ap.parse_args()
    threads = [int(x) for x in args.threads.split(",") if x.strip()]
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, cpu_count={os.cpu_count()}, "
          f"loadavg={os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.which in ("matmul", "all"):
        bench_matmul(threads)
    if args.which in ("op-overhead", "all"):
        bench_op_overhead()


if __name__ == "__main__":
    main()
