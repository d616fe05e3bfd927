#!/usr/bin/env bash
# Fails, with a clear message, when the NATS server (JetStream on) that the
# event tests need is not reachable at 127.0.0.1:4222. The tests never skip.
set -euo pipefail

if ! timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/4222" 2>/dev/null; then
  echo "check-nats: NATS is not reachable at 127.0.0.1:4222." >&2
  echo "  The event tests run with and without NATS JetStream; start one, e.g." >&2
  echo "  nats-server -a 127.0.0.1 -p 4222 -js" >&2
  exit 1
fi
