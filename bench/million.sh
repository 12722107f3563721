#!/usr/bin/env bash
# Sluice's peak RSS on a 1,000,000-line batch next to a 100,000-line one: one round of
# bench/throughput each, simulator latency 0s, the same serve flags, lines of about
# LINE_BYTES (default 2000: the big input is 2 GB). Memory must not grow with the line
# count. Prints both throughput rows and a memory table.
#   bash bench/million.sh [BIG_LINES] [SMALL_LINES]
# Environment: SLUICE, a sluice binary to measure instead of one built from this tree;
# SERVE_ARGS, the serve flags (default --max-requests 1000000 --max-upload-bytes 2100000000).
set -euo pipefail
cd "$(dirname "$0")/.."
big=${1:-1000000}
small=${2:-100000}
if [[ -v SERVE_ARGS ]]; then
	serve_args=$SERVE_ARGS
else
	serve_args="--max-requests 1000000 --max-upload-bytes 2100000000"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sluice=${SLUICE:-}
if [[ -z $sluice ]]; then
	sluice=$tmp/sluice
	go build -o "$sluice" ./cmd/sluice
fi
go build -o "$tmp/throughput" ./bench/throughput
for n in "$small" "$big"; do
	if ! "$tmp/throughput" -sluice "$sluice" -lines "$n" -rounds 1 -latency 0s -line-bytes "${LINE_BYTES:-2000}" -serve-args "$serve_args" \
		>"$tmp/$n.md" 2>"$tmp/$n.err"; then
		cat "$tmp/$n.err" >&2
		echo "million: the $n-line run failed, so there is no memory comparison. It ran sluice serve with" \
			"\"$serve_args\"; a sluice without those flags, or one that caps a batch at 100000 lines," \
			"cannot run it." >&2
		exit 1
	fi
	cat "$tmp/$n.err" >&2
done
sed -n 1,3p "$tmp/$small.md"
sed -n 3p "$tmp/$big.md"
# The peak RSS column of a throughput row, found by its header.
rss() {
	awk -F'|' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /peak RSS/) col = i }
		NR == 3 { gsub(/ /, "", $col); print $col }' "$1"
}
rss_small=$(rss "$tmp/$small.md")
rss_big=$(rss "$tmp/$big.md")
echo
echo "| lines | sluice peak RSS MiB | ratio to $small lines |"
echo "|---|---|---|"
echo "| $small | $rss_small | 1.00 |"
awk -v n="$big" -v a="$rss_small" -v b="$rss_big" 'BEGIN { printf "| %s | %s | %.2f |\n", n, b, b / a }'
