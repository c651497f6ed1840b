#!/usr/bin/env bash
# Creates tools/.venv-fairness (git-ignored) with fairlearn 0.15.0 and pandas / numpy / scikit-learn /
# scipy from PyPI, pinned in tools/requirements-fairness.txt, for tools/make_fairness_reference.py.
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv-fairness/bin/python ]; then
    "$PYTHON" -m venv .venv-fairness
fi
if ! .venv-fairness/bin/python -c "import fairlearn, pandas, sklearn; assert fairlearn.__version__ == '0.15.0' and pandas.__version__ == '3.1.1' and sklearn.__version__ == '1.9.1'" 2>/dev/null; then
    .venv-fairness/bin/pip install --disable-pip-version-check -q -r requirements-fairness.txt
fi
echo "fairness: tools/.venv-fairness (fairlearn $(.venv-fairness/bin/python -c 'import fairlearn; print(fairlearn.__version__)'), pandas $(.venv-fairness/bin/python -c 'import pandas; print(pandas.__version__)'))"
