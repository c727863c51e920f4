#!/usr/bin/env bash
# A stock rpyc 6.0.2 client that reaches a NATIVE netref listener by mistake:
#   1. set up the venv (setup-venv.sh)
#   2. build and start `examples/calculator_server` (netref's native wire) on 127.0.0.1:0
#   3. wrong_listener.py: the stock client's first request fails at once with
#      `EOFError: connection closed by peer` (the native side recognises the RPyC 6 request,
#      logs a warning naming `.rpyc()`, and closes without a frame the client would misread)
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

py="$("$here/setup-venv.sh" | tail -n 1)" || { echo "native-listener-check: venv setup failed" >&2; exit 2; }
[ -x "$py" ] || { echo "native-listener-check: no python from setup-venv.sh" >&2; exit 2; }

echo "== building examples/calculator_server (release)"
(cd "$root" && cargo build --release --example calculator_server) || exit 2
bin="$root/target/release/examples/calculator_server"

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
    echo "native-listener-check: calculator_server printed no 'listening on' line" >&2
    cat "$work/server.err" >&2
    exit 1
fi
echo "== calculator_server (native wire) listening on $addr"

echo "== a stock client (rpyc.connect) against the native listener"
if ! timeout 30 "$py" "$here/wrong_listener.py" "$addr" --expect EOFError --what "stock client on a native listener"; then
    exit 1
fi
echo "native-listener-check: all checks passed"
