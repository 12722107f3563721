#!/usr/bin/env bash
# P5, interference: online p99 latency alone and beside a Sluice batch on a simulator
# with shared capacity (64 slots), at slowdowns 0.02 (continuous batching) and 0 (slots
# only), with the gate reading the simulator's metrics, adaptive on latency, and fixed.
# Prints a markdown table.
#   bash bench/interference.sh [MODES]     # default metrics,adaptive,fixed; e.g. fixed:40,latency:1.25
# Environment: SLOWDOWNS (default 0.02,0); DURATION of each online load (default 20s);
# LOAD, the load block of mode metrics (default "{metrics: vllm}"); SLUICE, a sluice
# binary to measure instead of one built from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sluice=${SLUICE:-}
if [[ -z $sluice ]]; then
	sluice=$tmp/sluice
	go build -o "$sluice" ./cmd/sluice
fi
go build -o "$tmp/interference" ./bench/interference
"$tmp/interference" -sluice "$sluice" -modes "${1:-metrics,adaptive,fixed}" -slowdowns "${SLOWDOWNS:-0.02,0}" -duration "${DURATION:-20s}" -load "${LOAD:-{metrics: vllm\}}"
