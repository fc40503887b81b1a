package crash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/rag/chunk"
)

// The server's chunking, set explicitly so the test knows every chunk.
const (
	chunkSize    = 200
	chunkOverlap = 20
	workers      = 4   // concurrent writers; each owns its sources
	poolSize     = 150 // source names per writer
	bigBatch     = 120 // documents in the occasional big request
)

// kills is the number of SIGKILLs: 50 by default, RAGOPS_SOAK_KILLS for a
// soak (make soak).
func kills(t *testing.T) int {
	if v := os.Getenv("RAGOPS_SOAK_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RAGOPS_SOAK_KILLS=%q: want a positive number", v)
		}
		return n
	}
	return 50
}

// version is one content ever sent for a source.
type version struct {
	id     string
	text   string
	chunks []string
}

// source is the model of one source: its state after the last acknowledged
// operation, and the operation whose outcome is unknown (in flight at a kill).
type source struct {
	name     string
	versions []*version
	state    *version // nil: absent
	doubt    bool     // an operation was in flight at the kill
	after    *version // its outcome if it was applied (nil: a delete)
	touched  bool     // operated on since the last check
}

// TestCrashLoop is the acceptance test of "a crash never loses or bricks an
// index": it kills the real ragserver binary with SIGKILL while concurrent
// requests add, replace and delete documents, restarts it on the same
// DATA_DIR, and checks that it starts, that every acknowledged document is
// there whole and retrievable, and that nothing half-written is served.
func TestCrashLoop(t *testing.T) {
	n := kills(t)
	start := time.Now()
	bin := filepath.Join(t.TempDir(), "ragserver")
	build := exec.Command("go", "build", "-o", bin, "github.com/ragops/ragops/cmd/ragserver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))

	h := &harness{t: t, bin: bin, dataDir: t.TempDir(), logDir: t.TempDir(), rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	for w := range workers {
		for i := range poolSize {
			h.pool[w] = append(h.pool[w], &source{name: fmt.Sprintf("w%d-doc-%02d.md", w, i)})
		}
	}
	t.Logf("DATA_DIR %s; server logs in %s", h.dataDir, h.logDir)
	srv := h.startServer(0)
	h.check(srv)
	var totalChecked, totalAcked int
	for k := 1; k <= n; k++ {
		delay := time.Duration(h.rng.IntN(301)) * time.Millisecond
		acked, doubt, reqs := h.load(srv, delay)
		began := time.Now()
		srv = h.startServer(k)
		ready := time.Since(began)
		listed, checked := h.check(srv)
		totalAcked += acked
		totalChecked += checked
		t.Logf("kill %d/%d after %v: %d requests, %d documents acknowledged, %d in doubt; restart ready in %v: %d documents listed, %d checked by retrieval",
			k, n, delay, reqs, acked, doubt, ready.Round(time.Millisecond), listed, checked)
	}
	srv.stop(t)
	t.Logf("done: %d kills, %d documents acknowledged, %d retrieval checks after restarts, %v", n, totalAcked, totalChecked, time.Since(start).Round(time.Millisecond))
}

type harness struct {
	t       *testing.T
	bin     string
	dataDir string
	logDir  string
	rng     *rand.Rand // used by the test goroutine only
	pool    [workers][]*source
	nextVer atomic.Int64 // names versions uniquely across the writers
}

type server struct {
	url    string
	cmd    *exec.Cmd
	exited chan error
	log    string
}

// startServer starts the binary and waits for /readyz: a server that exits
// or never gets ready fails the test (a bricked DATA_DIR).
func (h *harness) startServer(round int) *server {
	t := h.t
	t.Helper()
	port := freePort(t)
	logPath := filepath.Join(h.logDir, fmt.Sprintf("round-%03d.log", round))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(h.bin)
	// Offline: no model API (local embedder, extractive answers), nothing
	// inherited from the environment that could change that.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"PORT=" + strconv.Itoa(port), "DATA_DIR=" + h.dataDir, "LOG_LEVEL=warn",
		"CHUNK_SIZE=" + strconv.Itoa(chunkSize), "CHUNK_OVERLAP=" + strconv.Itoa(chunkOverlap),
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{url: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, exited: make(chan error, 1), log: logPath}
	go func() { s.exited <- cmd.Wait() }()
	began := time.Now()
	deadline := began.Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("start %d: the server exited (%v): DATA_DIR is bricked. Log:\n%s", round, err, b)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.kill()
			b, _ := os.ReadFile(logPath)
			t.Fatalf("start %d: not ready after %v. Log:\n%s", round, time.Since(began), b)
		}
	}
}

// kill sends SIGKILL and returns the process's exit (which says nothing).
func (s *server) kill() error {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	return <-s.exited
}

func (s *server) stop(t *testing.T) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("the server exited on SIGTERM with %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = s.kill()
		t.Error("the server did not stop on SIGTERM")
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends a JSON request; a transport error (the server was killed) is
// returned as an error, any answer as its status and body.
func call(ctx context.Context, method, url string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// newVersion writes a new content for src: 300 to 1200 characters of words,
// with a token unique to the version in every sentence.
func (h *harness) newVersion(rng *rand.Rand, src *source, id int) *version {
	tok := fmt.Sprintf("tok%dx", id)
	var b strings.Builder
	size := 300 + rng.IntN(900)
	for b.Len() < size {
		b.WriteString(tok)
		for range 6 + rng.IntN(8) {
			fmt.Fprintf(&b, " %s%d", words[rng.IntN(len(words))], rng.IntN(50))
		}
		b.WriteString(". ")
	}
	text := strings.TrimSpace(b.String())
	v := &version{id: tok, text: text, chunks: chunk.Split(text, chunkSize, chunkOverlap)}
	src.versions = append(src.versions, v)
	return v
}

var words = strings.Fields(`revenue margin deposit loan credit hedge capital equity asset liability
	interest dividend treasury quarter guidance risk exposure portfolio reserve provision
	yield spread duration liquidity funding balance income expense growth outlook`)

type doc struct {
	Source string `json:"source"`
	Text   string `json:"text"`
}

// load runs the writers against srv, kills it after delay, and returns the
// number of documents acknowledged and in doubt, and of requests sent.
func (h *harness) load(srv *server, delay time.Duration) (acked, doubt, reqs int) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		seed := h.rng.Uint64()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				a, d, ok := h.request(ctx, rng, srv, w)
				mu.Lock()
				acked, doubt, reqs = acked+a, doubt+d, reqs+1
				mu.Unlock()
				if !ok {
					return
				}
			}
		})
	}
	time.Sleep(delay) // the random instant of the kill: what is being varied, not a wait for an outcome
	_ = srv.kill()
	cancel()
	wg.Wait()
	return acked, doubt, reqs
}

// request sends one request of worker w: a DELETE of one of its documents
// now and then, else a POST of a batch of new and replaced documents (3 to
// 40, or bigBatch). It returns the documents acknowledged and left in doubt, and
// false once the server is gone.
func (h *harness) request(ctx context.Context, rng *rand.Rand, srv *server, w int) (int, int, bool) {
	pool := h.pool[w]
	if rng.IntN(8) == 0 {
		var present []*source
		for _, s := range pool {
			if s.state != nil {
				present = append(present, s)
			}
		}
		if len(present) > 0 {
			s := present[rng.IntN(len(present))]
			s.doubt, s.after, s.touched = true, nil, true
			code, body, err := call(ctx, "DELETE", srv.url+"/documents/"+url.PathEscape(s.name), nil)
			if err != nil {
				return 0, 1, false
			}
			if code != 200 {
				h.t.Errorf("DELETE %s answered %d %s", s.name, code, body)
				return 0, 1, false
			}
			s.state, s.doubt = nil, false
			return 1, 0, true
		}
	}
	size := 3 + rng.IntN(38)
	if rng.IntN(10) == 0 {
		size = bigBatch // a long write to kill
	}
	// A request holds a source at most once.
	var batch []*source
	var docs []doc
	for _, i := range rng.Perm(len(pool))[:min(size, len(pool))] {
		batch = append(batch, pool[i])
	}
	base := int(h.nextVer.Add(1)) * 1000
	for i, s := range batch {
		v := h.newVersion(rng, s, base+i)
		s.doubt, s.after, s.touched = true, v, true
		docs = append(docs, doc{Source: s.name, Text: v.text})
	}
	code, body, err := call(ctx, "POST", srv.url+"/documents", map[string]any{"documents": docs})
	if err != nil {
		return 0, len(batch), false
	}
	if code != 200 {
		h.t.Errorf("POST /documents answered %d %s", code, body)
		return 0, len(batch), false
	}
	for _, s := range batch {
		s.state, s.doubt = s.after, false
	}
	return len(batch), 0, true
}

type hit struct {
	Source string `json:"source"`
	Chunk  int    `json:"chunk"`
	Text   string `json:"text"`
}

// check compares what the server serves with the model: every source is
// listed with exactly the chunks of one whole version, the acknowledged one
// (or, for an operation cut by the kill, the one before or after it). The
// sources operated on in the last round, and a sample of the others, are
// also retrieved: by a source filter (all their chunks, of that version
// only) and by a question taken from their text. It returns the number of
// documents listed and of documents checked by retrieval.
func (h *harness) check(srv *server) (int, int) {
	t := h.t
	t.Helper()
	ctx := context.Background()
	code, body, err := call(ctx, "GET", srv.url+"/documents", nil)
	if err != nil || code != 200 {
		t.Fatalf("GET /documents: %d %s %v", code, body, err)
	}
	var list struct {
		Documents []struct {
			Source string `json:"source"`
			Chunks int    `json:"chunks"`
		} `json:"documents"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	listed := map[string]int{}
	for _, d := range list.Documents {
		listed[d.Source] = d.Chunks
	}
	known := map[string]*source{}
	var all []*source
	for w := range workers {
		for _, s := range h.pool[w] {
			known[s.name] = s
			all = append(all, s)
		}
	}
	for name := range listed {
		if known[name] == nil {
			t.Errorf("GET /documents lists %q, never sent", name)
		}
	}
	// The sample: the sources touched in the last round, and 10 others.
	var sample []*source
	for _, s := range all {
		if s.touched {
			sample = append(sample, s)
		}
	}
	for _, i := range h.rng.Perm(len(all))[:10] {
		if !all[i].touched {
			sample = append(sample, all[i])
		}
	}
	for _, s := range all {
		n, ok := listed[s.name]
		allowed := []*version{s.state}
		if s.doubt {
			allowed = append(allowed, s.after)
		}
		var candidates []*version // the allowed versions the listing may show
		for _, v := range allowed {
			if (v == nil && !ok) || (v != nil && ok && len(v.chunks) == n) {
				candidates = append(candidates, v)
			}
		}
		if len(candidates) == 0 {
			t.Errorf("%s is listed: %v with %d chunks; acknowledged: %s; in doubt: %v, %s", s.name, ok, n, s.state.desc(), s.doubt, s.after.desc())
			continue
		}
		if len(candidates) == 1 && !s.touched && !slices.Contains(sample, s) {
			continue
		}
		s.state, s.doubt, s.after, s.touched = h.checkRetrieve(srv, s, candidates), false, nil, false
	}
	if t.Failed() {
		b, _ := os.ReadFile(srv.log)
		t.Fatalf("the index does not match the acknowledged writes; server log:\n%s", b)
	}
	return len(listed), len(sample)
}

func (v *version) desc() string {
	if v == nil {
		return "absent"
	}
	return fmt.Sprintf("version %s of %d chunks", v.id, len(v.chunks))
}

// checkRetrieve retrieves s by a source filter and by a question, and
// returns the version it shows, which must be one of the candidates (nil:
// absent).
func (h *harness) checkRetrieve(srv *server, s *source, candidates []*version) *version {
	t := h.t
	hits := retrieve(t, srv, map[string]any{"question": "tok revenue margin", "top_k": 50, "filter": map[string]string{"source": s.name}})
	if candidates[0] == nil {
		if len(hits) != 0 {
			t.Errorf("%s is not listed but /retrieve returns %d of its chunks", s.name, len(hits))
		}
		return nil
	}
	// Every chunk of one candidate version, and nothing else.
	var got *version
	for _, v := range candidates {
		match := len(hits) == len(v.chunks)
		for _, hit := range hits {
			if hit.Chunk < 0 || hit.Chunk >= len(v.chunks) || v.chunks[hit.Chunk] != hit.Text {
				match = false
			}
		}
		if match {
			got = v
		}
	}
	if got == nil {
		var desc []string
		for _, hit := range hits {
			desc = append(desc, fmt.Sprintf("%d %.20q", hit.Chunk, hit.Text))
		}
		t.Errorf("%s: /retrieve by source returned %d chunks [%s], not all the chunks of one version among %d candidates (first: %s)",
			s.name, len(hits), strings.Join(desc, ", "), len(candidates), candidates[0].desc())
		return candidates[0]
	}
	i := h.rng.IntN(len(got.chunks))
	found := false
	for _, hit := range retrieve(t, srv, map[string]any{"question": got.chunks[i], "top_k": 3}) {
		if hit.Source == s.name && hit.Chunk == i {
			found = true
		}
	}
	if !found {
		t.Errorf("%s (%s): a question made of its chunk %d does not find it", s.name, got.desc(), i)
	}
	return got
}

func retrieve(t *testing.T, srv *server, req map[string]any) []hit {
	t.Helper()
	code, body, err := call(context.Background(), "POST", srv.url+"/retrieve", req)
	if err != nil || code != 200 {
		t.Fatalf("POST /retrieve %v: %d %s %v", req, code, body, err)
	}
	var resp struct {
		Sources []hit `json:"sources"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Sources
}
