// Package hashembed computes deterministic text embeddings from hashed word and
// bigram features. It needs no model and no network: the ragserver uses it as
// its offline embedder and the fake OpenAI server uses it to answer
// /v1/embeddings, so that retrieval in tests is meaningful (texts that share
// words are close).
package hashembed

import (
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// DefaultDim is the dimension used when none is given.
const DefaultDim = 384

// Vector returns the L2-normalised embedding of text in dim dimensions.
// seed separates vector spaces: the same text with different seeds gives
// unrelated vectors (the fake server seeds with the model name). The result is
// never the zero vector: text without words maps to a fixed unit vector.
func Vector(text string, dim int, seed string) []float32 {
	return WeightedVector(text, dim, seed, nil)
}

// WeightedVector is Vector with each word's features scaled by weight(word)
// (a bigram by the mean of its two words' weights); nil weighs every word 1,
// which is Vector. Documents are embedded with Vector: weighting only the
// query (e.g. by the inverse document frequency of its words) changes no
// stored vector, so a store stays valid whatever the weights.
func WeightedVector(text string, dim int, seed string, weight func(word string) float64) []float32 {
	if dim <= 0 {
		dim = DefaultDim
	}
	v := make([]float64, dim)
	words := Tokens(text)
	ws := make([]float64, len(words))
	for i, w := range words {
		ws[i] = 1
		if weight != nil {
			ws[i] = weight(w)
		}
	}
	add := func(feature string, weight float64) {
		h := fnv.New64a()
		h.Write([]byte(seed))
		h.Write([]byte{0})
		h.Write([]byte(feature))
		x := h.Sum64()
		i := int(x % uint64(dim))
		if x>>63 == 1 {
			weight = -weight
		}
		v[i] += weight
	}
	for i, w := range words {
		add(w, ws[i])
		if i > 0 {
			add(words[i-1]+" "+w, 0.5*(ws[i-1]+ws[i])/2)
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, dim)
	if norm == 0 {
		out[0] = 1
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// Tokens returns the lower-cased words of text without stop words, with a
// trailing plural "s" removed, so that "Risks" and "risk" match.
func Tokens(text string) []string {
	fields := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	out := fields[:0]
	for _, f := range fields {
		if stop[f] {
			continue
		}
		if len(f) > 3 && strings.HasSuffix(f, "s") && !strings.HasSuffix(f, "ss") {
			f = f[:len(f)-1]
		}
		out = append(out, f)
	}
	return out
}

var stop = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be by did do does for from had has have how
		i in is it its of on or our that the their there these this those to was we were what when
		where which who why will with you your`) {
		stop[w] = true
	}
}
