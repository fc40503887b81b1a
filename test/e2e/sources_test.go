//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ragops/ragops/internal/testutil/gitserver"
)

// The declarative sources of issue 10 on a real cluster: a RagService indexes
// a Git repository (Debian's git http-backend) and an HTTP file server, both
// run by the test as processes of this host, plus a Git source whose port is
// closed. The indexing Jobs reach the host through the pods' bridge.
//
// Environment: that of TestEndToEnd, plus
//   RAGOPS_E2E_HOST_ADDR   the address pods reach this host on; default: the
//                          address of the local cluster's bridge (lcbr0).

const (
	sourcesNS  = "ragops-e2e-sources"
	sourcesRag = "library"
	// hostBridge is the bridge of hack/localcluster: its address is the
	// pods' gateway, so pods reach the host's processes there.
	hostBridge = "lcbr0"
)

// hostAddr is the address of this host that the cluster's pods reach.
func hostAddr(t *testing.T) string {
	t.Helper()
	if a := os.Getenv("RAGOPS_E2E_HOST_ADDR"); a != "" {
		return a
	}
	ifc, err := net.InterfaceByName(hostBridge)
	if err != nil {
		t.Fatalf("the pods' bridge %s of the local cluster is missing (%v): set RAGOPS_E2E_HOST_ADDR to the address pods reach this host on", hostBridge, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("the bridge %s has no IPv4 address: set RAGOPS_E2E_HOST_ADDR", hostBridge)
	return ""
}

// fileServer serves dir over plain HTTP on addr (net/http's file server,
// which sends Last-Modified) and returns its base URL.
func fileServer(t *testing.T, addr, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("serve files on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// closedPort returns host:port where nothing listens (a port the kernel
// just handed out and that was closed again).
func closedPort(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// indexState is what kubectl shows of a RagService's index.
type indexState struct {
	Metadata struct {
		Generation int64 `json:"generation"`
	} `json:"metadata"`
	Status struct {
		Conditions []struct {
			Type, Status, Reason, Message string
			ObservedGeneration            int64 `json:"observedGeneration"`
		} `json:"conditions"`
		Index struct {
			Documents    int64         `json:"documents"`
			Chunks       int64         `json:"chunks"`
			Job          string        `json:"job"`
			LastSyncTime string        `json:"lastSyncTime"`
			Sources      []sourceState `json:"sources"`
		} `json:"index"`
	} `json:"status"`
}

func getIndex(t *testing.T) (*indexState, error) {
	out, err := cmdRun(t, "", kubectlBin, "-n", sourcesNS, "get", "ragservice", sourcesRag, "-o", "json")
	if err != nil {
		return nil, err
	}
	var s indexState
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *indexState) indexed() (status, reason, message string, gen int64) {
	for _, c := range s.Status.Conditions {
		if c.Type == "Indexed" {
			return c.Status, c.Reason, c.Message, c.ObservedGeneration
		}
	}
	return "", "", "", 0
}

type sourceState struct {
	Name         string `json:"name"`
	Revision     string `json:"revision"`
	FilesIndexed int64  `json:"filesIndexed"`
	FilesSkipped int64  `json:"filesSkipped"`
	LastError    string `json:"lastError"`
}

func (s *indexState) source(name string) sourceState {
	for _, src := range s.Status.Index.Sources {
		if src.Name == name {
			return src
		}
	}
	return sourceState{}
}

// expectIndex is what status.index must show after a sync.
type expectIndex struct {
	gitRevision string // the handbook source's commit
	gitFiles    int64
	documents   int64
}

// waitIndexed waits until status.index shows the handbook at want's commit,
// the web source indexed and the archive source failing, with the Indexed
// condition SourceUnreachable for the current generation. It returns the
// state and how long it took.
func waitIndexed(t *testing.T, want expectIndex, timeout time.Duration) (*indexState, time.Duration) {
	t.Helper()
	start := time.Now()
	var st *indexState
	eventually(t, "status.index shows the handbook at "+want.gitRevision, timeout, func() error {
		s, err := getIndex(t)
		if err != nil {
			return err
		}
		status, reason, msg, gen := s.indexed()
		git, web, archive := s.source("handbook"), s.source("web"), s.source("archive")
		switch {
		case git.Revision != want.gitRevision || git.FilesIndexed != want.gitFiles || git.LastError != "":
			return fmt.Errorf("handbook: %+v, want revision %s with %d files; Indexed=%s %s %q", git, want.gitRevision, want.gitFiles, status, reason, msg)
		case web.FilesIndexed != 1 || web.Revision == "" || web.LastError != "":
			return fmt.Errorf("web: %+v, want 1 file indexed", web)
		case archive.LastError == "" || archive.FilesIndexed != 0:
			return fmt.Errorf("archive: %+v, want a lastError", archive)
		case status != "False" || reason != "SourceUnreachable" || !strings.Contains(msg, "archive") || gen != s.Metadata.Generation:
			return fmt.Errorf("Indexed=%s reason=%s message=%q observedGeneration=%d generation=%d, want False SourceUnreachable naming archive", status, reason, msg, gen, s.Metadata.Generation)
		case s.Status.Index.Documents != want.documents || s.Status.Index.Chunks < want.documents:
			return fmt.Errorf("index: %d documents, %d chunks, want %d documents", s.Status.Index.Documents, s.Status.Index.Chunks, want.documents)
		}
		st = s
		return nil
	})
	return st, time.Since(start)
}

// listedSources lists the documents the server holds (GET /documents).
func listedSources(t *testing.T) map[string]bool {
	t.Helper()
	var m map[string]bool
	eventually(t, "GET /documents", time.Minute, func() error {
		f := portForwardIn(t, sourcesNS, sourcesRag)
		defer f.stop()
		var list struct {
			Documents []struct {
				Source string `json:"source"`
			} `json:"documents"`
		}
		if _, err := f.json("GET", "/documents", nil, &list); err != nil {
			return err
		}
		m = map[string]bool{}
		for _, d := range list.Documents {
			m[d.Source] = true
		}
		return nil
	})
	return m
}

func sortedKeys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// retrieves asks /query and checks that a source named source comes back
// with text holding marker.
func retrieves(t *testing.T, question, source, marker string) {
	t.Helper()
	qr := queryIn(t, sourcesNS, sourcesRag, question)
	for i, s := range qr.Sources {
		if s.Source == source && strings.Contains(s.Text, marker) {
			t.Logf("/query %q: %s retrieved at rank %d of %d (score %.3f)", question, source, i+1, len(qr.Sources), s.Score)
			return
		}
	}
	t.Errorf("/query %q: no source %s with %q among %v", question, source, marker, sourcesOf(qr))
}

func sourcesRagService(gitURL, ref, webURL, deadURL string) string {
	return fmt.Sprintf(`apiVersion: rag.ragops.dev/v1alpha1
kind: RagService
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  model: fake-chat-1
  embeddingModel: fake-embedding
  replicas: 1
  baseURL: http://%[3]s.%[2]s.svc:8080/v1
  secretRef:
    name: openai
  documents:
    schedule: "* * * * *"
    sources:
    - name: handbook
      git:
        url: %[4]s
        ref: %[5]s
    - name: web
      http:
        urls: [%[6]q]
    - name: archive
      git:
        url: %[7]s
  vectorStore:
    chroma:
      image: %[8]s
      retentionPolicy: Delete
      storage:
        size: 256Mi
`, sourcesRag, sourcesNS, fakeName, gitURL, ref, webURL, deadURL, chromaImage)
}

// TestSourcesOnCluster: a RagService indexes a Git repository and an HTTP
// file from servers outside the cluster, follows a pushed commit on its
// schedule (a file added, one removed) and a change of ref, while a third
// source that cannot be reached shows in the status without stopping the
// others. It needs no state of TestEndToEnd: it installs the operator when
// it is absent (TestEndToEnd uninstalls it at its end) and then uninstalls
// it again, and it works in its own namespace.
func TestSourcesOnCluster(t *testing.T) {
	readEnv(t)
	var times []string
	step := func(name string, d time.Duration) {
		d = d.Round(100 * time.Millisecond)
		times = append(times, fmt.Sprintf("%-70s %8s", name, d))
		t.Logf("=== %s: %s", name, d)
	}
	defer func() {
		fmt.Fprintf(os.Stderr, "\ne2e sources timings:\n%s\n", strings.Join(times, "\n"))
	}()

	host := hostAddr(t)
	repo := gitserver.NewListening(t, net.JoinHostPort(host, "0"))
	c1 := repo.Commit("handbook 2025", map[string]string{
		"expenses.md":    "# Expenses\nMeals on business trips are reimbursed up to 60 euros a day with the Brambleworth form.\n",
		"travel-2025.md": "# Travel 2025\nEconomy class for flights under six hours; the Cindervale agency books them.\n",
	})
	webDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(webDir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(webDir, "policies", "retention.md"),
		[]byte("# Retention\nInvoices are kept for ten years in the Halloway archive, then shredded.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	webURL := fileServer(t, net.JoinHostPort(host, "0"), webDir) + "/policies/retention.md"
	webDoc := "web/" + strings.TrimPrefix(webURL, "http://")
	deadURL := "http://" + closedPort(t, host) + "/archive.git"
	t.Logf("git %s (commit %s), http %s, unreachable %s", repo.URL, c1, webURL, deadURL)

	start := time.Now()
	if useOperator(t) {
		step("0 helm install ragops (absent)", time.Since(start))
	}
	kubectl(t, "create", "namespace", sourcesNS)
	t.Cleanup(func() {
		if _, err := cmdRun(t, "", kubectlBin, "delete", "namespace", sourcesNS, "--wait=true", "--timeout=3m"); err != nil {
			t.Error(err)
		}
	})
	defer dumpOnFailure(t, sourcesNS)
	kubectlApply(t, fakeServerManifestIn(sourcesNS, "key-1"))
	kubectlApply(t, apiKeySecretIn(sourcesNS, "openai", "key-1"))
	waitRolledOut(t, sourcesNS, fakeName)

	t.Run("1 a Git repository and an HTTP file are indexed; an unreachable source shows in the status", func(t *testing.T) {
		start := time.Now()
		kubectlApply(t, sourcesRagService(repo.URL, "main", webURL, deadURL))
		waitReadyIn(t, sourcesNS, sourcesRag, 5*time.Minute)
		st, _ := waitIndexed(t, expectIndex{gitRevision: c1, gitFiles: 2, documents: 3}, 5*time.Minute)
		step("1 apply -> Indexed (handbook@c1, web, archive failing)", time.Since(start))
		_, reason, msg, _ := st.indexed()
		t.Logf("Indexed=False %s: %s", reason, msg)
		t.Logf("archive lastError: %s", st.source("archive").LastError)
		t.Logf("index: %d documents, %d chunks, job %s", st.Status.Index.Documents, st.Status.Index.Chunks, st.Status.Index.Job)

		// kubectl get events shows the failed source as a Warning.
		eventually(t, "a Warning event SourceUnreachable", time.Minute, func() error {
			out := kubectl(t, "-n", sourcesNS, "get", "events", "--field-selector", "involvedObject.kind=RagService,involvedObject.name="+sourcesRag,
				"-o", `jsonpath={range .items[*]}{.type}/{.reason}: {.message}{"\n"}{end}`)
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "Warning/SourceUnreachable: ") && strings.Contains(l, "archive") {
					t.Logf("event %s", l)
					return nil
				}
			}
			return fmt.Errorf("events:\n%s", out)
		})

		docs := listedSources(t)
		for _, want := range []string{"handbook/expenses.md", "handbook/travel-2025.md", webDoc} {
			if !docs[want] {
				t.Errorf("GET /documents %v lacks %s", sortedKeys(docs), want)
			}
		}
		retrieves(t, "How much are meals on business trips reimbursed with the Brambleworth form?", "handbook/expenses.md", "Brambleworth")
		retrieves(t, "How long are invoices kept in the Halloway archive?", webDoc, "Halloway")

		// The indexer reached servers outside the cluster: no policy the
		// operator made restricts the egress of its pods.
		out := kubectl(t, "-n", sourcesNS, "get", "networkpolicies", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.policyTypes}{"\n"}{end}`)
		t.Logf("NetworkPolicies:\n%s", out)
		if strings.Contains(out, "Egress") {
			t.Errorf("a NetworkPolicy restricts egress; the indexer must reach sources on any host:\n%s", out)
		}
	})
	if t.Failed() {
		return
	}

	var c2 string
	t.Run("2 a pushed commit (one file added, one removed) is picked up by the schedule", func(t *testing.T) {
		before, err := getIndex(t)
		if err != nil {
			t.Fatal(err)
		}
		c2 = repo.Commit("handbook 2026", map[string]string{
			"travel-2025.md": "",
			"travel-2026.md": "# Travel 2026\nTrain travel is preferred for trips under five hours; book through the Quillfeather desk.\n",
		})
		pushed := time.Now()
		st, took := waitIndexed(t, expectIndex{gitRevision: c2, gitFiles: 2, documents: 3}, 4*time.Minute)
		step("2 commit pushed -> status.index revision = new commit (schedule * * * * *)", took)
		t.Logf("job %s -> %s; lastSyncTime %s -> %s", before.Status.Index.Job, st.Status.Index.Job, before.Status.Index.LastSyncTime, st.Status.Index.LastSyncTime)
		if st.Status.Index.Job == before.Status.Index.Job {
			t.Errorf("the same Job %s reports the new commit", st.Status.Index.Job)
		}
		gen := st.Metadata.Generation
		if gen != before.Metadata.Generation {
			t.Errorf("the generation changed from %d to %d: the sync was not the schedule's doing", before.Metadata.Generation, gen)
		}

		docs := listedSources(t)
		t.Logf("GET /documents after the push (%s): %v", time.Since(pushed).Round(time.Second), sortedKeys(docs))
		if !docs["handbook/travel-2026.md"] {
			t.Errorf("the added file is not listed: %v", sortedKeys(docs))
		}
		if docs["handbook/travel-2025.md"] {
			t.Errorf("the removed file is still listed: %v", sortedKeys(docs))
		}
		if !docs["handbook/expenses.md"] || !docs[webDoc] {
			t.Errorf("the unchanged files are not all listed: %v", sortedKeys(docs))
		}
		retrieves(t, "Which desk books train travel in 2026?", "handbook/travel-2026.md", "Quillfeather")
	})
	if t.Failed() {
		return
	}

	t.Run("3 a change of ref is indexed at once", func(t *testing.T) {
		repo.Run("checkout", "-q", "-b", "release-2026")
		c3 := repo.Commit("release notes", map[string]string{
			"release-notes.md": "# Release notes\nThe 2026 handbook adds the Marrowfield rule: receipts are uploaded within 30 days.\n",
		})
		repo.Run("checkout", "-q", "main")
		if c3 == c2 {
			t.Fatal("the branch commit is the main commit")
		}
		changed := time.Now()
		kubectlApply(t, sourcesRagService(repo.URL, "release-2026", webURL, deadURL))
		st, took := waitIndexed(t, expectIndex{gitRevision: c3, gitFiles: 3, documents: 4}, 3*time.Minute)
		step("3 ref main -> release-2026 -> status.index revision = branch commit", took)
		t.Logf("job %s, %d documents, %d chunks", st.Status.Index.Job, st.Status.Index.Documents, st.Status.Index.Chunks)
		docs := listedSources(t)
		t.Logf("GET /documents after the ref change (%s): %v", time.Since(changed).Round(time.Second), sortedKeys(docs))
		for _, want := range []string{"handbook/release-notes.md", "handbook/travel-2026.md", "handbook/expenses.md", webDoc} {
			if !docs[want] {
				t.Errorf("GET /documents lacks %s: %v", want, sortedKeys(docs))
			}
		}
		if docs["handbook/travel-2025.md"] {
			t.Errorf("the file removed earlier is back: %v", sortedKeys(docs))
		}
		retrieves(t, "Within how many days are receipts uploaded under the Marrowfield rule?", "handbook/release-notes.md", "Marrowfield")
	})
}
