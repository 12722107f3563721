#!/usr/bin/env bash
# End-to-end test: build Sluice, start it on a free loopback port with an API
# key, and run the official `openai` npm SDK (e2e/node/sdk.test.mjs) and the
# official Go SDK openai-go/v3 (e2e/go, its own module) against it.
#
# Under scripts/azurite.sh (SLUICE_TEST_AZURITE set, as make test runs it) the server is
# configured with the emulator's account, for the blob-mode test (e2e/node/blob.test.mjs);
# SLUICE_REQUIRE_AZURITE=1 makes a missing Azurite a failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sluice-e2e.XXXXXX")"
SERVER_PID=""
API_KEY="e2e-key"

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
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

PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')"
URL="http://127.0.0.1:$PORT"

CONFIG=()
if [[ -n "${SLUICE_TEST_AZURITE:-}" ]]; then
  # storage_accounts alone: the built-in simulator still serves the default deployment.
  BLOB_ENDPOINT="$(sed -n 's/.*BlobEndpoint=\([^;]*\).*/\1/p' <<<"$SLUICE_TEST_AZURITE")"
  cat >"$TMP/sluice.yaml" <<EOF
storage_accounts:
  - name: devstoreaccount1
    blob_endpoint: $BLOB_ENDPOINT
    connection_string: "$SLUICE_TEST_AZURITE"
EOF
  CONFIG=(--config "$TMP/sluice.yaml")
  echo "blob mode: storage account devstoreaccount1 at $BLOB_ENDPOINT"
elif [[ "${SLUICE_REQUIRE_AZURITE:-}" == "1" ]]; then
  echo "SLUICE_REQUIRE_AZURITE=1 but SLUICE_TEST_AZURITE is not set: run under scripts/azurite.sh" >&2
  exit 1
fi

echo "starting sluice on $URL..."
SLUICE_API_KEYS="$API_KEY" "$TMP/sluice" serve --addr "127.0.0.1:$PORT" --data "$TMP/data" "${CONFIG[@]}" >"$TMP/serve.log" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 60); do
  if curl -sf "$URL/healthz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    break
  fi
  sleep 0.25
done
if [[ $ready -ne 1 ]]; then
  echo "sluice did not become healthy at $URL/healthz" >&2
  cat "$TMP/serve.log" >&2 || true
  exit 1
fi

cd "$ROOT/e2e/node"
# Install when the lock file is newer than what node_modules holds (a new dependency).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

status=0
SLUICE_URL="$URL" SLUICE_API_KEY="$API_KEY" npm test || status=$?

cd "$ROOT/e2e/go"
SLUICE_URL="$URL" SLUICE_API_KEY="$API_KEY" go test -count=1 -v ./... || status=$?

# The Batch jobs page in a browser, against a server of its own.
bash "$ROOT/e2e/console/run.sh" || status=$?
exit "$status"
