#!/usr/bin/env bash
# Creates tools/.venv-tb (git-ignored) with TensorBoard 2.21 from PyPI, pinned in
# tools/requirements-tensorboard.txt: enough to read event files, no TensorFlow. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv-tb/bin/python ]; then
    "$PYTHON" -m venv .venv-tb
fi
if ! .venv-tb/bin/python -c "import tensorboard; assert tensorboard.__version__ == '2.21.0'" 2>/dev/null; then
    .venv-tb/bin/pip install --disable-pip-version-check -q -r requirements-tensorboard.txt
fi
echo "tensorboard: tools/.venv-tb ($(.venv-tb/bin/python -c 'import tensorboard; print(tensorboard.__version__)'))"
