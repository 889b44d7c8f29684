#!/usr/bin/env bash
# Quick start: install what is missing (bubblewrap, a C compiler for Ward's
# launcher, Node dependencies), build, and run `ward demo`: real work allowed,
# real attacks refused by the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v git >/dev/null 2>&1 || missing+=(git)
if [ ${#missing[@]} -gt 0 ]; then
  echo "quickstart: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${missing[@]}"
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build
exec node bin/ward.js demo
