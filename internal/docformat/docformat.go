package docformat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits of the work done for one file.
const (
	// MaxFileBytes bounds the size of one input file.
	MaxFileBytes = 16 << 20
	// MaxTextBytes bounds the text extracted from one file (all of its
	// records together); the rest of a longer text is cut off and the
	// record gets the metadata "truncated": "true".
	MaxTextBytes = 8 << 20
	// MaxRecords bounds the records of one .json or .jsonl file; the
	// records after it are skipped with a reason.
	MaxRecords = 10000

	// MaxMetadataKeys, MaxMetadataKeyBytes and MaxMetadataValueBytes bound
	// the metadata of a record: JSON fields beyond them are left out
	// (metadata is copied into every chunk).
	MaxMetadataKeys       = 12
	MaxMetadataKeyBytes   = 64
	MaxMetadataValueBytes = 256
)

// Metadata keys set by the extractors.
const (
	KeyFormat    = "format"    // html, pdf, json, jsonl (not set for text files)
	KeyTitle     = "title"     // HTML <title>, PDF document title
	KeyPages     = "pages"     // number of pages of a PDF
	KeyTruncated = "truncated" // "true" when the text was cut at MaxTextBytes
)

// ErrUnsupported: the file's extension is not handled here (or, for a PDF,
// the tool that reads it is not installed).
var ErrUnsupported = errors.New("unsupported format")

// ErrUnreadable: the file has a handled extension but no usable text:
// damaged, encrypted, not in the declared encoding, empty, or a scan without
// a text layer.
var ErrUnreadable = errors.New("unreadable document")

// Record is one document extracted from a file.
type Record struct {
	// Source names the record: the file name, or "name#id" for a record
	// of a .json or .jsonl file.
	Source string
	// Text is valid UTF-8 with no markup.
	Text string
	// Metadata holds the format and what the file says about itself
	// (title, pages, JSON fields). Never nil.
	Metadata map[string]string
}

// Skipped is a part of a file that was left out, with the reason: a bad line
// of a .jsonl file, a record without text.
type Skipped struct {
	// Where is the file name and the place, e.g. "a.jsonl line 3".
	Where  string
	Reason string
}

// Extensions are the handled file extensions, lower case with the dot.
var Extensions = []string{".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".jsonl"}

// Supported reports whether the extension of name is handled.
func Supported(name string) bool {
	return slices.Contains(Extensions, strings.ToLower(filepath.Ext(name)))
}

// Extract returns the records of the file name (only its extension and base
// name are used) with contents data. Parts of a .json or .jsonl file that
// cannot be used are left out; ExtractAll also says which and why.
func Extract(name string, data []byte) ([]Record, error) {
	recs, _, err := ExtractAll(context.Background(), name, data)
	return recs, err
}

// ExtractAll is Extract with a context (which stops a running PDF
// extraction) that also returns the parts it left out. An error wraps
// ErrUnsupported or ErrUnreadable and has a one-line message that names no
// file: callers add the name.
func ExtractAll(ctx context.Context, name string, data []byte) ([]Record, []Skipped, error) {
	base := filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	ext := strings.ToLower(filepath.Ext(base))
	if !slices.Contains(Extensions, ext) {
		if ext == "" {
			return nil, nil, fmt.Errorf("%w: the file name has no extension (supported: %s)", ErrUnsupported, strings.Join(Extensions, ", "))
		}
		return nil, nil, fmt.Errorf("%w: extension %q is not supported (supported: %s)", ErrUnsupported, ext, strings.Join(Extensions, ", "))
	}
	if len(data) > MaxFileBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, more than the limit of %d", ErrUnreadable, len(data), MaxFileBytes)
	}
	switch ext {
	case ".txt", ".text", ".md", ".markdown":
		r, err := plainText(base, data)
		if err != nil {
			return nil, nil, err
		}
		return []Record{r}, nil, nil
	case ".html", ".htm":
		r, err := extractHTML(base, data)
		if err != nil {
			return nil, nil, err
		}
		return []Record{r}, nil, nil
	case ".pdf":
		r, err := extractPDF(ctx, base, data)
		if err != nil {
			return nil, nil, err
		}
		return []Record{r}, nil, nil
	default: // .json, .jsonl
		return extractJSON(base, ext, data)
	}
}

func plainText(name string, data []byte) (Record, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if !utf8.Valid(data) {
		return Record{}, fmt.Errorf("%w: not UTF-8 text", ErrUnreadable)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Record{}, fmt.Errorf("%w: the file is empty", ErrUnreadable)
	}
	// Text files get no format key: they were read this way before formats
	// existed, and their documents stay exactly as they were.
	md := map[string]string{}
	text := string(data)
	if len(text) > MaxTextBytes {
		text = cut(text, MaxTextBytes)
		md[KeyTruncated] = "true"
	}
	return Record{Source: name, Text: text, Metadata: md}, nil
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// oneLine makes a tool's or a parser's message fit on one line.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = cut(s, max) + "..."
	}
	return s
}
