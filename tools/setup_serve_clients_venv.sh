#!/usr/bin/env bash
# Creates tools/.venv-clients (git-ignored) with tritonclient[http] and openai from PyPI, pinned in
# tools/requirements-serve-clients.txt, for tools/test_serve_clients.py. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv-clients/bin/python ]; then
    "$PYTHON" -m venv .venv-clients
fi
if ! .venv-clients/bin/python -c "import tritonclient.http, openai; assert openai.__version__ == '3.51.0'" 2>/dev/null; then
    .venv-clients/bin/pip install --disable-pip-version-check -q -r requirements-serve-clients.txt
fi
echo "serve clients: tools/.venv-clients (openai $(.venv-clients/bin/python -c 'import openai; print(openai.__version__)'))"
