#!/usr/bin/env bash
# Starts Azurite, the Azure Blob Storage emulator, on a free loopback port with its data
# in memory, and runs a command with SLUICE_TEST_AZURITE set to its connection string;
# stops it when the command ends, and exits with the command's status.
#
#   bash scripts/azurite.sh go test ./blob/azure/
#   bash scripts/azurite.sh              # no command: print the variable and wait for ^C
#
# Azurite (npm azurite, pinned in scripts/azurite/package-lock.json) is installed into
# scripts/azurite/node_modules on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/scripts/azurite"
BIN="$DIR/node_modules/.bin/azurite-blob"

if [[ ! -x "$BIN" ]]; then
	echo "azurite.sh: installing azurite into $DIR/node_modules..." >&2
	(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/sluice-azurite.XXXXXX")"
AZURITE_PID=""

stop() {
	if [[ -n "$AZURITE_PID" ]] && kill -0 "$AZURITE_PID" 2>/dev/null; then
		kill "$AZURITE_PID" 2>/dev/null || true
		wait "$AZURITE_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap stop EXIT
trap 'exit 130' INT TERM

# --disableTelemetry always: without it Azurite tries to reach an outside host at start.
# It runs in its own folder, where it may write its debug and extent files.
(cd "$TMP" && exec "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --inMemoryPersistence \
	--skipApiVersionCheck --loose --silent --disableTelemetry >"$TMP/azurite.log" 2>&1) &
AZURITE_PID=$!

# Any HTTP answer means it listens (an unauthenticated request gets 403).
ready=0
for _ in $(seq 1 120); do
	if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/devstoreaccount1" 2>/dev/null)" != "000" ]]; then
		ready=1
		break
	fi
	if ! kill -0 "$AZURITE_PID" 2>/dev/null; then
		break
	fi
	sleep 0.25
done
if [[ $ready -ne 1 ]]; then
	echo "azurite.sh: Azurite did not start on 127.0.0.1:$PORT" >&2
	cat "$TMP/azurite.log" >&2 || true
	exit 1
fi

# The well-known development account of the emulator (public, not a secret).
export SLUICE_TEST_AZURITE="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$PORT/devstoreaccount1;"

if [[ $# -eq 0 ]]; then
	echo "Azurite is listening on http://127.0.0.1:$PORT/devstoreaccount1; ^C stops it."
	echo "export SLUICE_TEST_AZURITE='$SLUICE_TEST_AZURITE'"
	wait "$AZURITE_PID"
	exit $?
fi

status=0
"$@" || status=$?
exit "$status"
