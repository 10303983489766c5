#!/usr/bin/env bash
# Shell completions for the release archives and packages.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p completions
for sh in bash zsh fish powershell; do
  ext=$sh
  [ "$sh" = powershell ] && ext=ps1
  go run ./cmd/kanade completion "$sh" > "completions/kanade.$ext"
done
