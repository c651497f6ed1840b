#!/usr/bin/env python3
"""Regenerate data/diabetes.csv from the scikit-learn wheel (without installing it).

    python3 tools/fetch_diabetes.py            # writes data/diabetes.csv
    python3 tools/fetch_diabetes.py --check    # verify only; writes nothing

Downloads the pinned scikit-learn wheel with `pip download --no-deps` (pip of
the running interpreter; plain stdlib otherwise) into a temp dir and reads
`sklearn/datasets/data/diabetes_data_raw.csv.gz` (442 rows, 10 space-separated
columns: the raw, unscaled features) and `diabetes_target.csv.gz` (442 targets)
out of the wheel with zipfile. These are exactly what
`sklearn.datasets.load_diabetes(scaled=False)` returns.

Output: header `age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target`, '\n' line endings.
Feature values are copied verbatim as text (e.g. `32.1`, `101.0`, `4.8598`).
The target file stores integers as `1.510000000000000000e+02`; each is checked
to be an exact integer and written as `151` (lossless).

The result is checked against a pinned sha256 (and 442 x 10 + target).
"""

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile

SKLEARN_VERSION = "1.6.1"
# Any scikit-learn 1.6.1 wheel carries the same data files; pin one so that the
# download does not depend on the running Python version.
PIP_PLATFORM_ARGS = [
    "--only-binary=:all:",
    "--platform", "manylinux2014_x86_64",
    "--python-version", "3.11",
    "--implementation", "cp",
    "--abi", "cp311",
]
WHEEL_NAME = "scikit_learn-1.6.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "25fc636bdaf1cc2f4a124a116312d837148b5e10872147bdaf4887926b8c03d8"
DATA_MEMBER = "sklearn/datasets/data/diabetes_data_raw.csv.gz"
TARGET_MEMBER = "sklearn/datasets/data/diabetes_target.csv.gz"
CSV_SHA256 = "f5060bc32176d2f47695065d12478e468fac452a515ffc00fce404de6e94a4d2"

HEADER = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]
N_ROWS = 442
N_FEATURES = 10

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_PATH = os.path.join(REPO, "data", "diabetes.csv")


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def download_wheel(dest: str) -> bytes:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           f"scikit-learn=={SKLEARN_VERSION}", *PIP_PLATFORM_ARGS, "-d", dest]
    subprocess.run(cmd, check=True)
    path = os.path.join(dest, WHEEL_NAME)
    if not os.path.exists(path):
        sys.exit(f"expected {WHEEL_NAME} in {dest}, got {os.listdir(dest)}")
    data = open(path, "rb").read()
    got = sha256(data)
    if got != WHEEL_SHA256:
        sys.exit(f"wheel sha256 mismatch: {got} != {WHEEL_SHA256}")
    return data


def build_csv(wheel: bytes) -> bytes:
    z = zipfile.ZipFile(io.BytesIO(wheel))
    raw = gzip.decompress(z.read(DATA_MEMBER)).decode("ascii").splitlines()
    tgt = gzip.decompress(z.read(TARGET_MEMBER)).decode("ascii").split()
    if len(raw) != N_ROWS or len(tgt) != N_ROWS:
        sys.exit(f"expected {N_ROWS} rows, got {len(raw)} data / {len(tgt)} target")
    lines = [",".join(HEADER)]
    for i, (row, t) in enumerate(zip(raw, tgt)):
        fields = row.split()
        if len(fields) != N_FEATURES:
            sys.exit(f"row {i}: expected {N_FEATURES} fields, got {len(fields)}")
        for f in fields:
            float(f)  # must parse
        tv = float(t)
        if not tv.is_integer():
            sys.exit(f"row {i}: target {t!r} is not an integer")
        lines.append(",".join(fields + [str(int(tv))]))
    return ("\n".join(lines) + "\n").encode("ascii")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify only, write nothing")
    ap.add_argument("--out", default=OUT_PATH)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        csv = build_csv(download_wheel(tmp))
    got = sha256(csv)
    if got != CSV_SHA256:
        sys.exit(f"diabetes.csv sha256 mismatch: {got} != {CSV_SHA256}")
    if args.check:
        if os.path.exists(args.out) and open(args.out, "rb").read() == csv:
            print(f"ok: {args.out} matches (sha256 {got})")
        else:
            sys.exit(f"{args.out} missing or different from the regenerated file")
        return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(csv)
    print(f"wrote {args.out}: {N_ROWS} rows x {N_FEATURES + 1} columns, "
          f"{len(csv)} bytes, sha256 {got}")


if __name__ == "__main__":
    main()
