package rag

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ragops/ragops/internal/docformat"
	"github.com/ragops/ragops/internal/vectorstore"
)

// MaxFileBytes bounds the size of a document file read from a directory.
const MaxFileBytes = docformat.MaxFileBytes

// DocumentsFrom turns extracted records into documents. Metadata keys that
// the store or Sync reserve (a JSON record's "source" or "origin" field) are
// left out.
func DocumentsFrom(recs []docformat.Record) []Document {
	docs := make([]Document, 0, len(recs))
	for _, r := range recs {
		var md map[string]string
		for k, v := range r.Metadata {
			if vectorstore.Reserved(k) || k == KeyOrigin {
				continue
			}
			if md == nil {
				md = make(map[string]string, len(r.Metadata))
			}
			md[k] = v
		}
		docs = append(docs, Document{Source: r.Source, Text: r.Text, Metadata: md})
	}
	return docs
}

// LoadDir reads the documents at the top level of dir: regular files, or
// symlinks to regular files, in a format that package docformat reads (text,
// Markdown, HTML, PDF, JSON records). Entries whose name starts with a dot
// are skipped, which leaves out the "..data" and "..2024_01_01_..." entries
// of a mounted Kubernetes ConfigMap while reading its symlinked files. It
// returns the documents, sorted by source, and what it skipped with the
// reason: a file name, or a place in a file such as "a.jsonl line 3".
func LoadDir(dir string) ([]Document, map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	skipped := map[string]string{}
	var docs []Document
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks
		if err != nil {
			skipped[name] = err.Error()
			continue
		}
		if !fi.Mode().IsRegular() {
			if !fi.IsDir() {
				skipped[name] = "not a regular file"
			}
			continue
		}
		if !docformat.Supported(name) {
			skipped[name] = "extension is not one of " + strings.Join(docformat.Extensions, ", ")
			continue
		}
		if fi.Size() > MaxFileBytes {
			skipped[name] = fmt.Sprintf("larger than %d bytes", MaxFileBytes)
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			skipped[name] = err.Error()
			continue
		}
		recs, skips, err := docformat.ExtractAll(context.Background(), name, b)
		if err != nil {
			skipped[name] = err.Error()
			continue
		}
		for _, s := range skips {
			skipped[s.Where] = s.Reason
		}
		docs = append(docs, DocumentsFrom(recs)...)
	}
	slices.SortFunc(docs, func(a, b Document) int { return strings.Compare(a.Source, b.Source) })
	return docs, skipped, nil
}
