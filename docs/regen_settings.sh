#!/usr/bin/env bash
# Rewrite the settings table at the end of docs/operations.md from the code.
set -euo pipefail
cd "$(dirname "$0")/.."
doc=docs/operations.md
marker='this table is `podq settings --markdown`:'
head -n "$(grep -nF "$marker" "$doc" | cut -d: -f1)" "$doc" > "$doc.new"
printf '\n' >> "$doc.new"
.venv/bin/podq settings --markdown >> "$doc.new"
mv "$doc.new" "$doc"
