#!/usr/bin/env bash
# Runs every fuzz target of fuzz/Cargo.toml for a bounded time, two at once, with the nightly
# toolchain (or stable with RUSTC_BOOTSTRAP=1 when nightly is missing; the output says which).
# Installs cargo-fuzz if it is missing. Prints each target's executions; fails if any target
# found a crash, a hang (-timeout) or an allocation past the limits, and prints the artifact's
# path. The corpus the fuzzer grows goes to a temporary directory: the committed corpus is only
# read. (Its files are replayed by `cargo test` through the same code: fuzz/targets.)
#
# Settings: FUZZ_SECONDS (per target, default 60), FUZZ_JOBS (targets at once, default 2).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
step_start=$(date +%s)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "-- installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
echo "-- $(cargo fuzz --version)"

toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
  echo "-- toolchain: nightly ($(rustup run nightly rustc --version))"
else
  export RUSTC_BOOTSTRAP=1
  echo "-- toolchain: nightly is not installed; stable with RUSTC_BOOTSTRAP=1 ($(rustc --version))"
fi

# Release with debug assertions (an overflow a peer can cause is a bug), no sanitizer: netref
# and its target bodies forbid unsafe code, and AddressSanitizer would halve the executions.
# 16 codegen units instead of cargo-fuzz's 1: the build is most of this step's time on two
# cores, the run time is fixed, and the binaries are only a little slower.
fuzz_flags=(-a -s none --codegen-units 16)
# Hang: one input running 10 s. Unbounded allocation: one allocation past 128 MiB (netref's
# largest legitimate buffer is a 16 MiB frame) or 1 GiB resident.
libfuzzer_flags=(-timeout=10 -malloc_limit_mb=128 -rss_limit_mb=1024 -print_final_stats=1)

build_start=$(date +%s)
cargo "${toolchain[@]}" fuzz build "${fuzz_flags[@]}"
echo "-- built in $(($(date +%s) - build_start)) s"

mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
work=$(mktemp -d)
pids=()
names=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="target/$host/release"

# Runs the built binary itself (not `cargo fuzz run`, which would take the build lock for each
# target): the PID waited for and, on an interruption, killed is the fuzzer's own `timeout`.
start_target() {
  local target=$1
  mkdir -p "$work/corpus-$target" "artifacts/$target"
  # `timeout` bounds the run even if libFuzzer overran -max_total_time.
  timeout -k 10 $((seconds + 120)) "$bin_dir/$target" \
    -max_total_time="$seconds" -artifact_prefix="artifacts/$target/" "${libfuzzer_flags[@]}" \
    "$work/corpus-$target" "corpus/$target" >"$work/$target.log" 2>&1 &
  pids+=($!)
  names+=("$target")
}

failed=()
report() {
  local target=$1 status=$2 log="$work/$1.log"
  local execs rate
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  if [ "$status" -eq 0 ]; then
    echo "-- $target: ${execs:-?} executions in ${seconds} s (${rate:-?}/s), no crash"
  else
    echo "-- $target: FAILED (exit $status) after ${execs:-?} executions; the end of its log:"
    tail -n 60 "$log"
    grep -h 'Test unit written to' "$log" || true
    failed+=("$target")
  fi
}

# Up to $jobs targets at once; each is waited for by its PID, in the order started.
for target in "${targets[@]}"; do
  start_target "$target"
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    status=0
    wait "${pids[0]}" || status=$?
    report "${names[0]}" "$status"
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
while [ "${#pids[@]}" -gt 0 ]; do
  status=0
  wait "${pids[0]}" || status=$?
  report "${names[0]}" "$status"
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
done

echo "-- fuzzing step: $(($(date +%s) - step_start)) s wall time for ${#targets[@]} targets"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: fuzz targets found crashes: ${failed[*]} (artifacts under fuzz/artifacts/<target>/)"
  echo "Reproduce in fuzz/: cargo +nightly fuzz run -a -s none <target> artifacts/<target>/<file>; then keep"
  echo "the input as a regression test: move it to corpus/<target>/ under a name saying what it found."
  exit 1
fi
