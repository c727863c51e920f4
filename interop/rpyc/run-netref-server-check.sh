#!/usr/bin/env bash
# A stock rpyc 6.0.2 client against netref's RPyC dialect:
#   1. set up the venv (setup-venv.sh)
#   2. build and start `examples/rpyc_interop_server` (the contract's interop service, RPyC wire)
#   3. run check_server.py against it (every member, all 20 handlers, the §4 garbage cases)
# Stops the server it started (by PID, trap on exit). Exits non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
server_pid=""

cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

py="$("$here/setup-venv.sh" | tail -n 1)" || { echo "netref-server-check: venv setup failed" >&2; exit 2; }
[ -x "$py" ] || { echo "netref-server-check: no python from setup-venv.sh" >&2; exit 2; }

echo "== building examples/rpyc_interop_server (release)"
(cd "$root" && cargo build --release --example rpyc_interop_server) || exit 2
bin="$root/target/release/examples/rpyc_interop_server"

"$bin" 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

addr=""
for _ in $(seq 1 100); do
    line="$(head -n 1 "$work/server.out" 2>/dev/null)"
    case "$line" in
        "listening on "*) addr="${line#listening on }"; break ;;
    esac
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "netref-server-check: rpyc_interop_server printed no 'listening on' line" >&2
    cat "$work/server.err" >&2
    exit 1
fi
echo "== rpyc_interop_server listening on $addr"

echo "== check_server.py $addr"
timeout 150 "$py" "$here/check_server.py" "$addr"
status=$?
if [ "$status" -ne 0 ]; then
    echo "netref-server-check: check_server.py failed (exit $status); server stderr:" >&2
    tail -n 40 "$work/server.err" >&2
    exit 1
fi
echo "netref-server-check: all checks passed"
