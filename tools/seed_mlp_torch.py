#!/usr/bin/env python3
"""PyTorch side of ferrite's "seed MLP" comparison.

    tools/.venv/bin/python tools/seed_mlp_torch.py                    # seed 42, 10 epochs
    tools/.venv/bin/python tools/seed_mlp_torch.py --epochs 200
    tools/.venv/bin/python tools/seed_mlp_torch.py --seeds 0,1,2,3,4  # + mean line
    tools/.venv/bin/python tools/seed_mlp_torch.py --synthetic

Default mode (task "seed-mlp"), data/diabetes.csv (442 rows, 10 features,
`target`):

* Split (reproducible in Rust): key_i = splitmix64((seed*1000003 + i) mod 2^64)
  for row i (0-based); rows sorted by key ascending; the first round(0.2*n) = 88
  are the TEST set (in that order), the TRAIN set is the other 354 rows in
  their original file order. splitmix64(x):
      z = (x + 0x9E3779B97F4A7C15) mod 2^64
      z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) mod 2^64
      z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) mod 2^64
      return z ^ (z >> 31)
* X and y standardized with mean and population std (ddof=0) of the TRAIN
  rows (computed in float64, then everything cast to float32).
* Model Linear(10,64) -> ReLU -> Linear(64,64) -> ReLU -> Linear(64,1),
  PyTorch default init after torch.manual_seed(seed). Adam(lr=1e-3, other
  defaults), MSELoss (mean), batch 32, drop_last=False (354 rows -> 12 steps,
  the last of 2 rows), a fresh torch.randperm (global generator, i.e. right
  after the model init) every epoch, no validation split.
* test_mse: MSE on the standardized test targets after the last epoch.

Mode --synthetic (task "synthetic-100k"), timing only: torch.manual_seed(seed);
X = torch.randn(100000, 10); y = sin(X).sum(dim=1) + 0.1 * torch.randn(100000)
(not standardized); same model/optimizer, batch 1024 (98 steps, last 672 rows),
3 epochs, median epoch time reported.

Batching is DataLoader-free, the fast path a careful PyTorch user would take:
the whole data set is one in-memory tensor, each epoch does
`perm = torch.randperm(n)` and each step `xb = X[perm[s:s+B]]`. Timing
(time.perf_counter) covers the epoch loop only: randperm, batch index-gather,
forward, loss, backward, optimizer.step(), optimizer.zero_grad(). CSV loading,
splitting, standardization, model creation and test evaluation are not timed.
epoch_ms is the median over epochs; step_us = epoch_ms * 1000 / steps_per_epoch.
torch.set_num_threads(--threads, default 1).

Output: one JSON line per run on stdout.
"""

import argparse
import csv
import json
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CSV = os.path.join(REPO, "data", "diabetes.csv")
MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def split_indices(n: int, seed: int, test_frac: float = 0.2):
    """Returns (test, train) lists of 0-based row indices."""
    keys = [splitmix64((seed * 1000003 + i) & MASK) for i in range(n)]
    order = sorted(range(n), key=lambda i: keys[i])
    n_test = round(n * test_frac)  # 88.4 -> 88
    test = order[:n_test]
    test_set = set(test)
    train = [i for i in range(n) if i not in test_set]
    return test, train


def load_csv(path: str):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ti = header.index("target")
    a = np.array(body, dtype=np.float64)
    return a[:, :10], a[:, ti]


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(10, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 1),
    )


def train(model, x, y, epochs: int, batch: int):
    """x: [n,10], y: [n,1] float32. Returns list of per-epoch seconds."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    n = x.shape[0]
    times = []
    model.train()
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            xb, yb = x[idx], y[idx]
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return times


def run_seed_mlp(csv_path: str, seed: int, epochs: int, threads: int, batch: int = 32):
    X, Y = load_csv(csv_path)
    n = X.shape[0]
    test, tr = split_indices(n, seed)
    mx, sx = X[tr].mean(axis=0), X[tr].std(axis=0)  # ddof=0
    my, sy = Y[tr].mean(), Y[tr].std()
    Xs, Ys = (X - mx) / sx, (Y - my) / sy
    xtr = torch.from_numpy(Xs[tr].astype(np.float32))
    ytr = torch.from_numpy(Ys[tr].astype(np.float32)).unsqueeze(1)
    xte = torch.from_numpy(Xs[test].astype(np.float32))
    yte = torch.from_numpy(Ys[test].astype(np.float32)).unsqueeze(1)

    torch.manual_seed(seed)
    model = make_model()
    times = train(model, xtr, ytr, epochs, batch)
    model.eval()
    with torch.no_grad():
        test_mse = nn.functional.mse_loss(model(xte), yte).item()
    steps = (len(tr) + batch - 1) // batch
    epoch_s = statistics.median(times)
    return {
        "impl": "pytorch", "task": "seed-mlp", "seed": seed, "threads": threads,
        "epochs": epochs, "test_mse": test_mse,
        "epoch_ms": round(epoch_s * 1e3, 4),
        "step_us": round(epoch_s * 1e6 / steps, 2),
        "steps_per_epoch": steps,
    }


def run_synthetic(seed: int, threads: int, batch: int = 1024, n: int = 100_000, epochs: int = 3):
    torch.manual_seed(seed)
    x = torch.randn(n, 10)
    y = (torch.sin(x).sum(dim=1) + 0.1 * torch.randn(n)).unsqueeze(1)
    model = make_model()
    times = train(model, x, y, epochs, batch)
    steps = (n + batch - 1) // batch
    epoch_s = statistics.median(times)
    return {
        "impl": "pytorch", "task": "synthetic-100k", "seed": seed, "threads": threads,
        "batch": batch, "steps_per_epoch": steps,
        "epoch_ms": round(epoch_s * 1e3, 3),
        "step_us": round(epoch_s * 1e6 / steps, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="PyTorch seed-MLP reference")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--seeds", type=str, default=None,
                    help="comma list, e.g. 0,1,2,3,4: one line per seed + a mean line")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default=DEFAULT_CSV)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--print-split", action="store_true",
                    help="also print the test indices (sorted-key order) as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.synthetic:
        print(json.dumps(run_synthetic(args.seed, args.threads)), flush=True)
        return

    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    results = []
    for s in seeds:
        if args.print_split:
            test, _ = split_indices(sum(1 for _ in open(args.csv)) - 1, s)
            print(json.dumps({"seed": s, "test_indices": test}), flush=True)
        r = run_seed_mlp(args.csv, s, args.epochs, args.threads)
        results.append(r)
        print(json.dumps(r), flush=True)
    if len(results) > 1:
        m = [r["test_mse"] for r in results]
        print(json.dumps({
            "impl": "pytorch", "task": "seed-mlp", "epochs": args.epochs,
            "seeds": seeds, "test_mse_mean": statistics.fmean(m),
            "test_mse_std": statistics.pstdev(m),
            "epoch_ms_median": statistics.median(r["epoch_ms"] for r in results),
            "step_us_median": statistics.median(r["step_us"] for r in results),
        }), flush=True)


if __name__ == "__main__":
    main()
