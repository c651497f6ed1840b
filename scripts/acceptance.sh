#!/usr/bin/env bash
# The slow acceptance suite: the long runs CI replaces with short versions (which still assert
# learning). Release build; about 15–25 minutes on 2 cores.
#
#   bash scripts/acceptance.sh
#
# - reversal: a Transformer learns to reverse sequences of 5–20 symbols to ≥ 99% exact match
#   (3000 steps; beam 1 = greedy, KV cache = re-running the prefix);
# - Fashion-MNIST ViT (examples/fashion-vit.toml) to ≥ 85% test accuracy;
# - full fine-tuning of all-MiniLM-L6-v2 on a sentiment set to ≥ 90% test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-assets.sh minilm fashion
cargo test --release --locked -p ferrite-train --features slow --test train -- slow_ --nocapture
