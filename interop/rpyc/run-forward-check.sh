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
name=forward-check
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_example rpyc_forward_hop
start hop "$bin" 127.0.0.1:0
hop_pid=$started
addr="$(wait_listening hop "$hop_pid")" || exit 1
echo "== rpyc_forward_hop listening on $addr"

echo "== forward_check.py $addr"
timeout 120 "$py" "$here/forward_check.py" "$addr"
status=$?
if [ "$status" -ne 0 ]; then
    echo "$name: forward_check.py failed (exit $status); stderr of rpyc_forward_hop:" >&2
    tail -n 40 "$work/hop.err" >&2
    exit 1
fi
if ! kill -0 "$hop_pid" 2>/dev/null; then
    echo "$name: rpyc_forward_hop exited during the check" >&2
    exit 1
fi
stop "$hop_pid"

echo "== the reverse: a native client -> netref middle -> stock interop_service.py"
start owner "$py" -u "$here/interop_service.py" 127.0.0.1:0
owner="$(wait_listening owner "$started")" || exit 1
if ! timeout 60 "$bin" --stock-owner "$owner"; then
    echo "$name: rpyc_forward_hop --stock-owner failed; stderr of interop_service.py:" >&2
    tail -n 40 "$work/owner.err" >&2
    exit 1
fi
echo "$name: all checks passed"
