package main

import (
	"math"
	"sort"
	"strings"
	"unicode"
)

// BM25 parameters (the textbook defaults).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// BM25 is an in-memory Okapi BM25 index over whole documents: the baseline
// that the server's retrieval is compared with.
type BM25 struct {
	sources  []string
	lengths  []float64
	avgLen   float64
	postings map[string][]posting
}

type posting struct {
	doc int
	tf  float64
}

// BMTokens lower-cases text and splits it on everything that is not a letter
// or a digit (no stop words, no stemming).
func BMTokens(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// NewBM25 indexes docs.
func NewBM25(docs []Document) *BM25 {
	ix := &BM25{postings: map[string][]posting{}}
	var total float64
	for i, d := range docs {
		tf := map[string]float64{}
		toks := BMTokens(d.Text)
		for _, t := range toks {
			tf[t]++
		}
		terms := make([]string, 0, len(tf))
		for t := range tf {
			terms = append(terms, t)
		}
		sort.Strings(terms)
		for _, t := range terms {
			ix.postings[t] = append(ix.postings[t], posting{doc: i, tf: tf[t]})
		}
		ix.sources = append(ix.sources, d.Source)
		ix.lengths = append(ix.lengths, float64(len(toks)))
		total += float64(len(toks))
	}
	if len(docs) > 0 {
		ix.avgLen = total / float64(len(docs))
	}
	return ix
}

// IDF is the BM25 inverse document frequency of a term, in the form that is
// never negative (Lucene's): ln(1 + (N - n + 0.5) / (n + 0.5)).
func (ix *BM25) IDF(term string) float64 {
	n := float64(len(ix.postings[term]))
	N := float64(len(ix.sources))
	return math.Log(1 + (N-n+0.5)/(n+0.5))
}

// Search returns the sources of the k best documents for query, best first
// (ties broken by source name, so that the ranking is deterministic).
// Documents that share no term with the query are not returned.
func (ix *BM25) Search(query string, k int) []string {
	scores := map[int]float64{}
	seen := map[string]bool{}
	for _, t := range BMTokens(query) {
		if seen[t] { // each distinct query term counts once
			continue
		}
		seen[t] = true
		idf := ix.IDF(t)
		for _, p := range ix.postings[t] {
			norm := bm25K1 * (1 - bm25B + bm25B*ix.lengths[p.doc]/ix.avgLen)
			scores[p.doc] += idf * p.tf * (bm25K1 + 1) / (p.tf + norm)
		}
	}
	docs := make([]int, 0, len(scores))
	for d := range scores {
		docs = append(docs, d)
	}
	sort.Slice(docs, func(i, j int) bool {
		a, b := docs[i], docs[j]
		if scores[a] != scores[b] {
			return scores[a] > scores[b]
		}
		return ix.sources[a] < ix.sources[b]
	})
	if len(docs) > k {
		docs = docs[:k]
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = ix.sources[d]
	}
	return out
}
