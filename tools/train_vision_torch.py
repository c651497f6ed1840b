#!/usr/bin/env python3
"""PyTorch twin of ferrite's Fashion-MNIST CNN run (side-by-side timing and accuracy).

    bash scripts/fetch-assets.sh fashion
    tools/.venv/bin/python tools/train_vision_torch.py --data .cache/assets/fashion-mnist \\
        --epochs 8 --threads 2 --json [--seed 0] [--limit N]

Data: the four gzip IDX files of Fashion-MNIST in --data (train-images-idx3-ubyte.gz,
train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; default
$FERRITE_ASSETS/fashion-mnist, else <repo>/.cache/assets/fashion-mnist, where
scripts/fetch-assets.sh puts them), read here with gzip + struct: images = big-endian u32
magic 2051, count, rows, cols, then count*rows*cols u8 pixels row-major; labels = magic 2049,
count, then count u8 labels. 60,000 train / 10,000 test images of 28x28, labels 0..9.
--limit N keeps only the first N training images (smoke tests); the test set is always all
10,000.

Pipeline (ferrite does the same):
* x = pixel / 255, then (x - mean) / std with ONE scalar mean and ONE scalar population std
  (ddof=0) over all pixels of the training images in use (exact, from integer sums of the
  bytes; 0.286041 / 0.353024 for the full set); the test set uses the same two numbers.
  Tensors are float32 [N, 1, 28, 28]. No validation split, no augmentation.
* Model (PyTorch default init, right after torch.manual_seed(seed)):
  Conv2d(1,32,3,padding=1) -> BatchNorm2d(32) -> ReLU -> MaxPool2d(2) ->
  Conv2d(32,64,3,padding=1) -> BatchNorm2d(64) -> ReLU -> MaxPool2d(2) -> Flatten ->
  Linear(3136,128) -> ReLU -> Dropout(0.3) -> Linear(128,10).
* Adam(lr=1e-3, other defaults), F.cross_entropy (mean over the batch), batch 128,
  drop_last=False (60,000 -> 469 steps, the last of 96 rows). Epochs are numbered 1..E; epoch e
  visits the training set in the order torch.randperm(n, generator=g) with g a fresh
  torch.Generator seeded with seed + e. DataLoader-free: the whole set is one in-memory
  tensor and each step gathers x[perm[s:s+128]].
* train_loss = mean cross-entropy over the epoch's training examples (each batch's mean loss
  weighted by its size; train mode, so with dropout and batch statistics).
* test_accuracy = fraction of the 10,000 test images classified correctly after the epoch
  (eval mode: BatchNorm running statistics, no dropout; no grad; batches of 128).
* epoch_seconds (time.perf_counter) covers the training pass only: randperm, batch gathers,
  forward, loss, backward, optimizer.step(), zero_grad. Loading, standardization, model
  creation and the test evaluation are not timed. train_seconds = sum of epoch_seconds,
  mean_epoch_seconds = train_seconds / epochs, peak_rss_mb = ru_maxrss / 1024 (about 260 MB of
  it is `import torch`).
* torch.set_num_threads(--threads, default 1), set_num_interop_threads(1).

Output (stdout): one line per epoch and a final summary; with --json these are JSON lines
  {"epoch":e,"train_loss":..,"test_accuracy":..,"epoch_seconds":..}
  {"framework":"pytorch","model":"fashion-cnn","epochs":..,"threads":..,"test_accuracy":..,
   "train_seconds":..,"mean_epoch_seconds":..,"peak_rss_mb":..}
A `#` info line (torch version, data sizes, mean/std) goes to stderr.
"""

import argparse
import gzip
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(os.environ.get("FERRITE_ASSETS") or os.path.join(REPO, ".cache", "assets"),
                            "fashion-mnist")
BATCH = 128
EVAL_BATCH = 128
LR = 1e-3
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def read_idx_images(path):
    """uint8 array [n, rows, cols] from a gzip IDX3 file (magic 2051)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack_from(">IIII", data, 0)
    if magic != 2051:
        raise SystemExit(f"{path}: magic {magic}, expected 2051 (IDX3 u8 images)")
    if len(data) != 16 + n * rows * cols:
        raise SystemExit(f"{path}: {len(data)} bytes, expected {16 + n * rows * cols} for {n}x{rows}x{cols}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def read_idx_labels(path):
    """uint8 array [n] from a gzip IDX1 file (magic 2049)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack_from(">II", data, 0)
    if magic != 2049:
        raise SystemExit(f"{path}: magic {magic}, expected 2049 (IDX1 u8 labels)")
    if len(data) != 8 + n:
        raise SystemExit(f"{path}: {len(data)} bytes, expected {8 + n} for {n} labels")
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def load(data_dir, limit):
    """(x_train, y_train, x_test, y_test, mean, std): standardized float32 [N,1,28,28], int64 labels."""
    p = {k: os.path.join(data_dir, v) for k, v in FILES.items()}
    missing = [v for v in p.values() if not os.path.isfile(v)]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)} (run: bash scripts/fetch-assets.sh fashion)")
    xtr, ytr = read_idx_images(p["train_images"]), read_idx_labels(p["train_labels"])
    xte, yte = read_idx_images(p["test_images"]), read_idx_labels(p["test_labels"])
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise SystemExit("image and label counts differ")
    if max(int(ytr.max()), int(yte.max())) > 9:
        raise SystemExit("labels outside 0..9")
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]
    # One scalar mean / population std over every pixel of the training images in use, exact:
    # from the byte histogram with integer sums (no float64 copy of the set, so no RSS spike).
    counts = np.bincount(xtr.reshape(-1), minlength=256)
    m = int(counts.sum())
    s1 = sum(v * int(c) for v, c in enumerate(counts))
    s2 = sum(v * v * int(c) for v, c in enumerate(counts))
    mean = s1 / (255.0 * m)
    std = math.sqrt((m * s2 - s1 * s1) / (m * m)) / 255.0  # ddof=0

    def prep(x):
        x = torch.from_numpy(x.astype(np.float32)).div_(255.0)
        return x.sub_(mean).div_(std).unsqueeze(1).contiguous()

    return (prep(xtr), torch.from_numpy(ytr.astype(np.int64)),
            prep(xte), torch.from_numpy(yte.astype(np.int64)), mean, std)


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, 10),
    )


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    correct = 0
    for s in range(0, len(x), EVAL_BATCH):
        correct += int((model(x[s:s + EVAL_BATCH]).argmax(dim=1) == y[s:s + EVAL_BATCH]).sum())
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description="PyTorch twin of ferrite's Fashion-MNIST CNN run")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="dir with the four gzip IDX files (bash scripts/fetch-assets.sh fashion; "
                         "default: $FERRITE_ASSETS or <repo>/.cache/assets, + /fashion-mnist)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--json", action="store_true", help="JSON lines instead of text")
    args = ap.parse_args()
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # only settable before any inter-op work has started
    xtr, ytr, xte, yte, mean, std = load(args.data, args.limit)
    n = len(xtr)
    print(f"# torch {torch.__version__}, threads={args.threads}, train {n}, test {len(xte)}, "
          f"pixel mean {mean:.6f} std {std:.6f}, {(n + BATCH - 1) // BATCH} steps/epoch, "
          f"loadavg={os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)

    torch.manual_seed(args.seed)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=LR)

    epoch_secs = []
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        g = torch.Generator()
        g.manual_seed(args.seed + epoch)
        loss_sum = 0.0
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, BATCH):
            idx = perm[s:s + BATCH]
            xb, yb = xtr[idx], ytr[idx]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
        sec = time.perf_counter() - t0
        epoch_secs.append(sec)
        acc = accuracy(model, xte, yte)
        row = {"epoch": epoch, "train_loss": round(loss_sum / n, 6), "test_accuracy": round(acc, 6),
               "epoch_seconds": round(sec, 3)}
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"epoch {epoch}: train loss {row['train_loss']:.4f}, test accuracy {acc:.4f}, "
                  f"{sec:.2f} s", flush=True)

    total = sum(epoch_secs)
    summary = {"framework": "pytorch", "model": "fashion-cnn", "epochs": args.epochs,
               "threads": args.threads, "test_accuracy": round(acc, 6),
               "train_seconds": round(total, 3),
               "mean_epoch_seconds": round(total / max(1, args.epochs), 3),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(f"pytorch fashion-cnn: {args.epochs} epochs, {args.threads} threads, test accuracy "
              f"{acc:.4f}, train {total:.1f} s ({summary['mean_epoch_seconds']:.2f} s/epoch), "
              f"peak RSS {summary['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
