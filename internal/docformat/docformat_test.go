package docformat_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ragops/ragops/internal/docformat"
)

// passages returns the sentences of testdata/passages.json for a fixture.
func passages(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/passages.json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Files map[string][]string `json:"files"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Files[file]) == 0 {
		t.Fatalf("passages.json has no sentences for %s", file)
	}
	return p.Files[file]
}

// squash normalises white space: line breaks of the layout are not content.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// requireInOrder fails unless text holds every passage, in this order.
func requireInOrder(t *testing.T, text string, want []string) {
	t.Helper()
	flat := squash(text)
	at := 0
	for i, p := range want {
		j := strings.Index(flat[at:], squash(p))
		if j < 0 {
			if strings.Contains(flat, squash(p)) {
				t.Fatalf("passage %d %q is out of order", i+1, p)
			}
			t.Fatalf("passage %d %q is missing", i+1, p)
		}
		at += j + len(squash(p))
	}
}

// markup matches what must never reach the index: HTML tags (of the
// elements the fixtures use; their texts quote XML and mail addresses in
// angle brackets) and entities, and PDF content-stream operators and object
// syntax.
var markup = regexp.MustCompile(`(?i:</?(html|head|body|div|span|a|p|h[1-6]|li|ul|ol|dl|dt|dd|table|tr|td|th|script|style|link|meta|pre|code|em|strong|b|i|tt|br|img|section|nav|form|input|footer|header)\b[^>]*>)|` +
	`&[a-z]+;|&#\d+;|\b(BT|ET|Tj|TJ|Tf|Td|Tm|obj|endobj|endstream|xref)\b|/F\d+\s|\[\(`)

func requireClean(t *testing.T, text string) {
	t.Helper()
	if !utf8.ValidString(text) {
		t.Fatal("the text is not valid UTF-8")
	}
	if m := markup.FindString(text); m != "" {
		i := strings.Index(text, m)
		t.Fatalf("markup %q leaked into the text: ...%s...", m, text[max(0, i-60):min(len(text), i+60)])
	}
	if strings.ContainsAny(text, "\uFFFD\x00\f") {
		t.Fatal("the text holds a replacement character, a NUL or a form feed")
	}
	for _, lig := range []string{"ﬁ", "ﬂ", "ﬀ", "ﬃ", "ﬄ"} {
		if strings.Contains(text, lig) {
			t.Fatalf("the text holds the ligature %q", lig)
		}
	}
}

func extractFixture(t *testing.T, file string) docformat.Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := docformat.Extract(file, b)
	if err != nil {
		t.Fatalf("Extract(%s): %v", file, err)
	}
	if len(recs) != 1 || recs[0].Source != file {
		t.Fatalf("Extract(%s) returned %d records (%+v)", file, len(recs), recs)
	}
	return recs[0]
}

// requirePDFToText fails the test loudly when pdftotext is missing: PDF
// support is part of what is tested (make test installs poppler-utils).
func requirePDFToText(t *testing.T) {
	t.Helper()
	if _, err := docformat.PDFAvailable(); err != nil {
		t.Fatalf("%v: run `make poppler` (or apt-get install poppler-utils)", err)
	}
}

func TestHTMLKeepsTheTextAndDropsThePageFurniture(t *testing.T) {
	r := extractFixture(t, "debian-policy-ch-binary.html")
	requireInOrder(t, r.Text, passages(t, "debian-policy-ch-binary.html"))
	requireClean(t, r.Text)
	for _, gone := range []string{"Quick search", "Show Source", "Created using Sphinx", "Previous topic", "Navigation",
		"documentation_options", "jQuery", "¶"} {
		if strings.Contains(r.Text, gone) {
			t.Errorf("the text holds %q, which is navigation, a form, a script or a permalink", gone)
		}
	}
	if r.Metadata["title"] != "3. Binary packages — Debian Policy Manual v4.6.2.0" || r.Metadata["format"] != "html" {
		t.Errorf("metadata %v", r.Metadata)
	}
	// Headings and paragraphs are paragraphs of their own.
	if !strings.Contains(r.Text, "\n\n3.2.1. Version numbers based on dates\n\nIn general, Debian packages") {
		t.Error("the heading 3.2.1 is not a paragraph of its own before its text")
	}
}

func TestHTMLDeclaredCharsetAndPreformattedText(t *testing.T) {
	r := extractFixture(t, "libxslt-python.html")
	requireInOrder(t, r.Text, passages(t, "libxslt-python.html"))
	requireClean(t, r.Text)
	// The <pre> block keeps its lines and indentation.
	if !strings.Contains(r.Text, "\n    try:\n        pctxt = libxslt.xpathParserContext(_obj=ctx)\n") {
		t.Errorf("the <pre> block lost its layout:\n%s", r.Text[strings.Index(r.Text, "try:")-40:][:200])
	}
	if r.Metadata["title"] != "Python and bindings" {
		t.Errorf("metadata %v", r.Metadata)
	}
}

func TestHTMLStructure(t *testing.T) {
	page := `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Quarterly &amp; annual</title>
<style>body{color:red}</style><script>var secret = "script text";</script>
<body><header>Site banner</header><nav><a href="/">Home</a></nav>
<aside>Related links</aside><noscript>Enable JavaScript</noscript><template><p>template text</p></template>
<main><article><header><h1>Cash flow</h1></header>
<p>Operating cash flow rose&nbsp;12% to &euro;4.1&#8239;bn.</p>
<p>Second
   paragraph,
   one line.</p>
<ul><li>first item</li><li>second item<ul><li>nested item</li></ul></li></ul>
<table><tr><th>Region</th><th>Sales</th></tr><tr><td>North</td><td>12</td></tr></table>
<pre>  indented
    more</pre>
<div hidden>hidden text</div><svg><text>drawing text</text></svg>
<form><label>Search</label><input name=q></form>
<p>Last<br>line</p></article></main>
<footer>Copyright footer</footer></body></html>`
	recs, err := docformat.Extract("page.html", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	got := recs[0].Text
	want := "Quarterly & annual\n\nCash flow\n\nOperating cash flow rose 12% to €4.1 bn.\n\nSecond paragraph, one line.\n\n" +
		"- first item\n- second item\n- nested item\n\nRegion | Sales\nNorth | 12\n\n  indented\n    more\n\nLast\nline"
	if got != want {
		t.Fatalf("text:\n%q\nwant:\n%q", got, want)
	}
	if recs[0].Metadata["title"] != "Quarterly & annual" {
		t.Errorf("metadata %v", recs[0].Metadata)
	}
}

func TestHTMLWithoutHeadEndTag(t *testing.T) {
	// </head> and <body> are optional: the body's first element ends the head.
	recs, err := docformat.Extract("a.htm", []byte("<html><head><title>T</title><p>Body text survives."))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Text != "T\n\nBody text survives." {
		t.Fatalf("text %q", recs[0].Text)
	}
}

func TestPDFTextIsCleanAndInReadingOrder(t *testing.T) {
	requirePDFToText(t)
	for _, tc := range []struct {
		file, pages, title string
	}{
		{"camlidl-1.04.doc.pdf", "26", ""},
		{"debian-policy-ch1.pdf", "4", "Debian Policy Manual"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := extractFixture(t, tc.file)
			requireInOrder(t, r.Text, passages(t, tc.file))
			requireClean(t, r.Text)
			if r.Metadata["format"] != "pdf" || r.Metadata["pages"] != tc.pages || r.Metadata["title"] != tc.title {
				t.Errorf("metadata %v, want %s pages and title %q", r.Metadata, tc.pages, tc.title)
			}
			// No merged words: a run of 30 letters is two words glued together.
			if m := regexp.MustCompile(`\pL{30,}`).FindString(r.Text); m != "" {
				t.Errorf("merged words: %q", m)
			}
		})
	}
}

func TestPDFFailuresHaveReasons(t *testing.T) {
	requirePDFToText(t)
	good, err := os.ReadFile("testdata/debian-policy-ch1.pdf")
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := os.ReadFile("testdata/encrypted.pdf")
	if err != nil {
		t.Fatal(err)
	}
	// A valid PDF whose one page draws a rectangle: no text layer.
	blank := minimalPDF("0 0 m 100 100 l S")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", good[:len(good)/3], "damaged PDF"},
		{"not a PDF", []byte("just text with a .pdf name"), "no %PDF- header"},
		{"header only", []byte("%PDF-1.4"), "damaged PDF"},
		{"encrypted", encrypted, "encrypted"},
		{"no text layer", blank, "no text layer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := docformat.Extract("x.pdf", tc.data)
			if !errors.Is(err, docformat.ErrUnreadable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (records %d), want ErrUnreadable mentioning %q", err, len(recs), tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("the reason is not one line: %q", err)
			}
		})
	}
	// The same minimal PDF with text is read: the failure above is the
	// missing text, not the hand-made file.
	recs, err := docformat.Extract("y.pdf", minimalPDF("BT /F1 12 Tf 20 50 Td (Hand made text) Tj ET"))
	if err != nil || !strings.Contains(recs[0].Text, "Hand made text") {
		t.Fatalf("minimal PDF with text: %v %+v", err, recs)
	}
}

// minimalPDF writes a one-page PDF with the given content stream and a
// correct cross-reference table.
func minimalPDF(content string) []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		"<< /Length " + itoa(len(content)) + " >>\nstream\n" + content + "\nendstream",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		b.WriteString(itoa(i+1) + " 0 obj\n" + o + "\nendobj\n")
	}
	xref := b.Len()
	b.WriteString("xref\n0 " + itoa(len(objs)+1) + "\n0000000000 65535 f \n")
	for _, off := range offsets {
		s := itoa(off)
		b.WriteString(strings.Repeat("0", 10-len(s)) + s + " 00000 n \n")
	}
	b.WriteString("trailer\n<< /Size " + itoa(len(objs)+1) + " /Root 1 0 R >>\nstartxref\n" + itoa(xref) + "\n%%EOF\n")
	return []byte(b.String())
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestPDFWithoutPDFToTextIsUnsupported(t *testing.T) {
	old := docformat.PDFToText
	docformat.PDFToText = filepath.Join(t.TempDir(), "pdftotext")
	t.Cleanup(func() { docformat.PDFToText = old })
	_, err := docformat.Extract("a.pdf", minimalPDF("BT ET"))
	if !errors.Is(err, docformat.ErrUnsupported) || !strings.Contains(err.Error(), "poppler-utils") {
		t.Fatalf("err = %v, want ErrUnsupported naming poppler-utils", err)
	}
}

func TestPDFExtractionStopsWithItsContext(t *testing.T) {
	requirePDFToText(t)
	b, err := os.ReadFile("testdata/camlidl-1.04.doc.pdf")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := docformat.ExtractAll(ctx, "a.pdf", b); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestJSONRecords(t *testing.T) {
	array := `[
 {"id": "faq-1", "title": "Refunds", "text": "Refunds take five days.", "year": 2024, "public": true, "tags": ["x"], "extra": null},
 {"content": "Second record, no id."},
 {"id": 7, "body": "Body field."},
 {"id": "faq-1", "text": "A duplicate id."},
 {"title": "no text here"},
 "a string",
 {"id": "a/b", "text": "slash in id"}
]`
	recs, skipped, err := docformat.ExtractAll(context.Background(), "faq.json", []byte(array))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Source+"="+r.Text)
	}
	if strings.Join(got, "|") != "faq.json#faq-1=Refunds take five days.|faq.json#2=Second record, no id.|faq.json#7=Body field." {
		t.Fatalf("records %q", got)
	}
	md := recs[0].Metadata
	if len(md) != 4 || md["title"] != "Refunds" || md["year"] != "2024" || md["public"] != "true" || md["format"] != "json" {
		t.Fatalf("metadata %v", md)
	}
	wantSkips := []string{
		`faq.json record 4: id "faq-1" is also used by faq.json record 1`,
		"faq.json record 5: no text: none of the fields text, content, body holds text",
		"faq.json record 6: a record must be a JSON object, not string",
		`faq.json record 7: field "id" ("a/b") must not contain a slash`,
	}
	if len(skipped) != len(wantSkips) {
		t.Fatalf("skipped %+v", skipped)
	}
	for i, s := range skipped {
		if s.Where+": "+s.Reason != wantSkips[i] {
			t.Errorf("skip %d: %q, want %q", i, s.Where+": "+s.Reason, wantSkips[i])
		}
	}

	// One record: the file name is the source.
	recs, err = docformat.Extract("one.json", []byte(`{"text": "Only one.", "author": "Ann"}`))
	if err != nil || len(recs) != 1 || recs[0].Source != "one.json" || recs[0].Metadata["author"] != "Ann" {
		t.Fatalf("one record: %v %+v", err, recs)
	}
}

func TestJSONLinesSkipBadLines(t *testing.T) {
	lines := "{\"id\":\"a\",\"text\":\"Alpha.\"}\n\n{\"id\":\"b\",\"text\":\"Beta.\"\n{\"text\": 42}\n[1,2]\n{\"id\":\"c\",\"text\":\"Gamma.\"}\n"
	recs, skipped, err := docformat.ExtractAll(context.Background(), "notes.jsonl", []byte(lines))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Source != "notes.jsonl#a" || recs[1].Source != "notes.jsonl#c" || recs[1].Metadata["format"] != "jsonl" {
		t.Fatalf("records %+v", recs)
	}
	want := []string{
		"notes.jsonl line 3: truncated JSON",
		`notes.jsonl line 4: field "text" must be a string`,
		"notes.jsonl line 5: a record must be a JSON object, not array",
	}
	if len(skipped) != len(want) {
		t.Fatalf("skipped %+v", skipped)
	}
	for i, s := range skipped {
		if s.Where+": "+s.Reason != want[i] {
			t.Errorf("skip %d: %q, want %q", i, s.Where+": "+s.Reason, want[i])
		}
	}
}

func TestUnsupportedAndUnreadableFiles(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       error
		reason     string
	}{
		{"report.docx", "PK\x03\x04", docformat.ErrUnsupported, `extension ".docx" is not supported`},
		{"README", "text", docformat.ErrUnsupported, "no extension"},
		{"bin.txt", "\xff\xfe\x00bad", docformat.ErrUnreadable, "not UTF-8 text"},
		{"empty.md", " \n\t", docformat.ErrUnreadable, "empty"},
		{"scripts.html", "<script>alert(1)</script><style>p{}</style>", docformat.ErrUnreadable, "no visible text"},
		{"bad.json", `{"text": "x"`, docformat.ErrUnreadable, "truncated JSON"},
		{"syntax.json", `[{"text": "x"},]`, docformat.ErrUnreadable, "malformed JSON at byte"},
		{"none.jsonl", "{\"title\":\"t\"}\n{\"title\":\"u\"}\n", docformat.ErrUnreadable, "none of its 2 records is usable"},
		{"big.txt", strings.Repeat("a", docformat.MaxFileBytes+1), docformat.ErrUnreadable, "more than the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := docformat.Extract(tc.name, []byte(tc.data))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.reason)
			}
		})
	}
	if !docformat.Supported("A.PDF") || !docformat.Supported("x.JSONL") || docformat.Supported("x.doc") {
		t.Fatal("Supported is wrong")
	}
}

func TestTextFilesAsTheyAre(t *testing.T) {
	recs, err := docformat.Extract("notes.md", []byte("\uFEFF# Title\n\nBody <b>kept</b> as written.\n"))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Text != "# Title\n\nBody <b>kept</b> as written.\n" || len(recs[0].Metadata) != 0 {
		t.Fatalf("%+v", recs[0])
	}
}
