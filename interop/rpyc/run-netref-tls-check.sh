#!/usr/bin/env bash
# A stock rpyc 6.0.2 client over TLS (rpyc.ssl_connect) against netref's RPyC dialect:
#   1. set up the venv (setup-venv.sh)
#   2. make a throwaway self-signed certificate for 127.0.0.1 in a temp dir: with the openssl
#      command, else with Python's `cryptography` (installed into the venv for it)
#   3. build and start `examples/rpyc_interop_server --tls-cert .. --tls-key ..` without an ADDR,
#      and check that its default address is loopback
#   4. run check_server.py --ssl-ca against it: every member, all 20 handlers and the §4 garbage
#      cases, every connection over TLS (stock clients with rpyc.ssl_connect(host, port, ca_certs=..))
#   5. a plaintext stock client (rpyc.connect) against the TLS listener fails at once
# Stops the server it started (by PID, trap on exit). Exits non-zero on any failure.
name=netref-tls-check
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cert="$work/cert.pem"
key="$work/key.pem"
if command -v openssl >/dev/null 2>&1 && [ "${NETREF_TEST_CERT_TOOL:-openssl}" = openssl ]; then
    echo "== a throwaway self-signed certificate for 127.0.0.1 (openssl)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$key" -out "$cert" >"$work/openssl.log" 2>&1 \
        || { cat "$work/openssl.log" >&2; echo "$name: openssl could not make a certificate" >&2; exit 2; }
else
    echo "== a throwaway self-signed certificate for 127.0.0.1 (Python's cryptography package)"
    "$py" -c "import cryptography" 2>/dev/null \
        || "$py" -m pip install --disable-pip-version-check --no-input -q cryptography >&2 \
        || { echo "$name: no openssl command, and pip could not install cryptography" >&2; exit 2; }
    "$py" "$here/make_test_cert.py" "$cert" "$key" || { echo "$name: make_test_cert.py failed" >&2; exit 2; }
fi

build_example rpyc_interop_server
# No ADDR: the example's default must be loopback.
start server "$bin" --tls-cert "$cert" --tls-key "$key"
addr="$(wait_listening server "$started")" || exit 1
case "$addr" in
    127.0.0.1:*) echo "== rpyc_interop_server (TLS) listening on $addr: loopback by default" ;;
    *) echo "$name: without an ADDR the example listens on $addr, not on loopback" >&2; exit 1 ;;
esac

status=0
echo "== check_server.py --ssl-ca (a throwaway CA) $addr"
if ! timeout 150 "$py" "$here/check_server.py" --ssl-ca "$cert" "$addr"; then
    echo "$name: check_server.py over TLS failed; server stderr:" >&2
    tail -n 40 "$work/server.err" >&2
    status=1
fi

echo "== a plaintext stock client (rpyc.connect) against the TLS listener"
if ! timeout 30 "$py" "$here/wrong_listener.py" "$addr" --expect EOFError --what "plaintext client on a TLS listener"; then
    status=1
fi

if [ "$status" -ne 0 ]; then
    exit 1
fi
echo "$name: all checks passed"
