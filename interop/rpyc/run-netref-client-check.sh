#!/usr/bin/env bash
# netref's RPyC dialect as a client against stock rpyc 6.0.2:
#   1. set up the venv (setup-venv.sh)
#   2. start interop_service.py (stock ThreadedServer) and wire_check.py in front of it
#   3. build and run `examples/rpyc_interop_client` against the relay
# The relay decodes both directions and checks the client's wire (frames decode, every server
# request answered once, no stray replies, unique seqs, no over-release, only the root held at
# the end, PING answered, clean CLOSE). Stops what it started (by PID). Non-zero on any failure.
name=netref-client-check
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_example rpyc_interop_client

start server "$py" -u "$here/interop_service.py" 127.0.0.1:0
addr="$(wait_listening server "$started")" || exit 1

start relay "$py" -u "$here/wire_check.py" --listen 127.0.0.1:0 --upstream "$addr" --expect-held 1 \
    --report "$work/report.json"
relay_pid=$started
raddr="$(wait_listening relay "$relay_pid")" || exit 1
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
    echo "$name: FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "$name: all checks passed"
