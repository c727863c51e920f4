#!/usr/bin/env bash
# netref's RPyC dialect as a client against stock rpyc 6.0.2:
#   1. set up the venv (setup-venv.sh)
#   2. start interop_service.py (stock ThreadedServer) and wire_check.py in front of it
#   3. build and run `examples/rpyc_interop_client` against the relay
# The relay decodes both directions and checks the client's wire (frames decode, every server
# request answered once, no stray replies, unique seqs, no over-release, only the root held at
# the end, PING answered, clean CLOSE). Stops what it started (by PID). Non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
pids=()

cleanup() {
    for pid in "${pids[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

py="$("$here/setup-venv.sh" | tail -n 1)" || { echo "netref-client-check: venv setup failed" >&2; exit 2; }
[ -x "$py" ] || { echo "netref-client-check: no python from setup-venv.sh" >&2; exit 2; }

echo "== building examples/rpyc_interop_client (release)"
(cd "$root" && cargo build --release --example rpyc_interop_client) || exit 2
bin="$root/target/release/examples/rpyc_interop_client"

# wait_listening FILE PID -> prints HOST:PORT from the first line "listening on HOST:PORT"
wait_listening() {
    local file="$1" pid="$2" line
    for _ in $(seq 1 100); do
        line="$(head -n 1 "$file" 2>/dev/null)"
        case "$line" in
            "listening on "*) echo "${line#listening on }"; return 0 ;;
        esac
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "netref-client-check: $file: no 'listening on' line" >&2
    return 1
}

"$py" -u "$here/interop_service.py" 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
pids+=("$server_pid")
addr="$(wait_listening "$work/server.out" "$server_pid")" || { cat "$work/server.err" >&2; exit 1; }

"$py" -u "$here/wire_check.py" --listen 127.0.0.1:0 --upstream "$addr" --expect-held 1 \
    --report "$work/report.json" >"$work/relay.out" 2>"$work/relay.err" &
relay_pid=$!
pids+=("$relay_pid")
raddr="$(wait_listening "$work/relay.out" "$relay_pid")" || { cat "$work/relay.err" >&2; exit 1; }
echo "== rpyc_interop_client -> wire_check.py $raddr -> interop_service.py $addr"

failures=()
if ! timeout 60 "$bin" "$raddr"; then failures+=("rpyc_interop_client"); fi
# The relay writes its report and exits when the client disconnects.
for _ in $(seq 1 50); do
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
done
kill "$relay_pid" 2>/dev/null
wait "$relay_pid"
relay_status=$?
cat "$work/relay.out"
if [ "$relay_status" -ne 0 ]; then failures+=("wire_check.py (exit $relay_status)"); fi

if [ "${#failures[@]}" -ne 0 ]; then
    echo "netref-client-check: FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "netref-client-check: all checks passed"
