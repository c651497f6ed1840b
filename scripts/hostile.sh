#!/usr/bin/env bash
# Hostile-input check (issue 20): feeds the `ferrite` CLI corrupted model files, nonsense configs and
# data, out-of-range flags and unwritable outputs, and kills training with SIGKILL at random moments
# before resuming it. Every case runs the release binary under `timeout` with standard input closed
# and is classified by how it ended:
#
#   ok-accept  exit 0 (an input that may be accepted)
#   ok-error   exit 1 with an `error:` line (for a file case, the error names the file)
#   ok-usage   exit 2 with an `error:` line (clap refused the flag's value)
#   unnamed    a clean error that does not name the corrupted file        (listed; fatal with --strict)
#   ACCEPTED   exit 0 for an input that must be refused                   (listed; fatal with --strict)
#   DIVERGED   a killed and resumed run whose test metrics differ from the run never killed
#              (resuming is meant to continue exactly)                     (listed; fatal with --strict)
#   REFUSED    an error for an input that must work (a baseline)          (fatal)
#   PANIC      exit 101, or "panicked" / "internal error" on stderr         (fatal)
#   ABORT      killed by SIGABRT (exit 134: failed allocation, stack overflow)  (fatal)
#   HANG       still running after the timeout                             (fatal)
#   OTHER      any other ending (another signal, exit 1 with no `error:` line, …) (fatal)
#   UNLOADABLE a run directory that `ferrite eval` cannot load afterwards, or a resumed run whose
#              metrics.jsonl repeats or skips epochs                       (fatal)
#
#   bash scripts/hostile.sh [--quick] [--only REGEX] [--keep] [--strict]
#
#   --quick       fewer byte-flip seeds and truncation points, 2 kill -9 rounds instead of 5
#                 (same timeouts): about 3 minutes on 2 cores; the full run about 4–6 (a case
#                 that hangs adds up to HOSTILE_TIMEOUT).
#   --only REGEX  run only the cases whose name matches (e.g. --only '^gguf/', --only kill)
#   --keep        keep the work directory (the inputs of non-ok cases stay in WORK/c/<case>)
#   --strict      also fail on `unnamed`, `ACCEPTED` and `DIVERGED` cases
#
# Environment: FERRITE_BIN (use this binary instead of building `cargo build --release --locked -p
# ferrite-cli`), FERRITE_ASSETS (the asset cache, default <repo>/.cache/assets; filled by
# scripts/fetch-assets.sh minilm smollm2 whisper), HOSTILE_TIMEOUT (seconds per case, default 60),
# HOSTILE_MEM_MB (address-space limit per case, default 8192: a case that tries to allocate what a
# hostile header declares fails there instead of taking the machine down), HOSTILE_KILL_EPOCHS
# (epochs of the kill -9 runs, default 3000: a few seconds each).
#
# Cases: safetensors (MiniLM model.safetensors: truncations, byte flips, header length and JSON
# header edits), HF config.json (sizes 10^12 / 0 / -1 / wrong types) and tokenizer.json, GGUF
# (SmolLM2: truncations, flips, counts, metadata values such as context_length = 2^28, tensor
# infos), CTranslate2 Whisper (model.bin, config.json, tokenizer.json, num_heads), WAV headers,
# CSV cells / labels / headers, TOML values / types / unknown keys, translation configs and TSVs,
# flag values, models of the wrong kind, stdout on /dev/full, corrupted run directories,
# --resume with a changed config, and kill -9 during `ferrite train` then --resume (the run must
# load, its metrics.jsonl must hold epochs 1..N once each, and its test metrics must equal an
# uninterrupted run's).
#
# Output: one line per case (`class  name  first 100 characters of the error or output`), a summary
# of the counts, then the command line and stderr of every case that is not ok. Exit status 0 when
# nothing fatal happened, 1 otherwise, 2 when the script itself could not run.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quick=0 keep=0 strict=0 only=""
while (($#)); do
    case $1 in
        --quick) quick=1 ;;
        --keep) keep=1 ;;
        --strict) strict=1 ;;
        --only) only=${2:?--only needs a regex}; shift ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "hostile: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
T=${HOSTILE_TIMEOUT:-60}
MEM_MB=${HOSTILE_MEM_MB:-8192}
assets="${FERRITE_ASSETS:-$root/.cache/assets}"
die() { echo "hostile: $*" >&2; exit 2; }
started=$SECONDS

# --- the binary and the assets ---------------------------------------------------------------
if [[ -n ${FERRITE_BIN:-} ]]; then
    bin=$FERRITE_BIN
else
    echo "hostile: building the release binary (cargo build --release --locked -p ferrite-cli)" >&2
    (cd "$root" && cargo build --release --locked -p ferrite-cli) || die "the build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/ferrite"
fi
bin=$(cd "$root" && realpath "$bin") || die "no binary at $bin"
[[ -x $bin ]] || die "$bin is not an executable"
FERRITE_ASSETS=$assets bash "$root/scripts/fetch-assets.sh" minilm smollm2 whisper >&2 ||
    die "scripts/fetch-assets.sh minilm smollm2 whisper failed"
minilm=$assets/all-MiniLM-L6-v2
gguf=$assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
whisper=$assets/whisper-tiny-en
for f in "$minilm/model.safetensors" "$minilm/config.json" "$minilm/tokenizer.json" "$gguf" \
    "$whisper/model.bin" "$whisper/config.json" "$whisper/tokenizer.json"; do
    [[ -f $f ]] || die "missing asset $f"
done
for tool in timeout dd od truncate sed awk grep head stat realpath; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ferrite-hostile.XXXXXX") || die "mktemp failed"
bg_pid=""
cleanup() {
    [[ -n $bg_pid ]] && kill -9 "$bg_pid" 2>/dev/null
    if ((keep)); then echo "hostile: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work" || die "cannot enter $work"
export FERRITE_NUM_THREADS=${FERRITE_NUM_THREADS:-2}
unset RUST_BACKTRACE

# --- running and classifying one case --------------------------------------------------------
declare -A count=()
details=$work/details.txt
: >"$details"
order=(ok-accept ok-error ok-usage unnamed ACCEPTED DIVERGED REFUSED PANIC ABORT HANG OTHER UNLOADABLE)
fatal=" REFUSED PANIC ABORT HANG OTHER UNLOADABLE "
last_class="" last_rc=0 ncases=0

selected() { [[ -z $only || $1 =~ $only ]]; }

# record CLASS NAME MESSAGE [DETAIL...]: prints the case line, counts it, keeps details if not ok.
record() {
    local class=$1 name=$2 msg=$3
    shift 3
    msg=${msg//$'\r'/}
    printf '%-10s %-46s %s\n' "$class" "$name" "${msg:0:100}"
    count[$class]=$((${count[$class]:-0} + 1))
    ncases=$((ncases + 1))
    last_class=$class
    if [[ $class != ok-* ]]; then
        {
            echo "== $class  $name"
            printf '%s\n' "$@"
            echo
        } >>"$details"
    fi
}

# needles FILE: what an error must contain to "name" FILE: FILE is a '|'-separated list of paths
# or words, each matched by its basename (so a word like `test_split` is matched as is).
needles() {
    local IFS='|' n b out=()
    for n in $1; do
        [[ -n $n ]] || continue
        b=$(basename "$n")
        [[ " ${out[*]} " == *" $b "* ]] || out+=("$b")
    done
    IFS=' '; echo "${out[*]}"
}
names() { # MSG FILE: whether MSG names one of FILE's needles (an empty FILE: nothing to name)
    [[ -z $2 ]] && return 0
    local n
    for n in $(needles "$2"); do [[ $1 == *"$n"* ]] && return 0; done
    return 1
}

# run_case NAME EXPECT FILE CMD...
#   EXPECT: refuse (must be an error), accept (must succeed), load (must succeed: a run directory
#   that must load; a refusal is UNLOADABLE), any (either, but cleanly).
#   FILE: the file a refusal must name ('' for none; 'a|b' for either, see needles).
#   case_stdin / case_stdout (set for one call) redirect the command's standard input / output.
run_case() {
    local name=$1 expect=$2 file=$3
    shift 3
    selected "$name" || [[ $name == baseline/* ]] || return 0
    local err=$work/case.stderr
    local inp=${case_stdin:-/dev/null} to=${case_stdout:-$work/case.stdout}
    local t0=${EPOCHREALTIME/./}
    (
        ulimit -v $((MEM_MB * 1024)) 2>/dev/null
        exec timeout -k 5 "$T" "$@"
    ) <"$inp" >"$to" 2>"$err"
    local rc=$?
    local us=$((${EPOCHREALTIME/./} - t0))
    printf '%d %s\n' "$us" "$name" >>"$work/times.txt"
    last_rc=$rc
    local msg class
    msg=$(grep -m1 -a '^error:' "$err" | tr -d '\0')
    if ((rc == 101)) || grep -qa -e 'panicked' -e 'internal error' "$err"; then
        class=PANIC
    elif ((rc == 124)) || ((rc == 137 && us >= T * 1000000)); then
        class=HANG
    elif ((rc == 134)); then
        class=ABORT
    elif ((rc == 0)); then
        if [[ $expect == refuse ]]; then class=ACCEPTED; else class=ok-accept; fi
        [[ -f $to && $to != /dev/* ]] && msg=$(head -c 300 "$to" | head -n 1 | tr -d '\0')
        [[ -z $msg ]] && msg=$(grep -av '^\s*$' "$err" | tail -n 1)
    elif ((rc == 1 || rc == 2)) && [[ -n $msg ]]; then
        if [[ $expect == accept ]]; then
            class=REFUSED
        elif [[ $expect == load ]]; then
            class=UNLOADABLE
        elif ((rc == 2)); then
            class=ok-usage
        elif ! names "$msg" "$file"; then
            class=unnamed
        else
            class=ok-error
        fi
    else
        class=OTHER
        msg="exit $rc: $(grep -av '^\s*$' "$err" | tail -n 1)"
    fi
    local cmd
    cmd=$(printf '%q ' "$@")
    [[ -n ${case_stdin:-} ]] && cmd+=" < ${case_stdin}"
    [[ -n ${case_stdout:-} ]] && cmd+=" > ${case_stdout}"
    local note=${case_note:-}
    case_note=""
    local shown=""
    [[ $class == ACCEPTED && -f $to && $to != /dev/* ]] && shown=$(head -c 300 "$to" | tr -d '\0')
    record "$class" "$name" "$msg" \
        ${note:+"input: ${note//$work/\$WORK}"} \
        ${shown:+"stdout (first 300 bytes): ${shown//$work/\$WORK}"} \
        "expected: $expect${file:+ (naming one of: $(needles "$file"))}; exit status $rc after $((us / 1000)) ms" \
        "\$ ${cmd//$work/\$WORK}" \
        "stderr (last 12 lines):" "$(tail -n 12 "$err" | cut -c1-400 | sed "s|$work|\$WORK|g; s/^/    /")"
}

# --- byte-level helpers ----------------------------------------------------------------------
rng=1
seed_rng() { rng=$1; }
# rand: the next number of a fixed LCG in REPLY (0 .. 2^31-1); no subshell, so the state advances.
rand() { rng=$(((rng * 1103515245 + 12345) & 0x7fffffff)); REPLY=$rng; }
size_of() { stat -c %s "$1"; }
# le N WIDTH: N as WIDTH little-endian bytes in hex ("ff 00 …"); negative N is two's complement.
le() {
    local n=$1 w=$2 i b s=""
    for ((i = 0; i < w; i++)); do printf -v b '%02x ' $(((n >> (8 * i)) & 255)); s+=$b; done
    echo "$s"
}
# emit HEX…: writes the bytes to stdout.
emit() {
    local esc="" b
    for b in $*; do esc+="\\x$b"; done
    printf "$esc"
}
# poke FILE OFFSET HEX…: overwrites bytes in place.
poke() {
    local f=$1 off=$2
    shift 2
    emit "$@" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}
byte_at() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
# flips FILE COUNT LO HI SEED: xors COUNT bytes at seeded positions in [LO, HI) with nonzero masks.
flips() {
    local f=$1 n=$2 lo=$3 hi=$4 i off mask b
    seed_rng "$5"
    ((hi > lo)) || return 0
    for ((i = 0; i < n; i++)); do
        rand; off=$((lo + REPLY % (hi - lo)))
        rand; mask=$((1 + REPLY % 255))
        b=$(byte_at "$f" "$off")
        printf -v b '%02x' $((b ^ mask))
        poke "$f" "$off" "$b"
    done
}
# garbage N SEED: N deterministic pseudo-random bytes on stdout.
garbage() {
    LC_ALL=C awk -v n="$1" -v r="$2" 'BEGIN { for (i = 0; i < n; i++) {
        r = (r * 69069 + 1) % 4294967296; printf "%c", int(r / 16777216) } }'
}
# offset_of FILE STRING [LIMIT]: byte offset of the first occurrence (searching the first LIMIT bytes).
offset_of() { head -c "${3:-4000000}" "$1" | grep -obUaF -- "$2" | head -n 1 | cut -d: -f1; }

# --- preparing an input for a case -----------------------------------------------------------
# A case works on its own copy in $work/c/<name>: a file is copied; a directory's entries are
# symlinked (large model directories) or copied (run directories, which resuming writes into), and
# the target file is replaced by a real copy before the mutation runs (with F = that file and
# D = the copy's directory, the model path).
case_dir="" case_note=""
prepare() { # NAME SRC TARGET(relative, '' for a file SRC)
    case_dir=$work/c/${1//\//_}
    rm -rf "$case_dir"
    mkdir -p "$case_dir"
    if [[ -f $2 ]]; then
        cp "$2" "$case_dir/$(basename "$2")"
        D=$case_dir/$(basename "$2") F=$D
    else
        D=$case_dir/model
        if [[ $2 == "$work"/* ]]; then
            cp -a "$2" "$D"
        else
            mkdir -p "$D"
            local e
            for e in "$2"/* "$2"/.[!.]*; do [[ -e $e ]] && ln -s "$e" "$D/$(basename "$e")"; done
        fi
        F=$D/$3
        if [[ -L $F ]]; then rm "$F"; cp "$2/$3" "$F"; fi
    fi
}
finish() { # removes the case's copy unless it is kept for a failure
    if ((keep)) && [[ $last_class != ok-* ]]; then return; fi
    rm -rf "$case_dir"
}

# mut_case NAME EXPECT SRC TARGET MUTATION CMD… : CMD's words @M@ → the model path (D), @F@ → F.
# Set for one call: named=PATH (the file a refusal must name instead of F; '' for none),
# post_eval=1 (after a success, `ferrite eval` must load D).
mut_case() {
    local name=$1 expect=$2 src=$3 target=$4 mutation=$5
    shift 5
    selected "$name" || return 0
    prepare "$name" "$src" "$target"
    eval "$mutation" || { record OTHER "$name" "the script's mutation failed: $mutation"; return; }
    case_note="a copy of ${src/#$assets/\$FERRITE_ASSETS}${target:+/$target}, then: $mutation"
    local args=("${@//@M@/$D}")
    args=("${args[@]//@F@/$F}")
    run_case "$name" "$expect" "${named-$F|$D}" "${args[@]}"
    # A command that wrote into a run directory (a resume) must leave it loadable.
    if ((${post_eval:-0} && last_rc == 0)); then
        local keep_class=$last_class
        run_case "$name/eval" load "" "$bin" eval --model "$D" --json
        last_class=$keep_class
    fi
    finish
}

# The mutations every binary asset gets (truncations, byte flips, zeros, garbage), as
# "name|expect|mutation" lines; SIZE is the file's size and HDR the end of its header.
generic_mutations() { # SIZE HDR
    local size=$1 hdr=$2 cuts seeds s
    if ((quick)); then cuts="0 8 $((hdr / 2)) $((size / 2))"; else
        cuts="0 1 4 8 24 100 $((hdr / 7)) $((hdr / 3)) $((hdr / 2)) $((hdr * 5 / 6)) $((hdr - 1)) $hdr
              $((hdr + 1000)) $((size / 3)) $((size / 2)) $((size - 1))"; fi
    for s in $(printf '%s\n' $cuts | sort -nu); do
        ((s >= 0 && s < size)) && echo "truncate-$s|refuse|truncate -s $s \"\$F\""
    done
    if ((quick)); then seeds="1 2" dseeds="1"; else seeds=$(seq 1 20) dseeds="1 2 3"; fi
    for s in $seeds; do
        echo "flip-header-s$s|any|flips \"\$F\" 8 0 $hdr $s"
    done
    for s in $dseeds; do
        echo "flip-data-s$s|any|flips \"\$F\" 64 $hdr $size $((s + 100))"
    done
    echo "zeros|refuse|head -c $size /dev/zero > \"\$F\""
    echo "garbage-4k|refuse|garbage 4096 7 > \"\$F\""
    echo "append-garbage|any|garbage 1000 8 >> \"\$F\""
}

run_mutations() { # PREFIX SRC TARGET SIZE HDR CMD…
    local prefix=$1 src=$2 target=$3 size=$4 hdr=$5 line n e m
    shift 5
    while IFS='|' read -r n e m; do
        mut_case "$prefix/$n" "$e" "$src" "$target" "$m" "$@"
    done < <(generic_mutations "$size" "$hdr")
}

# --- inputs the cases share ------------------------------------------------------------------
mkdir -p data runs
text_cmd=(embed --model @M@ "hello world" --json)

# Speech: espeak-ng's voice if it is installed, else a tone; written as a canonical 44-byte WAV.
wav_header() { # RATE CHANNELS BITS DATALEN [FORMAT]
    local rate=$1 ch=$2 bits=$3 len=$4 fmt=${5:-1}
    printf 'RIFF'; emit $(le $((36 + len)) 4); printf 'WAVEfmt '
    emit $(le 16 4) $(le "$fmt" 2) $(le "$ch" 2) $(le "$rate" 4) $(le $((rate * ch * bits / 8)) 4) \
        $(le $((ch * bits / 8)) 2) $(le "$bits" 2)
    printf 'data'; emit $(le "$len" 4)
}
pcm_rate=16000
if command -v espeak-ng >/dev/null && espeak-ng -w data/say.wav "hello world" 2>/dev/null; then
    pcm_rate=$(od -An -tu4 -j24 -N4 data/say.wav | tr -d ' ')
    off=$(offset_of data/say.wav data 200)
    tail -c +$((off + 9)) data/say.wav >data/pcm.raw
else
    LC_ALL=C awk 'BEGIN { for (i = 0; i < 16000; i++) { v = int(6000 * sin(i * 2 * 3.14159265 * 440 / 16000));
        if (v < 0) v += 65536; printf "%c%c", v % 256, int(v / 256) } }' >data/pcm.raw
fi
pcm_len=$(size_of data/pcm.raw)
{ wav_header "$pcm_rate" 1 16 "$pcm_len"; cat data/pcm.raw; } >data/good.wav

# Tabular data: y = a + 2b (+ noise-free), 40 rows; labels for classification.
{
    echo "a,b,y"
    for i in $(seq 1 40); do echo "$i,$(((i * 7) % 11)),$((i + 2 * ((i * 7) % 11)))"; done
} >data/good.csv
{
    echo "a,b,y"
    for i in $(seq 1 40); do echo "$i,$(((i * 7) % 11)),$((i % 2))"; done
} >data/cls.csv
cat >data/base.toml <<'EOF'
task = "regression"
seed = 1
epochs = 2

[data]
path = "d.csv"
target = "y"
test_split = 0.25
validation_split = 0.2

[model]
layers = [
    { type = "dense", units = 4, activation = "relu" },
    { type = "dense", units = 1 },
]

[optimizer]
name = "adam"
lr = 0.01

[training]
batch_size = 8
loss = "mse"
EOF
sed -e 's/^task = .*/task = "classification"/' -e 's/{ type = "dense", units = 1 }/{ type = "dense", units = 2 }/' \
    -e 's/^loss = .*/loss = "sparse_categorical_crossentropy"\nmetrics = ["accuracy"]/' data/base.toml >data/cls.toml

# The kill -9 config: the seed network on the bundled diabetes data, without early stopping so
# that every round trains exactly the epochs it asks for.
sed -e "s#\"../data/diabetes.csv\"#\"$root/data/diabetes.csv\"#" -e '/^\[early_stopping\]/,$d' \
    "$root/examples/seed-mlp.toml" >data/kill.toml

# Translation pairs (numbers and colours, English → French) and a tiny translation config.
en=(one two three four five six seven eight nine ten red blue green cat dog house)
fr=(un deux trois quatre cinq six sept huit neuf dix rouge bleu vert chat chien maison)
for i in $(seq 0 299); do
    a=$((i % 16)) b=$(((i * 7 + 3) % 16)) c=$(((i * 5 + 1) % 16))
    printf '%s %s %s\t%s %s %s\n' "${en[a]}" "${en[b]}" "${en[c]}" "${fr[a]}" "${fr[b]}" "${fr[c]}"
done >data/pairs.tsv
head -n 240 data/pairs.tsv >data/tr.tsv
sed -n 241,270p data/pairs.tsv >data/va.tsv
sed -n 271,300p data/pairs.tsv >data/te.tsv
cat >data/translate.toml <<'EOF'
task = "translate"
seed = 1

[data]
train = "tr.tsv"
valid = "va.tsv"
test = "te.tsv"
max_tokens = 32

[tokenizer]
kind = "char"

[model]
d_model = 32
heads = 2
encoder_layers = 1
decoder_layers = 1
ffn = 64
dropout = 0.0
activation = "relu"
norm_first = true
positional = "sinusoidal"
max_positions = 64
share_embeddings = true
tie_output = true

[training]
max_steps = 20
batch_tokens = 512
valid_every = 10

[decode]
beam = 2
EOF

# Labelled texts for fine-tuning.
pos=(great wonderful lovely excellent happy fine superb nice)
neg=(awful terrible bad horrible sad poor dreadful nasty)
{
    echo "text,label"
    for i in $(seq 0 79); do
        if ((i % 2)); then echo "the day was ${pos[i % 8]} number $i,pos"; else echo "the day was ${neg[i % 8]} number $i,neg"; fi
    done
} >data/ft.csv

# Run directories the cases load (baselines: they must succeed).
echo "== baselines"
base() { run_case "$1" accept "" "${@:2}"; }
base baseline/train-mlp "$bin" train data/kill.toml --out runs/mlp --epochs 3 --json
base baseline/train-cls "$bin" train "$root/examples/digits-cnn.toml" --out runs/cnn --epochs 1 --json
base baseline/train-translate "$bin" train data/translate.toml --out runs/tr --json
base baseline/finetune "$bin" finetune --model "$minilm" --input data/ft.csv --epochs 1 --max-len 16 \
    --freeze-encoder --out runs/ft --json
base baseline/eval-mlp "$bin" eval --model runs/mlp --json
base baseline/predict-mlp "$bin" predict --model runs/mlp --input "$root/data/diabetes.csv" --json
base baseline/translate "$bin" translate --model runs/tr "one two" --json
base baseline/classify "$bin" classify --model runs/ft "what a great day" --json
base baseline/embed "$bin" embed --model "$minilm" "hello world" --json
base baseline/generate "$bin" generate --model "$gguf" "Hello" --max-tokens 4 --json
base baseline/transcribe "$bin" transcribe --model "$whisper" --input data/good.wav --json

# --- safetensors (all-MiniLM-L6-v2/model.safetensors) ----------------------------------------
echo "== safetensors"
st=$minilm/model.safetensors
st_size=$(size_of "$st")
st_hdr=$((8 + $(od -An -tu8 -N8 "$st" | tr -d ' ')))
run_mutations safetensors "$minilm" model.safetensors "$st_size" "$st_hdr" "$bin" "${text_cmd[@]}"
sm() { mut_case "safetensors/$1" "$2" "$minilm" model.safetensors "$3" "$bin" "${text_cmd[@]}"; }
sm header-len-huge refuse 'poke "$F" 0 ff ff ff ff ff ff ff 7f'
sm header-len-2e40 refuse 'poke "$F" 0 $(le $((1 << 40)) 8)'
sm header-len-0 refuse 'poke "$F" 0 $(le 0 8)'
sm header-len-plus1 refuse 'poke "$F" 0 $(le $((st_hdr - 7)) 8)'
sm header-len-file-size refuse 'poke "$F" 0 $(le $((st_size - 8)) 8)'
sm header-not-json refuse 'printf "xxxxxxxxxxxxxxxx" | dd of="$F" bs=1 seek=8 conv=notrunc status=none'
# Same-length edits of the JSON header: a dtype, a shape, data offsets past the end, reversed offsets.
st_edit() { # OLD NEW (same length): replaces the first occurrence inside the header
    local off
    off=$(offset_of "$F" "$1" "$st_hdr") && [[ -n $off ]] && printf '%s' "$2" | dd of="$F" bs=1 seek="$off" conv=notrunc status=none
}
sm dtype-F64 refuse 'st_edit "\"dtype\":\"F32\"" "\"dtype\":\"F64\""'
sm dtype-unknown refuse 'st_edit "\"dtype\":\"F32\"" "\"dtype\":\"Q9Z\""'
sm dtype-I64-as-BOOL any 'st_edit "\"dtype\":\"I64\"" "\"dtype\":\"U8\"  "'
sm shape-wrong refuse 'st_edit "[30522,384]" "[30522,385]"'
sm shape-huge refuse 'st_edit "[30522,384]" "[99999,999]"'
sm shape-zero refuse 'st_edit "[30522,384]" "[00000,384]"'
sm offsets-past-end refuse 'st_edit "[796672,47678464]" "[796672,97678464]"'
sm offsets-reversed refuse 'st_edit "[0,4096]" "[4096,0]"'
sm offsets-overlap any 'st_edit "[4096,5632]" "[4095,5631]"'
sm tensor-renamed refuse 'st_edit "embeddings.LayerNorm.bias" "embeddings.LayerNorm.BIAS"'
sm nan-weights any 'head -c 6000 /dev/zero | tr "\0" "\377" | dd of="$F" bs=1 seek=$((st_hdr + 4096)) conv=notrunc status=none'
sm missing refuse 'rm "$F"'
sm directory refuse 'rm "$F"; mkdir "$F"'

# --- Hugging Face config.json and tokenizer.json (all-MiniLM-L6-v2) --------------------------
echo "== hf-config"
cj() { # NAME EXPECT KEY VALUE: sets "KEY": VALUE in config.json
    mut_case "hf-config/$1" "$2" "$minilm" config.json \
        "sed -i -E 's/(\"$3\": )[^,}]*/\\1$(printf '%s' "$4" | sed 's/[\/&]/\\&/g')/' \"\$F\"" \
        "$bin" "${text_cmd[@]}"
}
for key in vocab_size hidden_size num_hidden_layers num_attention_heads intermediate_size max_position_embeddings; do
    cj "$key=1e12" refuse "$key" 1000000000000
    cj "$key=0" refuse "$key" 0
    cj "$key=-1" refuse "$key" -1
    cj "$key=string" refuse "$key" '"384"'
    ((quick)) && continue
    cj "$key=float" refuse "$key" 1.5
    cj "$key=null" refuse "$key" null
    cj "$key=2^64" refuse "$key" 18446744073709551616
done
cj hidden_size=383 refuse hidden_size 383
cj num_attention_heads=5 refuse num_attention_heads 5
cj num_hidden_layers=7 refuse num_hidden_layers 7
cj num_hidden_layers=5 any num_hidden_layers 5
cj max_position_embeddings=1 any max_position_embeddings 1
cj type_vocab_size=0 refuse type_vocab_size 0
cj layer_norm_eps=-1 refuse layer_norm_eps -1
cj layer_norm_eps=nan refuse layer_norm_eps NaN
cj hidden_act=bogus refuse hidden_act '"bogus"'
cj model_type=gpt2 refuse model_type '"gpt2"'
hc() { mut_case "hf-config/$1" "$2" "$minilm" config.json "$3" "$bin" "${text_cmd[@]}"; }
hc truncated-half refuse 'truncate -s 300 "$F"'
hc empty refuse ': > "$F"'
hc garbage refuse 'garbage 600 3 > "$F"'
hc json-array refuse 'echo "[]" > "$F"'
hc json-null refuse 'echo null > "$F"'
hc missing refuse 'rm "$F"'
hc nested-deep refuse 'head -c 100000 /dev/zero | tr "\0" "[" > "$F"'

echo "== hf-tokenizer"
tk_size=$(size_of "$minilm/tokenizer.json")
tj() { mut_case "hf-tokenizer/$1" "$2" "$minilm" tokenizer.json "$3" "$bin" "${text_cmd[@]}"; }
tj truncate-0 refuse 'truncate -s 0 "$F"'
tj truncate-100 refuse 'truncate -s 100 "$F"'
tj truncate-half refuse "truncate -s $((tk_size / 2)) \"\$F\""
tj truncate-minus1 refuse "truncate -s $((tk_size - 1)) \"\$F\""
tj garbage refuse 'garbage 4096 5 > "$F"'
tj json-object refuse 'echo "{}" > "$F"'
tj missing refuse 'rm "$F"'
tj invalid-utf8 refuse 'poke "$F" 2000 ff fe fd'
tj vocab-emptied any 'sed -i -E "s/\"\\[UNK\\]\": *100/\"[UNKX]\": 100/" "$F"'
tj unk-id-huge any 'sed -i -E "s/\"\\[UNK\\]\": *100/\"[UNK]\": 999999999/" "$F"'
tj max-length-0 any 'sed -i -E "s/\"max_length\": *128/\"max_length\": 0/" "$F"'
for s in 1 2 3 4 5 6; do ((quick && s > 1)) && break
    tj "flip-s$s" any "flips \"\$F\" 16 0 $tk_size $((s + 40))"
done

# --- GGUF (SmolLM2-135M-Instruct) ------------------------------------------------------------
echo "== gguf"
gg_size=$(size_of "$gguf")
gen_cmd=(generate --model @M@ "Hello" --max-tokens 4 --json)
gg_tinfo=$(offset_of "$gguf" token_embd.weight)
# The end of the tensor infos (about where the tensor data starts): past the last tensor name.
gg_data=$(($(head -c $((gg_tinfo + 1000000)) "$gguf" | grep -obUa '\.weight' | tail -n 1 | cut -d: -f1) + 64))
run_mutations gguf "$gguf" "" "$gg_size" "$gg_data" "$bin" "${gen_cmd[@]}"
# gkv KEY: the offset of a metadata key's value (its u64 length must match: "head_count" is a
# prefix of "head_count_kv").
gkv() {
    local o
    for o in $(head -c 2000000 "$gguf" | grep -obUaF -- "$1" | cut -d: -f1); do
        if [[ $(od -An -tu8 -j $((o - 8)) -N8 "$gguf" | tr -d ' ') == "${#1}" ]]; then
            echo $((o + ${#1} + 4)); return
        fi
    done
}
gm() { mut_case "gguf/$1" "$2" "$gguf" "" "$3" "$bin" "${gen_cmd[@]}"; }
gu32() { # NAME EXPECT KEY VALUE (u32 value)
    local o; o=$(gkv "$3")
    [[ -n $o ]] && gm "$1" "$2" "poke \"\$F\" $o $(le "$4" 4)"
}
gm magic refuse 'printf GGUX | dd of="$F" bs=1 conv=notrunc status=none'
gm version-1 refuse 'poke "$F" 4 $(le 1 4)'
gm version-huge refuse 'poke "$F" 4 ff ff ff ff'
gm tensor-count-huge refuse 'poke "$F" 8 ff ff ff ff ff ff ff 7f'
gm tensor-count-0 refuse 'poke "$F" 8 $(le 0 8)'
gm tensor-count-plus1 refuse 'poke "$F" 8 $(le $(( $(od -An -tu8 -j8 -N8 "$F") + 1 )) 8)'
gm kv-count-huge refuse 'poke "$F" 16 ff ff ff ff ff ff ff 7f'
gm kv-count-2e32 refuse 'poke "$F" 16 $(le $((1 << 32)) 8)'
gm kv-count-0 refuse 'poke "$F" 16 $(le 0 8)'
gm key-len-huge refuse 'poke "$F" 24 ff ff ff ff ff ff ff 3f'
gm key-len-0 refuse 'poke "$F" 24 $(le 0 8)'
gm value-type-99 refuse 'poke "$F" $((24 + 8 + 20)) $(le 99 4)'
gu32 context_length=2^28 any llama.context_length $((1 << 28))
gu32 context_length=2^32-1 any llama.context_length 4294967295
gu32 context_length=0 refuse llama.context_length 0
named="" gu32 context_length=2 any llama.context_length 2
gu32 block_count=0 any llama.block_count 0
gu32 block_count=2^31 refuse llama.block_count $((1 << 31))
gu32 block_count=31 refuse llama.block_count 31
gu32 embedding_length=0 refuse llama.embedding_length 0
gu32 embedding_length=2^31 refuse llama.embedding_length $((1 << 31))
gu32 embedding_length=575 refuse llama.embedding_length 575
gu32 feed_forward_length=0 refuse llama.feed_forward_length 0
gu32 feed_forward_length=2^31 refuse llama.feed_forward_length $((1 << 31))
gu32 head_count=0 refuse llama.attention.head_count 0
gu32 head_count=7 refuse llama.attention.head_count 7
gu32 head_count=2^31 refuse llama.attention.head_count $((1 << 31))
gu32 head_count_kv=0 refuse llama.attention.head_count_kv 0
gu32 head_count_kv=5 refuse llama.attention.head_count_kv 5
gu32 head_count_kv=2^31 refuse llama.attention.head_count_kv $((1 << 31))
gu32 rope.dimension_count=0 any llama.rope.dimension_count 0
gu32 rope.dimension_count=2^31 refuse llama.rope.dimension_count $((1 << 31))
gu32 vocab_size=0 any llama.vocab_size 0
gu32 vocab_size=2^31 any llama.vocab_size $((1 << 31))
gu32 eos_token_id=2^31 any tokenizer.ggml.eos_token_id $((1 << 31))
gu32 bos_token_id=2^31 any tokenizer.ggml.bos_token_id $((1 << 31))
tok=$(offset_of "$gguf" tokenizer.ggml.tokens)
gm tokens-count-huge refuse "poke \"\$F\" $((tok + 28)) ff ff ff ff ff ff ff 0f"
gm tokens-count-2e32 refuse "poke \"\$F\" $((tok + 28)) $(le $((1 << 32)) 8)"
gm tokens-count-1 refuse "poke \"\$F\" $((tok + 28)) $(le 1 8)"
gm tokens-elem-type-u8 refuse "poke \"\$F\" $((tok + 24)) $(le 0 4)"
gm token-len-huge refuse "poke \"\$F\" $((tok + 36)) ff ff ff ff ff ff ff 0f"
gm token-invalid-utf8 any "poke \"\$F\" $((tok + 44)) ff fe"
# The first tensor info: name, u32 n_dims, u64 dims[n], u32 type, u64 offset.
ti=$((gg_tinfo + 17))
gm tensor-ndims-1000 refuse "poke \"\$F\" $ti $(le 1000 4)"
gm tensor-ndims-0 refuse "poke \"\$F\" $ti $(le 0 4)"
gm tensor-dim-huge refuse "poke \"\$F\" $((ti + 4)) $(le $((1 << 40)) 8)"
gm tensor-dim-0 refuse "poke \"\$F\" $((ti + 4)) $(le 0 8)"
gm tensor-dims-overflow refuse "poke \"\$F\" $((ti + 4)) ff ff ff ff ff ff ff 7f; poke \"\$F\" $((ti + 12)) ff ff ff ff ff ff ff 7f"
gm tensor-type-99 refuse "poke \"\$F\" $((ti + 20)) $(le 99 4)"
gm tensor-type-f32 refuse "poke \"\$F\" $((ti + 20)) $(le 0 4)"
gm tensor-offset-huge refuse "poke \"\$F\" $((ti + 24)) ff ff ff ff ff ff ff 7f"
gm tensor-offset-end refuse "poke \"\$F\" $((ti + 24)) $(le $((gg_size - 64)) 8)"
gm tensor-offset-misaligned refuse "poke \"\$F\" $((ti + 24)) $(le 1 8)"
gm tensor-renamed refuse "printf X | dd of=\"\$F\" bs=1 seek=$gg_tinfo conv=notrunc status=none"
chat_tpl=$(offset_of "$gguf" tokenizer.chat_template)
[[ -n $chat_tpl ]] && gm chat-template-garbage any "printf '{%% for %%}{{' | dd of=\"\$F\" bs=1 seek=$((chat_tpl + 23 + 4 + 8)) conv=notrunc status=none"
for s in 1 2 3 4 5 6 7 8; do ((quick && s > 2)) && break
    gm "flip-metadata-s$s" any "flips \"\$F\" 16 24 $gg_tinfo $((s + 60))"
    gm "flip-tensor-info-s$s" any "flips \"\$F\" 4 $gg_tinfo $((gg_tinfo + 60000)) $((s + 70))"
done

# --- CTranslate2 Whisper (whisper-tiny-en) ---------------------------------------------------
echo "== ct2"
ct_size=$(size_of "$whisper/model.bin")
tr_cmd=(transcribe --model @M@ --input "$work/data/good.wav" --json)
run_mutations ct2 "$whisper" model.bin "$ct_size" 200 "$bin" "${tr_cmd[@]}"
cm() { mut_case "ct2/$1" "$2" "$whisper" model.bin "$3" "$bin" "${tr_cmd[@]}"; }
ct_var() { # NAME → offset of the byte after the variable name's NUL (its rank)
    local o; o=$(grep -obUaF -- "$1" "$whisper/model.bin" | head -n 1 | cut -d: -f1)
    echo $((o + ${#1} + 1))
}
enh=$(ct_var encoder/num_heads) dnh=$(ct_var decoder/num_heads)
cm version-99 refuse 'poke "$F" 0 $(le 99 4)'
cm spec-len-huge refuse 'poke "$F" 4 ff ff'
cm spec-not-whisper refuse 'printf X | dd of="$F" bs=1 seek=6 conv=notrunc status=none'
cm variable-count-huge refuse 'poke "$F" $((6 + 12 + 4)) ff ff ff ff'
cm variable-count-0 refuse 'poke "$F" $((6 + 12 + 4)) $(le 0 4)'
cm first-rank-255 refuse 'poke "$F" $((6 + 12 + 8 + 2 + 19)) ff'
cm encoder-num_heads=0 refuse "poke \"\$F\" $((enh + 6)) 00 00"
cm encoder-num_heads=-1 refuse "poke \"\$F\" $((enh + 6)) ff ff"
cm encoder-num_heads=5 refuse "poke \"\$F\" $((enh + 6)) 05 00"
cm encoder-num_heads=384 any "poke \"\$F\" $((enh + 6)) 80 01"
cm encoder-num_heads-dtype-f32 refuse "poke \"\$F\" $((enh + 1)) 00"
cm encoder-num_heads-len-huge refuse "poke \"\$F\" $((enh + 2)) ff ff ff 7f"
cm decoder-num_heads=0 any "poke \"\$F\" $((dnh + 6)) 00 00"
cm encoder-num_heads-renamed refuse "printf X | dd of=\"\$F\" bs=1 seek=$((enh - 2)) conv=notrunc status=none"
cx() { mut_case "ct2/$1" "$2" "$whisper" "$3" "$4" "$bin" "${tr_cmd[@]}"; }
cx config-truncated any config.json 'truncate -s 100 "$F"'
cx config-garbage any config.json 'garbage 500 11 > "$F"'
cx config-missing any config.json 'rm "$F"'
cx config-num_heads=0 any config.json 'sed -i "1a \"num_heads\": 0," "$F"'
cx config-suppress-huge-ids any config.json 'sed -i "s/\"suppress_ids\": \\[/\"suppress_ids\": [999999999, 1000000000000, -1, /" "$F"'
cx config-suppress-string any config.json 'sed -i "s/\"suppress_ids\": \\[/\"suppress_ids\": \"x\", \"old\": [/" "$F"'
cx tokenizer-truncated refuse tokenizer.json 'truncate -s 1000 "$F"'
cx tokenizer-garbage refuse tokenizer.json 'garbage 2000 12 > "$F"'
cx tokenizer-missing refuse tokenizer.json 'rm "$F"'
cx tokenizer-no-sot refuse tokenizer.json 'sed -i "s/<|startoftranscript|>/<|startoftranscripX|>/g" "$F"'

# --- WAV -------------------------------------------------------------------------------------
echo "== wav"
wav_case() { # NAME EXPECT BUILD (writes $W)
    local name=wav/$1
    selected "$name" || return 0
    case_dir=$work/c/${name//\//_}
    mkdir -p "$case_dir"
    W=$case_dir/x.wav
    eval "$3" || { record OTHER "$name" "the script's WAV builder failed"; return; }
    case_note="x.wav built by: $3 (pcm = 16-bit mono PCM at $pcm_rate Hz, $pcm_len bytes)"
    run_case "$name" "$2" "$W" "$bin" transcribe --model "$whisper" --input "$W" --json
    finish
}
pcm() { cat "$work/data/pcm.raw"; }
wav_case good accept '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"'
wav_case rate-1Hz refuse '{ wav_header 1 1 16 $pcm_len; pcm; } > "$W"'
wav_case rate-0 refuse '{ wav_header 0 1 16 $pcm_len; pcm; } > "$W"'
wav_case rate-999Hz refuse '{ wav_header 999 1 16 $pcm_len; pcm; } > "$W"'
wav_case rate-4e9 refuse '{ wav_header 4000000000 1 16 $pcm_len; pcm; } > "$W"'
wav_case rate-8000 accept '{ wav_header 8000 1 16 $pcm_len; pcm; } > "$W"'
wav_case rate-384000 any '{ wav_header 384000 1 16 $pcm_len; pcm; } > "$W"'
wav_case truncate-0 refuse ': > "$W"'
wav_case truncate-10 refuse '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"; truncate -s 10 "$W"'
wav_case truncate-30 refuse '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"; truncate -s 30 "$W"'
wav_case truncate-header-only any '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"; truncate -s 44 "$W"'
wav_case truncate-mid-data any '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"; truncate -s $((44 + pcm_len / 2 + 1)) "$W"'
wav_case zero-length-data refuse 'wav_header $pcm_rate 1 16 0 > "$W"'
wav_case one-sample any '{ wav_header $pcm_rate 1 16 2; head -c 2 "$work/data/pcm.raw"; } > "$W"'
wav_case huge-data-size any '{ wav_header $pcm_rate 1 16 4294967295; pcm; } > "$W"'
wav_case huge-riff-size any '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"; poke "$W" 4 ff ff ff ff'
wav_case fmt-size-huge refuse '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"; poke "$W" 16 ff ff ff 7f'
wav_case fmt-size-2 refuse '{ wav_header $pcm_rate 1 16 $pcm_len; pcm; } > "$W"; poke "$W" 16 02 00 00 00'
wav_case no-fmt refuse '{ printf RIFF; emit $(le $((4 + 8 + pcm_len)) 4); printf WAVEdata; emit $(le $pcm_len 4); pcm; } > "$W"'
wav_case no-data refuse 'wav_header $pcm_rate 1 16 $pcm_len > "$W"; truncate -s 36 "$W"'
wav_case channels-0 refuse '{ wav_header $pcm_rate 0 16 $pcm_len; pcm; } > "$W"'
wav_case channels-65535 any '{ wav_header $pcm_rate 65535 16 $pcm_len; pcm; } > "$W"'
wav_case channels-2 any '{ wav_header $pcm_rate 2 16 $pcm_len; pcm; } > "$W"'
wav_case bits-8 refuse '{ wav_header $pcm_rate 1 8 $pcm_len; pcm; } > "$W"'
wav_case bits-24 refuse '{ wav_header $pcm_rate 1 24 $pcm_len; pcm; } > "$W"'
wav_case bits-0 refuse '{ wav_header $pcm_rate 1 0 $pcm_len; pcm; } > "$W"'
wav_case format-float refuse '{ wav_header $pcm_rate 1 16 $pcm_len 3; pcm; } > "$W"'
wav_case format-alaw refuse '{ wav_header $pcm_rate 1 16 $pcm_len 6; pcm; } > "$W"'
wav_extensible() { # SUBFORMAT VALIDBITS FMTLEN
    printf RIFF; emit $(le $((4 + 8 + $3 + 8 + pcm_len)) 4); printf 'WAVEfmt '
    emit $(le "$3" 4) fe ff $(le 1 2) $(le $pcm_rate 4) $(le $((pcm_rate * 2)) 4) $(le 2 2) $(le 16 2)
    if (($3 >= 40)); then
        emit $(le 22 2) $(le "$2" 2) $(le 4 4) $(le "$1" 2) 00 00 00 00 10 00 80 00 00 aa 00 38 9b 71
        head -c $(($3 - 40)) /dev/zero
    else
        head -c $(($3 - 16)) /dev/zero
    fi
    printf data; emit $(le $pcm_len 4); pcm
}
wav_case extensible-pcm accept 'wav_extensible 1 16 40 > "$W"'
wav_case extensible-validbits-0 any 'wav_extensible 1 0 40 > "$W"'
wav_case extensible-validbits-12 refuse 'wav_extensible 1 12 40 > "$W"'
wav_case extensible-float refuse 'wav_extensible 3 32 40 > "$W"'
wav_case extensible-short-fmt refuse 'wav_extensible 1 16 18 > "$W"'
wav_case extensible-long-fmt any 'wav_extensible 1 16 48 > "$W"'
wav_case odd-chunk-before-data any '{ wav_header $pcm_rate 1 16 $pcm_len > "$W.h"; head -c 36 "$W.h"; printf LIST; emit $(le 3 4); printf "abc"; emit 00; printf data; emit $(le $pcm_len 4); pcm; } > "$W"'
wav_case chunk-len-huge-before-data refuse '{ wav_header $pcm_rate 1 16 $pcm_len > "$W.h"; head -c 36 "$W.h"; printf LIST; emit ff ff ff ff; printf data; emit $(le $pcm_len 4); pcm; } > "$W"'
wav_case too-long-3h refuse '{ wav_header 1000 1 16 21600000; head -c 21600000 /dev/zero; } > "$W"'
wav_case garbage refuse 'garbage 4096 13 > "$W"'
wav_case directory refuse 'mkdir "$W"'
wav_case missing refuse 'true'
wav_case mp3-named-wav refuse 'printf "ID3\3\0\0\0\0\0\0" > "$W"; garbage 2000 14 >> "$W"'
for s in 1 2 3 4 5 6; do ((quick && s > 1)) && break
    wav_case "flip-header-s$s" any "{ wav_header \$pcm_rate 1 16 \$pcm_len; pcm; } > \"\$W\"; flips \"\$W\" 3 0 44 $((s + 80))"
done

# --- CSV data and TOML configs (ferrite train) -----------------------------------------------
echo "== csv / toml"
# train_case NAME EXPECT NAMED SED [CSV] [BASE] [EXTRA ARGS…]: the config is BASE (default
# data/base.toml) with SED applied, its data CSV (default data/good.csv; "@CMD" = CMD's output).
# NAMED: what a refusal must name, '|'-separated: toml (the config), csv (the data), a key, a path.
# An accepted run must load (`ferrite eval`).
train_case() {
    local name=$1 expect=$2 named=$3 sedx=$4 csv=${5:-$work/data/good.csv} basecfg=${6:-$work/data/base.toml}
    shift 6 2>/dev/null || shift $#
    selected "$name" || return 0
    case_dir=$work/c/${name//\//_}
    rm -rf "$case_dir"; mkdir -p "$case_dir"
    if [[ $csv == @* ]]; then eval "${csv:1}" >"$case_dir/d.csv"; else cp "$csv" "$case_dir/d.csv"; fi
    sed -e "$sedx" "$basecfg" >"$case_dir/c.toml"
    case_note="c.toml = $(basename "$basecfg") edited by sed '$sedx'; d.csv = ${csv/#@/output of: }"
    local f=${named//toml/$case_dir/c.toml}
    f=${f//csv/$case_dir/d.csv}
    run_case "$name" "$expect" "$f" "$bin" train "$case_dir/c.toml" --out "$case_dir/run" --json "$@"
    if ((last_rc == 0)); then
        local keep_class=$last_class
        run_case "$name/eval" load "" "$bin" eval --model "$case_dir/run" --json
        last_class=$keep_class
    fi
    finish
}
nop='s/^$//'
tcsv() { train_case "csv/$1" "$2" "${tn:-csv}" "$nop" "@$3" "" ; }
good_rows() { tail -n +2 "$work/data/good.csv"; }
tcsv nan-cell refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*/nan/"'
tcsv NaN-cell refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*/NaN/"'
tcsv inf-cell refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*/inf/"'
tcsv minus-inf-cell refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*/-inf/"'
tcsv 1e400-cell refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*/1e400/"'
tcsv empty-cell refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*//"'
tcsv text-cell refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*/oops/"'
tcsv nan-target refuse 'echo a,b,y; good_rows | sed "5s/[^,]*$/nan/"'
tcsv inf-target refuse 'echo a,b,y; good_rows | sed "5s/[^,]*$/inf/"'
tcsv huge-values any 'echo a,b,y; good_rows | sed "s/^[^,]*/1e300/"'
tcsv dup-header refuse 'echo a,a,y; good_rows'
tcsv header-only refuse 'echo a,b,y'
tn='csv|test_split|validation_split' tcsv one-row refuse 'echo a,b,y; good_rows | head -n 1'
tn='csv|test_split|validation_split' tcsv two-rows refuse 'echo a,b,y; good_rows | head -n 2'
tcsv four-rows any 'echo a,b,y; good_rows | head -n 4'
tcsv empty-file refuse 'true'
tcsv no-newline refuse 'printf a,b,y'
tcsv short-row refuse 'echo a,b,y; good_rows | sed "5s/,[^,]*$//"'
tcsv long-row refuse 'echo a,b,y; good_rows | sed "5s/$/,9/"'
tcsv no-target-column refuse 'echo a,b,z; good_rows'
tcsv bom any 'printf "\xef\xbb\xbf"; echo a,b,y; good_rows'
tcsv crlf any 'echo a,b,y; good_rows | sed "s/$/\r/"'
tcsv invalid-utf8 refuse 'echo a,b,y; good_rows | sed "5s/^[^,]*/\xff\xfe/"'
tcsv nul-bytes refuse 'echo a,b,y; good_rows | head -n 4; printf "1\0,2,3\n"; good_rows | tail -n 30'
tcsv constant-feature any 'echo a,b,y; good_rows | sed "s/^[^,]*/7/"'
tcsv constant-target any 'echo a,b,y; good_rows | sed "s/[^,]*$/5/"'
tcsv quoted-newline any 'echo a,b,y; good_rows | head -n 20; printf "\"1\n\",2,3\n"; good_rows | tail -n 20'
tcsv megabyte-cell refuse 'echo a,b,y; printf "%s,1,1\n" "$(head -c 1000000 /dev/zero | tr "\0" 7)"; good_rows'
tcsv only-target-column refuse 'echo y; good_rows | cut -d, -f3'
tdata() { train_case "toml/$1" "$2" "$3" "$4" "" "" "${@:5}"; }
tdata features-target refuse csv '/^target = /a features = ["a", "y"]'
tdata features-twice refuse "toml|features" '/^target = /a features = ["a", "a"]'
tdata features-empty-list any toml '/^target = /a features = []'
tdata features-missing refuse csv '/^target = /a features = ["a", "q"]'
tdata missing-drop accept toml '/^target = /a missing = "drop"'
train_case csv/nan-with-missing-drop accept toml '/^target = /a missing = "drop"' \
    '@echo a,b,y; good_rows | sed -e "5s/^[^,]*/nan/" -e "9s/,[^,]*,/,,/"'
train_case csv/all-nan-with-missing-drop refuse csv '/^target = /a missing = "drop"' \
    '@echo a,b,y; good_rows | sed "s/^[^,]*/nan/"'
tcls() { train_case "csv/$1" "$2" csv "$nop" "@echo a,b,y; tail -n +2 $work/data/cls.csv | sed \"5s/[^,]*\$/$3/\"" "$work/data/cls.toml"; }
tcls label-1.5 refuse 1.5
tcls label-nan refuse nan
tcls label-minus-1 refuse -1
tcls label-2-of-2 refuse 2
tcls label-1e30 refuse 1e30
tcls label-text refuse cat
tcls label-empty refuse ''
tcls label-1.0 any 1.0
train_case csv/one-class any csv "$nop" '@echo a,b,y; good_rows | sed "s/[^,]*$/0/"' "$work/data/cls.toml"
train_case toml/class_weight-short refuse "toml|class_weight" '/^target = /a class_weight = [1.0]' "$work/data/cls.csv" "$work/data/cls.toml"
train_case toml/class_weight-negative refuse toml '/^target = /a class_weight = [1.0, -1.0]' "$work/data/cls.csv" "$work/data/cls.toml"
train_case toml/class_weight-nan refuse toml '/^target = /a class_weight = [1.0, nan]' "$work/data/cls.csv" "$work/data/cls.toml"
train_case toml/cls-units-1 refuse toml 's/units = 2 }/units = 1 }/' "$work/data/cls.csv" "$work/data/cls.toml"
train_case toml/cls-loss-mse any toml 's/^loss = .*/loss = "mse"/' "$work/data/cls.csv" "$work/data/cls.toml"
tt() { tdata "$1" "$2" toml "$3" "${@:4}"; }
tt test_split=0.0 refuse 's/^test_split = .*/test_split = 0.0/'
tt test_split=1.0 refuse 's/^test_split = .*/test_split = 1.0/'
tt test_split=-0.1 refuse 's/^test_split = .*/test_split = -0.1/'
tt test_split=nan refuse 's/^test_split = .*/test_split = nan/'
tdata test_split=0.01 refuse 'toml|test_split|validation_split' 's/^test_split = .*/test_split = 0.01/'
tt test_split=string refuse 's/^test_split = .*/test_split = "0.2"/'
tdata validation_split=0.01 refuse 'toml|test_split|validation_split' 's/^validation_split = .*/validation_split = 0.01/'
tt validation_split=1.0 refuse 's/^validation_split = .*/validation_split = 1.0/'
tt validation_split=-1 refuse 's/^validation_split = .*/validation_split = -1.0/'
tt validation_split=0 any 's/^validation_split = .*/validation_split = 0.0/'
tdata splits-sum-1 refuse 'toml|test_split|validation_split' 's/^validation_split = .*/validation_split = 0.999/'
tt units=0 refuse 's/units = 4,/units = 0,/'
tt units=-1 refuse 's/units = 4,/units = -1,/'
tt units=1e12 refuse 's/units = 4,/units = 1000000000000,/'
tt units=2^62 refuse 's/units = 4,/units = 4611686018427387904,/'
tt units=string refuse 's/units = 4,/units = "4",/'
tt units=1.5 refuse 's/units = 4,/units = 1.5,/'
tt threads=100000 refuse '/^\[training\]/a threads = 100000'
tt threads=0 refuse '/^\[training\]/a threads = 0'
tt lr=-0.01 refuse 's/^lr = .*/lr = -0.01/'
tt lr=0 refuse 's/^lr = .*/lr = 0.0/'
tt lr=nan refuse 's/^lr = .*/lr = nan/'
tt lr=inf refuse 's/^lr = .*/lr = inf/'
tdata lr=1e300 any 'toml|learning rate' 's/^lr = .*/lr = 1e300/'
tt lr=string refuse 's/^lr = .*/lr = "fast"/'
tt beta1=2 refuse '/^lr = /a beta1 = 2.0'
tt beta1=1 refuse '/^lr = /a beta1 = 1.0'
tt beta2=-1 refuse '/^lr = /a beta2 = -1.0'
tt eps=0 refuse '/^lr = /a eps = 0.0'
tt eps=-1 refuse '/^lr = /a eps = -1.0'
tt eps=nan refuse '/^lr = /a eps = nan'
tt clip_value=0 refuse '/^lr = /a clip_value = 0.0'
tt clip_value=-1 refuse '/^lr = /a clip_value = -1.0'
tt clip_norm=0 refuse '/^lr = /a clip_norm = 0.0'
tt clip_norm=nan refuse '/^lr = /a clip_norm = nan'
tt weight_decay=-1 refuse '/^lr = /a weight_decay = -1.0'
tt weight_decay=nan refuse '/^lr = /a weight_decay = nan'
tt momentum=-1-sgd refuse 's/^name = .*/name = "sgd"/; /^lr = /a momentum = -1.0'
tt momentum=1.5-sgd refuse 's/^name = .*/name = "sgd"/; /^lr = /a momentum = 1.5'
tdata optimizer=bogus refuse 'toml|bogus' 's/^name = .*/name = "bogus"/'
tdata loss=bogus refuse 'toml|bogus' 's/^loss = .*/loss = "bogus"/'
tdata metrics=bogus refuse 'toml|bogus' '/^loss = /a metrics = ["bogus"]'
tdata activation=bogus refuse 'toml|bogus' 's/activation = "relu"/activation = "bogus"/'
tdata layer-type=bogus refuse 'toml|bogus' 's/type = "dense", units = 4/type = "bogus", units = 4/'
tt layers-empty refuse '/^layers = \[/,/^\]/c layers = []'
tt layers-missing refuse '/^layers = \[/,/^\]/d'
tt layers-number refuse '/^layers = \[/,/^\]/c layers = 5'
tt model-missing refuse '/^\[model\]/,/^\]/d'
tt layer_norm-eps=-1 refuse 's/{ type = "dense", units = 1 }/{ type = "layer_norm", eps = -1.0 }, { type = "dense", units = 1 }/'
tt layer_norm-eps=0 any 's/{ type = "dense", units = 1 }/{ type = "layer_norm", eps = 0.0 }, { type = "dense", units = 1 }/'
tt layer_norm-eps=nan refuse 's/{ type = "dense", units = 1 }/{ type = "layer_norm", eps = nan }, { type = "dense", units = 1 }/'
tt dropout=1.0 refuse 's/{ type = "dense", units = 1 }/{ type = "dropout", rate = 1.0 }, { type = "dense", units = 1 }/'
tt dropout=-0.5 refuse 's/{ type = "dense", units = 1 }/{ type = "dropout", rate = -0.5 }, { type = "dense", units = 1 }/'
tt dropout=nan refuse 's/{ type = "dense", units = 1 }/{ type = "dropout", rate = nan }, { type = "dense", units = 1 }/'
tt embedding-on-floats refuse 's/{ type = "dense", units = 4, activation = "relu" }/{ type = "embedding", vocab = 3, dim = 2 }, { type = "flatten" }/'
tdata embedding-vocab-0 refuse 'toml|layer' 's/{ type = "dense", units = 4, activation = "relu" }/{ type = "embedding", vocab = 0, dim = 2 }, { type = "flatten" }/'
tdata conv2d-on-table refuse 'toml|layer' 's/{ type = "dense", units = 4, activation = "relu" }/{ type = "conv2d", filters = 2, kernel_size = 3 }, { type = "flatten" }/'
tdata image_shape-mismatch refuse 'toml|image_shape' '/^target = /a image_shape = [1, 3, 3]'
tdata image_shape-zero refuse 'toml|image_shape' '/^target = /a image_shape = [0, 0, 0]'
tdata image_shape-huge refuse 'toml|image_shape' '/^target = /a image_shape = [1000000, 1000000, 1000000]'
tdata conv2d-kernel-0 refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "conv2d", filters = 2, kernel_size = 0 }, { type = "flatten" }/'
tdata conv2d-kernel-too-big refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "conv2d", filters = 2, kernel_size = 5 }, { type = "flatten" }/'
tdata conv2d-stride-0 refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "conv2d", filters = 2, kernel_size = 1, stride = 0 }, { type = "flatten" }/'
tdata conv2d-filters-0 refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "conv2d", filters = 0, kernel_size = 1 }, { type = "flatten" }/'
tdata conv2d-groups-3 refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "conv2d", filters = 2, kernel_size = 1, groups = 3 }, { type = "flatten" }/'
tdata maxpool-0 refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "max_pool2d", pool_size = 0 }, { type = "flatten" }/'
tdata maxpool-too-big refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "max_pool2d", pool_size = 4 }, { type = "flatten" }/'
tdata transformer-heads-0 refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "patch_embed", patch = 1, dim = 4 }, { type = "transformer_encoder", heads = 0, ffn = 8, layers = 1 }, { type = "class_token" }/'
tdata transformer-heads-3 refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "patch_embed", patch = 1, dim = 4 }, { type = "transformer_encoder", heads = 3, ffn = 8, layers = 1 }, { type = "class_token" }/'
tdata patch-too-big refuse 'toml|layer' '/^target = /a image_shape = [2, 1, 1]
s/{ type = "dense", units = 4, activation = "relu" }/{ type = "patch_embed", patch = 2, dim = 4 }, { type = "class_token" }/'
tt epochs=0 refuse 's/^epochs = .*/epochs = 0/'
tt epochs=-1 refuse 's/^epochs = .*/epochs = -1/'
tt epochs=string refuse 's/^epochs = .*/epochs = "ten"/'
tt batch_size=0 refuse 's/^batch_size = .*/batch_size = 0/'
tt batch_size=1e12 any 's/^batch_size = .*/batch_size = 1000000000000/'
tt seed=-1 refuse 's/^seed = .*/seed = -1/'
tt seed=1.5 refuse 's/^seed = .*/seed = 1.5/'
tt seed=max any 's/^seed = .*/seed = 18446744073709551615/'
tt task=bogus refuse 's/^task = .*/task = "bogus"/'
tt task-missing refuse '/^task = /d'
tt task=translate refuse 's/^task = .*/task = "translate"/'
tt unknown-top-key refuse '/^epochs = /a learning_rat = 0.1'
tt unknown-data-key refuse '/^target = /a shufle = true'
tt unknown-layer-key refuse 's/units = 4,/units = 4, unit = 3,/'
tt unknown-optimizer-key refuse '/^lr = /a betas = [0.9, 0.99]'
tt unknown-section refuse '$a [bogus]\nx = 1'
tdata early_stopping-monitor-bogus refuse 'toml|bogus' '$a [early_stopping]\nmonitor = "bogus"\npatience = 1'
tt early_stopping-patience-0 any '$a [early_stopping]\nmonitor = "val_loss"\npatience = 0'
tt plateau-factor-0 refuse '$a [reduce_lr_on_plateau]\nmonitor = "val_loss"\nfactor = 0.0\npatience = 1'
tt plateau-factor-2 refuse '$a [reduce_lr_on_plateau]\nmonitor = "val_loss"\nfactor = 2.0\npatience = 1'
tt plateau-factor-nan refuse '$a [reduce_lr_on_plateau]\nmonitor = "val_loss"\nfactor = nan\npatience = 1'
tdata augment-on-table refuse 'toml|augment' '$a [augment]\ncrop_padding = 4\nhorizontal_flip = true'
tdata data-path-missing refuse nope 's/^path = .*/path = "nope.csv"/'
tdata data-path-dir refuse "" 's#^path = .*#path = "/tmp"#'
tdata data-path-dev-null refuse /dev/null 's#^path = .*#path = "/dev/null"#'
tdata data-path-binary refuse "$gguf" "s#^path = .*#path = \"$gguf\"#"
tdata data-format-idx-on-csv refuse 'toml|csv' '/^target = /a format = "idx"'
tdata data-format-image-folder-on-file refuse 'toml|csv' '/^target = /a format = "image_folder"'
tt syntax-error refuse '3s/$/ = = =/'
tt duplicate-key refuse '/^epochs = /a epochs = 3'
tt empty-config refuse 'd'
tc() { # NAME EXPECT CONTENT-COMMAND: a config file built by a command
    local name=toml/$1
    selected "$name" || return 0
    case_dir=$work/c/${name//\//_}; mkdir -p "$case_dir"
    eval "$3" >"$case_dir/c.toml"
    run_case "$name" "$2" "$case_dir/c.toml" "$bin" train "$case_dir/c.toml" --out "$case_dir/run" --json
    finish
}
tc binary-config refuse 'garbage 3000 21'
tc invalid-utf8-config refuse 'printf "task = \"\xff\xfe\"\n"'
tc deeply-nested refuse 'printf "x = "; head -c 100000 /dev/zero | tr "\0" "["'
tc missing-config refuse 'true; rm -f "$case_dir/c.toml"; ln -s "$case_dir/nothing" "$case_dir/c.toml"'
run_case toml/config-is-directory refuse "$work" "$bin" train "$work" --json
# Flags of `ferrite train`.
tf() { tdata "flag/$1" "$2" "$3" "$nop" "${@:4}"; }
tf epochs-0 refuse "" --epochs 0
tf threads-100000 refuse "" --threads 100000
tf threads-0 refuse "" --threads 0
tf max-minutes-nan refuse "" --max-minutes nan
tf max-minutes-minus1 refuse "" --max-minutes=-1
tf max-minutes-inf any "" --max-minutes inf
tf max-minutes-0 any "" --max-minutes 0
tf max-minutes-tiny any "" --max-minutes 0.0000001
tf max-steps-on-regression refuse "" --max-steps 3
tf seed-max any "" --seed 18446744073709551615
run_case toml/flag/resume-without-out refuse "" "$bin" train data/base.toml --resume --json
run_case toml/flag/resume-nonexistent refuse "" "$bin" train data/kill.toml --out "$work/nonexistent-run" --resume --json

# --- translation configs and pairs -----------------------------------------------------------
echo "== translate"
trc() { # NAME EXPECT NAMED SED [extra args]: data/translate.toml with SED, in data/ (its TSVs)
    local name=translate/$1
    selected "$name" || return 0
    case_dir=$work/c/${name//\//_}; mkdir -p "$case_dir"
    cp data/tr.tsv data/va.tsv data/te.tsv "$case_dir/"
    sed -e "$4" data/translate.toml >"$case_dir/t.toml"
    case_note="t.toml = translate.toml edited by sed '$4'${tsv_edit:+; then: $tsv_edit}"
    local f=${3//toml/$case_dir/t.toml}
    f=${f//tsv/$case_dir/tr.tsv}
    [[ -n ${tsv_edit:-} ]] && eval "$tsv_edit"
    run_case "$name" "$2" "$f" "$bin" train "$case_dir/t.toml" --out "$case_dir/run" --json "${@:5}"
    finish
}
trc heads=0 refuse toml 's/^heads = .*/heads = 0/'
trc heads=3 refuse toml 's/^heads = .*/heads = 3/'
trc d_model=0 refuse toml 's/^d_model = .*/d_model = 0/'
trc d_model=1e12 refuse toml 's/^d_model = .*/d_model = 1000000000000/'
trc ffn=0 refuse toml 's/^ffn = .*/ffn = 0/'
trc layers=0 any toml 's/^encoder_layers = .*/encoder_layers = 0/'
trc max_positions=0 refuse toml 's/^max_positions = .*/max_positions = 0/'
trc max_positions-below-max_tokens refuse toml 's/^max_positions = .*/max_positions = 8/'
trc max_tokens=0 refuse toml 's/^max_tokens = .*/max_tokens = 0/'
trc max_tokens=1 refuse toml 's/^max_tokens = .*/max_tokens = 1/'
trc max_tokens=1e12 refuse toml 's/^max_tokens = .*/max_tokens = 1000000000000/'
trc batch_tokens=0 refuse toml 's/^batch_tokens = .*/batch_tokens = 0/'
trc batch_tokens=1 refuse toml 's/^batch_tokens = .*/batch_tokens = 1/'
trc valid_every=0 refuse toml 's/^valid_every = .*/valid_every = 0/'
trc lr=nan refuse toml '/^max_steps = /a lr = nan'
trc lr=-1 refuse toml '/^max_steps = /a lr = -1.0'
trc label_smoothing=1 refuse toml '/^max_steps = /a label_smoothing = 1.0'
trc label_smoothing=-1 refuse toml '/^max_steps = /a label_smoothing = -1.0'
trc betas-2 refuse toml '/^max_steps = /a betas = [2.0, 0.98]'
trc eps=0 refuse toml '/^max_steps = /a eps = 0.0'
trc clip_norm=-1 refuse toml '/^max_steps = /a clip_norm = -1.0'
trc schedule-cosine-no-steps refuse toml 's/^max_steps = .*/max_steps = 0\nminutes = 0.01\nschedule = "cosine"/'
trc no-budget refuse toml 's/^max_steps = .*/max_steps = 0/'
trc minutes=nan refuse toml 's/^max_steps = .*/max_steps = 0\nminutes = nan/'
trc threads=100000 refuse toml '/^max_steps = /a threads = 100000'
trc beam=0 refuse toml 's/^beam = .*/beam = 0/'
trc beam=1000 refuse "toml|beam" 's/^beam = .*/beam = 1000/'
trc dropout=1 refuse toml 's/^dropout = .*/dropout = 1.0/'
trc vocab_size-bpe-0 refuse "toml|vocab_size" 's/^kind = "char"/kind = "bpe"\nvocab_size = 0/'
trc vocab_size-bpe-1e12 any toml 's/^kind = "char"/kind = "bpe"\nvocab_size = 1000000000000/'
trc tokenizer-bogus refuse toml 's/^kind = "char"/kind = "bogus"/'
trc unknown-key refuse toml '/^max_steps = /a max_step = 3'
trc train-missing refuse nope 's/^train = .*/train = "nope.tsv"/'
trc flag-epochs refuse "" "$nop" --epochs 3
trc flag-resume refuse "" "$nop" --resume
trc flag-max-steps-0 refuse "" "$nop" --max-steps 0
tsv_edit='sed -i "5s/\t/ /" "$case_dir/tr.tsv"' trc tsv-no-tab refuse tsv "$nop"
tsv_edit='sed -i "5s/\t.*/\t/" "$case_dir/tr.tsv"' trc tsv-empty-side refuse tsv "$nop"
tsv_edit='sed -i "5s/$/\textra/" "$case_dir/tr.tsv"' trc tsv-extra-column refuse tsv "$nop"
tsv_edit=': > "$case_dir/tr.tsv"' trc tsv-empty refuse tsv "$nop"
tsv_edit='garbage 3000 31 > "$case_dir/tr.tsv"' trc tsv-garbage refuse tsv "$nop"
tsv_edit='sed -i "5s/^/\xff\xfe/" "$case_dir/tr.tsv"' trc tsv-invalid-utf8 refuse tsv "$nop"
tsv_edit='sed -i "s/\$/\r/" "$case_dir/tr.tsv"' trc tsv-crlf any tsv "$nop"
tsv_edit='printf "%s\t%s\n" "$(head -c 200000 /dev/zero | tr "\0" a)" "b" >> "$case_dir/tr.tsv"' trc tsv-long-line any tsv "$nop"

# --- command-line values ---------------------------------------------------------------------
echo "== cli"
cli() { run_case "cli/$1" "$2" "" "$bin" "${@:3}"; }
G=(--model "$gguf")
cli generate-max-tokens-1e6 refuse generate "${G[@]}" "Hello" --max-tokens 1000000 --json
cli generate-max-tokens-8193 refuse generate "${G[@]}" "Hello" --max-tokens 8193 --json
cli generate-max-tokens-0 any generate "${G[@]}" "Hello" --max-tokens 0 --json
cli generate-temperature-nan refuse generate "${G[@]}" "Hello" --max-tokens 4 --temperature nan --json
cli generate-temperature-inf refuse generate "${G[@]}" "Hello" --max-tokens 4 --temperature inf --json
cli generate-temperature-neg refuse generate "${G[@]}" "Hello" --max-tokens 4 --temperature=-1 --json
cli generate-temperature-tiny any generate "${G[@]}" "Hello" --max-tokens 4 --temperature 1e-30 --json
cli generate-temperature-huge any generate "${G[@]}" "Hello" --max-tokens 4 --temperature 1e30 --json
cli generate-top-p-nan refuse generate "${G[@]}" "Hello" --max-tokens 4 --temperature 0.8 --top-p nan --json
cli generate-top-p-2 refuse generate "${G[@]}" "Hello" --max-tokens 4 --temperature 0.8 --top-p 2 --json
cli generate-top-p-0 any generate "${G[@]}" "Hello" --max-tokens 4 --temperature 0.8 --top-p 0 --json
cli generate-top-k-0 any generate "${G[@]}" "Hello" --max-tokens 4 --temperature 0.8 --top-k 0 --json
cli generate-top-k-huge any generate "${G[@]}" "Hello" --max-tokens 4 --temperature 0.8 --top-k 18446744073709551615 --json
cli generate-repeat-penalty-0 refuse generate "${G[@]}" "Hello" --max-tokens 4 --repeat-penalty 0 --json
cli generate-repeat-penalty-nan refuse generate "${G[@]}" "Hello" --max-tokens 4 --repeat-penalty nan --json
cli generate-repeat-penalty-neg refuse generate "${G[@]}" "Hello" --max-tokens 4 --repeat-penalty=-1 --json
cli generate-threads-100000 refuse generate "${G[@]}" "Hello" --max-tokens 4 --threads 100000 --json
cli generate-threads-0 refuse generate "${G[@]}" "Hello" --max-tokens 4 --threads 0 --json
cli generate-empty-prompt any generate "${G[@]}" "" --max-tokens 4 --json
cli generate-no-prompt-closed-stdin any generate "${G[@]}" --max-tokens 4 --json
head -c 120000 /dev/zero | tr '\0' 'a' | sed 's/aaaa/word /g' >data/long-prompt.txt
case_stdin=data/long-prompt.txt cli generate-prompt-beyond-context refuse generate "${G[@]}" --max-tokens 4 --json
printf 'hello\n' >data/hello.txt
case_stdin=data/hello.txt cli chat-max-tokens-1e6 refuse chat "${G[@]}" --max-tokens 1000000 --json
cli chat-closed-stdin any chat "${G[@]}" --max-tokens 4 --json
cli transcribe-beam-1000 refuse transcribe --model "$whisper" --input data/good.wav --beam 1000 --json
cli transcribe-beam-0 refuse transcribe --model "$whisper" --input data/good.wav --beam 0 --json
cli transcribe-max-audio-nan refuse transcribe --model "$whisper" --input data/good.wav --max-audio-minutes nan --json
cli transcribe-max-audio-neg refuse transcribe --model "$whisper" --input data/good.wav --max-audio-minutes=-1 --json
cli transcribe-threads-100000 refuse transcribe --model "$whisper" --input data/good.wav --threads 100000 --json
cli translate-beam-1000 refuse translate --model runs/tr "one two" --beam 1000 --json
cli translate-beam-0 refuse translate --model runs/tr "one two" --beam 0 --json
cli translate-temperature-nan refuse translate --model runs/tr "one two" --temperature nan --json
cli translate-top-p-2 refuse translate --model runs/tr "one two" --temperature 0.8 --top-p 2 --json
cli translate-long-text any translate --model runs/tr "$(printf 'one two %.0s' $(seq 500))" --json
cli translate-unknown-chars any translate --model runs/tr "ŽžŽ 日本語 🙂" --json
cli translate-closed-stdin any translate --model runs/tr --json
cli eval-translate-beam-0 refuse eval --model runs/tr --beam 0 --json
cli eval-translate-beam-1000 refuse eval --model runs/tr --beam 1000 --json
cli eval-translate-input-missing refuse eval --model runs/tr --input nope.tsv --json
printf 'no tab here\n' >data/bad-pairs.tsv
run_case cli/eval-translate-input-no-tab refuse data/bad-pairs.tsv "$bin" eval --model runs/tr --input data/bad-pairs.tsv --json
cli eval-mlp-beam refuse eval --model runs/mlp --beam 2 --json
cli embed-threads-100000 refuse embed --model "$minilm" "hello" --threads 100000 --json
head -c 60000 /dev/zero | tr '\0' 'a' | sed 's/aaaa/word /g' >data/long-text.txt
case_stdin=data/long-text.txt cli embed-long-text any embed --model "$minilm" --json
cli embed-empty-text any embed --model "$minilm" "" --json
cli embed-closed-stdin any embed --model "$minilm" --json
cli similarity-one-text refuse similarity --model "$minilm" "one" --json
cli classify-closed-stdin any classify --model runs/ft --json
# fc NAME EXPECT FLAG…: finetune on data/ft.csv, with small defaults for the flags not given.
fc() {
    local name=$1 expect=$2 args=("${@:3}") d
    for d in "--epochs 1" "--max-len 16" "--train-limit 16" "--batch-size 8"; do
        [[ " ${args[*]} " == *" ${d% *}"[\ =]* ]] || args+=($d)
    done
    run_case "cli/$name" "$expect" "" "$bin" finetune --model "$minilm" --input data/ft.csv \
        --out "$work/c/ft-$name" --json "${args[@]}"
    rm -rf "$work/c/ft-$name"
}
fc finetune-epochs-0 refuse --epochs 0
fc finetune-batch-size-0 refuse --batch-size 0
fc finetune-max-len-0 refuse --max-len 0
fc finetune-max-len-1 any --max-len 1
fc finetune-max-len-100000 refuse --max-len 100000 --freeze-encoder
fc finetune-lr-nan refuse --lr nan
fc finetune-lr-neg refuse --lr=-1
fc finetune-valid-fraction-1.5 refuse --valid-fraction 1.5
fc finetune-fractions-sum-1 refuse --valid-fraction 0.5 --test-fraction 0.5
fc finetune-test-fraction-neg refuse --test-fraction=-0.1
fc finetune-train-limit-0 refuse --train-limit 0
fc finetune-layer-lr-decay-0 refuse --layer-lr-decay 0
fc finetune-layer-lr-decay-nan refuse --layer-lr-decay nan
fc finetune-warmup-2 refuse --warmup-frac 2
fc finetune-warmup-nan refuse --warmup-frac nan
fc finetune-weight-decay-nan refuse --weight-decay nan
fc finetune-max-minutes-nan refuse --max-minutes nan
fc finetune-threads-100000 refuse --threads 100000
fc finetune-text-column-missing refuse --text-column nope
fc finetune-label-column-missing refuse --label-column nope
fc finetune-same-column refuse --text-column label
# A text longer than the model's 512 positions, with --max-len above them.
{ echo "text,label"; for i in $(seq 40); do
    if ((i == 3)); then printf 'word%.0s ' $(seq 1500); echo ",pos"; else echo "short text $i,$((i % 2 ? 1 : 0))" | sed "s/,1$/,pos/; s/,0$/,neg/"; fi
done; } >data/ft-long.csv
run_case cli/finetune-long-text-max-len-2000 any "" "$bin" finetune --model "$minilm" --input data/ft-long.csv \
    --max-len 2000 --epochs 1 --freeze-encoder --out "$work/c/ft-long" --json
run_case cli/classify-long-text any "" "$bin" classify --model runs/ft "$(printf 'word%.0s ' $(seq 3000))" --json
{ echo "text,label"; for i in $(seq 20); do echo "text number $i,same"; done; } >data/ft-one.csv
run_case cli/finetune-one-label refuse data/ft-one.csv "$bin" finetune --model "$minilm" --input data/ft-one.csv --out "$work/c/ft17" --json
echo "text,label" >data/ft-header.csv
run_case cli/finetune-header-only refuse data/ft-header.csv "$bin" finetune --model "$minilm" --input data/ft-header.csv --out "$work/c/ft18" --json
garbage 3000 41 >data/ft-garbage.jsonl
run_case cli/finetune-garbage-jsonl refuse data/ft-garbage.jsonl "$bin" finetune --model "$minilm" --input data/ft-garbage.jsonl --out "$work/c/ft19" --json
cli explain-row-huge refuse explain --model runs/mlp --input "$root/data/diabetes.csv" --row 1000000 --out "$work/c/e1.png" --json
cli explain-steps-0 refuse explain --model runs/mlp --input "$root/data/diabetes.csv" --row 1 --method ig --steps 0 --out "$work/c/e2.png" --json
cli explain-steps-1e9 any explain --model runs/mlp --input "$root/data/diabetes.csv" --row 1 --method ig --steps 1000000000 --out "$work/c/e3.png" --json
cli explain-out-no-dir refuse explain --model runs/mlp --input "$root/data/diabetes.csv" --row 1 --out /nonexistent/dir/x.png --json
cli explain-out-bad-extension refuse explain --model runs/mlp --input "$root/data/diabetes.csv" --row 1 --out "$work/c/x.bogus" --json
cli explain-occlusion-window-0 refuse explain --model runs/cnn --input "$root/data/digits.csv" --row 1 --method occlusion --window 0,0,0 --out "$work/c/e4.png" --json
cli explain-gguf-layer-99 refuse explain "${G[@]}" "hello world" --method attention --layer 99 --out "$work/c/e5.png" --json
cli explain-gguf-head-99 refuse explain "${G[@]}" "hello world" --method attention --head 99 --out "$work/c/e6.png" --json
cli explain-gguf-ig refuse explain "${G[@]}" "hello world" --method ig --out "$work/c/e7.png" --json
cli explain-whisper-bad-wav refuse explain --model "$whisper" --input "$gguf" --method attention --out "$work/c/e8.png" --json
cli explain-translate-part-bogus any explain --model runs/tr "one two" --method attention --part encoder --layer 5 --out "$work/c/e9.png" --json
cli bench-threads-0 refuse bench matmul --threads 0 --json
cli bench-threads-100000 refuse bench matmul --threads 100000 --json
cli data-gettext-valid-fraction-2 refuse data gettext --target fr --valid-fraction 2 --out "$work/c/gt1"
cli data-gettext-fractions-sum-1.2 refuse data gettext --target fr --valid-fraction 0.6 --test-fraction 0.6 --out "$work/c/gt4"
cli data-gettext-valid-fraction-nan refuse data gettext --target fr --valid-fraction nan --out "$work/c/gt5"
cli data-gettext-bogus-language refuse data gettext --target zz-bogus --out "$work/c/gt2"
cli data-gettext-path-language refuse data gettext --target ../../../etc --out "$work/c/gt3"

# --- models of the wrong kind ----------------------------------------------------------------
echo "== cross"
mkdir -p data/empty-dir
xc() { run_case "$1" "$2" "$3" "$bin" "${@:4}"; } # NAME EXPECT FILE-TO-NAME ARGS…
xc cross/translate-regression-run refuse runs/mlp translate --model runs/mlp "one two" --json
xc cross/translate-finetune-run refuse runs/ft translate --model runs/ft "one two" --json
xc cross/translate-hf-dir refuse "$minilm" translate --model "$minilm" "one two" --json
xc cross/classify-regression-run refuse runs/mlp classify --model runs/mlp "text" --json
xc cross/classify-pretrained-no-head refuse "$minilm" classify --model "$minilm" "text" --json
xc cross/eval-hf-dir refuse "$minilm" eval --model "$minilm" --json
xc cross/eval-gguf refuse "$gguf" eval --model "$gguf" --json
xc cross/eval-empty-dir refuse data/empty-dir eval --model data/empty-dir --json
xc cross/eval-missing refuse data/nope eval --model data/nope --json
xc cross/eval-dev-null refuse /dev/null eval --model /dev/null --json
xc cross/eval-finetune-run refuse runs/ft eval --model runs/ft --json
xc cross/predict-translate-run refuse runs/tr predict --model runs/tr --input data/good.csv --json
xc cross/predict-wrong-columns refuse data/good.csv predict --model runs/mlp --input data/good.csv --json
xc cross/predict-binary-input refuse "$gguf" predict --model runs/mlp --input "$gguf" --json
xc cross/predict-dev-null refuse /dev/null predict --model runs/mlp --input /dev/null --json
xc cross/predict-cnn-wav refuse data/good.wav predict --model runs/cnn --input data/good.wav --json
xc cross/predict-cnn-empty-dir refuse data/empty-dir predict --model runs/cnn --input data/empty-dir --json
xc cross/generate-hf-dir refuse "$minilm" generate --model "$minilm" "x" --max-tokens 2 --json
xc cross/generate-ct2-bin refuse "$whisper/model.bin" generate --model "$whisper/model.bin" "x" --max-tokens 2 --json
xc cross/generate-safetensors refuse "$minilm/model.safetensors" generate --model "$minilm/model.safetensors" "x" --max-tokens 2 --json
xc cross/generate-directory refuse data/empty-dir generate --model data/empty-dir "x" --max-tokens 2 --json
xc cross/transcribe-hf-dir refuse "$minilm" transcribe --model "$minilm" --input data/good.wav --json
xc cross/transcribe-gguf-as-wav refuse "$gguf" transcribe --model "$whisper" --input "$gguf" --json
xc cross/embed-gguf refuse "$gguf" embed --model "$gguf" "x" --json
xc cross/embed-run-dir refuse runs/mlp embed --model runs/mlp "x" --json
xc cross/embed-whisper-dir refuse "$whisper" embed --model "$whisper" "x" --json
xc cross/finetune-gguf refuse "$gguf" finetune --model "$gguf" --input data/ft.csv --out "$work/c/ftx" --json
xc cross/explain-hf-dir refuse "$minilm" explain --model "$minilm" "text" --json
xc cross/train-gguf-as-config refuse "$gguf" train "$gguf" --json
xc cross/train-dev-null refuse /dev/null train /dev/null --out "$work/c/tdn" --json

# --- unwritable standard output --------------------------------------------------------------
echo "== output"
full() { case_stdout=/dev/full run_case "output/$1" "${expect:-refuse}" "" "$bin" "${@:2}"; }
full predict-text predict --model runs/mlp --input "$root/data/diabetes.csv"
full predict-json predict --model runs/mlp --input "$root/data/diabetes.csv" --json
full embed-text embed --model "$minilm" "hello"
full embed-json embed --model "$minilm" "hello" --json
full similarity similarity --model "$minilm" "a b" "c d"
full generate-stream generate "${G[@]}" "Hello" --max-tokens 4
full generate-json generate "${G[@]}" "Hello" --max-tokens 4 --json
case_stdin=data/hello.txt full chat chat "${G[@]}" --max-tokens 4
full eval-json eval --model runs/mlp --json
full eval-text eval --model runs/mlp
full translate translate --model runs/tr "one two"
full classify classify --model runs/ft "text"
full transcribe transcribe --model "$whisper" --input data/good.wav
full train-json train data/kill.toml --out "$work/c/full-train" --epochs 1 --json
expect=any full help --help

# --- run directories: corrupted files, changed configs, resume -------------------------------
echo "== rundir"
rd() { mut_case "rundir/$1" "$2" "$work/runs/mlp" "$3" "$4" "$bin" "${@:5}"; }
rdr() { post_eval=1 rd "$@"; } # a resume: the run must load afterwards
ev=(eval --model @M@ --json)
pr=(predict --model @M@ --input "$root/data/diabetes.csv" --json)
rs=(train "$work/data/kill.toml" --out @M@ --epochs 5 --resume --json)
rd model-truncated refuse model.safetensors 'truncate -s $(( $(size_of "$F") / 2 )) "$F"' "${ev[@]}"
rd model-garbage refuse model.safetensors 'garbage 3000 51 > "$F"' "${ev[@]}"
rd model-empty refuse model.safetensors ': > "$F"' "${pr[@]}"
rd model-missing refuse model.safetensors 'rm "$F"' "${ev[@]}"
rd model-header-len-huge refuse model.safetensors 'poke "$F" 0 ff ff ff ff ff ff ff 7f' "${pr[@]}"
rd model-from-cnn refuse model.safetensors "cp $work/runs/cnn/model.safetensors \"\$F\"" "${ev[@]}"
rd model-flip-header any model.safetensors 'flips "$F" 8 8 200 52' "${ev[@]}"
rdr checkpoint-truncated-resume refuse checkpoint.safetensors 'truncate -s 1000 "$F"' "${rs[@]}"
rdr checkpoint-garbage-resume refuse checkpoint.safetensors 'garbage 3000 53 > "$F"' "${rs[@]}"
rdr checkpoint-missing-resume refuse checkpoint.safetensors 'rm "$F"' "${rs[@]}"
rdr checkpoint-from-cnn-resume refuse checkpoint.safetensors "cp $work/runs/cnn/checkpoint.safetensors \"\$F\"" "${rs[@]}"
rdr checkpoint-flips-resume any checkpoint.safetensors 'flips "$F" 16 8 2000 54' "${rs[@]}"
rd checkpoint-garbage-eval any checkpoint.safetensors 'garbage 3000 53 > "$F"' "${ev[@]}"
rd scaler-garbage refuse scaler.json 'garbage 500 55 > "$F"' "${ev[@]}"
rd scaler-empty refuse scaler.json ': > "$F"' "${pr[@]}"
rd scaler-missing refuse scaler.json 'rm "$F"' "${ev[@]}"
rd scaler-object refuse scaler.json 'echo "{}" > "$F"' "${ev[@]}"
rd scaler-null-mean refuse scaler.json 'sed -i "0,/\"mean\": \[/s//\"mean\": [null, /" "$F"' "${pr[@]}"
rd scaler-short-mean refuse scaler.json 'awk "/\"mean\": \\[/ && !done { print; getline; done = 1; next } 1" "$F" > "$F.new" && mv "$F.new" "$F"' "${pr[@]}"
rd scaler-zero-std any scaler.json 'sed -i -E "/\"std\": \[/,/\]/s/[0-9.e+-]+(,?)$/0.0\1/" "$F"' "${pr[@]}"
named="" rd scaler-feature-renamed refuse scaler.json 'sed -i "s/\"bmi\"/\"BMI\"/" "$F"' "${pr[@]}"
rd config-garbage refuse config.toml 'garbage 500 56 > "$F"' "${ev[@]}"
rd config-empty refuse config.toml ': > "$F"' "${pr[@]}"
rd config-missing refuse config.toml 'rm "$F"' "${ev[@]}"
named="" rd config-units-changed refuse config.toml 'sed -i "0,/units = 64/s//units = 32/" "$F"' "${ev[@]}"
named=$work/gone.csv rd config-data-gone refuse config.toml "sed -i 's#^path = .*#path = \"$work/gone.csv\"#' \"\$F\"" "${ev[@]}"
rd config-task-classification refuse config.toml 'sed -i "s/^task = .*/task = \"classification\"/" "$F"' "${ev[@]}"
rdr metrics-garbage-resume any metrics.jsonl 'garbage 300 57 >> "$F"' "${rs[@]}"
rdr metrics-torn-line-resume accept metrics.jsonl 'printf "{\"epoch\":4,\"lo" >> "$F"' "${rs[@]}"
rdr metrics-missing-resume any metrics.jsonl 'rm "$F"' "${rs[@]}"
rdr metrics-ahead-resume any metrics.jsonl 'tail -n 1 "$F" | sed "s/\"epoch\":3/\"epoch\":4/" >> "$F"' "${rs[@]}"
rd summary-garbage any summary.json 'garbage 300 58 > "$F"' "${ev[@]}"
rdr stale-temp-files-resume accept scaler.json 'garbage 100 59 > "$D/.checkpoint.safetensors.tmp"; garbage 100 60 > "$D/model.safetensors.tmp.123"' "${rs[@]}"
rdr resume-fewer-epochs any config.toml 'true' train "$work/data/kill.toml" --out @M@ --epochs 2 --resume --json
rdr resume-same-epochs any config.toml 'true' train "$work/data/kill.toml" --out @M@ --epochs 3 --resume --json
rt() { mut_case "rundir/$1" "$2" "$work/runs/tr" "$3" "$4" "$bin" translate --model @M@ "one two" --json; }
rt translate-model-json-garbage refuse model.json 'garbage 300 61 > "$F"'
rt translate-model-json-heads-0 refuse model.json 'sed -i -E "s/\"heads\": *[0-9]+/\"heads\": 0/" "$F"'
rt translate-tokenizer-garbage refuse tokenizer.json 'garbage 300 62 > "$F"'
rt translate-tokenizer-missing refuse tokenizer.json 'rm "$F"'
rt translate-weights-truncated refuse model.safetensors 'truncate -s 5000 "$F"'
rt translate-config-garbage refuse config.toml 'garbage 300 63 > "$F"'
rf() { mut_case "rundir/$1" "$2" "$work/runs/ft" "$3" "$4" "$bin" classify --model @M@ "a day" --json; }
rf finetune-labels-garbage any labels.json 'garbage 300 64 > "$F"'
rf finetune-labels-empty-list any labels.json 'echo "[]" > "$F"'
rf finetune-config-garbage refuse model/config.json 'garbage 300 65 > "$F"'
rf finetune-id2label-short refuse model/config.json 'sed -i -e "s/\"0\": \"neg\",/\"0\": \"neg\"/" -e "/\"1\": \"pos\"/d" "$F"'
# transformers lets id2label override a contradicting num_labels (with a warning): so does ferrite.
rf finetune-num_labels-1 accept model/config.json 'sed -i "s/\"num_labels\": 2/\"num_labels\": 1/" "$F"'
rf finetune-weights-truncated refuse model/model.safetensors 'truncate -s 100000 "$F"'
rf finetune-summary-garbage any finetune.json 'garbage 300 66 > "$F"'
# A resumed run's config must be the one it started with (only epochs may grow).
rc() { # NAME EXPECT SED [args]: resume runs/mlp's copy with data/kill.toml edited by SED
    local name=resume/$1
    selected "$name" || return 0
    prepare "$name" "$work/runs/mlp" config.toml
    sed -e "$3" data/kill.toml >"$case_dir/k.toml"
    run_case "$name" "$2" "$D/config.toml|$case_dir/k.toml" "$bin" train "$case_dir/k.toml" --out "$D" --resume --epochs 5 --json "${@:4}"
    if ((last_rc == 0)); then run_case "$name/eval" load "" "$bin" eval --model "$D" --json; fi
    finish
}
rc same-config accept "$nop"
rc changed-lr refuse 's/^lr = .*/lr = 0.5/'
rc changed-units refuse '0,/units = 64/s//units = 32/'
rc changed-batch-size refuse 's/^batch_size = .*/batch_size = 16/'
rc changed-data-path refuse "s#^path = .*#path = \"$work/data/good.csv\"#"
rc changed-seed-flag refuse "$nop" --seed 7
rc changed-seed refuse 's/^seed = .*/seed = 7/'
rc added-early-stopping refuse '$a [early_stopping]\nmonitor = "val_loss"\npatience = 3'
rc changed-threads any "$nop" --threads 1
rc changed-max-minutes any "$nop" --max-minutes 10

# --- kill -9 during training, then resume ----------------------------------------------------
echo "== kill"
kill_epochs=${HOSTILE_KILL_EPOCHS:-3000}
if ((quick)); then rounds=2 kills=2; else rounds=5 kills=3; fi
RANDOM=42
kill_round() { # R
    local r=$1 name=kill/round-$1 dir=$work/kill/r$1 log=$work/kill/r$1.log k delay ms pid notes=""
    selected "$name" || return 0
    mkdir -p "$work/kill"
    rm -rf "$dir"
    local resume=()
    for ((k = 1; k <= kills; k++)); do
        # Every other start is killed within 25 ms (start-up: creating the run directory, the
        # first checkpoints; or a resume reading its checkpoint and trimming its log), the others
        # after a delay scaled by the uninterrupted run's time (ref_ms), so that the kills land
        # inside the training however fast this machine is.
        if ((r == 1 && k == 1)); then ms=$((RANDOM % 3 + 1)) # before the first checkpoint
        elif (((r + k) % 2 == 0)); then ms=$((RANDOM % 25 + 1))
        elif ((k == 1)); then ms=$((RANDOM % ref_ms + 5))
        else ms=$((RANDOM % (ref_ms * 3 / 5) + 5)); fi
        "$bin" train data/kill.toml --out "$dir" --epochs "$kill_epochs" "${resume[@]}" --json </dev/null >/dev/null 2>"$log" &
        pid=$! bg_pid=$pid
        sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            local done_epochs
            done_epochs=$(grep -c '"epoch"' "$dir/metrics.jsonl" 2>/dev/null)
            notes+=" kill@${ms}ms(${done_epochs:-0} epochs logged)"
        else
            wait "$pid"; local rc=$?
            notes+=" finished-before-kill@${ms}ms(rc $rc)"
        fi
        bg_pid=""
        # What a kill left must not crash the commands that read a run directory.
        run_case "$name/eval-after-kill-$k" any "" "$bin" eval --model "$dir" --json
        if [[ -f $dir/checkpoint.safetensors ]]; then resume=(--resume); else resume=(); fi
        # A kill before the first checkpoint leaves nothing to resume: --resume must say so cleanly.
        if [[ ${#resume[@]} -eq 0 && -d $dir ]]; then
            run_case "$name/resume-without-checkpoint-$k" any "$dir" "$bin" train data/kill.toml --out "$dir" \
                --epochs "$kill_epochs" --resume --json
        fi
    done
    run_case "$name/resume-to-end" accept "" "$bin" train data/kill.toml --out "$dir" --epochs "$kill_epochs" \
        "${resume[@]}" --json
    run_case "$name/eval" load "" "$bin" eval --model "$dir" --json
    local eval_class=$last_class
    local got; got=$(cat "$work/case.stdout")
    local epochs want problem=""
    epochs=$(grep -o '"epoch":[0-9]*' "$dir/metrics.jsonl" 2>/dev/null | cut -d: -f2 | tr '\n' ' ')
    want=$(seq -s ' ' 1 "$kill_epochs")
    if [[ "${epochs% }" != "$want" ]]; then
        local dup
        dup=$(printf '%s\n' $epochs | sort -n | uniq -d | head -n 5 | tr '\n' ' ')
        problem="metrics.jsonl epochs are not 1..$kill_epochs once each ($(printf '%s\n' $epochs | wc -l) lines; repeated: ${dup:-none}; first: $(printf '%s\n' $epochs | head -n 3 | tr '\n' ' '); last: $(printf '%s\n' $epochs | tail -n 3 | tr '\n' ' '))"
    fi
    if [[ -n $problem || $eval_class != ok-* ]]; then
        record UNLOADABLE "$name" "${problem:-eval failed}" "kills:$notes" "${problem:-ferrite eval --model RUN failed}"
    elif [[ -n $reference && $got != "$reference" ]]; then
        # Resuming is meant to continue exactly: the same test metrics as the run never killed.
        record DIVERGED "$name" "test metrics differ from the uninterrupted run" "kills:$notes" \
            "uninterrupted: $reference" "killed+resumed: $got"
    else
        record ok-accept "$name" "epochs 1..$kill_epochs once each, test metrics as uninterrupted"
    fi
    echo "           kills:$notes"
}
reference="" ref_ms=3000
if selected kill/reference; then
    t0=${EPOCHREALTIME/./}
    run_case kill/reference accept "" "$bin" train data/kill.toml --out "$work/kill-ref" --epochs "$kill_epochs" --json
    ref_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
    ((ref_ms < 100)) && ref_ms=100
    run_case kill/reference/eval accept "" "$bin" eval --model "$work/kill-ref" --json
    ((last_rc == 0)) && reference=$(cat "$work/case.stdout")
fi
for ((r = 1; r <= rounds; r++)); do kill_round "$r"; done

# --- summary ---------------------------------------------------------------------------------
echo
summary="hostile: $ncases cases in $((SECONDS - started)) s:"
bad=0
for c in "${order[@]}"; do
    n=${count[$c]:-0}
    ((n == 0)) && [[ $c != ok-* && $fatal != *" $c "* ]] && continue
    summary+=" $c=$n"
    [[ $fatal == *" $c "* ]] && ((n > 0)) && bad=1
    ((strict)) && [[ $c == unnamed || $c == ACCEPTED || $c == DIVERGED ]] && ((n > 0)) && bad=1
done
if [[ -s $details ]]; then
    echo "== cases that are not ok (command lines use \$WORK for the work directory)"
    cat "$details"
fi
echo "== slowest cases"
sort -rn "$work/times.txt" 2>/dev/null | head -n 8 | awk '{ printf "%8.1f s  %s\n", $1 / 1e6, $2 }'
echo "$summary"
if ((bad)); then echo "hostile: FAILED"; exit 1; fi
echo "hostile: no panics, aborts, hangs or unloadable runs"
