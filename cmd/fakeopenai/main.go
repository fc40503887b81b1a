// Command fakeopenai serves the fake OpenAI-compatible model API of package
// fakeopenai, for end-to-end tests that run it as a pod.
//
// Environment: PORT (default 8080); FAKE_API_KEYS, a comma separated list of
// accepted keys; FAKE_API_KEY_FILE, a file of keys re-read on every request so
// that a rotated Kubernetes Secret mount takes effect; FAKE_LATENCY, a Go
// duration added to every model call; FAKE_ECHO_KEY=true, error answers quote
// the API key the request carried. With no key configured any request is
// accepted. GET /healthz answers 200.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "fakeopenai:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var latency time.Duration
	if v := getenv("FAKE_LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("invalid FAKE_LATENCY %q: want a duration such as 20ms", v)
		}
		latency = d
	}
	static := fakeopenai.ParseKeys(getenv("FAKE_API_KEYS"))
	keyFile := getenv("FAKE_API_KEY_FILE")
	if keyFile != "" {
		if _, err := os.Stat(keyFile); err != nil {
			return fmt.Errorf("FAKE_API_KEY_FILE: %w", err)
		}
	}
	keys := func() []string {
		out := append([]string(nil), static...)
		if keyFile != "" {
			b, err := os.ReadFile(keyFile)
			if err != nil {
				log.Error("Cannot read key file", "error", err)
				// Fail closed: an unreadable file accepts no key.
				return append(out, "\x00unreadable")
			}
			out = append(out, fakeopenai.ParseKeys(string(b))...)
		}
		return out
	}
	srv := &http.Server{
		Addr:              net.JoinHostPort("", port),
		Handler:           fakeopenai.New(fakeopenai.Options{Keys: keys, Latency: latency, EchoKey: getenv("FAKE_ECHO_KEY") == "true"}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("Fake OpenAI server listening", "port", port, "keys", len(static) > 0 || keyFile != "", "latency", latency.String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
