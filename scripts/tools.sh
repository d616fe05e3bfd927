#!/usr/bin/env bash
# Installs the lint tools that do not come with Rust into ./.tools (kept out
# of git): buf, from the npm registry, for `buf lint` and `buf format` of the
# protos. Node.js and npm come from the system (apt-get when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
buf=.tools/node_modules/.bin/buf

if [ -x "$buf" ] && [ "$("$buf" --version 2>/dev/null)" = "$BUF_VERSION" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tools: installing nodejs and npm (for buf)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "tools: buf needs npm; install Node.js (https://nodejs.org) or buf itself (https://buf.build)" >&2
    exit 1
  fi
fi
echo "tools: installing buf $BUF_VERSION into .tools"
npm install --silent --no-fund --no-audit --prefix .tools "@bufbuild/buf@$BUF_VERSION" >/dev/null
"$buf" --version >/dev/null
