#!/usr/bin/env bash
# Scale-out with the upstream as the bottleneck: one batch on 1 and on 3 `sluice serve`
# replicas sharing a PostgreSQL database and an Azurite container, each replica with a
# `sluice sim` of its own (32 slots, 100 ms a request). Starts PostgreSQL and Azurite
# through scripts/postgres.sh and scripts/azurite.sh, as the tests do, and prints
# markdown tables: lines/s of each count against its ideal, the ratio of 3 to 1, and
# how the lines split between the replicas.
#   bash bench/replicas.sh [LINES]              # default 24000
# Environment: ROUNDS (default 1); SLUICE, a sluice binary to measure instead of one
# built from this tree; ARGS, more flags for bench/replicas (e.g. "-slots 16 -v").
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sluice=${SLUICE:-}
if [[ -z $sluice ]]; then
	sluice=$tmp/sluice
	go build -o "$sluice" ./cmd/sluice
fi
go build -o "$tmp/replicas" ./bench/replicas
# shellcheck disable=SC2086 # ARGS is split on purpose
bash scripts/postgres.sh bash scripts/azurite.sh \
	"$tmp/replicas" -sluice "$sluice" -lines "${1:-24000}" -rounds "${ROUNDS:-1}" ${ARGS:-}
