#!/usr/bin/env python3
"""Opacus twin of ferrite's DP-SGD Fashion-MNIST run (examples/fashion-dp.toml).

    bash tools/setup_dp_venv.sh                     # tools/.venv + opacus 1.6.0 (--no-deps)
    bash scripts/fetch-assets.sh fashion
    tools/.venv/bin/python tools/train_dp_opacus.py --epochs 60 --threads 2 --json [--seed 0]
        [--limit N] [--grad-sample-mode hooks|functorch|ew|ghost] [--opacus-sample-rate]
    tools/.venv/bin/python tools/train_dp_opacus.py --no-privacy ...   # same model, plain SGD

Data: exactly tools/train_vision_torch.py's `load` (imported from it): the four gzip IDX files of
Fashion-MNIST in --data (default $FERRITE_ASSETS/fashion-mnist, else
<repo>/.cache/assets/fashion-mnist), 60,000 train / 10,000 test; x = pixel / 255, then
(x - mean) / std with ONE scalar mean and ONE scalar population std (ddof=0) over all pixels of
the training images in use (0.286041 / 0.353024 for the full set), the same two numbers for the
test set; float32 [N, 1, 28, 28], int64 labels. --limit N keeps the first N training images
(the test set stays whole). No validation split, no augmentation. ferrite's IDX pipeline is
identical.

Model: Opacus's MNIST example `SampleConvNet`, PyTorch default init right after
torch.manual_seed(seed) (--seed, default 0):
  Conv2d(1,16,8,stride=2,padding=3) -> ReLU -> MaxPool2d(2,stride=1) ->
  Conv2d(16,32,4,stride=2) -> ReLU -> MaxPool2d(2,stride=1) -> Flatten (32*4*4 = 512) ->
  Linear(512,32) -> ReLU -> Linear(32,10)        (26,010 parameters)
Loss F.cross_entropy (mean over the batch), torch.optim.SGD(lr=0.1) (momentum 0, no decay).

DP-SGD (default): PrivacyEngine(accountant="rdp") and
  make_private(module, optimizer, data_loader=DataLoader(TensorDataset(x, y), batch_size=256,
               generator=torch.Generator().manual_seed(seed)), criterion=CrossEntropyLoss(),
               noise_multiplier=1.1, max_grad_norm=1.0, poisson_sampling=True,
               grad_sample_mode=--grad-sample-mode (default "hooks"))
  (flat clipping, loss_reduction="mean", secure_mode off; the noise comes from torch's global
  RNG, seeded by the manual_seed above). Every step: optimizer.zero_grad(), forward, loss,
  backward, optimizer.step() (zero_grad first: "ew" refuses a forward while grad_sample is set).
  "ghost" (fast gradient clipping) returns a wrapped criterion, used in place of the loss.
  Sample rate: make_private takes q = 1 / len(data_loader) = 1/235 for 60,000 rows in batches
  of 256, averages by expected_batch_size = int(n * q) = 255, and its Poisson loader yields
  int(1/q) steps an epoch. ferrite uses q = 256/n, divides by q*n = 256 and takes ceil(n/256)
  = 235 steps an epoch. By default this script matches ferrite, after make_private: the loader
  is replaced by opacus.data_loader.DPDataLoader(dataset, sample_rate=256/n, generator=the same
  one) with its batch sampler's `steps` set to ceil(n/256); optimizer.expected_batch_size is
  set to q*n (= 256); and the accountant's step hook is re-attached with
  accountant.get_optimizer_hook_fn(sample_rate=q). So σ, C, q, the averaging and the steps are
  ferrite's, and ε (privacy_engine.get_epsilon(delta), RDP, Opacus's default orders and its
  Balle et al. 2020 conversion) is the number ferrite's RDP accountant reports: 60 epochs =
  14,100 steps -> 2.6003 at δ = 1e-5. --opacus-sample-rate keeps make_private's own q = 1/235
  (ε 2.59.. after 60 epochs) instead. δ = 1e-5 (--delta).

Non-private (--no-privacy): the same model, optimizer and loss, no Opacus; epoch e (1-based)
visits the training set in the order torch.randperm(n, generator=g), g seeded with seed + e,
in batches of 256 (drop_last False: 235 steps, the last of 96 rows), gathered from the
in-memory tensor (DataLoader-free, like train_vision_torch.py).

Per epoch:
* train_loss = mean cross-entropy over the examples the epoch's batches held (each batch's
  mean loss weighted by its size; Poisson batches vary in size, an empty one counts 0).
* test_accuracy = fraction of the 10,000 test images classified correctly (eval(), no grad,
  batches of 1,000, on the plain module, so no per-sample-gradient hook does anything).
* epoch_seconds (time.perf_counter) = the training pass only: drawing the batches (Poisson
  masks + DataLoader collate, or randperm + gather), forward, loss, backward, per-sample
  gradients, clipping, noise, optimizer.step(), accounting hook. data_seconds = the part of it
  spent getting batches from the loader. eval_seconds (test evaluation) and the ε computation
  are timed apart and NOT in epoch_seconds.
* epsilon = privacy_engine.get_epsilon(delta) after the epoch (null without privacy).

Summary: train_seconds = sum of epoch_seconds; seconds_per_step = train_seconds / steps (pure
training time per step); wall_seconds = whole process from before `import torch` to the end
(imports, data loading, evaluation included); peak_rss_mb = ru_maxrss / 1024 (about 260 MB of
it is `import torch`). torch.set_num_threads(--threads, default 1), set_num_interop_threads(1).

Output (stdout): one line per epoch and a final summary; with --json these are JSON lines
  {"epoch":e,"steps":..,"examples":..,"train_loss":..,"test_accuracy":..,"epoch_seconds":..,
   "data_seconds":..,"eval_seconds":..,"epsilon":..}
  {"framework":"opacus"|"pytorch","private":..,"opacus_version":..,"torch_version":..,
   "grad_sample_mode":..,"threads":..,"seed":..,"n_train":..,"epochs":..,"steps":..,
   "train_loss":..,"test_accuracy":..,"train_seconds":..,"seconds_per_step":..,
   "data_seconds":..,"eval_seconds":..,"wall_seconds":..,"peak_rss_mb":..,"epsilon":..,
   "delta":..,"noise_multiplier":..,"max_grad_norm":..,"sample_rate":..,
   "expected_batch_size":..,"sample_rate_source":"ferrite"|"opacus"}
(privacy fields null with --no-privacy). `#` info lines go to stderr.
"""

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_vision_torch import DEFAULT_DATA, load  # noqa: E402

BATCH = 256
EVAL_BATCH = 1000
LR = 0.1
SIGMA = 1.1
CLIP = 1.0
MODES = ("hooks", "functorch", "ew", "ghost")


def make_model():
    """Opacus's examples/mnist.py SampleConvNet as an nn.Sequential."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 8, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(2, stride=1),
        nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(), nn.MaxPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 32), nn.ReLU(),
        nn.Linear(32, 10),
    )


@torch.no_grad()
def accuracy(model, x, y):
    was = model.training
    model.eval()
    correct = 0
    for s in range(0, len(x), EVAL_BATCH):
        correct += int((model(x[s:s + EVAL_BATCH]).argmax(dim=1) == y[s:s + EVAL_BATCH]).sum())
    model.train(was)
    return correct / len(x)


def private_setup(args, net, xtr, ytr):
    """(module, optimizer, criterion, loader, engine, q, expected_batch_size) for DP-SGD."""
    import opacus
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader

    n = len(xtr)
    dataset = TensorDataset(xtr, ytr)
    gen = torch.Generator()
    gen.manual_seed(args.seed)
    loader = DataLoader(dataset, batch_size=BATCH, generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    engine = PrivacyEngine(accountant="rdp")
    out = engine.make_private(module=net, optimizer=opt, criterion=nn.CrossEntropyLoss(),
                              data_loader=loader, noise_multiplier=SIGMA, max_grad_norm=CLIP,
                              poisson_sampling=True, grad_sample_mode=args.grad_sample_mode)
    if len(out) == 4:  # ghost clipping: its criterion runs both backward passes
        module, opt, criterion, dp_loader = out
    else:
        (module, opt, dp_loader), criterion = out, nn.CrossEntropyLoss()
    if args.opacus_sample_rate:
        q = dp_loader.sample_rate
        expected = opt.expected_batch_size
    else:
        q = min(1.0, BATCH / n)
        steps = math.ceil(n / BATCH)
        dp_loader = DPDataLoader(dataset, sample_rate=q, generator=gen)
        dp_loader.batch_sampler.steps = steps
        expected = q * n
        opt.expected_batch_size = expected
        opt.attach_step_hook(engine.accountant.get_optimizer_hook_fn(sample_rate=q))
    return module, opt, criterion, dp_loader, engine, q, expected, opacus.__version__


def main():
    ap = argparse.ArgumentParser(description="Opacus twin of ferrite's DP-SGD Fashion-MNIST run")
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help="dir with the four gzip IDX files (bash scripts/fetch-assets.sh fashion)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--grad-sample-mode", default="hooks", choices=MODES,
                    help="Opacus per-sample-gradient implementation (default hooks)")
    ap.add_argument("--opacus-sample-rate", action="store_true",
                    help="keep make_private's q = 1/len(loader) (1/235) instead of ferrite's 256/n")
    ap.add_argument("--no-privacy", action="store_true", help="plain SGD on shuffled batches, no Opacus")
    ap.add_argument("--json", action="store_true", help="JSON lines instead of text")
    args = ap.parse_args()
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")

    # Opacus warns on every step that the first layer's input needs no grad ("Full backward
    # hook is firing ...") and once that secure_mode is off; neither matters here.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    warnings.filterwarnings("ignore", message="Secure RNG turned off")

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    xtr, ytr, xte, yte, mean, std = load(args.data, args.limit)
    n = len(xtr)

    torch.manual_seed(args.seed)
    net = make_model()
    private = not args.no_privacy
    if private:
        module, opt, criterion, loader, engine, q, expected, opacus_version = private_setup(args, net, xtr, ytr)
        steps_per_epoch = len(loader)
    else:
        module, opt, criterion = net, torch.optim.SGD(net.parameters(), lr=LR), nn.CrossEntropyLoss()
        engine, q, expected, opacus_version = None, None, None, None
        steps_per_epoch = math.ceil(n / BATCH)
    print(f"# torch {torch.__version__}, opacus {opacus_version}, threads={args.threads}, "
          f"train {n}, test {len(xte)}, pixel mean {mean:.6f} std {std:.6f}, "
          + (f"DP-SGD sigma={SIGMA} C={CLIP} q={q:.7g} expected batch {expected:g} "
             f"mode={args.grad_sample_mode}, " if private else "no privacy, ")
          + f"{steps_per_epoch} steps/epoch, loadavg={os.getloadavg()[0]:.2f}",
          file=sys.stderr, flush=True)

    train_secs, data_secs, eval_secs = [], [], []
    steps = 0
    acc = loss_mean = eps = None
    module.train()
    for epoch in range(1, args.epochs + 1):
        loss_sum, seen, ep_steps, dsec = 0.0, 0, 0, 0.0
        t0 = time.perf_counter()
        if private:
            batches = iter(loader)
        else:
            g = torch.Generator()
            g.manual_seed(args.seed + epoch)
            perm = torch.randperm(n, generator=g)
            batches = ((xtr[perm[s:s + BATCH]], ytr[perm[s:s + BATCH]]) for s in range(0, n, BATCH))
        while True:
            d0 = time.perf_counter()
            batch = next(batches, None)
            dsec += time.perf_counter() - d0
            if batch is None:
                break
            xb, yb = batch
            opt.zero_grad()
            loss = criterion(module(xb), yb)
            loss.backward()
            opt.step()
            if len(yb):
                loss_sum += float(loss.item()) * len(yb)
            seen += len(yb)
            ep_steps += 1
        sec = time.perf_counter() - t0
        steps += ep_steps
        train_secs.append(sec)
        data_secs.append(dsec)
        e0 = time.perf_counter()
        acc = accuracy(net, xte, yte)
        eval_secs.append(time.perf_counter() - e0)
        eps = engine.get_epsilon(args.delta) if private else None
        loss_mean = loss_sum / max(1, seen)
        row = {"epoch": epoch, "steps": steps, "examples": seen, "train_loss": round(loss_mean, 6),
               "test_accuracy": round(acc, 6), "epoch_seconds": round(sec, 3),
               "data_seconds": round(dsec, 3), "eval_seconds": round(eval_secs[-1], 3),
               "epsilon": None if eps is None else round(eps, 6)}
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"epoch {epoch}: train loss {loss_mean:.4f}, test accuracy {acc:.4f}, "
                  f"{sec:.2f} s ({sec / max(1, ep_steps) * 1e3:.1f} ms/step)"
                  + (f", eps {eps:.4f}" if private else ""), flush=True)

    total = sum(train_secs)
    summary = {
        "framework": "opacus" if private else "pytorch", "private": private,
        "opacus_version": opacus_version, "torch_version": torch.__version__,
        "grad_sample_mode": args.grad_sample_mode if private else None,
        "threads": args.threads, "seed": args.seed, "n_train": n, "epochs": args.epochs,
        "steps": steps, "train_loss": round(loss_mean, 6), "test_accuracy": round(acc, 6),
        "train_seconds": round(total, 3), "seconds_per_step": round(total / max(1, steps), 6),
        "data_seconds": round(sum(data_secs), 3), "eval_seconds": round(sum(eval_secs), 3),
        "wall_seconds": round(time.perf_counter() - _T0, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "epsilon": None if eps is None else round(eps, 6),
        "delta": args.delta if private else None,
        "noise_multiplier": SIGMA if private else None,
        "max_grad_norm": CLIP if private else None,
        "sample_rate": q, "expected_batch_size": expected,
        "sample_rate_source": ("opacus" if args.opacus_sample_rate else "ferrite") if private else None,
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(f"{summary['framework']}: {args.epochs} epochs ({steps} steps), {args.threads} threads, "
              f"test accuracy {acc:.4f}, train {total:.1f} s ({summary['seconds_per_step'] * 1e3:.1f} "
              f"ms/step), wall {summary['wall_seconds']:.1f} s, peak RSS {summary['peak_rss_mb']:.0f} MB"
              + (f", eps {eps:.4f} at delta {args.delta:g}" if private else ""), flush=True)


if __name__ == "__main__":
    main()
