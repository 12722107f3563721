#!/usr/bin/env bash
# Engine throughput as a ratio to a plain HTTP client, both against the same simulator
# process, measured in the same run. Prints one markdown table row per simulator latency.
#   bash bench/throughput.sh [LINES] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-30000}
concurrency=${2:-64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/sluice" ./cmd/sluice
go build -o "$tmp/throughput" ./bench/throughput
echo "| lines | concurrency | sim latency | plain client lines/s | sluice lines/s | ratio | sluice peak RSS MiB |"
echo "|---|---|---|---|---|---|---|"
for latency in 0s 5ms 20ms; do
	"$tmp/throughput" -sluice "$tmp/sluice" -lines "$lines" -concurrency "$concurrency" -latency "$latency" -rounds 3 2>/dev/null | tail -n 1
done
