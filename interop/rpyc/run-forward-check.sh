#!/usr/bin/env bash
# Forwarding across dialects, with a stock rpyc 6.0.2 client:
#   1. set up the venv (setup-venv.sh)
#   2. build and start `examples/rpyc_forward_hop` (a netref front speaking RPyC, forwarding a
#      native netref backend's object; both in one process)
#   3. run forward_check.py against the front (calls through the hop, a Python callback reaching
#      the backend and back, exception types, identity, a release observed at the backend,
#      expiry, PICKLE refused, the close freeing what the client held)
#   4. the reverse: start interop_service.py (a stock rpyc server) and run
#      `rpyc_forward_hop --stock-owner` against it (a native netref client reaching the Python
#      object through a netref middle that speaks RPyC to it)
# Stops the processes it started (by PID, trap on exit). Exits non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
hop_pid=""
owner_pid=""

cleanup() {
    for pid in "$hop_pid" "$owner_pid"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

py="$("$here/setup-venv.sh" | tail -n 1)" || { echo "forward-check: venv setup failed" >&2; exit 2; }
[ -x "$py" ] || { echo "forward-check: no python from setup-venv.sh" >&2; exit 2; }

echo "== building examples/rpyc_forward_hop (release)"
(cd "$root" && cargo build --release --example rpyc_forward_hop) || exit 2
bin="$root/target/release/examples/rpyc_forward_hop"

"$bin" 127.0.0.1:0 >"$work/hop.out" 2>"$work/hop.err" &
hop_pid=$!

addr=""
for _ in $(seq 1 100); do
    line="$(head -n 1 "$work/hop.out" 2>/dev/null)"
    case "$line" in
        "listening on "*) addr="${line#listening on }"; break ;;
    esac
    kill -0 "$hop_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "forward-check: rpyc_forward_hop printed no 'listening on' line" >&2
    cat "$work/hop.err" >&2
    exit 1
fi
echo "== rpyc_forward_hop listening on $addr"

echo "== forward_check.py $addr"
timeout 120 "$py" "$here/forward_check.py" "$addr"
status=$?
if [ "$status" -ne 0 ]; then
    echo "forward-check: forward_check.py failed (exit $status); stderr of rpyc_forward_hop:" >&2
    tail -n 40 "$work/hop.err" >&2
    exit 1
fi
if ! kill -0 "$hop_pid" 2>/dev/null; then
    echo "forward-check: rpyc_forward_hop exited during the check" >&2
    exit 1
fi
kill "$hop_pid" 2>/dev/null && wait "$hop_pid" 2>/dev/null
hop_pid=""

echo "== the reverse: a native client -> netref middle -> stock interop_service.py"
"$py" -u "$here/interop_service.py" 127.0.0.1:0 >"$work/owner.out" 2>"$work/owner.err" &
owner_pid=$!
owner=""
for _ in $(seq 1 100); do
    line="$(head -n 1 "$work/owner.out" 2>/dev/null)"
    case "$line" in
        "listening on "*) owner="${line#listening on }"; break ;;
    esac
    kill -0 "$owner_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$owner" ]; then
    echo "forward-check: interop_service.py printed no 'listening on' line" >&2
    cat "$work/owner.err" >&2
    exit 1
fi
if ! timeout 60 "$bin" --stock-owner "$owner"; then
    echo "forward-check: rpyc_forward_hop --stock-owner failed; stderr of interop_service.py:" >&2
    tail -n 40 "$work/owner.err" >&2
    exit 1
fi
echo "forward-check: all checks passed"
