#!/usr/bin/env bash
# Creates tools/.venv-privacy (git-ignored) for tools/make_privacy_reference.py: numpy + scipy
# pinned in tools/requirements-privacy.txt, plus the opacus 1.6.0 wheel from PyPI, downloaded with
# --no-deps, sha256-checked and unpacked (not installed) into tools/.venv-privacy/opacus-1.6.0/.
# Opacus's package __init__ imports torch; the generator loads only opacus.accountants from that
# folder under a stub top-level package, so torch is never needed. Idempotent: re-running on a
# ready venv only verifies it.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
VENV=.venv-privacy
OPACUS_VERSION=1.6.0
OPACUS_WHEEL=opacus-${OPACUS_VERSION}-py3-none-any.whl
OPACUS_SHA256=342123624c56c09d47eaba44010ed216d51c63132b543d67cba53a49ed6dc41e
OPACUS_DIR="$VENV/opacus-${OPACUS_VERSION}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "
import numpy, scipy
assert numpy.__version__ == '2.4.6', numpy.__version__
assert scipy.__version__ == '1.17.1', scipy.__version__
" 2>/dev/null; then
    "$VENV/bin/pip" install --disable-pip-version-check -q -r requirements-privacy.txt
fi

wheel_ok() { [ -f "$VENV/wheels/$OPACUS_WHEEL" ] &&
    echo "$OPACUS_SHA256  $VENV/wheels/$OPACUS_WHEEL" | sha256sum -c --status; }
if ! wheel_ok; then
    rm -rf "$VENV/wheels" "$OPACUS_DIR"
    "$VENV/bin/pip" download --disable-pip-version-check -q --no-deps --only-binary=:all: \
        -d "$VENV/wheels" "opacus==$OPACUS_VERSION"
    if ! wheel_ok; then
        echo "opacus wheel: sha256 mismatch (want $OPACUS_SHA256):" >&2
        sha256sum "$VENV/wheels/"* >&2 || true
        exit 1
    fi
fi
# The marker holds the wheel's sha; an unpack from another wheel (or a half-done one) is redone.
if [ "$(cat "$OPACUS_DIR/.wheel-sha256" 2>/dev/null)" != "$OPACUS_SHA256" ] ||
   [ ! -f "$OPACUS_DIR/opacus/accountants/analysis/prv/prvs.py" ]; then
    rm -rf "$OPACUS_DIR"
    "$VENV/bin/python" -m zipfile -e "$VENV/wheels/$OPACUS_WHEEL" "$OPACUS_DIR"
    echo "$OPACUS_SHA256" > "$OPACUS_DIR/.wheel-sha256"
fi
grep -qx "__version__ = \"$OPACUS_VERSION\"" "$OPACUS_DIR/opacus/version.py"
echo "privacy: tools/$VENV ($("$VENV/bin/python" -c 'import numpy, scipy; print("numpy", numpy.__version__, "scipy", scipy.__version__)'), opacus $OPACUS_VERSION unpacked in tools/$OPACUS_DIR)"
