#!/usr/bin/env bash
# Create tools/.venv with a CPU-only PyTorch + numpy, from PyPI only.
#
# The PyPI torch wheel for Linux x86_64 is a CUDA build whose normal install
# pulls ~3 GB of nvidia-*/cuda-toolkit wheels. We instead install it with
# --no-deps plus its small pure-Python deps, then build tiny stub libraries
# for the missing CUDA .so files (tools/torch_cpu_stubs.py) so `import torch`
# works; CPU ops (MKL/oneDNN) are unaffected, torch.cuda.is_available() is
# False. Needs: python3.11-compatible interpreter, gcc, binutils (readelf).
#
# Idempotent: re-running with everything in place only re-verifies.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements-torch.txt"
PYTHON="${PYTHON:-python3}"
torch_pin="$(grep -E '^torch==' "$req" | cut -d= -f3)"
py="$venv/bin/python"

verify() {
    "$py" - "$torch_pin" <<'PY'
import sys
import torch, numpy
want = sys.argv[1]
assert torch.__version__.split("+")[0] == want, (torch.__version__, want)
v = torch.randn(3) @ torch.randn(3)
assert v.dim() == 0
print(f"torch {torch.__version__} numpy {numpy.__version__} "
      f"threads={torch.get_num_threads()} cuda={torch.cuda.is_available()} "
      f"dot={float(v):.4f}")
PY
}

print_pins() {
    echo "pinned (tools/requirements-torch.txt; torch installed with --no-deps + CUDA stubs):"
    sed -n 's/^\([A-Za-z0-9_.-]*==.*\)$/  \1/p' "$req"
}

if [ -x "$py" ] && verify >/dev/null 2>&1; then
    echo "tools/.venv already set up:"
    print_pins
    verify
    exit 0
fi

[ -x "$py" ] || "$PYTHON" -m venv "$venv"
pip=("$py" -m pip install --disable-pip-version-check -q)

# 1. the pure-Python deps + numpy (everything in the file except torch)
grep -vE '^(torch==|#|$)' "$req" > "$venv/deps.txt"
"${pip[@]}" -r "$venv/deps.txt"

# 2. torch without its CUDA dependency wheels
have="$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
if [ "$have" != "$torch_pin" ]; then
    "${pip[@]}" --no-deps "torch==$torch_pin"
fi

# 3. stub out the missing CUDA shared libraries
"$py" "$here/torch_cpu_stubs.py"

print_pins
verify
