#!/usr/bin/env bash
# The `netref` inspector (cli/) with --rpyc against a stock rpyc 6.0.2 server
# (interop_service.py): ping, ls, dir, get, call (exact big ints, kwargs), a remote exception's
# exit code and traceback. Stops what it started (by PID). Non-zero on any failure.
name=cli-check
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

echo "== building the netref binary (cli/)"
(cd "$root" && cargo build -p netref-cli) || exit 2
bin="$root/target/debug/netref"

start server "$py" -u "$here/interop_service.py" 127.0.0.1:0
addr="$(wait_listening server "$started")" || exit 1
echo "== netref --rpyc against stock rpyc at $addr"

failures=()
# check NAME EXPECTED_EXIT EXPECTED_STDOUT_SUBSTRING ARGS...
check() {
    local name="$1" want_code="$2" want="$3"
    shift 3
    local out code
    out="$(NO_COLOR=1 timeout 30 "$bin" --rpyc --timeout 10s "$@" 2>&1)"
    code=$?
    if [ "$code" -ne "$want_code" ] || [[ "$out" != *"$want"* ]]; then
        echo "FAIL $name: exit $code (want $want_code), output:" >&2
        echo "$out" >&2
        failures+=("$name")
    else
        echo "ok   $name"
    fi
}

check ping 0 "pong from $addr" ping "$addr"
check ls 0 "add" ls "$addr"
check dir 0 "echo" dir "$addr"
check get-answer 0 "42" get "$addr" answer
check call-add 0 "3" call "$addr" add 1 2
check call-bigint 0 "340282366920938463463374607431768211457" call "$addr" add 340282366920938463463374607431768211456 1
check call-echo-tuple 0 '{"$tuple":[1,"x",{"$bytes":"AAH/"}]}' call "$addr" echo '{"$tuple":[1,"x",{"$bytes":"AAH/"}]}'
check call-kwargs 1 "KeyError" call "$addr" fail --kw kind='"key"'
check remote-traceback 1 "Remote Traceback" -v call "$addr" fail
check remote-error 1 "ValueError" call "$addr" fail

if [ "${#failures[@]}" -ne 0 ]; then
    echo "$name: FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "$name: all checks passed"
