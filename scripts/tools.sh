# Installs what building and testing QingTing Studio needs on a fresh Debian machine, skipping
# whatever is already there. Sourced by scripts/run and scripts/test.
#
# cargo-leptos would download wasm-bindgen, wasm-opt and friends from GitHub at build time;
# that is not possible everywhere, so each is installed from a package registry instead.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION=0.3.10
export PATH="$HOME/.cargo/bin:$PATH"
# Build outputs live outside the checkout so fresh clones (CI) reuse earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/qingting/target}"
# Incremental artifacts only help while editing; in scripts they just fill the disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Whether one line of a command's output is exactly WANT. The output is captured first:
# `cmd | grep -q` under pipefail fails at random (grep exits at its first match; cmd then dies
# writing).
output_has_line() {
  local want=$1 out line
  shift
  out=$("$@" 2>/dev/null) || true
  while IFS= read -r line; do
    [ "$line" = "$want" ] && return 0
  done <<<"$out"
  return 1
}

# Every descendant of process $1 (children first found, then theirs).
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# Kills the IDEs a throw-away data dir's server left running (they outlive the server by
# design: the next start adopts them), through their pid files: the whole tree under each,
# since the sandboxed IDE runs in a session (and process group) of its own.
stop_ides() {
  local f pid tree
  for f in "$1"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cut -d' ' -f1 "$f")
    # Collected before anything dies: orphans lose their parent link.
    tree=$(descendants "$pid")
    kill -9 -- "-$pid" $pid $tree 2>/dev/null || true
  done
}

ensure_rust_target() {
  if ! output_has_line wasm32-unknown-unknown rustup target list --installed; then
    say "Adding the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_cargo_leptos() {
  if ! output_has_line "cargo-leptos $CARGO_LEPTOS_VERSION" cargo leptos --version; then
    say "Installing cargo-leptos $CARGO_LEPTOS_VERSION (one time, about 13 minutes on 2 cores)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
}

ensure_wasm_bindgen() {
  # The CLI must match the wasm-bindgen crate in Cargo.lock exactly.
  local want
  want=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"/\1/p;}' "$ROOT/Cargo.lock")
  if ! output_has_line "wasm-bindgen $want" wasm-bindgen --version; then
    say "Installing wasm-bindgen-cli $want (about 3 minutes)"
    # Not --locked: its lock file names a crate version the registry no longer has.
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

ensure_node_tools() {
  # wasm-opt (binaryen from npm) for release builds; Debian's binaryen is too old and yields
  # WASM that fails to hydrate.
  if [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ]; then
    say "Installing build tools from npm (binaryen)"
    (cd "$ROOT" && npm ci --no-audit --no-fund)
  fi
}

ensure_build_tools() {
  ensure_rust_target
  ensure_cargo_leptos
  ensure_wasm_bindgen
  ensure_node_tools
}

ensure_sandbox_tools() {
  # bubblewrap: the local runtime refuses to start workspaces without a sandbox. slirp4netns
  # and nftables give workspaces the internet behind their firewall (without them they have
  # no network). The system python3 (and its pip) runs the tests' stand-in IDE inside it.
  if ! command -v bwrap >/dev/null || ! command -v slirp4netns >/dev/null \
    || ! command -v nft >/dev/null || ! /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
    say "Installing bubblewrap (the workspace sandbox), slirp4netns and nftables (its network) and the system python3"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap slirp4netns nftables python3 python3-pip
  fi
}

# The release build a user runs: the browser bundle size-optimised and precompressed (brotli,
# gzip), then the server with the whole site embedded (server/build.rs). scripts/run and
# scripts/test both build it this way.
build_release() {
  cargo leptos build --release --precompress
}

# Installs the IDEs (code-server from npm, JupyterLab from PyPI) with the given `qingting`
# binary into $QINGTING_EDITORS_DIR (default: a directory outside the checkout that later runs
# reuse). Installed editors are skipped, so this takes a moment once they are there.
ensure_editors() {
  export QINGTING_EDITORS_DIR="${QINGTING_EDITORS_DIR:-$HOME/.cache/qingting/editors}"
  say "The IDEs in $QINGTING_EDITORS_DIR (first time: a few minutes)"
  "$1" editors install
}

ensure_fc_sdk() {
  # Alibaba's official FC SDK from PyPI: the FC simulator is tested against what it sends.
  local venv="$HOME/.cache/qingting/fc-sdk"
  if ! "$venv/bin/python" -c "import alibabacloud_fc20230330" 2>/dev/null; then
    say "Installing Alibaba's official FC SDK (PyPI) for the simulator's wire-format test"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q alibabacloud-fc20230330
  fi
  export QINGTING_TEST_FC_SDK_PYTHON="$venv/bin/python"
}

ensure_s3_server() {
  # moto's S3 server from PyPI: a real S3 endpoint for the object-store tests.
  local venv="$HOME/.cache/qingting/moto"
  if [ ! -x "$venv/bin/moto_server" ]; then
    say "Installing moto's S3 server (PyPI) for the object-store tests"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'moto[server]'
  fi
  export QINGTING_TEST_MOTO_SERVER="$venv/bin/moto_server"
}

# promtool (Debian's `prometheus` package) checks the text /metrics answers with, as a
# Prometheus server reading it would.
ensure_promtool() {
  if ! command -v promtool >/dev/null; then
    say "Installing promtool (Debian's prometheus package) to check /metrics"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
  fi
}

ensure_browser_tools() {
  if [ ! -x /usr/bin/chromium ]; then
    say "Installing Debian's Chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  fi
  if [ ! -d "$ROOT/end2end/node_modules/@playwright/test" ]; then
    say "Installing Playwright (test runner only; it uses the system Chromium)"
    (cd "$ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
}
