package rag

import (
	"fmt"
	"strings"

	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/llm/hashembed"
)

const systemPrompt = `You answer questions about the documents given as numbered context passages.
Use only the passages. Cite the passages you use with their numbers in square brackets, like [1] or [2][3].
If the passages do not contain the answer, say that you do not know.`

// Prompt builds the chat messages for a question: the passages are numbered
// from 1, each with its source, and the model is told to cite them.
func Prompt(question string, sources []Source) []llm.Message {
	var b strings.Builder
	b.WriteString("Context passages:\n\n")
	for i, s := range sources {
		fmt.Fprintf(&b, "[%d] source: %s (chunk %d)\n%s\n\n", i+1, s.Source, s.Chunk, s.Text)
	}
	b.WriteString("Question: ")
	b.WriteString(strings.Join(strings.Fields(question), " "))
	return []llm.Message{
		{Role: "system", Content: systemPrompt},
		{Role: "user", Content: b.String()},
	}
}

// Extract builds an extractive answer: from each of the best passages (up to
// three), the sentence sharing the most words with the question, quoted and
// cited by passage number.
func Extract(question string, sources []Source) string {
	q := map[string]bool{}
	for _, t := range hashembed.Tokens(question) {
		q[t] = true
	}
	var lines []string
	seen := map[string]bool{}
	for i, s := range sources {
		if len(lines) == 3 {
			break
		}
		best, bestScore := "", -1
		for _, sent := range sentences(s.Text) {
			score := 0
			for _, t := range hashembed.Tokens(sent) {
				if q[t] {
					score++
				}
			}
			if score > bestScore {
				best, bestScore = sent, score
			}
		}
		if best == "" || seen[best] {
			continue
		}
		seen[best] = true
		lines = append(lines, fmt.Sprintf("%q [%d]", best, i+1))
	}
	if len(lines) == 0 {
		return NoContextAnswer
	}
	return "From the indexed documents: " + strings.Join(lines, " ")
}

// sentences splits a passage at sentence ends (and at paragraph breaks).
func sentences(text string) []string {
	var out []string
	for _, para := range strings.Split(text, "\n\n") {
		words := strings.Fields(para)
		start := 0
		for i, w := range words {
			if strings.HasSuffix(w, ".") || strings.HasSuffix(w, "!") || strings.HasSuffix(w, "?") {
				out = append(out, strings.Join(words[start:i+1], " "))
				start = i + 1
			}
		}
		if start < len(words) {
			out = append(out, strings.Join(words[start:], " "))
		}
	}
	return out
}
