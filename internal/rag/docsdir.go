package rag

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxFileBytes bounds the size of a document file read from a directory.
const MaxFileBytes = 16 << 20

// TextExtensions are the file extensions ingested (case-insensitive).
var TextExtensions = []string{".txt", ".md", ".markdown", ".text"}

// IsTextFile reports whether name has an ingestible extension.
func IsTextFile(name string) bool {
	return slices.Contains(TextExtensions, strings.ToLower(filepath.Ext(name)))
}

// LoadDir reads the documents at the top level of dir: regular files, or
// symlinks to regular files, with a text extension. Entries whose name starts
// with a dot are skipped, which leaves out the "..data" and
// "..2024_01_01_..." entries of a mounted Kubernetes ConfigMap while reading
// its symlinked files. It returns the documents, sorted by source, and the
// names it skipped with the reason.
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
		if !IsTextFile(name) {
			skipped[name] = "extension is not one of " + strings.Join(TextExtensions, ", ")
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
		text := string(b)
		if !utf8.ValidString(text) {
			text = strings.ToValidUTF8(text, "\uFFFD")
		}
		docs = append(docs, Document{Source: name, Text: text})
	}
	slices.SortFunc(docs, func(a, b Document) int { return strings.Compare(a.Source, b.Source) })
	return docs, skipped, nil
}
