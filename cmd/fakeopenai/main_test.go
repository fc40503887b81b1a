package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRunWithRotatedKeyFile(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("sk-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PORT": port, "FAKE_API_KEY_FILE": keyFile, "FAKE_API_KEYS": "sk-static"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fakeopenai did not answer /healthz")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	embed := func(key string) int {
		req, _ := http.NewRequest("POST", base+"/v1/embeddings", strings.NewReader(`{"model":"m","input":"hello"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for key, want := range map[string]int{"sk-one": 200, "sk-static": 200, "sk-two": 401, "": 401} {
		if got := embed(key); got != want {
			t.Errorf("key %q: %d, want %d", key, got, want)
		}
	}
	// The file is re-read on every request: a rotated Secret takes effect.
	if err := os.WriteFile(keyFile, []byte("sk-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if embed("sk-two") != 200 || embed("sk-one") != 401 {
		t.Error("rotated key file not honoured")
	}
}

func TestRunRejectsBadLatency(t *testing.T) {
	err := run(context.Background(), func(k string) string { return map[string]string{"FAKE_LATENCY": "soon"}[k] })
	if err == nil || !strings.Contains(err.Error(), "FAKE_LATENCY") {
		t.Fatalf("err = %v", err)
	}
}
