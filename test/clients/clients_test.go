package clients

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ragops/ragops/internal/fakeopenai"
	"github.com/ragops/ragops/internal/ragserver"
)

const sampleDocs = "../../sample_docs"

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs the RAG server on a free port with env (DATA_DIR in a
// temporary directory) and waits until it is ready.
func startServer(t *testing.T, env map[string]string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	env["PORT"], env["DATA_DIR"], env["LOG_LEVEL"] = port, t.TempDir(), "warn"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &logBuffer{}
	go func() { done <- ragserver.Run(ctx, nil, func(k string) string { return env[k] }, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	url := "http://127.0.0.1:" + port
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		select {
		case err := <-done:
			t.Fatalf("server exited at start: %v\n%s", err, logs)
		case <-time.After(20 * time.Millisecond): // polling interval
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready in time:\n%s", logs)
		}
	}
}

// requireEnvPath returns the path in an environment variable, failing the test
// with how to get it when it is unset or missing.
func requireEnvPath(t *testing.T, name, what string) string {
	t.Helper()
	p := os.Getenv(name)
	if p == "" {
		t.Fatalf("%s is not set: it names %s. `make test` sets it (after installing it); by hand: %s=... go test ./test/clients/", name, what, name)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v (%s; `make test` installs it)", name, p, err, what)
	}
	return p
}

// TestNodeClients runs the official openai npm package and LangChain.js's
// ChatOpenAI against the server, in generative mode on the fake model API
// and with a bearer token: completions, streaming, usage, the sources field,
// errors as the SDK's error classes.
func TestNodeClients(t *testing.T) {
	dir := requireEnvPath(t, "RAGOPS_NODE_CLIENTS_DIR", "the npm packages of test/clients/node (make node-clients)")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		t.Fatalf("RAGOPS_NODE_CLIENTS_DIR=%s has no openai package: run `make node-clients`", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	fake := httptest.NewServer(fakeopenai.New(fakeopenai.Options{}))
	t.Cleanup(fake.Close)
	url := startServer(t, map[string]string{
		"DOCS_DIR": sampleDocs, "OPENAI_BASE_URL": fake.URL + "/v1", "OPENAI_API_KEY": "sk-test",
		"LLM_MODEL": "fake-chat-node", "EMBEDDING_MODEL": "fake-embed", "API_TOKEN": "node-token",
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", "node/clients.test.mjs")
	cmd.Env = append(os.Environ(), "RAGOPS_URL="+url, "RAGOPS_TOKEN=node-token", "RAGOPS_MODEL=fake-chat-node", "RAGOPS_NODE_CLIENTS_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test failed: %v", err)
	}
	const want = 6 // the tests in node/clients.test.mjs
	if m := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out); m == nil || string(m[1]) != strconv.Itoa(want) ||
		!regexp.MustCompile(`(?m)^# fail 0$`).Match(out) {
		t.Fatalf("want %d passing node tests and none failing", want)
	}
}

// TestChatPageInBrowser uses the page as a person would, in headless
// Chromium: enter the token, ask with the keyboard, watch the answer stream
// in with its cited passages, upload a file, see it listed, ask about it.
// It saves a screenshot ($RAGOPS_ARTIFACTS, else the temp dir), and with
// RAGOPS_UPDATE_SCREENSHOT=1 also docs/images/chat-page.png.
func TestChatPageInBrowser(t *testing.T) {
	chromium := requireEnvPath(t, "RAGOPS_CHROMIUM_BIN", "the Chromium browser (Debian package chromium)")
	url := startServer(t, map[string]string{"DOCS_DIR": sampleDocs, "API_TOKEN": "page-token"})

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first Run starts the browser; it must not carry the deadline.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	var consoleMu sync.Mutex
	var problems []string
	go func() {
		for m, err := range chromedp.Console(bctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				consoleMu.Lock()
				problems = append(problems, m.String())
				consoleMu.Unlock()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	step("open the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#question")))
	// Without the token the API refuses, and the page says so.
	step("the page asks for the token", chromedp.WaitVisible(chromedp.CSS("#chat-error:not(:empty)")))
	if got := text("#chat-error"); !strings.Contains(got, "bearer token") {
		t.Fatalf("error shown without a token: %q", got)
	}
	step("enter the token", chromedp.SendKeys(chromedp.CSS("#token"), "page-token"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#documents li[data-source="q4-earnings-call.md"]`)))
	if got := text("#model"); got != "model: extractive" {
		t.Fatalf("model shown: %q", got)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#documents li").length`)); n != 5 {
		t.Fatalf("%d documents listed, want the 5 sample documents", n)
	}

	step("ask with the keyboard",
		chromedp.SendKeys(chromedp.CSS("#question"), "What was the net interest margin in the fourth quarter?"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#conversation li.assistant[data-state="done"]`)))
	answer := text("#conversation li.assistant .text")
	if !strings.Contains(answer, "3.18%") || !strings.Contains(answer, "[1]") {
		t.Fatalf("answer shown: %q", answer)
	}
	chunks, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#conversation li.assistant").dataset.chunks`))
	if n, _ := strconv.Atoi(chunks); n < 5 {
		t.Fatalf("the answer arrived in %s chunks: not streamed", chunks)
	}
	if got := text("#sources li:first-child .source-name"); got != "[1] q4-earnings-call.md" {
		t.Fatalf("first cited passage: %q", got)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#sources li").length`)); n != 4 {
		t.Fatalf("%d passages shown, want 4", n)
	}
	if href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#conversation a.cite").getAttribute("href")`)); href != "#source-1" {
		t.Fatalf("the [1] marker links to %q", href)
	}

	memo := filepath.Join(t.TempDir(), "treasury-memo.md")
	if err := os.WriteFile(memo, []byte("# Treasury memo\n\nThe treasury team hedged 60% of the floating-rate exposure with interest rate swaps in March.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step("upload a file", chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{memo}),
		chromedp.Click(chromedp.CSS("#upload-form button")),
		chromedp.WaitVisible(chromedp.CSS(`#documents li[data-source="treasury-memo.md"]`)))
	if got := text("#upload-status"); !strings.Contains(got, "Indexed 1 document") {
		t.Fatalf("upload status: %q", got)
	}
	step("ask about it",
		chromedp.SendKeys(chromedp.CSS("#question"), "How much of the floating-rate exposure did the treasury team hedge?"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#conversation li.assistant:nth-of-type(4)[data-state="done"]`)))
	if got := text("#conversation li.assistant:nth-of-type(4) .text"); !strings.Contains(got, "60%") {
		t.Fatalf("answer about the upload: %q", got)
	}
	if got := text("#sources li:first-child .source-name"); got != "[1] treasury-memo.md" {
		t.Fatalf("first passage of the second answer: %q", got)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("RAGOPS_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ragops-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "chat-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("chat page screenshot: %s\n", shot)
	if os.Getenv("RAGOPS_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile("../../docs/images/chat-page.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	consoleMu.Lock()
	defer consoleMu.Unlock()
	for _, p := range problems {
		if strings.Contains(p, "401") { // the refused request before the token was entered
			continue
		}
		t.Errorf("browser console: %s", p)
	}
}
