#!/usr/bin/env bash
# A stock rpyc 6.0.2 client that reaches a NATIVE netref listener by mistake:
#   1. set up the venv (setup-venv.sh)
#   2. build and start `examples/calculator_server` (netref's native wire) on 127.0.0.1:0
#   3. wrong_listener.py: the stock client's first request fails at once with
#      `EOFError: connection closed by peer` (the native side recognises the RPyC 6 request,
#      logs a warning naming `.rpyc()`, and closes without a frame the client would misread)
# Stops the server it started (by PID, trap on exit). Exits non-zero on any failure.
name=native-listener-check
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_example calculator_server
start server "$bin" 127.0.0.1:0
addr="$(wait_listening server "$started")" || exit 1
echo "== calculator_server (native wire) listening on $addr"

echo "== a stock client (rpyc.connect) against the native listener"
if ! timeout 30 "$py" "$here/wrong_listener.py" "$addr" --expect EOFError --what "stock client on a native listener"; then
    exit 1
fi
echo "$name: all checks passed"
