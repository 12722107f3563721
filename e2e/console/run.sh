#!/usr/bin/env bash
# Browser test of the Batch jobs page (/console): build Sluice, start it on a free
# loopback port with an API key and a slow built-in simulator, and drive the page
# in the system Chromium with playwright-core (e2e/console/console.test.mjs).
# Screenshots are left in e2e/console/screenshots/ (or $SLUICE_SCREENSHOTS).
#
# Needs /usr/bin/chromium (Debian's chromium; .ci/run installs it). playwright-core
# never downloads a browser here.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT="$(pwd)"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "e2e/console: $CHROMIUM is missing; install Debian's chromium (apt-get install chromium)" >&2
  exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sluice-console.XXXXXX")"
SERVER_PID=""
OPEN_PID=""
API_KEY="console-e2e-key"

cleanup() {
  local rc=$?
  for pid in "$SERVER_PID" "$OPEN_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ $rc -ne 0 && -f "$TMP/serve.log" ]]; then
    echo "--- tail of server log ($TMP/serve.log) ---" >&2
    tail -n 50 "$TMP/serve.log" >&2 || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT

echo "building sluice..."
go build -o "$TMP/sluice" ./cmd/sluice

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}
PORT="$(free_port)"
URL="http://127.0.0.1:$PORT"
OPEN_PORT="$(free_port)"
OPEN_URL="http://127.0.0.1:$OPEN_PORT"

# 500 ms a request at 64 in flight: a 3000-line job takes about 25 s, long enough to
# watch and cancel; in-flight lines of a cancelled job get 2 s.
echo "starting sluice on $URL..."
SLUICE_API_KEYS="$API_KEY" "$TMP/sluice" serve --addr "127.0.0.1:$PORT" --data "$TMP/data" \
  --sim-latency 500ms --cancel-grace 2s >"$TMP/serve.log" 2>&1 &
SERVER_PID=$!
# A second server with no API key: the page must work without asking for one.
env -u SLUICE_API_KEYS "$TMP/sluice" serve --addr "127.0.0.1:$OPEN_PORT" --data "$TMP/open" >"$TMP/open.log" 2>&1 &
OPEN_PID=$!

wait_healthy() { # URL PID
  for _ in $(seq 1 60); do
    if curl -sf "$1/healthz" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then
      break
    fi
    sleep 0.25
  done
  echo "sluice did not become healthy at $1/healthz" >&2
  return 1
}
wait_healthy "$URL" "$SERVER_PID"
wait_healthy "$OPEN_URL" "$OPEN_PID"

cd "$ROOT/e2e/console"
if [[ ! -d node_modules/playwright-core ]]; then
  npm ci --no-audit --no-fund
fi

SLUICE_URL="$URL" SLUICE_API_KEY="$API_KEY" SLUICE_OPEN_URL="$OPEN_URL" CHROMIUM_PATH="$CHROMIUM" \
  SLUICE_SCREENSHOTS="${SLUICE_SCREENSHOTS:-$ROOT/e2e/console/screenshots}" npm test
