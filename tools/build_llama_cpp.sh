#!/usr/bin/env bash
# Build llama.cpp's `llama-bench`, `llama-completion` and `llama-server` (CPU only) from the llama.cpp
# source vendored in the pinned llama-cpp-python sdist on PyPI.
#
#   bash tools/build_llama_cpp.sh        # idempotent; binaries in tools/.llama.cpp/build/bin/
#
# Everything goes under tools/.llama.cpp/ (git-ignored):
#   llama_cpp_python-<ver>.tar.gz    the sdist (sha256 pinned below)
#   llama_cpp_python-<ver>/          unpacked; llama.cpp is in vendor/llama.cpp
#   build/bin/llama-bench            benchmark tool (used by tools/bench_llm.py)
#   build/bin/llama-completion       plain prompt -> completion (the old `main`; in this
#                                    llama.cpp `llama-cli` is a chat front end built on the
#                                    server code, so it is not built here)
#   build/bin/llama-server           the OpenAI-compatible server (tools/load_serve.py's peer)
#
# Build: CMake Release, CPU backend only (no CUDA/Metal/Vulkan/BLAS), GGML_NATIVE=ON
# (-march=native: the binaries are for this machine only), OpenMP on, static libs,
# no tests/examples, `-j2`, under `nice -n 10`. If cmake or a C/C++ compiler is
# missing, this installs it with apt-get (needs root, which we are on the dev VM).
# Re-running only rebuilds what is missing or out of date (make's own dependency check);
# the download and unpack are skipped when present. Set JOBS to change -j.
set -euo pipefail

# llama-cpp-python 0.3.36 (2026-10) vendors llama.cpp 0c1e570 (2026-10-01): GGUF v3, Q4_1.
LCP_VERSION=0.3.36
LCP_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
JOBS=${JOBS:-2}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/tools/.llama.cpp"
SDIST="$DEST/llama_cpp_python-$LCP_VERSION.tar.gz"
SRC="$DEST/llama_cpp_python-$LCP_VERSION"
LLAMA="$SRC/vendor/llama.cpp"
BUILD="$DEST/build"
TARGETS=(llama-bench llama-completion llama-server)

log() { echo "[build_llama_cpp] $*" >&2; }

# --- toolchain ---------------------------------------------------------------
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if ((${#need_apt[@]})); then
    log "missing ${need_apt[*]}: installing with apt-get (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

# --- source ------------------------------------------------------------------
mkdir -p "$DEST"
check_sha() { echo "$LCP_SHA256  $1" | sha256sum -c --status; }
if [[ ! -f "$SDIST" ]] || ! check_sha "$SDIST"; then
    log "downloading llama-cpp-python==$LCP_VERSION sdist from PyPI"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    PY="$ROOT/tools/.venv/bin/python"
    [[ -x "$PY" ]] || PY=python3
    "$PY" -m pip download --quiet --no-deps --no-binary :all: \
        -d "$tmp" "llama-cpp-python==$LCP_VERSION"
    f="$tmp/llama_cpp_python-$LCP_VERSION.tar.gz"
    if ! check_sha "$f"; then
        log "sha256 mismatch for $(basename "$f"): got $(sha256sum "$f" | cut -d' ' -f1), want $LCP_SHA256"
        exit 1
    fi
    mv "$f" "$SDIST"
    rm -rf "$SRC"
fi
if [[ ! -f "$LLAMA/CMakeLists.txt" ]]; then
    log "unpacking $(basename "$SDIST")"
    rm -rf "$SRC"
    tar -xzf "$SDIST" -C "$DEST"
fi

# --- build -------------------------------------------------------------------
all_built=1
for t in "${TARGETS[@]}"; do [[ -x "$BUILD/bin/$t" ]] || all_built=0; done
if ((all_built)) && [[ -z "${FORCE:-}" ]]; then
    log "already built: ${TARGETS[*]} in $BUILD/bin (FORCE=1 to re-run make)"
else
    start=$(date +%s)
    if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
        log "configuring (Release, CPU only, GGML_NATIVE=ON)"
        nice -n 10 cmake -S "$LLAMA" -B "$BUILD" \
            -DCMAKE_BUILD_TYPE=Release \
            -DBUILD_SHARED_LIBS=OFF \
            -DGGML_NATIVE=ON \
            -DGGML_CPU=ON \
            -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF \
            -DGGML_SYCL=OFF -DGGML_OPENCL=OFF -DGGML_RPC=OFF \
            -DGGML_BLAS=OFF \
            -DGGML_OPENMP=ON \
            -DGGML_CCACHE=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
            -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
            -DLLAMA_BUILD_TOOLS=ON \
            -DLLAMA_OPENSSL=OFF -DLLAMA_LLGUIDANCE=OFF >"$DEST/cmake-configure.log" 2>&1 \
            || { tail -40 "$DEST/cmake-configure.log" >&2; exit 1; }
    fi
    log "building ${TARGETS[*]} with -j$JOBS (log: $DEST/cmake-build.log)"
    nice -n 10 cmake --build "$BUILD" --config Release -j "$JOBS" --target "${TARGETS[@]}" \
        >"$DEST/cmake-build.log" 2>&1 \
        || { tail -40 "$DEST/cmake-build.log" >&2; exit 1; }
    log "built in $(( $(date +%s) - start )) s"
fi

for t in "${TARGETS[@]}"; do echo "$BUILD/bin/$t"; done
