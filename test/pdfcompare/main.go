// Command pdfcompare measures PDF text extractors on the same files: the
// one ragops uses (poppler's pdftotext, through package docformat) and the
// pure-Go candidates (github.com/ledongthuc/pdf, github.com/dslipak/pdf, and
// PDFium compiled to WebAssembly run by wazero, github.com/klippa-app/go-pdfium).
// It prints, per file and extractor, the time (median of -runs, and as a
// ratio of pdftotext's time in the same run) and text quality: the
// sentences of internal/docformat/testdata/passages.json found and in order,
// words glued together, PDF operators leaking, lost characters and
// ligatures, words left hyphenated at line ends.
//
// It is a module of its own so that the candidates never enter ragops's
// go.mod. Run it from this directory (poppler-utils installed):
//
//	go run . [-runs 3] [-timeout 60s] [more.pdf ...]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	dslipak "github.com/dslipak/pdf"
	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	ledongthuc "github.com/ledongthuc/pdf"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/ragops/ragops/internal/docformat"
)

const testdata = "../../internal/docformat/testdata"

func main() {
	runs := flag.Int("runs", 3, "runs per file and extractor (the median time is reported)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up on one extractor and file after this long")
	child := flag.String("child", "", "internal: run this extractor on the file given as argument and print the result as JSON")
	flag.Parse()
	if *child != "" {
		runChild(*child, flag.Arg(0), *runs)
		return
	}
	if _, err := docformat.PDFAvailable(); err != nil {
		fmt.Fprintln(os.Stderr, "pdfcompare:", err)
		os.Exit(1)
	}
	files := []string{filepath.Join(testdata, "camlidl-1.04.doc.pdf"), filepath.Join(testdata, "debian-policy-ch1.pdf")}
	files = append(files, flag.Args()...)
	passages := loadPassages()

	// Each extractor runs in a child process per file, so that one that
	// never ends is killed and costs the others no CPU. PDFium's
	// WebAssembly module is compiled once, into a cache the children share.
	cacheDir, err := os.MkdirTemp("", "pdfcompare-wazero-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pdfcompare:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(cacheDir)
	os.Setenv("PDFCOMPARE_WAZERO_CACHE", cacheDir)
	start := time.Now()
	if _, err := newPDFium(); err != nil {
		fmt.Fprintln(os.Stderr, "pdfcompare: PDFium:", err)
		os.Exit(1)
	}
	pdfiumInit := time.Since(start)
	names := []string{"pdftotext (chosen)", "ledongthuc/pdf", "dslipak/pdf", "go-pdfium (wasm)"}

	fmt.Printf("PDFium WebAssembly start-up (compiling the module, once per process): %s\n\n", pdfiumInit.Round(time.Millisecond))
	fmt.Println("| file | extractor | median time | vs pdftotext | passages found | in order | glued words | operators | lost chars | ligatures | line-end hyphens | chars |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintln(os.Stderr, "pdfcompare:", err)
			os.Exit(1)
		}
		var base time.Duration
		for i, ex := range names {
			text, d, err := measure(ex, f, *runs, *timeout)
			if i == 0 {
				base = d
			}
			name := filepath.Base(f)
			if err != nil {
				fmt.Printf("| %s | %s | %s | | failed: %s | | | | | | | |\n", name, ex, cell(d), oneLine(err.Error()))
				continue
			}
			q := quality(text, passages[name])
			fmt.Printf("| %s | %s | %s | %.2f | %s | %s | %d | %d | %d | %d | %d | %d |\n", name, ex, cell(d),
				float64(d)/float64(base), q.found, q.order, q.glued, q.operators, q.lost, q.ligatures, q.hyphens, len(text))
		}
	}
}

func cell(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

// measure runs extractor ex on file runs times in a child process and
// returns the text and the median time. A child that does not end within
// timeout is killed.
func measure(ex, file string, runs int, timeout time.Duration) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return "", 0, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, self, "-child", ex, "-runs", strconv.Itoa(runs), file)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return "", timeout, fmt.Errorf("did not finish within %s", timeout)
	}
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s", err, stderr.String())
	}
	var r childResult
	if err := json.Unmarshal(out, &r); err != nil {
		return "", 0, err
	}
	if r.Error != "" {
		return "", r.Median, errors.New(r.Error)
	}
	return r.Text, r.Median, nil
}

type childResult struct {
	Text   string        `json:"text"`
	Median time.Duration `json:"median"`
	Error  string        `json:"error,omitempty"`
}

// runChild extracts file with one extractor runs times and prints a
// childResult.
func runChild(name, file string, runs int) {
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var fn func([]byte) (string, error)
	switch name {
	case "pdftotext (chosen)":
		fn = func(b []byte) (string, error) {
			recs, err := docformat.Extract("f.pdf", b)
			if err != nil {
				return "", err
			}
			return recs[0].Text, nil
		}
	case "ledongthuc/pdf":
		fn = plain(func(b []byte) (io.Reader, error) {
			r, err := ledongthuc.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return nil, err
			}
			return r.GetPlainText()
		})
	case "dslipak/pdf":
		fn = plain(func(b []byte) (io.Reader, error) {
			r, err := dslipak.NewReader(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return nil, err
			}
			return r.GetPlainText()
		})
	case "go-pdfium (wasm)":
		pool, err := newPDFium()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fn = func(b []byte) (string, error) { return pdfiumText(pool, b) }
	default:
		fmt.Fprintln(os.Stderr, "unknown extractor", name)
		os.Exit(2)
	}
	var res childResult
	var times []time.Duration
	for range runs {
		start := time.Now()
		text, err := safely(fn, data)
		times = append(times, time.Since(start))
		if err != nil {
			res.Error = err.Error()
			break
		}
		res.Text = text
	}
	slices.Sort(times)
	res.Median = times[len(times)/2]
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func safely(fn func([]byte) (string, error), b []byte) (text string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(b)
}

// newPDFium starts PDFium's WebAssembly module, compiled into the cache
// directory that PDFCOMPARE_WAZERO_CACHE names.
func newPDFium() (pdfium.Pool, error) {
	cache, err := wazero.NewCompilationCacheWithDir(os.Getenv("PDFCOMPARE_WAZERO_CACHE"))
	if err != nil {
		return nil, err
	}
	return webassembly.Init(webassembly.Config{MinIdle: 1, MaxIdle: 1, MaxTotal: 1,
		// The features go-pdfium's default configuration enables.
		RuntimeConfig: wazero.NewRuntimeConfig().WithCompilationCache(cache).
			WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling)})
}

func plain(open func([]byte) (io.Reader, error)) func([]byte) (string, error) {
	return func(b []byte) (string, error) {
		r, err := open(b)
		if err != nil {
			return "", err
		}
		out, err := io.ReadAll(r)
		return string(out), err
	}
}

func pdfiumText(pool pdfium.Pool, b []byte) (string, error) {
	inst, err := pool.GetInstance(30 * time.Second)
	if err != nil {
		return "", err
	}
	defer inst.Close()
	doc, err := inst.OpenDocument(&requests.OpenDocument{File: &b})
	if err != nil {
		return "", err
	}
	defer func() { _, _ = inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document}) }()
	n, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for i := range n.PageCount {
		t, err := inst.GetPageText(&requests.GetPageText{Page: requests.Page{ByIndex: &requests.PageByIndex{Document: doc.Document, Index: i}}})
		if err != nil {
			return "", err
		}
		sb.WriteString(t.Text)
		sb.WriteString("\n\n")
	}
	return sb.String(), nil
}

func loadPassages() map[string][]string {
	b, err := os.ReadFile(filepath.Join(testdata, "passages.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pdfcompare:", err)
		os.Exit(1)
	}
	var p struct {
		Files map[string][]string `json:"files"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		fmt.Fprintln(os.Stderr, "pdfcompare:", err)
		os.Exit(1)
	}
	return p.Files
}

type metrics struct {
	found, order                               string
	glued, operators, lost, ligatures, hyphens int
}

var (
	// A run of 25 letters is words glued together (no English or
	// identifier word in these manuals is that long).
	gluedRE = regexp.MustCompile(`\pL{25,}`)
	// Content-stream operators and object syntax standing as words.
	operatorRE = regexp.MustCompile(`(?m)\b(BT|ET|Tj|TJ|Tf|Td|TD|Tm|Tz|obj|endobj|endstream)\b|\[\(|\)\s*Tj`)
	hyphenRE   = regexp.MustCompile(`\p{Ll}-\n\p{Ll}`)
)

func quality(text string, passages []string) metrics {
	m := metrics{found: "n/a", order: "n/a"}
	m.glued = len(gluedRE.FindAllString(text, -1))
	m.operators = len(operatorRE.FindAllString(text, -1))
	m.lost = strings.Count(text, "\uFFFD")
	for _, l := range []string{"ﬁ", "ﬂ", "ﬀ", "ﬃ", "ﬄ"} {
		m.ligatures += strings.Count(text, l)
	}
	m.hyphens = len(hyphenRE.FindAllString(text, -1))
	if len(passages) == 0 {
		return m
	}
	flat := squash(text)
	found, at, ordered := 0, 0, true
	for _, p := range passages {
		p = squash(p)
		i := strings.Index(flat, p)
		if i < 0 {
			continue
		}
		found++
		if j := strings.Index(flat[at:], p); j >= 0 {
			at += j + len(p)
		} else {
			ordered = false
		}
	}
	m.found = fmt.Sprintf("%d/%d", found, len(passages))
	m.order = "yes"
	if !ordered || found == 0 {
		m.order = "no"
	}
	return m
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func oneLine(s string) string {
	s = squash(s)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
