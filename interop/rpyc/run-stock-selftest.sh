#!/usr/bin/env bash
# End-to-end self-test of the RPyC interop harness against stock rpyc 6.0.2 only:
#   1. set up the venv (setup-venv.sh)
#   2. start interop_service.py (stock server), run check_server.py against it
#   3. run stock_client_run.py through wire_check.py in front of the same server
#   4. run test_harness.py
# Stops everything it started (by PID, trap on exit). Exits non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
start_time=$SECONDS
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

py="$("$here/setup-venv.sh" | tail -n 1)" || { echo "selftest: venv setup failed" >&2; exit 2; }
[ -x "$py" ] || { echo "selftest: no python from setup-venv.sh" >&2; exit 2; }

# wait_listening FILE PID -> prints HOST:PORT from the first line "listening on HOST:PORT"
wait_listening() {
    local file="$1" pid="$2" i line
    for i in $(seq 1 100); do
        line="$(head -n 1 "$file" 2>/dev/null)"
        case "$line" in
            "listening on "*) echo "${line#listening on }"; return 0 ;;
        esac
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "selftest: $file: no 'listening on' line" >&2
    return 1
}

failures=()

"$py" -u interop_service.py 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
pids+=("$server_pid")
addr="$(wait_listening "$work/server.out" "$server_pid")" || { cat "$work/server.err" >&2; exit 1; }
echo "== stock interop_service.py listening on $addr"

echo "== check_server.py $addr"
if ! timeout 150 "$py" check_server.py "$addr"; then failures+=("check_server.py"); fi

echo "== stock_client_run.py through wire_check.py"
"$py" -u wire_check.py --listen 127.0.0.1:0 --upstream "$addr" --expect-held 1 \
    --report "$work/wire_report.json" >"$work/relay.out" 2>"$work/relay.err" &
relay_pid=$!
pids+=("$relay_pid")
if raddr="$(wait_listening "$work/relay.out" "$relay_pid")"; then
    if ! timeout 60 "$py" stock_client_run.py "$raddr"; then failures+=("stock_client_run.py"); fi
    if wait "$relay_pid"; then relay_rc=0; else relay_rc=$?; fi
    sed -n '/^PASS\|^FAIL\|^client\|^server\|^wire check/p' "$work/relay.out"
    [ "$relay_rc" -eq 0 ] || { failures+=("wire_check.py (exit $relay_rc)"); cat "$work/relay.err" >&2; }
else
    failures+=("wire_check.py did not start")
fi

echo "== test_harness.py"
if ! timeout 120 "$py" test_harness.py; then failures+=("test_harness.py"); fi

echo "== self-test took $((SECONDS - start_time))s"
if [ "${#failures[@]}" -ne 0 ]; then
    echo "SELFTEST FAILED: ${failures[*]}"
    exit 1
fi
echo "SELFTEST OK"
