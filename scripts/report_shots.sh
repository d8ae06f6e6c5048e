#!/usr/bin/env bash
# Screenshots of every report under a run folder, as a reader at 1280 px sees them.
#   scripts/report_shots.sh [RUN_FOLDER] [HEIGHT]   (default runs/demo, 2400 px tall)
# Needs Debian's chromium (apt-get install chromium). Writes RUN_FOLDER/shots/<part>.png.
set -euo pipefail
run=${1:-runs/demo}
height=${2:-2400}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "report-shots: chromium not found (Debian: apt-get install chromium)" >&2
  exit 2
fi
[ -d "$run" ] || { echo "report-shots: no such folder: $run" >&2; exit 2; }
mkdir -p "$run/shots"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
find "$run" -name report.html -o -name index.html | sort | while read -r page; do
  rel=${page#"$run"/}
  name=$(echo "${rel%.html}" | tr '/' '_')
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1280,"$height" \
    --screenshot="$run/shots/$name.png" "file://$(realpath "$page")" >/dev/null 2>&1
  echo "$run/shots/$name.png"
done
