package docformat_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ragops/ragops/internal/docformat"
)

// FuzzHTML: any input ends quickly with clean text or a reason, never a
// panic; the text is valid UTF-8, bounded, and holds nothing from inside a
// <script> element of the input.
func FuzzHTML(f *testing.F) {
	for _, name := range []string{"debian-policy-ch-binary.html", "libxslt-python.html"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("<html><head><title>t</title><p>a<script>SCRIPTTEXT</script>b"))
	f.Add([]byte(strings.Repeat("<div>", 10000) + "deep" + strings.Repeat("</div>", 10)))
	f.Add([]byte("<nav><nav><nav>x</nav>y</nav>z</nav>after<svg><title>s</title></svg>"))
	f.Add([]byte("<meta charset=\"shift_jis\"><p>\x82\xa0\x82\xa2</p>"))
	f.Add([]byte("<table><tr><td>a<td>b<tr><td>c</table><pre>\r\n x\n\n\n\ny</pre>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		recs, err := docformat.Extract("f.html", data)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%d bytes took %s", len(data), d)
		}
		if err != nil {
			if !errors.Is(err, docformat.ErrUnreadable) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not a one-line ErrUnreadable", err)
			}
			return
		}
		if len(recs) != 1 || recs[0].Source != "f.html" {
			t.Fatalf("records %+v", recs)
		}
		text := recs[0].Text
		if !utf8.ValidString(text) || strings.TrimSpace(text) == "" || len(text) > docformat.MaxTextBytes+docformat.MaxMetadataValueBytes+2 {
			t.Fatalf("text of %d bytes, valid UTF-8 %v", len(text), utf8.ValidString(text))
		}
		if strings.Contains(text, "SCRIPTTEXT") && strings.Contains(string(data), "<script>SCRIPTTEXT") &&
			!strings.Contains(strings.Replace(string(data), "<script>SCRIPTTEXT", "", 1), "SCRIPTTEXT") {
			t.Fatalf("script text leaked: %q", text)
		}
	})
}

// FuzzJSON: any .json or .jsonl input ends with records that have text, or
// a reason; every record's source is the file name or starts with "name#".
func FuzzJSON(f *testing.F) {
	f.Add([]byte(`[{"id":"a","text":"x","n":1},{"content":"y"},{"body":""},3,null]`), false)
	f.Add([]byte(`{"text":"one","meta":{"nested":true},"tags":["a"]}`), false)
	f.Add([]byte("{\"id\":1,\"text\":\"a\"}\n{\"id\":1,\"text\":\"b\"}\nnot json\n{\"text\":\"\\u0000\"}"), true)
	f.Add([]byte(strings.Repeat("[", 5000)), false)
	f.Add([]byte("\uFEFF{\"id\":\"x/y\",\"text\":\"t\"}"), true)
	f.Fuzz(func(t *testing.T, data []byte, lines bool) {
		name := "f.json"
		if lines {
			name = "f.jsonl"
		}
		recs, skipped, err := docformat.ExtractAll(context.Background(), name, data)
		if err != nil {
			if !errors.Is(err, docformat.ErrUnreadable) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not a one-line ErrUnreadable", err)
			}
			return
		}
		if len(recs) == 0 || len(recs) > docformat.MaxRecords {
			t.Fatalf("%d records without an error", len(recs))
		}
		seen := map[string]bool{}
		for _, r := range recs {
			if strings.TrimSpace(r.Text) == "" || !utf8.ValidString(r.Text) {
				t.Fatalf("record %q has no valid text", r.Source)
			}
			if r.Source != name && !strings.HasPrefix(r.Source, name+"#") || strings.ContainsAny(r.Source, "/\\\n") || seen[r.Source] {
				t.Fatalf("bad or repeated source %q", r.Source)
			}
			seen[r.Source] = true
			if len(r.Metadata) > docformat.MaxMetadataKeys+1 {
				t.Fatalf("%d metadata keys", len(r.Metadata))
			}
		}
		for _, s := range skipped {
			if s.Reason == "" || strings.Contains(s.Reason, "\n") {
				t.Fatalf("skip without a one-line reason: %+v", s)
			}
		}
	})
}

// TestHostileInputsAreBounded: a file at the size limit made of what makes
// parsers work hardest ends in bounded time with bounded allocations.
func TestHostileInputsAreBounded(t *testing.T) {
	nested := strings.Repeat("<div><span><b>", docformat.MaxFileBytes/14)
	many := strings.Repeat(`{"text":"x"}`+"\n", docformat.MaxRecords*3)
	for _, tc := range []struct{ name, data string }{
		{"nested.html", nested},
		{"many.jsonl", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			recs, skipped, err := docformat.ExtractAll(context.Background(), tc.name, []byte(tc.data))
			d := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d bytes in %s, %d MiB allocated, %d records, %d skipped, err %v", tc.name, len(tc.data), d, alloc>>20, len(recs), len(skipped), err)
			if d > 20*time.Second {
				t.Errorf("took %s", d)
			}
			// JSON records cost a few KiB each, up to MaxRecords of them.
			if alloc > 40*uint64(len(tc.data))+64<<20 {
				t.Errorf("allocated %d MiB for %d MiB of input", alloc>>20, len(tc.data)>>20)
			}
			if tc.name == "many.jsonl" && (len(recs) != docformat.MaxRecords || len(skipped) != 1) {
				t.Errorf("%d records and %d skipped, want %d and 1", len(recs), len(skipped), docformat.MaxRecords)
			}
		})
	}
}
