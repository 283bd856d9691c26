#!/usr/bin/env bash
# tributary against feedparser's own test suite (feedparser 6.0.12's ~2200 documents,
# each with the expression over feedparser's result it must satisfy).
#
#   bench/conformance.sh [--bin PATH] [--only wellformed/atom10 ...] [--out DIR] [--jobs N]
#
# Builds the debug binary (unless --bin names one), downloads the feedparser sdist once
# into target/conformance/ (`pip download`), reads every document with
# `tributary inspect FILE --json`, and prints a pass/fail/unmapped table by folder;
# target/conformance/report/ (or --out) gets summary.md, failures.md (grouped by class,
# with the expression, our value and the document) and results.json. How a case is
# scored and what counts as unmapped: the docstring of bench/conformance.py.
# Needs python3; feedparser itself (for the types it gives to titles) is optional.
set -euo pipefail
# Paths given (--bin, --out, --suite) are the caller's; the defaults are this checkout's.
repo=$(cd "$(dirname "$0")/.." && pwd)
args=("$@")
has_bin=no
has_out=no
for arg in "${args[@]}"; do
  case $arg in
    --bin | --bin=*) has_bin=yes ;;
    --out | --out=*) has_out=yes ;;
  esac
done
if [ $has_bin = no ]; then
  cargo build --quiet --manifest-path "$repo/Cargo.toml" --bin tributary
  args+=(--bin "$repo/target/debug/tributary")
fi
if [ $has_out = no ]; then
  args+=(--out "$repo/target/conformance/report")
fi
exec python3 "$repo/bench/conformance.py" "${args[@]}"
