#!/usr/bin/env bash
# ferrite's DP-SGD vs Opacus 1.6.0 on Fashion-MNIST, side by side: the same network (Opacus's
# SampleConvNet), data pipeline, σ = 1.1, C = 1, q = 256/60000, 235 steps an epoch, SGD lr 0.1;
# plus the same model trained without privacy on both sides.
#
#   bash tools/setup_dp_venv.sh && bash scripts/fetch-assets.sh fashion
#   bash tools/compare_dp.sh                                    # 60 epochs, threads 1 and 2
#   EPOCHS=1 FERRITE_BIN=target/debug/ferrite bash tools/compare_dp.sh    # smoke
#
# Environment (defaults): FERRITE_BIN (target/release/ferrite), EPOCHS (60), THREADS ("1 2"),
# SEED (0), OUT (/tmp/compare_dp.jsonl; truncated at the start, one JSON line per run),
# NONPRIVATE (1; 0 skips the non-private runs), OPACUS_ARGS (extra flags for
# tools/train_dp_opacus.py, e.g. "--grad-sample-mode ghost"), PY (tools/.venv/bin/python),
# CONFIG (examples/fashion-dp.toml), DATA ($FERRITE_ASSETS/fashion-mnist, else
# .cache/assets/fashion-mnist).
#
# For each thread count it runs, one after another:
#   ferrite  private   CONFIG copy with `metrics = []` and data.path absolute
#   opacus   private   tools/train_dp_opacus.py (hooks, q matched to ferrite's)
#   ferrite  plain     the same copy without its [privacy] table (shuffled batches of 256)
#   pytorch  plain     tools/train_dp_opacus.py --no-privacy
# With no metrics and no validation split, ferrite evaluates nothing between epochs, so the
# metrics.jsonl `seconds` of an epoch is its training pass alone: ferrite's seconds_per_step =
# sum of those / steps. Its test accuracy (and ε) come from the same run's --json summary (the
# test set is scored once after training). Opacus's seconds_per_step is its own training-only
# timer (test evaluation excluded). peak_rss_mb: ferrite from `/usr/bin/time -v` (Maximum
# resident set size; a Python getrusage wrapper where /usr/bin/time is missing), Python runs
# from their own ru_maxrss. wall_seconds: the whole process (load, evaluation included).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
FERRITE_BIN="${FERRITE_BIN:-target/release/ferrite}"
EPOCHS="${EPOCHS:-60}"
THREADS="${THREADS:-1 2}"
SEED="${SEED:-0}"
OUT="${OUT:-/tmp/compare_dp.jsonl}"
NONPRIVATE="${NONPRIVATE:-1}"
OPACUS_ARGS="${OPACUS_ARGS:-}"
PY="${PY:-tools/.venv/bin/python}"
CONFIG="${CONFIG:-examples/fashion-dp.toml}"
DATA="${DATA:-${FERRITE_ASSETS:-$repo/.cache/assets}/fashion-mnist}"

[ -x "$FERRITE_BIN" ] || { echo "no ferrite binary at $FERRITE_BIN (cargo build --release, or set FERRITE_BIN)" >&2; exit 1; }
[ -x "$PY" ] || { echo "no $PY (bash tools/setup_dp_venv.sh)" >&2; exit 1; }
"$PY" -c 'import opacus' 2>/dev/null || { echo "opacus missing in $PY (bash tools/setup_dp_venv.sh)" >&2; exit 1; }
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $DATA (bash scripts/fetch-assets.sh fashion)" >&2; exit 1; }
DATA="$(cd "$DATA" && pwd)"

work="$(mktemp -d /tmp/compare_dp.XXXXXX)"
: > "$OUT"
echo "# compare_dp: epochs=$EPOCHS threads=($THREADS) seed=$SEED ferrite=$FERRITE_BIN; runs in $work, results -> $OUT" >&2

# The two config copies, by text edits, then checked with tomllib: equal to the original except
# training.metrics, data.path and (plain copy) the privacy table.
python3 - "$CONFIG" "$DATA" "$work/private.toml" "$work/plain.toml" <<'PY'
import re, sys, tomllib
src, data, priv_path, plain_path = sys.argv[1:]
text = open(src).read()
t, k = re.subn(r'(?m)^metrics\s*=.*$', 'metrics = []', text)
assert k == 1, f"{src}: expected one `metrics = ...` line, found {k}"
t, k = re.subn(r'(?m)^path\s*=.*$', lambda _: 'path = ' + '"' + data.replace('\\', '\\\\').replace('"', '\\"') + '"', t, count=1)
assert k == 1, f"{src}: no `path = ...` line"
plain, k = re.subn(r'(?ms)^\[privacy\][^\n]*\n.*?(?=^\[|\Z)', '', t)
assert k == 1, f"{src}: expected one [privacy] table, found {k}"
orig = tomllib.loads(text)
for path, body, private in ((priv_path, t, True), (plain_path, plain, False)):
    got = tomllib.loads(body)
    want = dict(orig, data=dict(orig["data"], path=data), training=dict(orig["training"], metrics=[]))
    if not private:
        want.pop("privacy")
    assert got == want, (path, got, want)
    open(path, "w").write(body)
PY

have_time=0
[ -x /usr/bin/time ] && have_time=1

# run_ferrite NAME TOML THREADS: one ferrite run; appends its record to $OUT.
run_ferrite() {
    local name="$1" toml="$2" t="$3"
    local dir="$work/$name-t$t" load start end
    load="$(cut -d' ' -f1 /proc/loadavg)"
    echo "# ferrite $name, $t thread(s) (load $load) ..." >&2
    start="$(date +%s.%N)"
    if [ "$have_time" = 1 ]; then
        /usr/bin/time -v -o "$dir.time" "$FERRITE_BIN" train "$toml" --out "$dir" --threads "$t" --json \
            --epochs "$EPOCHS" --seed "$SEED" > "$dir.json" 2> "$dir.err" || { tail -20 "$dir.err" >&2; exit 1; }
    else
        python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write("\tMaximum resident set size (kbytes): %d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$dir.time" "$FERRITE_BIN" train "$toml" --out "$dir" --threads "$t" --json \
            --epochs "$EPOCHS" --seed "$SEED" > "$dir.json" 2> "$dir.err" || { tail -20 "$dir.err" >&2; exit 1; }
    fi
    end="$(date +%s.%N)"
    python3 - "$dir" "$t" "$load" "$start" "$end" "$FERRITE_BIN" >> "$OUT" <<'PY'
import json, re, sys
d, threads, load, start, end, binary = sys.argv[1:]
s = json.load(open(d + ".json"))
rows = [json.loads(l) for l in open(d + "/metrics.jsonl") if l.strip()]
train = sum(r["seconds"] for r in rows)
steps = int(rows[-1]["step"])
assert not any(k == "accuracy" or k.startswith("val_") for r in rows for k in r), "ferrite evaluated between epochs"
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(d + ".time").read())
p = s.get("privacy") or {}
print(json.dumps({
    "framework": "ferrite", "private": bool(p), "binary": binary, "threads": int(threads),
    "epochs": s["epochs"], "steps": steps, "train_loss": s["train_loss"],
    "test_accuracy": s["test_accuracy"], "train_seconds": round(train, 3),
    "seconds_per_step": round(train / steps, 6), "fit_seconds": s["seconds"],
    "wall_seconds": round(float(end) - float(start), 3),
    "peak_rss_mb": round(int(rss.group(1)) / 1024, 1) if rss else None,
    "epsilon": p.get("epsilon"), "delta": p.get("delta"),
    "noise_multiplier": p.get("noise_multiplier"), "max_grad_norm": p.get("max_grad_norm"),
    "sample_rate": p.get("sample_rate"), "accountant": p.get("accountant"),
    "guaranteed": p.get("guaranteed"), "run_dir": s["run_dir"], "loadavg": float(load)}))
PY
}

# run_python NAME THREADS [ARGS...]: one tools/train_dp_opacus.py run; appends its summary.
run_python() {
    local name="$1" t="$2" load
    shift 2
    local log="$work/$name-t$t.jsonl"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    echo "# $name, $t thread(s) (load $load) ..." >&2
    # shellcheck disable=SC2086
    "$PY" tools/train_dp_opacus.py --data "$DATA" --json --threads "$t" --epochs "$EPOCHS" \
        --seed "$SEED" "$@" > "$log" 2> "$log.err" || { tail -20 "$log.err" >&2; exit 1; }
    python3 - "$log" "$load" >> "$OUT" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().splitlines()[-1])
s["loadavg"] = float(sys.argv[2])
print(json.dumps(s))
PY
}

for t in $THREADS; do
    run_ferrite private "$work/private.toml" "$t"
    # shellcheck disable=SC2086
    run_python opacus "$t" $OPACUS_ARGS
    if [ "$NONPRIVATE" = 1 ]; then
        run_ferrite plain "$work/plain.toml" "$t"
        run_python pytorch "$t" --no-privacy
    fi
done

python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = {(r["private"], r["threads"]): r for r in rows if r["framework"] == "ferrite"}
def f(v, fmt):
    return "—" if v is None else format(v, fmt)
print("| run | DP | threads | epochs | steps | test acc | ε (δ=1e-5) | ms/step | ×ferrite | train s | wall s | peak RSS MB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    b = base.get((r["private"], r["threads"]))
    ratio = r["seconds_per_step"] / b["seconds_per_step"] if b else None
    name = r["framework"] + (f" ({r['grad_sample_mode']})" if r.get("grad_sample_mode") else "")
    print(f"| {name} | {'yes' if r['private'] else 'no'} | {r['threads']} | {r['epochs']} | {r['steps']} | "
          f"{r['test_accuracy']:.4f} | {f(r.get('epsilon'), '.4f')} | {r['seconds_per_step'] * 1e3:.1f} | "
          f"{f(ratio, '.2f')} | {r['train_seconds']:.1f} | {f(r.get('wall_seconds'), '.1f')} | "
          f"{f(r.get('peak_rss_mb'), '.0f')} |")
print(f"\n×ferrite = seconds per step / ferrite's at the same thread count and privacy setting "
      f"(> 1: ferrite faster). Load averages at each start: "
      + ", ".join(f"{r['framework']}/{r['threads']}t {r['loadavg']:.2f}" for r in rows))
PY
