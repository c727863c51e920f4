#!/usr/bin/env bash
# End-to-end self-test of the RPyC interop harness against stock rpyc 6.0.2 only:
#   1. set up the venv (setup-venv.sh)
#   2. start interop_service.py (stock server), run check_server.py against it
#   3. run stock_client_run.py through wire_check.py in front of the same server
#   4. run test_harness.py
# Stops everything it started (by PID, trap on exit). Exits non-zero on any failure.
name=selftest
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$here"
start_time=$SECONDS

failures=()

start server "$py" -u interop_service.py 127.0.0.1:0
addr="$(wait_listening server "$started")" || exit 1
echo "== stock interop_service.py listening on $addr"

echo "== check_server.py $addr"
if ! timeout 150 "$py" check_server.py "$addr"; then failures+=("check_server.py"); fi

echo "== stock_client_run.py through wire_check.py"
start relay "$py" -u wire_check.py --listen 127.0.0.1:0 --upstream "$addr" --expect-held 1 \
    --report "$work/wire_report.json"
relay_pid=$started
if raddr="$(wait_listening relay "$relay_pid")"; then
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
