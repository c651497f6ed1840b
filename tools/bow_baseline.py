#!/usr/bin/env python3
"""Bag-of-words logistic-regression baseline for a ferrite text-classification run directory.

  tools/.venv/bin/python tools/bow_baseline.py RUN_DIR [--json] [--train-limit N]
      [--select accuracy|macro_f1] [--threads 1]

RUN_DIR holds train.jsonl, valid.jsonl and test.jsonl, one JSON object per line:
{"text": "...", "label": "negative"} (labels are strings; other keys are ignored).

Model: scikit-learn CountVectorizer or TfidfVectorizer (lowercase, word unigrams + bigrams,
default token pattern, min_df=2; fitted on train only) + LogisticRegression (lbfgs; multinomial
softmax for > 2 classes, sklearn's default; max_iter 5000). The vectorizer ("counts" or "tfidf")
and C (0.1, 0.3, 1, 3, 10) are chosen together on valid.jsonl by `--select` (default accuracy;
ties go to the earlier grid entry); the chosen model (fitted on train only, not refitted on
train + valid) is then scored once on test.jsonl: accuracy and macro-F1
(f1_score(average="macro") over the labels that occur in test or in the predictions).

--train-limit N uses only the first N lines of train.jsonl (ferrite writes train.jsonl already
shuffled, so that is a random sample).

Prints a human line on stderr, and with --json one JSON line on stdout:
  {"model":"bow-logreg","accuracy":..,"macro_f1":..,"n_train":..,"seconds":..,"C":..,
   "features":"tfidf"|"counts", "n_valid":..,"n_test":..,"valid_accuracy":..,"valid_macro_f1":..,
   "n_features":..,"final_fit_seconds":..}
`seconds` is the whole fit: vectorizing plus every grid fit (10 fits); `final_fit_seconds` is
the chosen configuration's own vectorize + fit time.
"""
import argparse
import json
import os
import sys
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
MAX_ITER = 5000


def read_jsonl(path, limit=None):
    texts, labels = [], []
    with open(path, "rb") as f:
        for raw in f:
            if limit is not None and len(texts) >= limit:
                break
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            obj = json.loads(line)
            texts.append(obj["text"])
            labels.append(str(obj["label"]))
    return texts, labels


def vectorizer(kind):
    cls = TfidfVectorizer if kind == "tfidf" else CountVectorizer
    return cls(lowercase=True, ngram_range=(1, 2), min_df=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--train-limit", type=int, default=None, help="use only the first N lines of train.jsonl")
    ap.add_argument("--select", choices=["accuracy", "macro_f1"], default="accuracy",
                    help="validation metric that picks the vectorizer and C")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads for the fits (default 1: more was slower on the shared 2-core VM)")
    args = ap.parse_args()
    with threadpool_limits(args.threads):
        run(args)


def run(args):

    xtr, ytr = read_jsonl(os.path.join(args.run_dir, "train.jsonl"), args.train_limit)
    xva, yva = read_jsonl(os.path.join(args.run_dir, "valid.jsonl"))
    xte, yte = read_jsonl(os.path.join(args.run_dir, "test.jsonl"))
    if len(set(ytr)) < 2:
        raise SystemExit(f"need at least 2 labels in train, got {sorted(set(ytr))}")

    t0 = time.perf_counter()
    best = None
    for kind in ("counts", "tfidf"):
        tv = time.perf_counter()
        vec = vectorizer(kind)
        a_tr = vec.fit_transform(xtr)
        a_va = vec.transform(xva)
        vec_s = time.perf_counter() - tv
        for c in C_GRID:
            tf = time.perf_counter()
            clf = LogisticRegression(C=c, max_iter=MAX_ITER)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(a_tr, ytr)
            fit_s = time.perf_counter() - tf
            pred = clf.predict(a_va)
            acc = accuracy_score(yva, pred)
            f1 = f1_score(yva, pred, average="macro")
            score = acc if args.select == "accuracy" else f1
            print(f"# valid {kind:6s} C={c:<4g} acc {acc:.4f} macro-F1 {f1:.4f} ({fit_s:.1f} s, "
                  f"{clf.n_iter_.max()} iters)", file=sys.stderr)
            if best is None or score > best["score"]:
                best = {"score": score, "kind": kind, "C": c, "vec": vec, "clf": clf, "acc": acc, "f1": f1,
                        "final_s": vec_s + fit_s}
    seconds = time.perf_counter() - t0

    pred = best["clf"].predict(best["vec"].transform(xte))
    rec = {
        "model": "bow-logreg",
        "accuracy": round(float(accuracy_score(yte, pred)), 6),
        "macro_f1": round(float(f1_score(yte, pred, average="macro")), 6),
        "n_train": len(xtr),
        "seconds": round(seconds, 3),
        "C": best["C"],
        "features": best["kind"],
        "n_valid": len(xva),
        "n_test": len(xte),
        "valid_accuracy": round(float(best["acc"]), 6),
        "valid_macro_f1": round(float(best["f1"]), 6),
        "n_features": len(best["vec"].vocabulary_),
        "final_fit_seconds": round(best["final_s"], 3),
        "select": args.select,
    }
    print(f"bow-logreg ({rec['features']}, C={rec['C']:g}, {rec['n_features']} features): test accuracy "
          f"{rec['accuracy']:.4f}, macro-F1 {rec['macro_f1']:.4f} on {rec['n_test']} texts; "
          f"n_train {rec['n_train']}, fit {rec['seconds']:.1f} s", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
