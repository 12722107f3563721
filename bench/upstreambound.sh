#!/usr/bin/env bash
# P4, upstream-bound: Sluice against a simulator of 64 slots and 50 ms a request, as a
# ratio to the ideal 64 / 50 ms = 1,280 lines/s, beside a plain HTTP client. Prints a
# markdown table with a row per gate setting (fixed and adaptive).
#   bash bench/upstreambound.sh [LINES]
# MODES picks the gate settings (default fixed,adaptive; also metrics and latency:T).
# Environment: ROUNDS (default 3); SIM_ARGS, extra `sluice sim` arguments (e.g.
# "--max-tokens 100000" for answers of one length); SLUICE, a sluice binary to measure
# instead of one built from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sluice=${SLUICE:-}
if [[ -z $sluice ]]; then
	sluice=$tmp/sluice
	go build -o "$sluice" ./cmd/sluice
fi
go build -o "$tmp/upstreambound" ./bench/upstreambound
"$tmp/upstreambound" -sluice "$sluice" -lines "${1:-20000}" -rounds "${ROUNDS:-3}" -modes "${MODES:-fixed,adaptive}" -sim-args "${SIM_ARGS:-}"
