#!/usr/bin/env bash
# The long crash-safety run: kills the daemon with SIGKILL at random moments while it
# ingests, KILLS times (default 50), restarting it on the same store each time, and
# fails if it cannot open the store or no longer serves an item it had served.
# The same test runs 20 kills in `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-${KILLS:-50}}
CRASH_KILLS=$KILLS cargo test --release --test crash -- --nocapture
