package ragserver_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/llm"
	"github.com/ragops/ragops/internal/rag"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
)

// injectedLatency is the fake model's latency per call; a query makes two
// calls (embeddings, chat).
const injectedLatency = 20 * time.Millisecond

// BenchmarkQuery measures POST /query end to end against the fake model
// (20ms per call) and a real Chroma, at 1, 16 and 64 concurrent clients. It
// reports throughput, p50/p99 latency and the server-added latency: measured
// minus the injected 2 x 20ms. The added latency includes Chroma's query time.
func BenchmarkQuery(b *testing.B) {
	f := fakeopenai.New(fakeopenai.Options{Latency: injectedLatency, Dim: 384})
	model := httptest.NewServer(f)
	b.Cleanup(model.Close)
	env := map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": model.URL + "/v1", "LLM_MODEL": "fake-chat", "EMBEDDING_MODEL": "fake-embed-bench",
		"CHROMA_COLLECTION": "bench", "LOG_LEVEL": "error",
	}
	b.Run("store=chroma", func(b *testing.B) {
		env := cloneEnv(env)
		env["CHROMA_URL"] = chromaserver.Shared(b).URL()
		benchQuery(b, start(b, env))
	})
	// The embedded store shows the server's own overhead without Chroma's
	// query time.
	b.Run("store=embedded", func(b *testing.B) { benchQuery(b, start(b, env)) })
}

func benchQuery(b *testing.B, ts *testServer) {
	ts.waitReady(b)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: transport}
	body := []byte(`{"question":"What was the net interest margin in the fourth quarter?","top_k":4}`)

	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			var next sync.Mutex
			i := 0
			var failed error
			b.ResetTimer()
			begin := time.Now()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					for {
						next.Lock()
						n := i
						i++
						next.Unlock()
						if n >= b.N {
							return
						}
						t0 := time.Now()
						resp, err := client.Post(ts.URL+"/query", "application/json", bytes.NewReader(body))
						if err == nil {
							_, err = bytes.NewBuffer(nil).ReadFrom(resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								err = fmt.Errorf("status %d", resp.StatusCode)
							}
						}
						lat[n] = time.Since(t0)
						if err != nil {
							next.Lock()
							failed = err
							next.Unlock()
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(begin)
			b.StopTimer()
			if failed != nil {
				b.Fatal(failed)
			}
			slices.Sort(lat)
			pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			injected := 2 * injectedLatency
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(ms(pct(0.50)), "p50-ms")
			b.ReportMetric(ms(pct(0.99)), "p99-ms")
			b.ReportMetric(ms(pct(0.50)-injected), "added-p50-ms")
			b.ReportMetric(ms(pct(0.99)-injected), "added-p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// benchDocs returns the number of generated documents: RAGOPS_BENCH_DOCS,
// 5000 by default (about 20,000 chunks).
func benchDocs(b *testing.B) int {
	if v := os.Getenv("RAGOPS_BENCH_DOCS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("RAGOPS_BENCH_DOCS=%q must be a positive integer", v)
		}
		return n
	}
	return 5000
}

var words = strings.Fields(`revenue income margin loan deposit capital ratio credit risk interest rate
	quarter fiscal growth decline guidance dividend share repurchase liquidity funding expense efficiency
	branch customer commercial consumer wealth asset liability reserve allowance charge-off default
	regulatory stress test securities portfolio yield spread basis points billion million percent
	treasury hedge swap exposure duration volatility inflation recession outlook segment operating`)

// corpus generates n documents of four ~600-character paragraphs each, so
// that with CHUNK_SIZE 800 each document makes four chunks.
func corpus(n int) []rag.Document {
	r := rand.New(rand.NewPCG(1, 2))
	docs := make([]rag.Document, n)
	for i := range docs {
		var b strings.Builder
		for p := range 4 {
			if p > 0 {
				b.WriteString("\n\n")
			}
			start := b.Len()
			for b.Len()-start < 560 {
				for w := range 12 {
					if w > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(words[r.IntN(len(words))])
				}
				b.WriteString(". ")
			}
		}
		docs[i] = rag.Document{Source: fmt.Sprintf("doc-%05d.md", i), Text: strings.TrimSpace(b.String())}
	}
	return docs
}

// peakRSS reads (and with reset, resets) the peak resident set size of a
// process, in MiB.
func peakRSS(pid string, reset bool) float64 {
	if reset {
		_ = os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0)
		return 0
	}
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return -1
}

// BenchmarkIngest measures ingestion of a generated corpus into a real
// Chroma (each run on a fresh server), with embeddings from the fake model
// (no injected latency): batched (64 chunks per embeddings request, 256 per
// upsert) versus one chunk per call, both with 4 embeddings requests in
// flight. It
// reports chunks/s and the peak RSS of this process and of Chroma.
// Run with -benchtime=1x.
func BenchmarkIngest(b *testing.B) {
	docs := corpus(benchDocs(b))
	f := fakeopenai.New(fakeopenai.Options{Dim: 384})
	model := httptest.NewServer(f)
	b.Cleanup(model.Close)
	for _, mode := range []struct {
		name  string
		batch int
	}{{"batched", 64}, {"one-per-call", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				chroma := chromaserver.Start(b, "")
				store, err := chromastore.New(chromastore.Options{URL: chroma.URL(), Collection: "ingest-bench", Timeout: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				emb := llm.NewOpenAI(llm.Config{BaseURL: model.URL + "/v1", Model: "fake-embed"})
				svc := rag.New(store, emb, nil, rag.Options{ChunkSize: 800, ChunkOverlap: 100, EmbedBatch: mode.batch, EmbedConcurrency: 4})
				f.Reset()
				chromaPid := strconv.Itoa(chroma.Pid())
				peakRSS("self", true)
				peakRSS(chromaPid, true)
				b.StartTimer()
				begin := time.Now()
				res, err := svc.Ingest(context.Background(), docs)
				elapsed := time.Since(begin)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.Added)/elapsed.Seconds(), "chunks/s")
				b.ReportMetric(float64(res.Added), "chunks")
				b.ReportMetric(float64(f.Stats().EmbeddingRequests), "embed-calls")
				b.ReportMetric(peakRSS("self", false), "go-peak-RSS-MiB")
				b.ReportMetric(peakRSS(chromaPid, false), "chroma-peak-RSS-MiB")
				store.Close()
				chroma.Stop()
			}
		})
	}
}
