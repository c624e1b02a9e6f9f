#!/usr/bin/env bash
# Create time of an `fc` workspace against the in-repo FC simulator with latency injected into
# every API call (default 50 ms), and the API calls on the critical path.
# usage: bench/fc-create.sh [LATENCY_MS] [RUNS] [PENDING_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/qingting/target}"
cargo run -q --release -p qingting-core --example fc_create_bench -- "${1:-50}" "${2:-10}" "${3:-0}"
