package llm_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/llm"
)

func newFake(t *testing.T, opts fakeopenai.Options) (*fakeopenai.Server, string) {
	t.Helper()
	f := fakeopenai.New(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/v1"
}

func client(url, model, key string) *llm.OpenAI {
	return llm.NewOpenAI(llm.Config{
		BaseURL: url, Model: model, Key: func() string { return key },
		Retry: llm.Retry{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, CallTimeout: 2 * time.Second},
	})
}

func TestEmbedAndChat(t *testing.T) {
	f, url := newFake(t, fakeopenai.Options{Keys: func() []string { return []string{"sk-good"} }, Dim: 32})
	ctx := context.Background()
	emb := client(url, "fake-embed", "sk-good")
	vecs, usage, err := emb.Embed(ctx, []string{"revenue grew", "risk factors", "cash"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 3 || len(vecs[0]) != 32 || usage.TotalTokens != 5 {
		t.Fatalf("got %d vectors of %d dims, usage %+v", len(vecs), len(vecs[0]), usage)
	}
	if s := f.Stats(); s.EmbeddingRequests != 1 || s.EmbeddedInputs != 3 {
		t.Fatalf("stats %+v, want one request for three inputs", s)
	}

	chat := client(url, "fake-chat", "sk-good")
	prompt := "[1] source: a.md\nSome text.\n\nQuestion: how much?"
	answer, usage, err := chat.Complete(ctx, []llm.Message{{Role: "user", Content: prompt}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "fake-chat") || !strings.Contains(answer, "a.md") || usage.CompletionTokens == 0 {
		t.Fatalf("answer %q usage %+v", answer, usage)
	}
	var streamed strings.Builder
	usage, err = chat.Stream(ctx, []llm.Message{{Role: "user", Content: prompt}}, func(s string) error {
		streamed.WriteString(s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != answer || usage.TotalTokens == 0 {
		t.Fatalf("streamed %q (usage %+v), want %q", streamed.String(), usage, answer)
	}
}

func TestWrongKeyIsNotRetried(t *testing.T) {
	f, url := newFake(t, fakeopenai.Options{Keys: func() []string { return []string{"sk-good"} }})
	_, _, err := client(url, "m", "sk-bad").Embed(context.Background(), []string{"x"})
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 401 || e.Attempts != 1 || e.Kind != llm.KindFailed {
		t.Fatalf("err = %v, want one 401 attempt", err)
	}
	if f.Stats().Unauthorized != 1 {
		t.Fatalf("stats %+v", f.Stats())
	}
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	t.Run("429 twice then success", func(t *testing.T) {
		f, url := newFake(t, fakeopenai.Options{})
		f.SetFault(fakeopenai.Chat, fakeopenai.Fault{Status: 429, Times: 2})
		if _, _, err := client(url, "m", "").Complete(ctx, []llm.Message{{Role: "user", Content: "hi"}}); err != nil {
			t.Fatal(err)
		}
		if s := f.Stats(); s.Faulted != 2 || s.ChatRequests != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("Retry-After is honoured", func(t *testing.T) {
		f, url := newFake(t, fakeopenai.Options{})
		f.SetFault(fakeopenai.Embeddings, fakeopenai.Fault{Status: 429, Times: 1, RetryAfter: "1"})
		start := time.Now()
		if _, _, err := client(url, "m", "").Embed(ctx, []string{"x"}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("retried after %v, want at least the 1s Retry-After", d)
		}
	})
	t.Run("Retry-After past the deadline fails now", func(t *testing.T) {
		f, url := newFake(t, fakeopenai.Options{})
		f.SetFault(fakeopenai.Embeddings, fakeopenai.Fault{Status: 429, Times: 1, RetryAfter: "10"})
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		start := time.Now()
		_, _, err := client(url, "m", "").Embed(ctx, []string{"x"})
		if err == nil || time.Since(start) > 500*time.Millisecond {
			t.Fatalf("err = %v after %v, want a fast failure", err, time.Since(start))
		}
	})
	t.Run("500 forever stops after max attempts", func(t *testing.T) {
		f, url := newFake(t, fakeopenai.Options{})
		f.SetFault(fakeopenai.All, fakeopenai.Fault{Status: 500, Times: -1})
		_, _, err := client(url, "m", "").Complete(ctx, []llm.Message{{Role: "user", Content: "hi"}})
		var e *llm.Error
		if !errors.As(err, &e) || e.Attempts != 3 || e.Status != 500 || e.Kind != llm.KindFailed {
			t.Fatalf("err = %v", err)
		}
		if f.Stats().Faulted != 3 {
			t.Fatalf("stats %+v, want 3 attempts", f.Stats())
		}
	})
	t.Run("400 is not retried", func(t *testing.T) {
		f, url := newFake(t, fakeopenai.Options{})
		f.SetFault(fakeopenai.Chat, fakeopenai.Fault{Status: 400, Times: -1})
		_, err := client(url, "m", "").Stream(ctx, []llm.Message{{Role: "user", Content: "hi"}}, func(string) error { return nil })
		if err == nil || f.Stats().Faulted != 1 {
			t.Fatalf("err = %v, stats %+v", err, f.Stats())
		}
	})
	t.Run("slow model times out at the caller's deadline", func(t *testing.T) {
		f, url := newFake(t, fakeopenai.Options{})
		f.SetLatency(fakeopenai.All, 5*time.Second)
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err := client(url, "m", "").Complete(ctx, []llm.Message{{Role: "user", Content: "hi"}})
		if !llm.IsTimeout(err) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("returned after %v, want about 300ms", d)
		}
	})
}

func TestLocalEmbedder(t *testing.T) {
	vecs, _, err := llm.Local{}.Embed(context.Background(), []string{"a", "b"})
	if err != nil || len(vecs) != 2 || len(vecs[0]) != 384 {
		t.Fatalf("got %d vectors, err %v", len(vecs), err)
	}
	if (llm.Local{}).Model() != "local-hash-384" {
		t.Fatal((llm.Local{}).Model())
	}
}
