#!/usr/bin/env bash
# Sluice's pipeline, from the start of the upload to the downloaded results, as a ratio
# to a plain HTTP client, both against the same simulator process, measured in the same
# run. Prints two markdown tables with one row per simulator latency: rates, CPU, memory
# and GC cycles; and the phases of the median Sluice round.
#   bash bench/throughput.sh [LINES] [CONCURRENCY]
# Environment: ROUNDS (default 3); SERVE_ARGS, extra `sluice serve` arguments;
# SLUICE, a sluice binary to measure instead of one built from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-100000}
concurrency=${2:-64}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sluice=${SLUICE:-}
if [[ -z $sluice ]]; then
	sluice=$tmp/sluice
	go build -o "$sluice" ./cmd/sluice
fi
go build -o "$tmp/throughput" ./bench/throughput
latencies=(0s 5ms 20ms)
for latency in "${latencies[@]}"; do
	"$tmp/throughput" -sluice "$sluice" -lines "$lines" -concurrency "$concurrency" -latency "$latency" \
		-rounds "$rounds" -serve-args "${SERVE_ARGS:-}" >"$tmp/$latency.md"
done
# Each output is: header, separator, row, blank, header, separator, row.
first=$tmp/${latencies[0]}.md
sed -n 1,2p "$first"
for latency in "${latencies[@]}"; do sed -n 3p "$tmp/$latency.md"; done
echo
sed -n 5,6p "$first"
for latency in "${latencies[@]}"; do sed -n 7p "$tmp/$latency.md"; done
