#!/usr/bin/env bash
# Sizes of the browser bundle as a release build leaves it (raw, and the gzip and brotli forms
# the server sends), and of the rest of the site. Run after `cargo leptos build --release
# --precompress` (./scripts/run does it). The bytes a browser transfers on a first visit of
# /login and /workspaces are printed by the release smoke run (see docs/performance.md).
# usage: bench/bundle.sh [SITE_DIR]
set -euo pipefail
site="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/site}"
[ -f "$site/pkg/qingting.wasm.br" ] || {
  echo "no precompressed release site in $site: run cargo leptos build --release --precompress"
  exit 1
}
kb() { if [ -f "$1" ]; then echo "$(( ($(stat -c %s "$1") + 512) / 1024 )) KB"; else echo "-"; fi; }
printf '| %-28s | %8s | %8s | %8s |\n' file raw gzip brotli
printf '|%s|%s|%s|%s|\n' ------------------------------ ---------- ---------- ----------
total_raw=0 total_gz=0 total_br=0
while IFS= read -r f; do
  rel="${f#"$site"/}"
  printf '| %-28s | %8s | %8s | %8s |\n' "$rel" "$(kb "$f")" "$(kb "$f.gz")" "$(kb "$f.br")"
  total_raw=$((total_raw + $(stat -c %s "$f")))
  [ -f "$f.gz" ] && total_gz=$((total_gz + $(stat -c %s "$f.gz")))
  [ -f "$f.br" ] && total_br=$((total_br + $(stat -c %s "$f.br")))
done < <(find "$site" -type f ! -name '*.br' ! -name '*.gz' | sort)
printf '| %-28s | %5d KB | %5d KB | %5d KB |\n' "all" $(((total_raw + 512) / 1024)) $(((total_gz + 512) / 1024)) $(((total_br + 512) / 1024))
