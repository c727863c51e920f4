#!/usr/bin/env bash
# Create (idempotently) the Python virtualenv used by the RPyC interop harness.
# The venv lives at <repo>/target/rpyc-venv (target/ is git-ignored).
# Prints the venv's python path on stdout (last line). Exits non-zero with a message on failure.
set -euo pipefail

RPYC_VERSION="6.0.2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/target/rpyc-venv"
py="$venv/bin/python"
PYTHON3="${PYTHON3:-python3}"

have_rpyc() {
    [ -x "$py" ] && "$py" -c "import rpyc, sys; sys.exit(0 if rpyc.__version__ == '$RPYC_VERSION' else 1)" >/dev/null 2>&1
}

if have_rpyc; then
    echo "$py"
    exit 0
fi

if ! command -v "$PYTHON3" >/dev/null 2>&1; then
    echo "setup-venv: $PYTHON3 not found; install Python 3 (with the venv module)" >&2
    exit 2
fi

mkdir -p "$repo/target"
if [ ! -x "$py" ]; then
    if ! "$PYTHON3" -m venv "$venv" >&2; then
        echo "setup-venv: '$PYTHON3 -m venv $venv' failed (is the python3-venv package installed?)" >&2
        rm -rf "$venv"
        exit 2
    fi
fi

if ! "$py" -m pip install --disable-pip-version-check --no-input -q "rpyc==$RPYC_VERSION" >&2; then
    echo "setup-venv: pip could not install rpyc==$RPYC_VERSION into $venv (no access to the package index?)" >&2
    exit 3
fi

if ! have_rpyc; then
    echo "setup-venv: rpyc==$RPYC_VERSION is still not importable from $py" >&2
    exit 3
fi
echo "$py"
