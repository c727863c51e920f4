#!/usr/bin/env bash
# RPyC 6.0.2 side of the netref comparison (see bench_rpyc.py for the figures).
#
#   benches/rpyc/run.sh [--runs N] [--quick] [--pinned]
#
# Creates a throwaway virtualenv, installs rpyc==6.0.2 from the package index, and runs
# bench_rpyc.py (client here, ThreadedServer in a child process) over loopback TCP.
# --pinned runs client and server on CPU 0 (taskset, util-linux). Bounded: 150 s at most.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

pinned=0
args=()
for a in "$@"; do
  case "$a" in
    --pinned) pinned=1 ;;
    *) args+=("$a") ;;
  esac
done

prefix=()
if [ "$pinned" = 1 ]; then
  if ! command -v taskset >/dev/null 2>&1; then
    echo "--pinned needs taskset (util-linux), which is not installed" >&2
    exit 3
  fi
  prefix=(taskset -c 0)
fi

venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check rpyc==6.0.2

echo "# mode: $([ "$pinned" = 1 ] && echo 'pinned (taskset -c 0)' || echo unpinned)"
timeout --kill-after=5 150 "${prefix[@]}" "$venv/bin/python" "$here/bench_rpyc.py" "${args[@]}"
