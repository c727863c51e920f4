#!/usr/bin/env bash
# A stock rpyc 6.0.2 client against netref's RPyC dialect:
#   1. set up the venv (setup-venv.sh)
#   2. build and start `examples/rpyc_interop_server` (the contract's interop service, RPyC wire)
#   3. run check_server.py against it (every member, all 20 handlers, the §4 garbage cases)
# Stops the server it started (by PID, trap on exit). Exits non-zero on any failure.
name=netref-server-check
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_example rpyc_interop_server
start server "$bin" 127.0.0.1:0
addr="$(wait_listening server "$started")" || exit 1
echo "== rpyc_interop_server listening on $addr"

echo "== check_server.py $addr"
if ! timeout 150 "$py" "$here/check_server.py" "$addr"; then
    echo "$name: check_server.py failed; server stderr:" >&2
    tail -n 40 "$work/server.err" >&2
    exit 1
fi
echo "$name: all checks passed"
