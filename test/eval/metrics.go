package main

import (
	"math"
	"sort"
	"time"
)

// K is the cut-off of the ranked lists: every query asks for the top K.
const K = 10

// Rank returns the 1-based position of target among the distinct sources of
// a ranked list of retrieved chunks' sources (a document split into several
// chunks counts once, at its best chunk), or 0 when it is not in the first
// K distinct sources.
func Rank(sources []string, target string) int {
	seen := map[string]bool{}
	pos := 0
	for _, s := range sources {
		if seen[s] {
			continue
		}
		seen[s] = true
		pos++
		if pos > K {
			return 0
		}
		if s == target {
			return pos
		}
	}
	return 0
}

// Scores are the retrieval metrics of a set of queries with one relevant
// document each, averaged over the queries.
type Scores struct {
	Queries                int
	R1, R5, R10, MRR, NDCG float64
	P50, P95               time.Duration
	haveLatency            bool
	ranks                  []int
	latencies              []time.Duration
}

// Add records one query: the rank of its target (0: not in the top K) and
// the latency of its request (negative: not measured, as for BM25).
func (s *Scores) Add(rank int, latency time.Duration) {
	s.ranks = append(s.ranks, rank)
	if latency >= 0 {
		s.latencies = append(s.latencies, latency)
	}
}

// Done computes the averages and the latency percentiles.
func (s *Scores) Done() {
	s.Queries = len(s.ranks)
	if s.Queries == 0 {
		return
	}
	n := float64(s.Queries)
	s.R1 = RecallAt(s.ranks, 1)
	s.R5 = RecallAt(s.ranks, 5)
	s.R10 = RecallAt(s.ranks, 10)
	s.MRR, s.NDCG = 0, 0
	for _, r := range s.ranks {
		s.MRR += ReciprocalRank(r) / n
		s.NDCG += NDCG(r) / n
	}
	if len(s.latencies) > 0 {
		s.haveLatency = true
		s.P50 = Percentile(s.latencies, 50)
		s.P95 = Percentile(s.latencies, 95)
	}
}

// RecallAt is the share of queries whose target is in the first k.
func RecallAt(ranks []int, k int) float64 {
	if len(ranks) == 0 {
		return 0
	}
	hits := 0
	for _, r := range ranks {
		if r > 0 && r <= k {
			hits++
		}
	}
	return float64(hits) / float64(len(ranks))
}

// ReciprocalRank is 1/rank, 0 when the target was not found in the top K.
func ReciprocalRank(rank int) float64 {
	if rank <= 0 || rank > K {
		return 0
	}
	return 1 / float64(rank)
}

// NDCG is the nDCG@K of a ranking with one relevant document at rank (binary
// gain): the ideal DCG is 1, so it is 1/log2(rank+1).
func NDCG(rank int) float64 {
	if rank <= 0 || rank > K {
		return 0
	}
	return 1 / math.Log2(float64(rank)+1)
}

// Percentile is the nearest-rank p-th percentile of ds (which it sorts a
// copy of).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}
