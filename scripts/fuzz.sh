#!/usr/bin/env bash
# Longer fuzz campaigns than CI's: each target of crates/ferrite/tests/fuzz runs for MINUTES
# minutes in a release build (CI runs a fixed number of cases per target in a debug build).
#
#   bash scripts/fuzz.sh MINUTES [TARGET ...]      (default: every target)
#   targets: safetensors hf_config hf_tokenizer run_tokenizer gguf ct2 wav idx csv train_config translate_config
#            (files, crates/ferrite/tests/fuzz) and v2_infer_json v2_infer_binary openai_json
#            openai_multipart (requests to a live `ferrite serve`, crates/ferrite-serve/tests/serve/fuzz.rs)
#
# Every case must load (then run) or fail with an error naming the file; a panic, a hang (a case
# over FERRITE_FUZZ_CASE_TIMEOUT seconds, default 20) or a broken rule is a finding, saved under
# target/fuzz-findings/<target>/. An abort (the process dies, e.g. on a failed allocation) leaves
# the input that caused it in target/fuzz-findings/<target>/current. Fixed findings belong in the
# stored corpus, tests/fuzz/corpus/<target>/, which every run (CI included) replays first.
# FERRITE_FUZZ_SEED=N starts from another random seed. Prints one line per target and a summary;
# exits non-zero if any target found something.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
minutes="${1:?usage: bash scripts/fuzz.sh MINUTES [TARGET ...]}"
shift
all=(safetensors hf_config hf_tokenizer run_tokenizer gguf ct2 wav idx csv train_config translate_config
     v2_infer_json v2_infer_binary openai_json openai_multipart)
# The test binary that holds a target, and the target's name inside it.
binary() {
  case "$1" in
    v2_infer_*|openai_*) echo "-p ferrite-serve --test serve -- --exact fuzz::$1" ;;
    *) echo "-p ferrite --test fuzz -- --exact $1" ;;
  esac
}
if [ $# -eq 0 ]; then targets=("${all[@]}"); else targets=("$@"); fi

export FERRITE_FUZZ_SECONDS
FERRITE_FUZZ_SECONDS="$(awk -v m="$minutes" 'BEGIN { print m * 60 }')"
export FERRITE_FUZZ_FINDINGS="$root/target/fuzz-findings"
mkdir -p "$FERRITE_FUZZ_FINDINGS"

cargo test --release --locked -p ferrite --test fuzz --no-run || exit 1
cargo test --release --locked -p ferrite-serve --test serve --no-run || exit 1
failed=0
started=$(date +%s)
for t in "${targets[@]}"; do
  log="$FERRITE_FUZZ_FINDINGS/$t.log"
  # shellcheck disable=SC2046 # the words of `binary` are separate arguments
  cargo test --release --locked -q $(binary "$t") --nocapture --test-threads 1 >"$log" 2>&1
  rc=$?
  line="$(grep -E '^fuzz ' "$log" | head -1)"
  dir="$FERRITE_FUZZ_FINDINGS/${t//_/-}"
  if [ -f "$dir/current" ]; then
    echo "fuzz $t: ABORTED (exit $rc); the input that killed it: $dir/current (log: $log)"
    failed=1
  elif [ $rc -ne 0 ]; then
    echo "${line:-fuzz $t: failed (exit $rc)}"
    grep -E '^fuzz [a-z-]+: (panic|hang|broken-rule)' "$log" | sed 's/^/    /'
    failed=1
  else
    echo "$line"
  fi
done
echo "fuzz: ${#targets[@]} targets, ${minutes} min each, $(( $(date +%s) - started )) s in all; findings in $FERRITE_FUZZ_FINDINGS"
exit $failed
