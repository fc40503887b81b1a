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
	"github.com/ragops/ragops/internal/ragserver"
	"github.com/ragops/ragops/internal/testutil/chromaserver"
	"github.com/ragops/ragops/internal/vectorstore/chromastore"
)

// injectedLatency is the fake model's latency per call; a query makes two
// calls (embeddings, chat).
const injectedLatency = 20 * time.Millisecond

// BenchmarkQuery measures POST /query end to end against the fake model
// (20ms per call) and a real Chroma, at 1, 16 and 64 concurrent clients. It
// reports throughput and p50/p99 latency, and, as the baseline measured in the
// same run at the same concurrency, the latency of the same upstream work done
// directly by the benchmark client: the embeddings call, the Chroma query (for
// store=chroma) and the chat call, through the same client code. The server's
// own added latency is the server's percentile minus the baseline's
// (added-p50-ms, added-p99-ms); over-injected-p50-ms is the cruder "measured
// minus the injected 2 x 20ms", which also counts Chroma's query time and the
// machine's timer overshoot.
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
		ts := start(b, env)
		ts.waitReady(b)
		benchQuery(b, ts, newBaseline(b, model.URL, env["CHROMA_URL"]))
	})
	// The embedded store shows the server's own overhead without Chroma's
	// query time.
	b.Run("store=embedded", func(b *testing.B) {
		ts := start(b, env)
		ts.waitReady(b)
		benchQuery(b, ts, newBaseline(b, model.URL, ""))
	})
}

const benchQuestion = "What was the net interest margin in the fourth quarter?"

// newBaseline returns one query's upstream work done without the server: the
// same model calls (and Chroma query) through the same client code.
func newBaseline(b *testing.B, modelURL, chromaURL string) func(context.Context) error {
	emb := llm.NewOpenAI(llm.Config{BaseURL: modelURL + "/v1", Model: "fake-embed-bench"})
	chat := llm.NewOpenAI(llm.Config{BaseURL: modelURL + "/v1", Model: "fake-chat"})
	var store *chromastore.Store
	if chromaURL != "" {
		var err error
		store, err = chromastore.New(chromastore.Options{URL: chromaURL, Collection: ragserver.CollectionName("bench", "fake-embed-bench"), Timeout: 30 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close() })
	}
	return func(ctx context.Context) error {
		vecs, _, err := emb.Embed(ctx, []string{benchQuestion})
		if err != nil {
			return err
		}
		var sources []rag.Source
		if store != nil {
			hits, err := store.Query(ctx, vecs[0], 4, nil)
			if err != nil {
				return err
			}
			if len(hits) == 0 {
				return fmt.Errorf("the baseline's Chroma query found nothing")
			}
			for _, h := range hits {
				sources = append(sources, rag.Source{ID: h.ID, Source: h.Source, Chunk: h.Chunk, Text: h.Text, Score: h.Score})
			}
		}
		_, _, err = chat.Complete(ctx, rag.Prompt(benchQuestion, sources))
		return err
	}
}

// measure runs n operations from the given number of concurrent clients and
// returns their sorted latencies and the elapsed time.
func measure(b *testing.B, n, clients int, op func() error) ([]time.Duration, time.Duration) {
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	i := 0
	var failed error
	begin := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				mu.Lock()
				k := i
				i++
				mu.Unlock()
				if k >= n {
					return
				}
				t0 := time.Now()
				err := op()
				lat[k] = time.Since(t0)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if failed != nil {
		b.Fatal(failed)
	}
	slices.Sort(lat)
	return lat, elapsed
}

func benchQuery(b *testing.B, ts *testServer, baseline func(context.Context) error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: transport}
	body := []byte(`{"question":"` + benchQuestion + `","top_k":4}`)
	query := func() error {
		resp, err := client.Post(ts.URL+"/query", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := bytes.NewBuffer(nil).ReadFrom(resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}

	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			b.StopTimer()
			base, _ := measure(b, b.N, clients, func() error { return baseline(context.Background()) })
			b.StartTimer()
			lat, elapsed := measure(b, b.N, clients, query)
			b.StopTimer()
			pct := func(l []time.Duration, p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(ms(pct(lat, 0.50)), "p50-ms")
			b.ReportMetric(ms(pct(lat, 0.99)), "p99-ms")
			b.ReportMetric(ms(pct(base, 0.50)), "baseline-p50-ms")
			b.ReportMetric(ms(pct(base, 0.99)), "baseline-p99-ms")
			b.ReportMetric(ms(pct(lat, 0.50)-pct(base, 0.50)), "added-p50-ms")
			b.ReportMetric(ms(pct(lat, 0.99)-pct(base, 0.99)), "added-p99-ms")
			b.ReportMetric(ms(pct(lat, 0.50)-2*injectedLatency), "over-injected-p50-ms")
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
