#!/usr/bin/env bash
# User and system CPU time per operation, for each side of one operation: runs
# `compare --server KIND` and `compare --client OP ADDR N` under /usr/bin/time and divides
# what each process spent by N (start-up included: keep N large, a few thousand). Prints
# one line: wall time, then user / system µs, context switches (involuntary / voluntary) per
# operation for the calling and the serving side. See PROFILING.md.
#
#   bash benches/compare/cpu.sh OP N [--pinned]
#
# OP is one of `compare --client`'s operations; --pinned runs both processes on CPU 1.
set -euo pipefail

usage() {
    echo "usage: bash benches/compare/cpu.sh OP N [--pinned]" >&2
    exit 2
}

op=""
n=""
pin=()
for a in "$@"; do
    case "$a" in
        --pinned) pin=(taskset -c 1) ;;
        -h | --help) usage ;;
        *) if [ -z "$op" ]; then op=$a; elif [ -z "$n" ]; then n=$a; else usage; fi ;;
    esac
done
[ -n "$op" ] && [ -n "$n" ] || usage
[ -x /usr/bin/time ] || { echo "cpu.sh needs /usr/bin/time (GNU time)" >&2; exit 3; }

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release -q --manifest-path benches/compare/Cargo.toml
exe=$root/benches/compare/target/release/compare
kind=$("$exe" --client 2>&1 | awk -v op="$op" '$1 == op { print $2 }' || true)
[ -n "$kind" ] || { echo "unknown operation $op; the list:" >&2; "$exe" --client 2>&1 | sed -n '/^operations/,$p' >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/in" "$dir/out"
# The server runs until its standard input closes; its first line says where it listens.
/usr/bin/time -o "$dir/server" -f "%U %S %c %w" "${pin[@]}" "$exe" --server "$kind" 127.0.0.1:0 \
    <"$dir/in" >"$dir/out" 2>/dev/null &
server=$!
exec 8>"$dir/in" 7<"$dir/out"
line=""
read -r -t 30 line <&7 || true
addr=${line#listening on }
[ -n "$addr" ] && [ "$addr" != "$line" ] || { echo "the $kind server did not start" >&2; exit 1; }

start=$(date +%s%N)
/usr/bin/time -o "$dir/client" -f "%U %S %c %w" "${pin[@]}" "$exe" --client "$op" "$addr" "$n" >/dev/null
end=$(date +%s%N)
exec 8>&-
wait "$server"
exec 7<&-

read -r cu cs cc cw <"$dir/client"
read -r su ss sc sw <"$dir/server"
awk -v n="$n" -v op="$op" -v ns=$((end - start)) -v cu="$cu" -v cs="$cs" -v cc="$cc" -v cw="$cw" \
    -v su="$su" -v ss="$ss" -v sc="$sc" -v sw="$sw" 'BEGIN {
    printf "%s: wall %.1f us/op; client user %.1f sys %.1f us/op, switches %.2f+%.2f; server user %.1f sys %.1f us/op, switches %.2f+%.2f\n",
        op, ns / 1000 / n, cu * 1e6 / n, cs * 1e6 / n, cc / n, cw / n, su * 1e6 / n, ss * 1e6 / n, sc / n, sw / n
}'
