#!/usr/bin/env python3
"""Reads the TensorBoard event file of a ferrite run with TensorBoard's own EventAccumulator
(which checks both CRCs of every record) and checks what `ferrite train` logs: a scalar per
evaluation for `loss` (and `val_loss` when the run validates), `lr`, a `batch_loss` per step, and
parameter histograms.

    bash tools/setup_tensorboard_venv.sh
    tools/.venv-tb/bin/python tools/check_tensorboard.py RUN_DIR [--epochs N]

Prints one JSON object (tags, counts, last values); exits 1 with a message when a check fails.
"""
import argparse
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--epochs", type=int, help="evaluations the run made (checks the count)")
    args = ap.parse_args()
    acc = EventAccumulator(args.run_dir, size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: acc.Scalars(t) for t in tags["scalars"]}
    problems = []
    for tag in ("loss", "lr", "batch_loss"):
        if tag not in scalars:
            problems.append(f"no scalar '{tag}' (have {sorted(scalars)})")
    if args.epochs is not None and "loss" in scalars and len(scalars["loss"]) != args.epochs:
        problems.append(f"{len(scalars['loss'])} 'loss' points, expected {args.epochs}")
    if "batch_loss" in scalars and "loss" in scalars:
        steps = [e.step for e in scalars["batch_loss"]]
        if steps != sorted(steps) or len(steps) < len(scalars["loss"]):
            problems.append("batch_loss steps are not increasing or fewer than evaluations")
    if not tags["histograms"]:
        problems.append("no histograms")
    report = {
        "scalars": {t: len(v) for t, v in sorted(scalars.items())},
        "last": {t: v[-1].value for t, v in sorted(scalars.items())},
        "histograms": sorted(tags["histograms"]),
        "problems": problems,
    }
    print(json.dumps(report))
    if problems:
        print("check_tensorboard: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
