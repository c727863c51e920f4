#!/usr/bin/env bash
# RPyC 6.0.2 side of the netref comparison (see bench_rpyc.py for the figures).
#
#   benches/rpyc/run.sh [--runs N] [--quick] [--pinned]
#
# Uses the interop harness's virtualenv with rpyc==6.0.2 (interop/rpyc/setup-venv.sh, under
# target/) and runs bench_rpyc.py (client here, ThreadedServer in a child process) over loopback
# TCP. netref's RPyC dialect against stock rpyc, side by side: interop.sh.
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

py="$(bash "$here/../../interop/rpyc/setup-venv.sh" | tail -n 1)"

echo "# mode: $([ "$pinned" = 1 ] && echo 'pinned (taskset -c 0)' || echo unpinned)"
timeout --kill-after=5 150 "${prefix[@]}" "$py" "$here/bench_rpyc.py" "${args[@]}"
