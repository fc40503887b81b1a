package docformat

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"
)

// dropped are the elements whose content is not text a reader reads.
// header and footer are dropped only outside article and main, where they
// are the page's banner and footer rather than an article's title block.
var dropped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
	atom.Nav: true, atom.Header: true, atom.Footer: true, atom.Aside: true,
	atom.Form: true, atom.Svg: true, atom.Math: true, atom.Iframe: true,
	atom.Object: true, atom.Canvas: true, atom.Select: true, atom.Button: true,
	atom.Head: true, // but its <title> is read
}

// droppedRoles are the ARIA landmarks of page furniture: elements with
// these roles are dropped like <nav>, <header> and <footer>.
var droppedRoles = map[string]bool{
	"navigation": true, "banner": true, "contentinfo": true, "search": true, "complementary": true,
}

// headElements may stand in <head>.
var headElements = map[atom.Atom]bool{
	atom.Title: true, atom.Meta: true, atom.Link: true, atom.Style: true, atom.Script: true,
	atom.Noscript: true, atom.Base: true, atom.Template: true,
}

// paragraphs start and end a paragraph (a blank line); lines start and end
// a line.
var (
	paragraphs = map[atom.Atom]bool{
		atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
		atom.Pre: true, atom.Blockquote: true, atom.Table: true, atom.Ul: true, atom.Ol: true, atom.Dl: true,
		atom.Section: true, atom.Article: true, atom.Main: true, atom.Figure: true, atom.Address: true,
		atom.Hr: true, atom.Details: true, atom.Fieldset: true, atom.Header: true, atom.Footer: true,
	}
	lines = map[atom.Atom]bool{
		atom.Div: true, atom.Br: true, atom.Li: true, atom.Dt: true, atom.Dd: true, atom.Tr: true,
		atom.Caption: true, atom.Figcaption: true, atom.Summary: true, atom.Legend: true, atom.Tbody: true,
		atom.Thead: true, atom.Tfoot: true,
	}
)

// extractHTML returns the visible text of an HTML page.
func extractHTML(name string, data []byte) (Record, error) {
	enc, encName, _ := charset.DetermineEncoding(data, "text/html")
	if encName != "utf-8" {
		b, err := enc.NewDecoder().Bytes(data)
		if err != nil {
			return Record{}, fmt.Errorf("%w: not valid %s text", ErrUnreadable, encName)
		}
		data = b
	} else {
		data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	}
	title, text, truncated := htmlText(data)
	if strings.TrimSpace(text) == "" {
		return Record{}, fmt.Errorf("%w: the page has no visible text", ErrUnreadable)
	}
	md := map[string]string{KeyFormat: "html"}
	if title != "" {
		md[KeyTitle] = cut(title, MaxMetadataValueBytes)
	}
	if truncated {
		md[KeyTruncated] = "true"
	}
	return Record{Source: name, Text: text, Metadata: md}, nil
}

// htmlText walks the tokens of an HTML document (no tree is built, so memory
// stays proportional to the input) and returns its title and text. Text
// longer than MaxTextBytes is cut.
func htmlText(data []byte) (title, text string, truncated bool) {
	z := html.NewTokenizer(bytes.NewReader(data))
	var w textWriter
	var (
		skip      atom.Atom // the element being skipped, 0 if none
		skipName  string    // its name (for unknown elements)
		skipDepth int       // nesting of skip within itself
		inTitle   bool
		titleText strings.Builder
		pre       int // depth of <pre>
		inMain    int // depth of <article> and <main>
		cells     []int
		lists     int // depth of lists
		links     int // depth of <a>
	)
	for w.len() <= MaxTextBytes {
		tt := z.Next()
		if tt == html.ErrorToken {
			break // io.EOF: a bytes.Reader has no other error
		}
		tok := z.Token()
		a := tok.DataAtom
		if skip == atom.Head && skipDepth > 0 && tt == html.StartTagToken && !headElements[a] {
			// </head> and <body> may be omitted: the body's first
			// element ends the head.
			skipDepth = 0
			inTitle = false
		}
		if skipDepth > 0 {
			switch {
			case tt == html.StartTagToken && a == skip && tok.Data == skipName:
				skipDepth++
			case tt == html.EndTagToken && a == skip && tok.Data == skipName:
				skipDepth--
			case tt == html.StartTagToken && a == atom.Title && skip == atom.Head:
				inTitle = true
			case tt == html.EndTagToken && a == atom.Title:
				inTitle = false
			case tt == html.TextToken && inTitle && titleText.Len() < MaxMetadataValueBytes:
				titleText.WriteString(tok.Data)
			}
			continue
		}
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			hidden := hasAttr(tok, "hidden") || attr(tok, "aria-hidden") == "true"
			articlePart := (a == atom.Header || a == atom.Footer) && inMain > 0
			drop := (dropped[a] && !articlePart) || droppedRoles[attr(tok, "role")]
			if tt == html.StartTagToken && (drop || (hidden && !voidElement(a))) {
				skip, skipName, skipDepth = a, tok.Data, 1
				continue
			}
			if a == atom.Title { // a <title> outside <head>
				inTitle = tt == html.StartTagToken
				continue
			}
			if a == atom.Article || a == atom.Main {
				inMain++
			}
			if a == atom.Pre {
				pre++
			}
			switch {
			case isList(a) && lists > 0: // a list in a list item
				w.brk(1)
			case paragraphs[a]:
				w.brk(2)
			case lines[a]:
				w.brk(1)
			}
			switch a {
			case atom.Ul, atom.Ol, atom.Dl:
				lists++
			case atom.A:
				links++
			case atom.Tr:
				cells = append(cells, 0)
			case atom.Td, atom.Th:
				if n := len(cells); n > 0 {
					if cells[n-1] > 0 {
						w.sep(" | ")
					}
					cells[n-1]++
				}
			case atom.Li:
				w.sep("- ")
			case atom.Img:
				if alt := strings.TrimSpace(attr(tok, "alt")); alt != "" {
					w.text(" " + alt + " ")
				}
			}
		case html.EndTagToken:
			if a == atom.Title {
				inTitle = false
				continue
			}
			if (a == atom.Article || a == atom.Main) && inMain > 0 {
				inMain--
			}
			if a == atom.Pre && pre > 0 {
				pre--
			}
			if a == atom.Tr && len(cells) > 0 {
				cells = cells[:len(cells)-1]
			}
			if isList(a) && lists > 0 {
				lists--
			}
			if a == atom.A && links > 0 {
				links--
			}
			switch {
			case isList(a) && lists > 0:
				w.brk(1)
			case paragraphs[a]:
				w.brk(2)
			case lines[a]:
				w.brk(1)
			}
		case html.TextToken:
			switch {
			case inTitle:
				if titleText.Len() < MaxMetadataValueBytes {
					titleText.WriteString(tok.Data)
				}
			case links > 0 && strings.TrimSpace(tok.Data) == "¶":
				// a heading's permalink sign
			case pre > 0:
				w.raw(tok.Data)
			default:
				w.text(tok.Data)
			}
		}
	}
	title = strings.Join(strings.Fields(titleText.String()), " ")
	text = w.String()
	if len(text) > MaxTextBytes {
		text, truncated = cut(text, MaxTextBytes), true
	}
	if title != "" && !strings.HasPrefix(text, title) {
		text = title + "\n\n" + text
	}
	return title, text, truncated
}

func attr(t html.Token, key string) string {
	for _, a := range t.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(t html.Token, key string) bool {
	for _, a := range t.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func isList(a atom.Atom) bool { return a == atom.Ul || a == atom.Ol || a == atom.Dl }

// voidElement reports whether a has no end tag.
func voidElement(a atom.Atom) bool {
	switch a {
	case atom.Area, atom.Base, atom.Br, atom.Col, atom.Embed, atom.Hr, atom.Img, atom.Input,
		atom.Link, atom.Meta, atom.Source, atom.Track, atom.Wbr:
		return true
	}
	return false
}

// textWriter writes text with collapsed white space and pending breaks: a
// break or a space is written only before the next visible character, so the
// text has no leading, trailing or doubled blank lines.
type textWriter struct {
	b     strings.Builder
	br    int  // pending break: 1 a newline, 2 a blank line
	space bool // pending space
}

func (w *textWriter) len() int { return w.b.Len() }

func (w *textWriter) String() string { return w.b.String() }

// brk asks for a line break (1) or a paragraph break (2).
func (w *textWriter) brk(n int) {
	w.br = max(w.br, n)
	w.space = false
}

// flush writes the pending break or space.
func (w *textWriter) flush() {
	switch {
	case w.b.Len() == 0:
	case w.br == 1:
		w.b.WriteByte('\n')
	case w.br >= 2:
		w.b.WriteString("\n\n")
	case w.space:
		w.b.WriteByte(' ')
	}
	w.br, w.space = 0, false
}

// sep writes a separator (a list bullet, a cell divider) before the next
// text, in place of a pending space.
func (w *textWriter) sep(s string) {
	w.space = false
	w.flush()
	w.b.WriteString(s)
}

// text writes running text: runs of white space become one space.
func (w *textWriter) text(s string) {
	for _, r := range s {
		if unicode.IsSpace(r) {
			if w.br == 0 && !w.endsInSpace() {
				w.space = true
			}
			continue
		}
		if r == 0 || r == utf8.RuneError || (unicode.IsControl(r)) {
			continue
		}
		w.flush()
		w.b.WriteRune(r)
	}
}

func (w *textWriter) endsInSpace() bool {
	s := w.b.String()
	return len(s) > 0 && s[len(s)-1] == ' '
}

// raw writes preformatted text as it is; a newline is written before the
// next character, so that blank lines never pile up.
func (w *textWriter) raw(s string) {
	for _, r := range s {
		switch {
		case r == '\n':
			if w.b.Len() > 0 {
				w.br = min(w.br+1, 2)
			}
		case r == '\r' || r == 0 || r == utf8.RuneError || (unicode.IsControl(r) && r != '\t'):
		default:
			w.flush()
			w.b.WriteRune(r)
		}
	}
}
