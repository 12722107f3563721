#!/usr/bin/env bash
# A blob-mode batch from a ~1 GB input blob next to the same batch from a 100 MB one:
# starts an Azurite of its own with its data on disk (--location, not in memory: 1 GB
# of blobs), builds sluice and bench/blob1g, and runs it. Prints a markdown table of
# create latency (the scan), time to completed, lines/s and sluice's peak RSS, and the
# ratio of the peaks, which must stay near 1. Takes a few minutes; not run by CI.
#   bash bench/blob1g.sh [SIZES_MB]            # default 100,1000
# Environment: SLUICE, a sluice binary to measure instead of one built from this tree;
# LINE_BYTES (default 10000: 100,000 lines make 1 GB); TMPDIR, where Azurite keeps
# its data (needs about 2.5 GB free); ARGS, more flags for bench/blob1g (e.g. -v).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
sizes=${1:-100,1000}

AZDIR="$ROOT/scripts/azurite"
BIN="$AZDIR/node_modules/.bin/azurite-blob"
if [[ ! -x "$BIN" ]]; then
	echo "blob1g: installing azurite into $AZDIR/node_modules..." >&2
	(cd "$AZDIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-blob1g.XXXXXX")
AZURITE_PID=""
stop() {
	if [[ -n "$AZURITE_PID" ]] && kill -0 "$AZURITE_PID" 2>/dev/null; then
		kill "$AZURITE_PID" 2>/dev/null || true
		wait "$AZURITE_PID" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT TERM

sluice=${SLUICE:-}
if [[ -z $sluice ]]; then
	sluice=$tmp/sluice
	go build -o "$sluice" ./cmd/sluice
fi
go build -o "$tmp/blob1g" ./bench/blob1g

PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')"
mkdir -p "$tmp/azurite"
# --disableTelemetry always: without it Azurite tries to reach an outside host at start.
(cd "$tmp/azurite" && exec "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$tmp/azurite" \
	--skipApiVersionCheck --loose --silent --disableTelemetry >"$tmp/azurite.log" 2>&1) &
AZURITE_PID=$!
ready=0
for _ in $(seq 1 120); do
	if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/devstoreaccount1" 2>/dev/null)" != "000" ]]; then
		ready=1
		break
	fi
	kill -0 "$AZURITE_PID" 2>/dev/null || break
	sleep 0.25
done
if [[ $ready -ne 1 ]]; then
	echo "blob1g: Azurite did not start on 127.0.0.1:$PORT" >&2
	cat "$tmp/azurite.log" >&2 || true
	exit 1
fi

# The well-known development account of the emulator (public, not a secret).
conn="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$PORT/devstoreaccount1;"
# shellcheck disable=SC2086 # ARGS is split on purpose
"$tmp/blob1g" -sluice "$sluice" -conn "$conn" -mb "$sizes" -line-bytes "${LINE_BYTES:-10000}" ${ARGS:-}
