#!/usr/bin/env bash
# Instructions per operation, for one side of one operation, by callgrind: the difference of
# two runs with N1 and N2 operations, divided by N2 - N1 (start-up, connecting and closing
# cancel out). See PROFILING.md.
#
#   bash benches/compare/profile.sh OP [--server] [N1 N2]
#
# OP is one of `compare --client`'s operations (run `compare --client` without arguments for
# the list). Without --server the calling side (the `--client` process) is measured, with it
# the serving side. The callgrind files are left in target/profile/ for callgrind_annotate.
set -euo pipefail

usage() {
    echo "usage: bash benches/compare/profile.sh OP [--server] [N1 N2]" >&2
    exit 2
}

op=""
side=client
counts=()
for a in "$@"; do
    case "$a" in
        --server) side=server ;;
        -h | --help) usage ;;
        *) if [ -z "$op" ]; then op=$a; else counts+=("$a"); fi ;;
    esac
done
[ -n "$op" ] || usage
command -v valgrind >/dev/null || { echo "profile.sh needs valgrind (callgrind)" >&2; exit 3; }

case "$op" in
    connect | connect-early | tarpc-connect) defaults=(500 1500) ;;
    echo | echo-buf) defaults=(20 60) ;;
    pipelined) defaults=(20000 60000) ;;
    *) defaults=(2000 6000) ;;
esac
n1=${counts[0]:-${defaults[0]}}
n2=${counts[1]:-${defaults[1]}}
[ "$n2" -gt "$n1" ] || { echo "N2 ($n2) must be larger than N1 ($n1)" >&2; exit 2; }

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release -q --manifest-path benches/compare/Cargo.toml
exe=$root/benches/compare/target/release/compare
out=$root/target/profile
mkdir -p "$out"

# The server kind OP talks to, from the usage text's operation list.
kind=$("$exe" --client 2>&1 | awk -v op="$op" '$1 == op { print $2 }' || true)
[ -n "$kind" ] || { echo "unknown operation $op; the list:" >&2; "$exe" --client 2>&1 | sed -n '/^operations/,$p' >&2; exit 2; }

# Starts a server of $kind (under `$@`, e.g. valgrind) as a coprocess; sets $addr.
start_server() {
    coproc SERVER { exec "$@" "$exe" --server "$kind" 127.0.0.1:0 2>/dev/null; }
    local line=""
    # Under valgrind the server takes a few seconds to start.
    read -r -t 120 line <&"${SERVER[0]}" || true
    addr=${line#listening on }
    [ -n "$addr" ] && [ "$addr" != "$line" ] || { echo "the $kind server did not start" >&2; exit 1; }
}

# Closes the server's standard input (it exits, and callgrind writes its file) and waits.
stop_server() {
    local pid=$SERVER_PID
    exec {SERVER[1]}>&-
    wait "$pid" || true
}

total_ir() {
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

irs=()
for n in "$n1" "$n2"; do
    file=$out/callgrind.$op.$side.$n
    if [ "$side" = client ]; then
        start_server
        valgrind --tool=callgrind --callgrind-out-file="$file" "$exe" --client "$op" "$addr" "$n" >/dev/null 2>&1
        stop_server
    else
        start_server valgrind --tool=callgrind --callgrind-out-file="$file"
        "$exe" --client "$op" "$addr" "$n" >/dev/null
        stop_server
    fi
    ir=$(total_ir "$file")
    [ -n "$ir" ] || { echo "no instruction count in $file" >&2; exit 1; }
    irs+=("$ir")
done

per_op=$(( (irs[1] - irs[0]) / (n2 - n1) ))
echo "$op, $side side: $per_op instructions per operation (callgrind: ${irs[0]} for $n1, ${irs[1]} for $n2)"
echo "profiles: $out/callgrind.$op.$side.$n1 $out/callgrind.$op.$side.$n2 (callgrind_annotate FILE)"
