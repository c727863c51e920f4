#!/usr/bin/env bash
# The fault suite as CI runs it (as root; without root or namespaces it falls back to loopback
# and says what it skipped): installs iproute2 and iptables if missing, builds the suite, runs
# every scenario under a time limit, and on exit — success, failure or timeout — deletes the
# namespaces of this run (by their prefix) after killing what still runs in them.
set -euo pipefail
cd "$(dirname "$0")/.."

# `kill` the program (not the shell builtin) sends SIGSTOP/SIGCONT to paused hosts.
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
type -P kill >/dev/null 2>&1 || missing+=(procps)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    # The suite still runs: without namespaces or iptables it says what it skipped and why.
    echo "WARNING: could not install ${missing[*]}"
  fi
fi

prefix="nrf$$-"
suite=""
cleanup() {
  # `timeout` leads its own process group (the suite and every host process it started):
  # end that group, then the run's namespaces with whatever still runs in them.
  if [ -n "$suite" ]; then
    kill -KILL -- "-$suite" 2>/dev/null || true
  fi
  command -v ip >/dev/null 2>&1 || return 0
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^$prefix" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
      kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

timeout 900 cargo build --quiet -p netref-faults --bin fault-suite
# Scenarios run at once; the longest (15 s detection, 10 s pause) take ~20 s each.
timeout --kill-after=10 300 "${CARGO_TARGET_DIR:-target}/debug/fault-suite" --prefix "$prefix" &
suite=$!
wait "$suite"
