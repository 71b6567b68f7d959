#!/usr/bin/env bash
# Create (or reuse) a separate venv with OpenStack Nova from PyPI, for the Nova differential
# tests (tests/nova/) and the device-spec benchmark (bench/spec_match.py).
#
#   scripts/nova-venv.sh            -> .cache/nova-venv (prints its python path on stdout)
#   NOVA_VENV=/path scripts/nova-venv.sh
#
# Nova is never a dependency of vfkeeper; this venv exists only to compare against it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NOVA_VENV:-$PWD/.cache/nova-venv}
PY=${PYTHON:-python3}
NOVA_SPEC=${NOVA_SPEC:-nova==34.0.0}  # the release the differential suite was last checked against
stamp="$VENV/.nova-stamp"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$NOVA_SPEC" ] \
    && "$VENV/bin/python" -c 'import nova.pci.devspec' 2>/dev/null; then
    echo "$VENV/bin/python"
    exit 0
fi
echo "[nova-venv] creating $VENV with $NOVA_SPEC (a few minutes the first time)" >&2
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >&2
"$VENV/bin/python" -m pip install -q "$NOVA_SPEC" >&2
"$VENV/bin/python" -c 'import nova.pci.devspec' >&2
echo "$NOVA_SPEC" >"$stamp"
echo "$VENV/bin/python"
