package chunk

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Split returns the chunks of text, in order. size is the maximum chunk length
// in runes (values below 1 are treated as 1) and overlap the number of runes of
// whole words repeated from the previous chunk (clamped to [0, size-1]).
// Whitespace inside a paragraph is collapsed to single spaces; paragraphs are
// joined with a blank line. Split never returns empty chunks.
func Split(text string, size, overlap int) []string {
	if size < 1 {
		size = 1
	}
	if overlap < 0 {
		overlap = 0
	}
	if overlap >= size {
		overlap = size - 1
	}
	var p packer
	p.size, p.overlap = size, overlap
	for _, para := range paragraphs(text) {
		first := true
		for _, sent := range sentences(para) {
			for _, piece := range fit(sent, size) {
				p.add(piece, first)
				first = false
			}
		}
	}
	p.flush()
	return p.chunks
}

// paragraphs splits text on blank lines and returns each paragraph as its
// list of words.
func paragraphs(text string) [][]string {
	var out [][]string
	var cur []string
	for line := range strings.Lines(text) {
		words := strings.Fields(line)
		if len(words) == 0 {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, words...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sentences groups the words of a paragraph into sentences: a word that ends
// with '.', '!' or '?' (possibly followed by closing quotes or brackets) ends a
// sentence.
func sentences(words []string) [][]string {
	var out [][]string
	start := 0
	for i, w := range words {
		if endsSentence(w) {
			out = append(out, words[start:i+1])
			start = i + 1
		}
	}
	if start < len(words) {
		out = append(out, words[start:])
	}
	return out
}

func endsSentence(w string) bool {
	w = strings.TrimRightFunc(w, func(r rune) bool {
		return r == '"' || r == '\'' || r == ')' || r == ']' || r == '”' || r == '’'
	})
	if w == "" {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(w)
	return r == '.' || r == '!' || r == '?' || r == '。'
}

// fit splits a sentence that is longer than size into pieces of whole words,
// each at most size runes unless it is a single longer word.
func fit(words []string, size int) []string {
	s := strings.Join(words, " ")
	if runes(s) <= size {
		return []string{s}
	}
	var out []string
	var b strings.Builder
	n := 0
	for _, w := range words {
		wl := runes(w)
		if n > 0 && n+1+wl > size {
			out = append(out, b.String())
			b.Reset()
			n = 0
		}
		if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += wl
	}
	if n > 0 {
		out = append(out, b.String())
	}
	return out
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// packer accumulates pieces into chunks.
type packer struct {
	size, overlap int
	chunks        []string
	cur           strings.Builder
	curLen        int
	fresh         bool // cur holds only overlap carried from the previous chunk
}

func (p *packer) add(piece string, paraStart bool) {
	sep, sepLen := " ", 1
	if paraStart {
		sep, sepLen = "\n\n", 2
	}
	pl := runes(piece)
	if p.curLen > 0 && !p.fresh && p.curLen+sepLen+pl > p.size {
		p.flush()
	}
	if p.fresh && p.curLen+sepLen+pl > p.size {
		// Only overlap so far: shrink it to make room, or drop it.
		tail := lastWords(p.cur.String(), p.size-sepLen-pl)
		p.cur.Reset()
		p.cur.WriteString(tail)
		p.curLen = runes(tail)
	}
	if p.curLen > 0 {
		p.cur.WriteString(sep)
		p.curLen += sepLen
	}
	p.cur.WriteString(piece)
	p.curLen += pl
	p.fresh = false
}

// flush ends the current chunk and seeds the next one with the overlap.
func (p *packer) flush() {
	if p.curLen == 0 || p.fresh {
		return
	}
	c := p.cur.String()
	p.chunks = append(p.chunks, c)
	p.cur.Reset()
	p.curLen = 0
	if p.overlap > 0 {
		tail := lastWords(c, p.overlap)
		if tail != "" {
			p.cur.WriteString(tail)
			p.curLen = runes(tail)
			p.fresh = true
		}
	}
}

// lastWords returns the longest suffix of whole words of s (joined by single
// spaces) that is at most max runes long.
func lastWords(s string, max int) string {
	if max <= 0 {
		return ""
	}
	words := strings.FieldsFunc(s, unicode.IsSpace)
	n, i := 0, len(words)
	for i > 0 {
		wl := runes(words[i-1])
		add := wl
		if n > 0 {
			add++
		}
		if n+add > max {
			break
		}
		n += add
		i--
	}
	return strings.Join(words[i:], " ")
}
