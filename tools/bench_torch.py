#!/usr/bin/env python3
"""Side-by-side PyTorch (CPU) benchmarks for ferrite. One JSON object per line
on stdout.

  tools/.venv/bin/python tools/bench_torch.py matmul [--threads 1,2]
  tools/.venv/bin/python tools/bench_torch.py conv2d [--threads 1,2]
  tools/.venv/bin/python tools/bench_torch.py op-overhead
  tools/.venv/bin/python tools/bench_torch.py all [--threads 1,2]
  tools/.venv/bin/python tools/bench_torch.py transformer-step [--threads 1] [--d-model 256 --heads 8
      --layers 2 --ffn 1024 --batch 32 --len 32 --vocab 1000]

matmul: C = A @ B (plain `a @ b`, a fresh output each call) for float32
contiguous row-major A[m,k], B[k,n]; square sizes 64..2048 and the training
shapes (32,64,64), (1024,256,256), (1024,256,1024), at each thread count
(torch.set_num_threads). gflops = 2*m*k*n / time / 1e9.

conv2d (not part of `all`; threads default 1,2): one nn.Conv2d(64, 64, 3, padding=1, bias=True)
(default init after torch.manual_seed(0)) on a float32 input x [32, 64, 32, 32] (randn,
requires_grad), grad mode on as in training. fwd = `y = conv(x)`; fwd_bwd = `y = conv(x)` then
`torch.autograd.grad(y, (x, weight, bias), g)` with g a pre-made randn like y (no .grad
accumulation). Each is timed as below but for >= 1 s and >= 5 calls; fwd_ms / fwd_bwd_ms are
median milliseconds per call.

op-overhead (1 thread): one iteration of `c = a + b; c.backward(g)` on 64-element
tensors with requires_grad (g = ones(64) pre-made), and a forward-only
`a + b` under torch.no_grad().

transformer-step (one thread count, default 1; not part of `all`): one training step of the
encoder-decoder Transformer of tools/train_translate_torch.py (the same model class): shared
token embedding N(0, d^-1/2) * sqrt(d) + fixed sinusoidal positions, dropout 0.1, post-LN
nn.TransformerEncoder/Decoder layers (relu, batch_first), `--layers` each, no final norm,
output tied to the embedding (no bias); causal target mask, no padding (random ids in
4..vocab-1 for src, tgt_in, tgt_out, all `--len` long). Step = zero_grad + forward +
F.cross_entropy(ignore_index=0, label_smoothing=0.1) + backward + AdamW(lr 1e-4, betas
(0.9, 0.98), eps 1e-9, weight_decay 0.01).step(). 3 warm-up steps, then >= 10 timed steps and
>= 5 s; step_ms is the median step, tokens_per_s = batch * 2 * len / step (source + target),
peak_rss_mb = ru_maxrss / 1024 of this process (so run it on its own, not after `all`).

Timing (matmul, conv2d, op-overhead): warm up, then time batches of calls (a batch lasts about 1 ms, or one
call if a call is slower), until >= 0.3 s elapsed and >= 5 batches; report the
median per-call time over batches.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

MIN_TIME = 0.3
MIN_REPS = 5
BATCH_TARGET = 1e-3

SQUARE = [64, 128, 256, 512, 1024, 2048]
TRAINING = [(32, 64, 64), (1024, 256, 256), (1024, 256, 1024)]


def time_per_call(fn, min_time=MIN_TIME, min_reps=MIN_REPS):
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
    while len(samples) < min_reps or time.perf_counter() - start < min_time:
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


CONV = {"batch": 32, "channels": 64, "hw": 32, "kernel": 3}
CONV_MIN_TIME = 1.0


def bench_conv2d(threads):
    n, c, hw, k = CONV["batch"], CONV["channels"], CONV["hw"], CONV["kernel"]
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(c, c, k, padding=k // 2, bias=True)
    x = torch.randn(n, c, hw, hw, requires_grad=True)
    g = torch.randn(n, c, hw, hw)
    params = (x, conv.weight, conv.bias)

    def fwd():
        conv(x)

    def fwd_bwd():
        torch.autograd.grad(conv(x), params, g)

    for t in threads:
        torch.set_num_threads(t)
        f = time_per_call(fwd, CONV_MIN_TIME)
        fb = time_per_call(fwd_bwd, CONV_MIN_TIME)
        emit({"bench": "conv2d", "impl": "pytorch", **CONV, "threads": t,
              "fwd_ms": round(f * 1e3, 3), "fwd_bwd_ms": round(fb * 1e3, 3)})


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


def bench_transformer_step(a):
    """One AdamW training step of the encoder-decoder Transformer; see the module docstring."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # no tools/__pycache__ in the working tree
    from train_translate_torch import Seq2SeqTransformer

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # only settable before any inter-op work has started
    torch.manual_seed(0)
    model = Seq2SeqTransformer(a.vocab, a.d_model, a.heads, a.layers, a.layers, a.ffn, dropout=0.1,
                               activation="relu", norm_first=False, positional="sinusoidal",
                               max_positions=max(512, a.len))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    src, tgt_in, tgt_out = (torch.randint(4, a.vocab, (a.batch, a.len)) for _ in range(3))

    def step():
        opt.zero_grad()
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.view(-1, a.vocab), tgt_out.view(-1), ignore_index=0,
                               label_smoothing=0.1)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < 10 or time.perf_counter() - start < 5.0:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    emit({"bench": "transformer-step", "impl": "pytorch", "threads": a.threads, "d_model": a.d_model,
          "heads": a.heads, "layers": a.layers, "ffn": a.ffn, "batch": a.batch, "len": a.len,
          "vocab": a.vocab, "step_ms": round(sec * 1e3, 3),
          "tokens_per_s": round(a.batch * 2 * a.len / sec, 1),
          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("which", choices=["matmul", "conv2d", "op-overhead", "all", "transformer-step"])
    default_threads = sorted({1, os.cpu_count() or 1})
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts for matmul (default: "
                         f"{','.join(map(str, default_threads))}) and conv2d (default: 1,2); "
                         "one count for transformer-step (default: 1)")
    step = ap.add_argument_group("transformer-step")
    step.add_argument("--d-model", type=int, default=256)
    step.add_argument("--heads", type=int, default=8)
    step.add_argument("--layers", type=int, default=2, help="encoder layers = decoder layers")
    step.add_argument("--ffn", type=int, default=1024)
    step.add_argument("--batch", type=int, default=32)
    step.add_argument("--len", type=int, default=32, help="source = target length")
    step.add_argument("--vocab", type=int, default=1000)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, cpu_count={os.cpu_count()}, "
          f"loadavg={os.getloadavg()[0]:.2f}", file=sys.stderr)
    if args.which == "transformer-step":
        args.threads = int(args.threads or 1)
        bench_transformer_step(args)
        return
    if args.which == "conv2d":
        bench_conv2d([int(x) for x in (args.threads or "1,2").split(",") if x.strip()])
        return
    threads = [int(x) for x in (args.threads or ",".join(map(str, default_threads))).split(",") if x.strip()]
    if args.which in ("matmul", "all"):
        bench_matmul(threads)
    if args.which in ("op-overhead", "all"):
        bench_op_overhead()


if __name__ == "__main__":
    main()
