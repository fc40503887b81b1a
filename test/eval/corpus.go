package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Document is one entry of the corpus: the documentation of one exported
// function, method or type of the Go standard library, minus its first
// sentence.
type Document struct {
	Source string // strings.TrimSpace, strings.Builder.WriteString, crypto-rand.Int (crypto/rand)
	Text   string
}

// Query is a known-item query: the first sentence (synopsis) of a
// declaration's documentation, whose only relevant document is Target.
type Query struct {
	Text   string
	Target string
}

// Corpus is the documents and the queries built from one Go source tree.
type Corpus struct {
	Docs    []Document
	Queries []Query // one per document, sorted by target
}

// Selection rules for a document (the documentation minus its synopsis).
const (
	minDocChars     = 100
	minDocSentences = 2
)

var sentenceEnd = regexp.MustCompile(`[.!?:](\s|$)`)

// BuildCorpus parses the standard-library packages under goroot/src whose
// import path is in pkgs (all of them when pkgs is empty: every package
// outside internal, vendor, cmd and testdata) and returns every exported
// declaration whose documentation, without its first sentence, still has
// at least minDocSentences sentences and minDocChars characters. The result
// depends only on the source tree: documents and queries are sorted by source.
func BuildCorpus(goroot string, pkgs []string) (*Corpus, error) {
	src := filepath.Join(goroot, "src")
	if _, err := os.Stat(filepath.Join(src, "strings", "strings.go")); err != nil {
		return nil, fmt.Errorf("no Go standard library under %s: %w", src, err)
	}
	if len(pkgs) == 0 {
		var err error
		if pkgs, err = stdPackages(src); err != nil {
			return nil, err
		}
	}
	c := &Corpus{}
	seen := map[string]bool{}
	for _, p := range pkgs {
		docs, err := packageDocs(filepath.Join(src, filepath.FromSlash(p)), p)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if seen[d.doc.Source] {
				continue
			}
			seen[d.doc.Source] = true
			c.Docs = append(c.Docs, d.doc)
			c.Queries = append(c.Queries, Query{Text: d.synopsis, Target: d.doc.Source})
		}
	}
	sort.Slice(c.Docs, func(i, j int) bool { return c.Docs[i].Source < c.Docs[j].Source })
	sort.Slice(c.Queries, func(i, j int) bool { return c.Queries[i].Target < c.Queries[j].Target })
	if len(c.Docs) == 0 {
		return nil, fmt.Errorf("no documents in packages %v", pkgs)
	}
	return c, nil
}

// Sample returns n queries spread evenly over the sorted list (all of them
// when n is 0 or not smaller than their number): deterministic and stable.
func (c *Corpus) Sample(n int) []Query {
	if n <= 0 || n >= len(c.Queries) {
		return c.Queries
	}
	out := make([]Query, n)
	for i := range out {
		out[i] = c.Queries[i*len(c.Queries)/n]
	}
	return out
}

func stdPackages(src string) ([]string, error) {
	var pkgs []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		rel = filepath.ToSlash(rel)
		base := d.Name()
		if rel != "." && (base == "internal" || base == "vendor" || base == "testdata" || rel == "cmd" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
			return filepath.SkipDir
		}
		if rel != "." {
			pkgs = append(pkgs, rel)
		}
		return nil
	})
	sort.Strings(pkgs)
	return pkgs, err
}

type entry struct {
	doc      Document
	synopsis string
}

// packageDocs returns the kept documents of the package in dir.
func packageDocs(dir, importPath string) ([]entry, error) {
	fset := token.NewFileSet()
	files, err := goFiles(dir)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	var parsed []*ast.File
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
		parsed = append(parsed, af)
	}
	p, err := doc.NewFromFiles(fset, parsed, importPath)
	if err != nil {
		return nil, fmt.Errorf("go/doc %s: %w", importPath, err)
	}
	// The server refuses a slash in a source: crypto/rand.Int is crypto-rand.Int.
	prefix := strings.ReplaceAll(importPath, "/", "-") + "."
	var out []entry
	add := func(name, comment string) {
		if e, ok := split(p, prefix+name, comment); ok {
			out = append(out, e)
		}
	}
	for _, f := range p.Funcs {
		add(f.Name, f.Doc)
	}
	for _, t := range p.Types {
		add(t.Name, t.Doc)
		for _, f := range t.Funcs {
			add(f.Name, f.Doc)
		}
		for _, m := range t.Methods {
			add(t.Name+"."+m.Name, m.Doc)
		}
	}
	return out, nil
}

// goFiles lists the package's non-test Go files as built for linux/amd64
// without cgo, so that each declaration is documented once. A directory
// without Go files, or holding a command, gives none.
func goFiles(dir string) ([]string, error) {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "amd64", false
	bp, err := ctx.ImportDir(dir, 0)
	if err != nil {
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if bp.IsCommand() {
		return nil, nil
	}
	out := make([]string, len(bp.GoFiles))
	for i, f := range bp.GoFiles {
		out[i] = filepath.Join(dir, f)
	}
	return out, nil
}

// split cuts a doc comment into its synopsis (the query) and the rest (the
// document), both as rendered plain text with whitespace collapsed. ok is
// false when the rest is too short or does not start after the synopsis.
func split(p *doc.Package, source, comment string) (entry, bool) {
	if comment == "" {
		return entry{}, false
	}
	syn := strings.Join(strings.Fields(p.Synopsis(comment)), " ")
	full := strings.Join(strings.Fields(string(p.Text(comment))), " ")
	rest, ok := strings.CutPrefix(full, syn)
	if !ok || syn == "" {
		return entry{}, false
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "Deprecated:") || len(rest) < minDocChars || len(sentenceEnd.FindAllStringIndex(rest, -1)) < minDocSentences {
		return entry{}, false
	}
	return entry{doc: Document{Source: source, Text: rest}, synopsis: syn}, true
}
