package engine

import (
	"hash/maphash"
	"slices"

	"github.com/sluice-batch/sluice/jsonl"
)

var prefixSeed = maphash.MakeSeed()

// groupByPrefix orders the jobs of one claim so that lines sharing a prompt prefix
// (jsonl.PromptPrefix: a chat's leading system and developer messages, a response's
// instructions) are sent one after another, groups in the order their first line came,
// lines within a group in input order. An upstream's prefix cache then meets a prefix
// again while it still holds it, instead of cycling through every prefix of the claim.
// The order of results does not matter: each is committed by its chunk and index.
func groupByPrefix(jobs []job) []job {
	if len(jobs) < 3 {
		return jobs
	}
	keys := make([]uint64, len(jobs))
	rank := make(map[uint64]int)
	for i, j := range jobs {
		k := maphash.Bytes(prefixSeed, jsonl.PromptPrefix(j.line))
		keys[i] = k
		if _, ok := rank[k]; !ok {
			rank[k] = len(rank)
		}
	}
	if len(rank) == 1 || len(rank) == len(jobs) {
		return jobs // one prefix, or none shared: the order is as good as any
	}
	idx := make([]int, len(jobs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return rank[keys[a]] - rank[keys[b]] })
	out := make([]job, len(jobs))
	for i, k := range idx {
		out[i] = jobs[k]
	}
	return out
}
