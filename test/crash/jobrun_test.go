package crash_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/fakeopenai"
)

// jobRound runs one round of a one-shot ragserver subcommand (ingest,
// migrate) as a real process and either kills it or waits for it.
//
// With killAt set, the process is SIGKILLed once the fake model API has
// answered killAt(before) embedding requests in all (before is the count at
// the start): the point moves from round to round, so kills land before,
// between and after commits. It reports false when the run ended on its own
// before the kill landed (nothing was proven by that round).
//
// Without killAt it waits for a clean exit and decodes the report the
// subcommand wrote to report (its termination message).
func jobRound[R any](t *testing.T, fake *fakeopenai.Server, bin, subcommand string, env []string,
	logDir, report string, round int, killAt func(before int) int) (R, bool) {
	t.Helper()
	var rep R
	logPath := filepath.Join(logDir, fmt.Sprintf("run-%02d.log", round))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	_ = os.Remove(report)
	cmd := exec.Command(bin, subcommand)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	before := fake.Stats().EmbeddingRequests
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if killAt != nil {
		target := killAt(before)
		deadline := time.Now().Add(60 * time.Second)
		for fake.Stats().EmbeddingRequests < target {
			select {
			case err := <-exited:
				t.Logf("round %d: the run ended (%v) before the kill point", round, err)
				return rep, false
			case <-time.After(5 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no progress in 60s; log %s", round, logPath)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		if err := <-exited; err == nil {
			t.Logf("round %d: the run completed before the kill landed", round)
			return rep, false
		}
		return rep, true
	}
	select {
	case err := <-exited:
		if err != nil {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("round %d: %s failed after the kills: %v\n%s", round, subcommand, err, b)
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("round %d: %s did not finish", round, subcommand)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, true
}
