# Sourced (never run) by the interop/rpyc/run-*.sh scripts: what each of them needs around its
# checks. It sets `here` (this folder), `root` (the repository), `work` (a scratch directory) and
# `py` (the virtualenv's python, from setup-venv.sh), and stops every process started with
# `start` (by PID) and removes `work` when the script exits. It starts nothing by itself.
# The sourcing script sets `name` (its name in messages) first.

set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
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

py="$("$here/setup-venv.sh" | tail -n 1)" || { echo "$name: venv setup failed" >&2; exit 2; }
[ -x "$py" ] || { echo "$name: no python from setup-venv.sh" >&2; exit 2; }

# build_example EXAMPLE: a release build of examples/EXAMPLE; sets `bin` to its path.
build_example() {
    echo "== building examples/$1 (release)"
    (cd "$root" && cargo build --release --example "$1") || exit 2
    bin="$root/target/release/examples/$1"
}

# start TAG COMMAND...: runs COMMAND in the background, stdout to $work/TAG.out and stderr to
# $work/TAG.err; sets `started` to its PID, which the exit trap stops.
start() {
    local tag="$1"
    shift
    "$@" >"$work/$tag.out" 2>"$work/$tag.err" &
    started=$!
    pids+=("$started")
}

# stop PID: stops a process started with `start` now.
stop() {
    kill "$1" 2>/dev/null && wait "$1" 2>/dev/null
}

# wait_listening TAG PID: prints HOST:PORT once $work/TAG.out's first line is
# "listening on HOST:PORT"; else (10 s, or the process ended) says so with its stderr, returns 1.
wait_listening() {
    local tag="$1" pid="$2" line
    for _ in $(seq 1 100); do
        line="$(head -n 1 "$work/$tag.out" 2>/dev/null)"
        case "$line" in
            "listening on "*) echo "${line#listening on }"; return 0 ;;
        esac
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name: $tag printed no 'listening on' line" >&2
    tail -n 40 "$work/$tag.err" >&2
    return 1
}
