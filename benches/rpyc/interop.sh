#!/usr/bin/env bash
# RPyC interop benchmark: netref's RPyC dialect against stock rpyc 6.0.2, side by side in one run.
#
#   bash benches/rpyc/interop.sh [--pinned] [--runs N] [--block SECONDS] [--blocks N]
#
# Builds `rpyc_interop_server` and `rpyc_bench_client` (release), makes the interop virtualenv
# (interop/rpyc/setup-venv.sh), then runs bench_interop.py: a stock Python client against the
# netref server and against the stock ThreadedServer, and the netref client against the stock
# server, in short blocks taking turns (figures and targets: bench_interop.py, results:
# benches/rpyc-interop.md). --pinned puts every process on CPU 0 (taskset, util-linux).
# Loopback only. Defaults: 5 runs, each 5 blocks of 0.2 s per client and figure, about a
# minute; bounded at 300 s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

pinned=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --pinned) pinned=1 ;;
    --runs|--block|--blocks)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      args+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

prefix=()
mode=unpinned
if [ "$pinned" = 1 ]; then
  if ! command -v taskset >/dev/null 2>&1; then
    echo "--pinned needs taskset (util-linux), which is not installed" >&2
    exit 3
  fi
  prefix=(taskset -c 0)
  mode=pinned
fi

py="$(bash "$repo/interop/rpyc/setup-venv.sh" | tail -n 1)"
(cd "$repo" && cargo build --quiet --release --example rpyc_interop_server --example rpyc_bench_client)
target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps | "$py" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); uptime:$(uptime | sed 's/.*up/ up/')"
timeout --kill-after=5 300 "${prefix[@]}" "$py" "$here/bench_interop.py" \
  --netref-server "$target_dir/release/examples/rpyc_interop_server" \
  --netref-client "$target_dir/release/examples/rpyc_bench_client" \
  --stock-server "$repo/interop/rpyc/interop_service.py" \
  --mode "$mode" "${args[@]}"
