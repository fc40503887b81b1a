package docformat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Limits of one PDF extraction.
const (
	// PDFTimeout bounds the run of pdftotext on one file.
	PDFTimeout = 60 * time.Second
	// PDFMaxPages is the number of pages read; later pages are left out
	// (metadata "truncated": "true").
	PDFMaxPages = 2000
	// PDFMemoryBytes is the address-space limit (RLIMIT_AS) of the
	// pdftotext process: a hostile file makes it fail, not the host swap.
	PDFMemoryBytes = 1 << 30
)

// PDFToText is the pdftotext program (poppler-utils) that reads PDFs: a
// name looked up on the PATH at each extraction, or a path.
var PDFToText = "pdftotext"

// pdfSlots bounds the pdftotext processes run at once (each may use
// PDFMemoryBytes).
var pdfSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// PDFAvailable returns the path of pdftotext, or an error that says why PDFs
// cannot be read.
func PDFAvailable() (string, error) {
	p, err := exec.LookPath(PDFToText)
	if err != nil {
		return "", fmt.Errorf("%w: reading PDF files needs pdftotext (Debian package poppler-utils), which is not installed", ErrUnsupported)
	}
	return p, nil
}

// extractPDF runs pdftotext on data. pdftotext reads stdin only after its
// address-space limit is set, writes UTF-8 text wrapped in a small HTML page
// (-htmlmeta: the document title and author come along) and is killed at
// PDFTimeout or when ctx ends.
func extractPDF(ctx context.Context, name string, data []byte) (Record, error) {
	bin, err := PDFAvailable()
	if err != nil {
		return Record{}, err
	}
	if !bytes.Contains(data[:min(len(data), 1024)], []byte("%PDF-")) {
		return Record{}, fmt.Errorf("%w: not a PDF file (no %%PDF- header)", ErrUnreadable)
	}
	select {
	case pdfSlots <- struct{}{}:
		defer func() { <-pdfSlots }()
	case <-ctx.Done():
		return Record{}, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, PDFTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-enc", "UTF-8", "-htmlmeta", "-l", strconv.Itoa(PDFMaxPages+1), "-", "-")
	cmd.WaitDelay = time.Second
	cmd.Env = []string{"LC_ALL=C.UTF-8"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Record{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Record{}, err
	}
	var stderr limitedBuffer
	stderr.max = 4096
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return Record{}, fmt.Errorf("%w: cannot run pdftotext: %s", ErrUnsupported, oneLine(err.Error(), 200))
	}
	if err := limitMemory(cmd.Process.Pid, PDFMemoryBytes); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return Record{}, fmt.Errorf("cannot limit the memory of pdftotext: %w", err)
	}
	go func() {
		_, _ = stdin.Write(data)
		_ = stdin.Close()
	}()
	// Text beyond the limit (plus the page's markup) is read and dropped, so
	// that the process can finish.
	const maxOut = MaxTextBytes + 64<<10
	out, _ := io.ReadAll(io.LimitReader(stdout, maxOut))
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && werr != nil:
		return Record{}, fmt.Errorf("%w: pdftotext did not finish within %s", ErrUnreadable, PDFTimeout)
	case ctx.Err() != nil && werr != nil:
		return Record{}, ctx.Err()
	case werr != nil:
		return Record{}, fmt.Errorf("%w: %s", ErrUnreadable, pdfFailure(werr, stderr.String()))
	}
	title, author, text := parsePDFPage(out)
	pages := strings.Count(text, "\f")
	truncated := len(out) == maxOut
	if pages > PDFMaxPages {
		// Drop the extra page asked for to tell whether there is more.
		if i := nthIndex(text, "\f", PDFMaxPages); i >= 0 {
			text = text[:i+1]
		}
		pages, truncated = PDFMaxPages, true
	}
	text = cleanPDFText(strings.ReplaceAll(text, "\f", "\n\n"))
	if len(text) > MaxTextBytes {
		text, truncated = cut(text, MaxTextBytes), true
	}
	if strings.TrimSpace(text) == "" {
		return Record{}, fmt.Errorf("%w: the PDF has no text layer (a scan would need OCR, which is not done)", ErrUnreadable)
	}
	md := map[string]string{KeyFormat: "pdf"}
	if pages > 0 {
		md[KeyPages] = strconv.Itoa(pages)
	}
	if title = strings.TrimSpace(title); title != "" {
		md[KeyTitle] = cut(title, MaxMetadataValueBytes)
	}
	if author = strings.TrimSpace(author); author != "" {
		md["author"] = cut(author, MaxMetadataValueBytes)
	}
	if truncated {
		md[KeyTruncated] = "true"
	}
	return Record{Source: name, Text: text, Metadata: md}, nil
}

// pdfFailure turns pdftotext's exit status and messages into a reason.
func pdfFailure(err error, stderr string) string {
	low := strings.ToLower(stderr)
	switch {
	case strings.Contains(low, "incorrect password") || strings.Contains(low, "encrypted"):
		return "the PDF is encrypted (it needs a password)"
	case strings.Contains(low, "copying of text from this document is not allowed"):
		return "the PDF forbids copying its text"
	case strings.Contains(low, "out of memory") || strings.Contains(low, "bad_alloc"):
		return fmt.Sprintf("reading the PDF needs more than %d MiB of memory", PDFMemoryBytes>>20)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		return "the PDF forbids copying its text"
	}
	// The last error line says most ("Couldn't find trailer dictionary").
	msg := ""
	for l := range strings.Lines(stderr) {
		if l = strings.TrimSpace(l); l != "" {
			msg = l
		}
	}
	if msg == "" {
		msg = err.Error()
	}
	return "damaged PDF: pdftotext failed: " + oneLine(msg, 200)
}

// parsePDFPage reads the page that pdftotext -htmlmeta writes: the title and
// author from the head, the text (entities decoded) from the <pre>.
func parsePDFPage(page []byte) (title, author, text string) {
	z := html.NewTokenizer(bytes.NewReader(page))
	var b strings.Builder
	inTitle, inPre := false, false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			switch tok.DataAtom {
			case atom.Title:
				inTitle = true
			case atom.Pre:
				inPre = true
			case atom.Meta:
				if strings.EqualFold(attr(tok, "name"), "author") {
					author = attr(tok, "content")
				}
			}
		case html.EndTagToken:
			switch tok.DataAtom {
			case atom.Title:
				inTitle = false
			case atom.Pre:
				inPre = false
			}
		case html.TextToken:
			switch {
			case inTitle:
				title += tok.Data
			case inPre:
				b.WriteString(tok.Data)
			}
		}
	}
	return title, author, b.String()
}

// cleanPDFText trims lines, keeps one blank line between paragraphs,
// expands ligature characters and removes characters that are not text.
// (pdftotext itself joins words hyphenated at line ends.)
func cleanPDFText(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = ligatures.Replace(s)
	var b strings.Builder
	b.Grow(len(s))
	blank := 0
	for l := range strings.Lines(s) {
		l = strings.TrimRight(l, " \t\r\n\f\v")
		l = strings.Map(func(r rune) rune {
			if r == '\t' {
				return ' '
			}
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				return -1
			}
			return r
		}, l)
		if strings.TrimSpace(l) == "" {
			blank++
			continue
		}
		if b.Len() > 0 {
			if blank > 0 {
				b.WriteString("\n\n")
			} else {
				b.WriteByte('\n')
			}
		}
		blank = 0
		b.WriteString(l)
	}
	return b.String()
}

// ligatures expands the Unicode ligature characters that some PDFs map
// their glyphs to.
var ligatures = strings.NewReplacer("ﬀ", "ff", "ﬁ", "fi", "ﬂ", "fl", "ﬃ", "ffi", "ﬄ", "ffl", "ﬅ", "st", "ﬆ", "st")

// nthIndex returns the index of the n-th (1-based) occurrence of sep in s, or -1.
func nthIndex(s, sep string, n int) int {
	at := -1
	for range n {
		i := strings.Index(s[at+1:], sep)
		if i < 0 {
			return -1
		}
		at += 1 + i
	}
	return at
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }
