#!/usr/bin/env python3
"""Sentence-embedding inference benchmark (encoder forward + masked mean pooling + L2 normalize,
no grad) for a BERT-family model directory (config.json + model.safetensors + tokenizer.json),
PyTorch eager vs ONNX Runtime. The ferrite side is `target/release/ferrite bench embed ...`.

  tools/.venv/bin/python tools/bench_embed.py --model .cache/assets/all-MiniLM-L6-v2 \\
      --engine torch|onnx --batch B --len T --threads N [--iters K] [--json] [--seed S]

Inputs are synthetic and seeded (numpy default_rng(seed), default 0): every row is
[CLS] + (T-2) ids drawn uniformly from the vocabulary minus the tokenizer's special tokens
([PAD] [UNK] [CLS] [SEP] [MASK] for MiniLM) + [SEP], exactly T tokens; attention_mask all ones,
token_type_ids zeros (int64). No tokenization is timed.

Engines:
- torch: transformers `BertModel` (AutoModel) in eval() under torch.inference_mode(), with
  `--attn sdpa` (default; what sentence-transformers loads) or `--attn eager` (1 thread, 2-core
  VM under load: sdpa 32 ms vs eager 44 ms at 1x128, 1.01 s vs 1.14 s at 32x128, noisy at 1x16:
  10-16 ms vs 11 ms). Pooling = sum(h * mask) / sum(mask), then F.normalize — the same ops
  sentence-transformers' Pooling(mean) + Normalize modules run. torch.set_num_threads(N),
  torch.set_num_interop_threads(1).
- onnx: the BertModel *with the pooling + normalize inside the graph* (one session.run returns
  the [B, hidden] embeddings), exported once with torch.onnx.export (TorchScript exporter,
  dynamo=False, opset 17, dynamic batch/seq axes) into .cache/onnx/ (git-ignored). The export
  runs in a child process, so the timed process never imports torch (its peak RSS is ORT's
  own). ONNX Runtime CPUExecutionProvider, graph_optimization_level ORT_ENABLE_ALL (ORT's
  default; on this graph it fuses bias+GELU and the attention scale into the QK^T MatMul),
  intra_op_num_threads=N, inter_op_num_threads=1, ORT_SEQUENTIAL. `--onnx-graph fused` first
  runs onnxruntime.transformers' BERT optimizer (Attention, EmbedLayerNormalization,
  SkipLayerNormalization, BiasGelu contrib ops; cached as ...-fused.onnx); on the 2-core VM it
  was within noise of `plain` (1-thread medians 6-7 ms / 30-40 ms / 1.0-1.1 s for the three
  compare cases, both), so the default is the plain export.

Timing: warm-up (>= 3 calls and >= 0.3 s), then `--iters` timed calls (default: enough for
about 2 s, at least 5). One JSON line (with or without --json; without it a human line goes to
stderr first):
  {"bench":"embed","engine":..,"batch":B,"len":T,"threads":N,"ms":median,"p90_ms":..,
   "texts_per_s":B*1000/ms,"peak_rss_mb":ru_maxrss/1024,"iters":K,...}
"""
import argparse
import hashlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX_CACHE = os.path.join(ROOT, ".cache", "onnx")
OPSET = 17
TARGET_S = 2.0
MIN_ITERS = 5


def special_ids(model_dir):
    """Ids of the tokenizer's special tokens, [CLS] and [SEP] ids, vocab size."""
    with open(os.path.join(model_dir, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    tok_path = os.path.join(model_dir, "tokenizer.json")
    specials, by_name = set(), {}
    if os.path.exists(tok_path):
        with open(tok_path, encoding="utf-8") as f:
            tok = json.load(f)
        for a in tok.get("added_tokens", []):
            if a.get("special"):
                specials.add(a["id"])
                by_name[a["content"]] = a["id"]
    cls = by_name.get("[CLS]", by_name.get("<s>", 101))
    sep = by_name.get("[SEP]", by_name.get("</s>", 102))
    specials |= {cls, sep}
    return specials, cls, sep, vocab


def make_inputs(model_dir, batch, length, seed):
    import numpy as np

    if length < 2:
        raise SystemExit("--len must be >= 2 ([CLS] ... [SEP])")
    specials, cls, sep, vocab = special_ids(model_dir)
    pool = np.array(sorted(set(range(vocab)) - specials), dtype=np.int64)
    rng = np.random.default_rng(seed)
    ids = np.empty((batch, length), dtype=np.int64)
    ids[:, 0] = cls
    ids[:, -1] = sep
    ids[:, 1:-1] = pool[rng.integers(0, len(pool), size=(batch, length - 2))]
    mask = np.ones((batch, length), dtype=np.int64)
    types = np.zeros((batch, length), dtype=np.int64)
    return ids, mask, types


def time_calls(fn, iters):
    t0 = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t0 < 0.3:
        fn()
        n += 1
    per_call = (time.perf_counter() - t0) / n
    if iters is None:
        iters = max(MIN_ITERS, math.ceil(TARGET_S / per_call))
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def p90(xs):
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(0.9 * len(s)) - 1)]


# ---------------------------------------------------------------- torch


def load_torch_embedder(model_dir, attn):
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir, attn_implementation=attn, local_files_only=True).eval()

    class Embed(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.m(input_ids=input_ids, attention_mask=attention_mask,
                       token_type_ids=token_type_ids).last_hidden_state
            w = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * w).sum(1) / w.sum(1).clamp(min=1e-9)
            return F.normalize(pooled, p=2, dim=1)

    return Embed(model).eval()


def bench_torch(args, ids, mask, types):
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    emb = load_torch_embedder(args.model, args.attn)
    t_ids, t_mask, t_types = (torch.from_numpy(x) for x in (ids, mask, types))

    def call():
        with torch.inference_mode():
            return emb(t_ids, t_mask, t_types)

    out = call()
    assert out.shape == (args.batch, emb.m.config.hidden_size)
    return time_calls(call, args.iters), {"attn": args.attn, "torch": torch.__version__}


# ---------------------------------------------------------------- onnx


def onnx_path(model_dir):
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        p = os.path.join(model_dir, name)
        s = os.stat(p)
        h.update(f"{name}:{s.st_size}:{int(s.st_mtime)};".encode())
    base = os.path.basename(os.path.normpath(os.path.abspath(model_dir)))
    return os.path.join(ONNX_CACHE, f"{base}-embed-opset{OPSET}-{h.hexdigest()[:12]}.onnx")


def export_onnx(model_dir, out_path):
    """Runs in a child process (see ensure_onnx)."""
    import warnings

    import numpy as np
    import torch

    warnings.filterwarnings("ignore")
    emb = load_torch_embedder(model_dir, "eager")
    ids, mask, types = (torch.from_numpy(x) for x in make_inputs(model_dir, 2, 16, 0))
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp = out_path + f".{os.getpid()}.tmp"
    dyn = {n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids")}
    dyn["embedding"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(emb, (ids, mask, types), tmp, dynamo=False, opset_version=OPSET,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["embedding"], dynamic_axes=dyn, do_constant_folding=True)
    # check against PyTorch on another shape before publishing the file
    import onnxruntime as ort

    sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    ids, mask, types = make_inputs(model_dir, 3, 37, 1)
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    fresh = load_torch_embedder(model_dir, "eager")
    with torch.inference_mode():
        want = fresh(*(torch.from_numpy(x) for x in (ids, mask, types))).numpy()
    err = float(np.abs(got - want).max())
    if err > 1e-4:
        os.unlink(tmp)
        raise SystemExit(f"ONNX export check failed: max abs diff {err}")
    os.replace(tmp, out_path)
    print(f"# exported {out_path} (max abs diff vs torch {err:.2e})", file=sys.stderr)


def fuse_onnx(model_dir, plain, out_path):
    """onnxruntime.transformers' BERT optimizer (Attention, EmbedLayerNormalization,
    SkipLayerNormalization, BiasGelu contrib ops); runs in a child process (see ensure_onnx)."""
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.transformers.optimizer import optimize_model

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    m = optimize_model(plain, model_type="bert", num_heads=cfg["num_attention_heads"],
                       hidden_size=cfg["hidden_size"], opt_level=0)
    stats = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
    tmp = out_path + f".{os.getpid()}.tmp"
    m.save_model_to_file(tmp)
    ids, mask, types = make_inputs(model_dir, 3, 37, 1)
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    got = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    want = ort.InferenceSession(plain, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    err = float(np.abs(got - want).max())
    if err > 1e-4:
        os.unlink(tmp)
        raise SystemExit(f"fused ONNX check failed: max abs diff {err}")
    os.replace(tmp, out_path)
    print(f"# fused {out_path}: {stats} (max abs diff vs plain {err:.2e})", file=sys.stderr)


def ensure_onnx(model_dir, graph):
    plain = onnx_path(model_dir)
    if not os.path.exists(plain):
        print(f"# exporting ONNX model to {plain} (once)", file=sys.stderr)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export-onnx", "plain", "--model", model_dir],
                       check=True)
    if graph == "plain":
        return plain
    fused = plain[: -len(".onnx")] + "-fused.onnx"
    if not os.path.exists(fused):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export-onnx", "fused", "--model", model_dir],
                       check=True)
    return fused


def bench_onnx(args, ids, mask, types):
    path = ensure_onnx(args.model, args.onnx_graph)
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feed.items() if k in names}

    def call():
        return sess.run(None, feed)[0]

    out = call()
    assert out.shape[0] == args.batch
    return time_calls(call, args.iters), {"onnx_graph": args.onnx_graph, "onnxruntime": ort.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache", "assets", "all-MiniLM-L6-v2"))
    ap.add_argument("--engine", choices=["torch", "onnx"], default="torch")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=None, help="timed calls (default: ~2 s worth, >= 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa", help="torch attention implementation")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--onnx-graph", choices=["plain", "fused"], default="plain",
                    help="onnx: the exported graph as is, or after onnxruntime.transformers' BERT fusions")
    ap.add_argument("--export-onnx", choices=["plain", "fused"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.export_onnx == "plain":
        export_onnx(args.model, onnx_path(args.model))
        return
    if args.export_onnx == "fused":
        plain = onnx_path(args.model)
        fuse_onnx(args.model, plain, plain[: -len(".onnx")] + "-fused.onnx")
        return

    ids, mask, types = make_inputs(args.model, args.batch, args.len, args.seed)
    if args.engine == "torch":
        times, extra = bench_torch(args, ids, mask, types)
    else:
        times, extra = bench_onnx(args, ids, mask, types)
    ms = statistics.median(times)
    rec = {
        "bench": "embed", "engine": args.engine, "batch": args.batch, "len": args.len,
        "threads": args.threads, "ms": round(ms, 4), "p90_ms": round(p90(times), 4),
        "texts_per_s": round(args.batch * 1000.0 / ms, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "iters": len(times), **extra,
    }
    if not args.json:
        print(f"# embed {args.engine} batch {args.batch} len {args.len} threads {args.threads}: "
              f"{ms:.3f} ms median (p90 {rec['p90_ms']:.3f}), {rec['texts_per_s']:.1f} texts/s, "
              f"peak RSS {rec['peak_rss_mb']:.0f} MB, {len(times)} iters", file=sys.stderr)
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
