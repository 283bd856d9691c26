#!/usr/bin/env bash
# Checks the units: `systemd-analyze verify` is clean and the offline security
# exposure of tributary.service is at most 1.5. Needs systemd-analyze (Debian:
# systemd) and a built binary (cargo build; BIN=path to use another).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/debug/tributary}
[ -x "$bin" ] || cargo build --quiet
bin=$(realpath "$bin")

# verify checks that ExecStart= exists; the copies point it at the built binary
# instead of the installed /usr/bin/tributary.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in tributary.service tributary.socket; do
  sed "s|/usr/bin/tributary|$bin|g" "systemd/$unit" >"$tmp/$unit"
done
timeout 60 systemd-analyze verify --man=no "$tmp/tributary.service" "$tmp/tributary.socket"
echo "systemd-analyze verify: clean"

report=$(timeout 60 systemd-analyze security --offline=yes --no-pager systemd/tributary.service)
exposure=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for tributary.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security --offline=yes: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 1.5) }' || {
  printf '%s\n' "$report"
  echo "exposure $exposure is above 1.5" >&2
  exit 1
}
