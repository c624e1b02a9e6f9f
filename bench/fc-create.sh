#!/usr/bin/env bash
# Create time of an `fc` workspace against the in-repo FC simulator with latency injected into
# every API call (default 50 ms): a new function, and one the pool created ahead, in one run,
# with the API calls on each critical path.
# usage: bench/fc-create.sh [LATENCY_MS] [RUNS] [PENDING_MS] [UPDATE_MS]
#   PENDING_MS: how long a new function stays Pending while FC caches its image (default 0);
#   UPDATE_MS: how long an update that keeps the image stays InProgress (default 0).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/qingting/target}"
cargo run -q --release -p qingting-core --example fc_create_bench -- "${1:-50}" "${2:-10}" "${3:-0}" "${4:-0}"
