#!/usr/bin/env bash
# The differential check of tests/fidelity.rs on any folder of feed documents:
# tributary (`inspect --json`) against Python's feedparser (tests/feedparser_read.py),
# with the differences listed in tests/fidelity/DIFFERENCES.md tolerated.
#
#   bench/differential.sh [--bin PATH] DIR [REPORT.md]
#
# Reads DIR's *.xml, *.rdf, *.atom, *.rss and *.json (not *.expected.json) and prints:
# documents, per field the comparisons, agreements (outright and through a listed
# difference) and disagreements, documents agreeing on every field, and every
# disagreement grouped by field. Writes the same to REPORT.md when given. Reads with
# this checkout's debug build, or with the tributary binary --bin names. Needs python3
# (feedparser is installed into target/ when missing).
set -euo pipefail
bin=
if [ "${1:-}" = --bin ] && [ $# -ge 2 ]; then
  bin=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
  shift 2
fi
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: bench/differential.sh [--bin PATH] DIR [REPORT.md]" >&2
  exit 2
fi
dir=$(cd "$1" && pwd)
report=
if [ $# -ge 2 ]; then
  report=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
fi
cd "$(dirname "$0")/.."
FIDELITY_DIR="$dir" FIDELITY_REPORT="$report" FIDELITY_BIN="$bin" \
  cargo test --quiet --test fidelity differential_report -- --ignored --nocapture --exact \
  | sed -e '/^running [0-9]* test/d' -e '/^test differential_report/d' -e '/^test result:/d' -e '/^\.$/d'
