#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 600), one after the
# other, one job each, and prints each run's summary line (executions, exec/s,
# corpus). Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# The committed seeds in fuzz/corpus/<target>/ are read, never written: what the
# fuzzer finds grows in fuzz/work/<target>/ (not in git). A crash is written to
# fuzz/artifacts/<target>/ and stops the script with its path.
#   bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(parse_normalize config http)
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo install cargo-fuzz" >&2; exit 1; }

for target in "${TARGETS[@]}"; do
  cargo +nightly fuzz build -O "$target"
done
for target in "${TARGETS[@]}"; do
  log=fuzz/$target.log
  echo "== $target: $SECONDS_EACH s (log in $log)"
  mkdir -p "fuzz/work/$target"
  # The outer timeout bounds a run whose -max_total_time is not honoured (a hang in
  # a single input is already cut by -timeout). It is generous: `cargo fuzz run`
  # waits for cargo's package lock while another cargo command holds it, and that
  # wait must not cut the fuzzing short.
  status=0
  timeout --signal=INT $((SECONDS_EACH + 900)) \
    cargo +nightly fuzz run -O "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -jobs=1 -workers=1 \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  # With -jobs, libFuzzer runs the job in a child process that logs to fuzz-0.log.
  for child in fuzz-0.log fuzz/fuzz-0.log; do
    [ -f "$child" ] && { cat "$child" >>"$log"; rm -f "$child"; }
  done
  grep -E '^#[0-9]+ +DONE|^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb' "$log" || true
  echo "corpus: $(find "fuzz/work/$target" -type f | wc -l) files, $(du -sh "fuzz/work/$target" | cut -f1)"
  if [ "$status" -ne 0 ]; then
    echo "fuzz.sh: $target stopped with status $status:" >&2
    grep -E 'ERROR: libFuzzer|^artifact_prefix|Test unit written to' "$log" >&2 || tail -20 "$log" >&2
    exit 1
  fi
done
