package rag

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

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
// three), the whole sentence sharing the most words with the question, quoted
// and cited by passage number. Only whole sentences are quoted: not a heading,
// not the fragment a chunk boundary cut off at either end; and a sentence is
// quoted once, even when overlapping chunks hold it twice.
func Extract(question string, sources []Source) string {
	q := map[string]bool{}
	for _, t := range hashembed.Tokens(question) {
		q[t] = true
	}
	var lines, quoted []string
	for i, s := range sources {
		if len(lines) == 3 {
			break
		}
		best, bestScore := "", 0
		for _, sent := range sentences(s.Text) {
			if !whole(sent) || repeats(sent, quoted) {
				continue
			}
			score := 0
			for _, t := range hashembed.Tokens(sent) {
				if q[t] {
					score++
				}
			}
			// The first whole sentence stands in when none shares a word.
			if score > bestScore || best == "" {
				best, bestScore = sent, score
			}
		}
		if best == "" || (bestScore == 0 && len(lines) > 0) {
			continue
		}
		quoted = append(quoted, normal(best))
		lines = append(lines, fmt.Sprintf("%q [%d]", best, i+1))
	}
	if len(lines) == 0 {
		return NoContextAnswer
	}
	return "From the indexed documents: " + strings.Join(lines, " ")
}

// whole reports whether a sentence from sentences is a whole sentence: it
// starts like one (a capital, a digit or an opening quote or bracket) and ends
// with its punctuation.
func whole(sent string) bool {
	first, _ := utf8.DecodeRuneInString(sent)
	if !unicode.IsUpper(first) && !unicode.IsDigit(first) && !strings.ContainsRune("\"'(\u201c\u2018[", first) {
		return false
	}
	end := strings.TrimRight(sent, "\"')]\u201d\u2019*_")
	return strings.HasSuffix(end, ".") || strings.HasSuffix(end, "!") || strings.HasSuffix(end, "?")
}

// normal is a sentence for comparison: lower case, one space between words.
func normal(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// repeats reports whether sent is, or is part of, a sentence already quoted
// (or the reverse).
func repeats(sent string, quoted []string) bool {
	n := normal(sent)
	for _, q := range quoted {
		if strings.Contains(q, n) || strings.Contains(n, q) {
			return true
		}
	}
	return false
}

// sentences splits a passage at sentence ends. Lines are joined into
// paragraphs (a hard-wrapped sentence stays whole); a blank line, a Markdown
// heading (dropped: a heading is not an answer) or a list item starts a new
// one, and emphasis markers are removed.
func sentences(text string) []string {
	var out, para []string
	flush := func() {
		words := strings.Fields(strings.NewReplacer("**", "", "__", "").Replace(strings.Join(para, " ")))
		para = para[:0]
		start := 0
		for i, w := range words {
			end := strings.TrimRight(w, "\"')]\u201d\u2019")
			if strings.HasSuffix(end, ".") || strings.HasSuffix(end, "!") || strings.HasSuffix(end, "?") {
				out = append(out, strings.Join(words[start:i+1], " "))
				start = i + 1
			}
		}
		if start < len(words) {
			out = append(out, strings.Join(words[start:], " "))
		}
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		item := strings.TrimLeft(line, "-*+> ")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			flush()
		case item != line: // a list item or a quote: its own paragraph
			flush()
			para = append(para, item)
		default:
			para = append(para, line)
		}
	}
	flush()
	return out
}
