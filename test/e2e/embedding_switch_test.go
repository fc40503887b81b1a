//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The switch of spec.embeddingModel on a real cluster (issue 11), in a
// namespace of its own. Self-contained: it installs the operator when no
// release is there (TestEndToEnd uninstalls it in its last phase) and then
// removes it again, so it runs before, after or without TestEndToEnd.

const (
	switchNS  = "ragops-e2e-embswitch"
	switchRag = "switch"
	// switchDocs is the number of documents added through the API.
	switchDocs = 12
)

// switchScript runs in the client pod. Arguments: MODE URL [N].
//
//	seed:   POST /documents with N documents api-K.md, each with its own word zetaK...; prints {"ok":true}.
//	query:  POST /query every 200 ms until stdin closes, asking about document K (K cycles); an
//	        answer is "failed" unless 2xx, and "empty" unless its sources include api-K.md and the
//	        answer read passages; prints {"sent","ok","failed","empty","errors","empties"}.
//	check:  GET /documents, then POST /retrieve (vector mode) for each word zetaK: prints {"model","sources","top":{K: source}}.
const switchScript = `
const [mode, url, n] = process.argv.slice(1);
const headers = {"Content-Type": "application/json"};
const call = async (method, path, body, ms) => {
  const r = await fetch(url + path, {method, headers, body: body && JSON.stringify(body), signal: AbortSignal.timeout(ms)});
  const text = await r.text();
  if (r.status < 200 || r.status > 299) throw new Error("HTTP " + r.status + " " + text.slice(0, 200));
  return JSON.parse(text);
};
const word = (k) => "zeta" + k + "quorx";
const doc = (k) => ({source: "api-" + k + ".md", text: "Memo " + k + ". The treasury code " + word(k) +
  " marks the transfer of " + (k * 1000 + 17) + " dollars to the reserve account of branch " + k + "."});
const reason = (e) => String((e.cause && e.cause.code) || e.message).slice(0, 120);
if (mode === "seed") {
  const docs = [];
  for (let k = 0; k < Number(n); k++) docs.push(doc(k));
  call("POST", "/documents", {documents: docs}, 60000)
    .then(() => { process.stdout.write(JSON.stringify({ok: true}) + "\n"); process.exit(0); })
    .catch((e) => { process.stdout.write(JSON.stringify({ok: false, error: reason(e)}) + "\n"); process.exit(1); });
} else if (mode === "query") {
  const out = {sent: 0, ok: 0, failed: 0, empty: 0, errors: {}, empties: {}};
  let stop = false, pending = 0, k = 0;
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => { stop = true; });
  process.stdin.resume();
  const finish = async () => {
    while (pending > 0) await new Promise((r) => setTimeout(r, 50));
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  };
  const tick = () => {
    if (stop) return finish();
    const want = "api-" + k + ".md", q = "Which transfer does the treasury code " + word(k) + " mark?";
    k = (k + 1) % Number(n);
    out.sent++; pending++;
    call("POST", "/query", {question: q}, 10000)
      .then((r) => {
        out.ok++;
        const srcs = (r.sources || []).map((s) => s.source);
        if (!srcs.includes(want) || !/read [1-9][0-9]* passages/.test(r.answer || "")) {
          out.empty++;
          const key = want + " -> [" + srcs.join(",") + "]";
          out.empties[key] = (out.empties[key] || 0) + 1;
        }
      }, (e) => { out.failed++; const key = reason(e); out.errors[key] = (out.errors[key] || 0) + 1; })
      .finally(() => pending--);
    setTimeout(tick, 200);
  };
  tick();
} else if (mode === "check") {
  (async () => {
    const list = await call("GET", "/documents", undefined, 30000);
    const top = {};
    for (let k = 0; k < Number(n); k++) {
      // Vector mode: the query is embedded with the new model, so only vectors of that model match.
      const r = await call("POST", "/retrieve", {question: "treasury code " + word(k), mode: "vector"}, 30000);
      const hits = r.sources || [];
      top[k] = hits.length ? hits[0].source : "";
    }
    process.stdout.write(JSON.stringify({model: list.embedding_model, sources: list.documents.map((d) => d.source), top}) + "\n");
  })().catch((e) => { process.stdout.write(JSON.stringify({error: reason(e)}) + "\n"); process.exit(1); });
} else {
  process.stderr.write("unknown mode " + mode + "\n"); process.exit(2);
}
`

type switchLoad struct {
	Sent    int            `json:"sent"`
	OK      int            `json:"ok"`
	Failed  int            `json:"failed"`
	Empty   int            `json:"empty"`
	Errors  map[string]int `json:"errors"`
	Empties map[string]int `json:"empties"`
}

type switchCheck struct {
	Model   string            `json:"model"`
	Sources []string          `json:"sources"`
	Top     map[string]string `json:"top"`
	Error   string            `json:"error"`
}

func switchExec(t *testing.T, args ...string) string {
	t.Helper()
	return kubectl(t, append([]string{"-n", switchNS, "exec", clientPod, "--", "node", "-e", switchScript}, args...)...)
}

// chromaCollections lists the collections of the RagService's Chroma, asked
// from inside its pod (the NetworkPolicy admits no other client).
func chromaCollections(t *testing.T) ([]string, error) {
	out, err := cmdRun(t, "", kubectlBin, "-n", switchNS, "exec", switchRag+"-chroma-0", "--", "node", "-e",
		`fetch("http://127.0.0.1:8000/api/v2/tenants/default_tenant/databases/default_database/collections").then((r) => r.json()).then((j) => console.log(JSON.stringify(j.map((c) => c.name))))`)
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &names); err != nil {
		return nil, fmt.Errorf("%q: %w", out, err)
	}
	return names, nil
}

func switchCondition(t *testing.T) (status, reason, message string, err error) {
	out, err := cmdRun(t, "", kubectlBin, "-n", switchNS, "get", "ragservice", switchRag, "-o", "json")
	if err != nil {
		return "", "", "", err
	}
	var r ragStatus
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return "", "", "", err
	}
	status, reason, message = condition(&r, "EmbeddingModelSwitched")
	return status, reason, message, nil
}

func switchRagService(model string) string {
	repo, tag := splitImage(fakeImage)
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: openai, namespace: %[1]s}
stringData: {OPENAI_API_KEY: key-1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: handbook, namespace: %[1]s}
data:
  policy.md: "The travel policy allows economy fares for flights under six hours."
  leave.md: "Employees accrue two days of paid leave per month of service."
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: fake
        image: %[3]s:%[4]s
        imagePullPolicy: IfNotPresent
        env: [{name: PORT, value: "8080"}, {name: FAKE_API_KEYS, value: key-1}]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {app: %[2]s}
  ports: [{name: http, port: 8080, targetPort: http}]
---
apiVersion: rag.ragops.dev/v1alpha1
kind: RagService
metadata: {name: %[5]s, namespace: %[1]s}
spec:
  model: fake-chat-1
  embeddingModel: %[6]s
  replicas: 2
  baseURL: http://%[2]s.%[1]s.svc:8080/v1
  secretRef: {name: openai}
  auth: {mode: Disabled}
  documents: {configMapRef: {name: handbook}}
  vectorStore:
    chroma:
      image: %[7]s
      retentionPolicy: Delete
      storage: {size: 256Mi}
`, switchNS, fakeName, repo, tag, switchRag, model, chromaImage)
}

// TestEmbeddingModelSwitch adds documents through the API, changes
// spec.embeddingModel, and queries from inside the cluster (5 a second)
// while a writer adds documents, throughout the switch, until the previous
// model's collection is gone: no query may fail or come back without the
// document it asks about. Afterwards every document (API, declared, and
// written during the switch) is there once, retrievable, and /documents
// reports the new model.
func TestEmbeddingModelSwitch(t *testing.T) {
	readEnv(t)
	defer dumpOnFailure(t, switchNS)

	end := phase(t, "S0 operator (installed if absent), namespace, fake model API, client pod")
	useOperator(t)
	t.Cleanup(func() {
		if _, err := cmdRun(t, "", kubectlBin, "delete", "namespace", switchNS, "--wait=true", "--timeout=3m", "--ignore-not-found"); err != nil {
			t.Error(err)
		}
	})
	kubectlApply(t, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", switchNS))
	kubectlApply(t, switchRagService("fake-embed-a"))
	startClientPod(t, switchNS, clientPod)
	end()

	url := "http://" + switchRag + "." + switchNS + ".svc"
	end = phase(t, "S1 RagService on fake-embed-a Ready and Indexed; documents added through the API")
	eventually(t, "RagService switch Ready and Indexed", 5*time.Minute, func() error {
		out, err := cmdRun(t, "", kubectlBin, "-n", switchNS, "get", "ragservice", switchRag, "-o", "json")
		if err != nil {
			return err
		}
		var r ragStatus
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return err
		}
		for _, c := range []string{"Ready", "Indexed"} {
			if st, reason, msg := condition(&r, c); st != "True" {
				return fmt.Errorf("%s=%s %s %q", c, st, reason, msg)
			}
		}
		return nil
	})
	eventually(t, "POST /documents from the client pod", 2*time.Minute, func() error {
		_, err := cmdRun(t, "", kubectlBin, "-n", switchNS, "exec", clientPod, "--", "node", "-e", switchScript, "seed", url, fmt.Sprint(switchDocs))
		return err
	})
	if st, _, _, err := switchCondition(t); err != nil || st != "" {
		t.Fatalf("EmbeddingModelSwitched=%q (%v) before any switch, want absent", st, err)
	}
	end()

	end = phase(t, "S2 patch embeddingModel fake-embed-a -> fake-embed-b under 5 queries/s and writes; until the old collection is gone")
	queries := exec.Command(kubectlBin, "-n", switchNS, "exec", "-i", clientPod, "--", "node", "-e", switchScript, "query", url, fmt.Sprint(switchDocs))
	qin, err := queries.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var qout strings.Builder
	queries.Stdout, queries.Stderr = &qout, os.Stderr
	if err := queries.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = queries.Process.Kill() })
	writer := startLoad(t, switchNS, clientPod, "write", url, "")
	time.Sleep(5 * time.Second) // a baseline before the switch
	oldCollection := switchNS + "." + switchRag + "-fake-embed-a"
	if names, err := chromaCollections(t); err != nil || !strings.Contains(strings.Join(names, " "), oldCollection) {
		t.Fatalf("collections %v (%v), want %s", names, err, oldCollection)
	}
	switchStart := time.Now()
	kubectl(t, "-n", switchNS, "patch", "rag", switchRag, "--type=merge", "-p", `{"spec":{"embeddingModel":"fake-embed-b"}}`)
	var reasons []string
	eventually(t, "EmbeddingModelSwitched=True and the old collection deleted", 10*time.Minute, func() error {
		st, reason, msg, err := switchCondition(t)
		if err != nil {
			return err
		}
		if len(reasons) == 0 || reasons[len(reasons)-1] != reason {
			reasons = append(reasons, reason)
			t.Logf("%s: EmbeddingModelSwitched=%s %s: %s", time.Since(switchStart).Round(time.Second), st, reason, msg)
		}
		if st != "True" {
			return fmt.Errorf("EmbeddingModelSwitched=%s %s %q", st, reason, msg)
		}
		names, err := chromaCollections(t)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, oldCollection) {
				return fmt.Errorf("collection %s is still there", n)
			}
		}
		return nil
	})
	switchTook := time.Since(switchStart)
	written := writer.stop(t)
	_ = qin.Close()
	if err := queries.Wait(); err != nil {
		t.Fatalf("query loop: %v", err)
	}
	var q switchLoad
	if err := json.Unmarshal([]byte(strings.TrimSpace(qout.String())), &q); err != nil {
		t.Fatalf("query loop output %q: %v", qout.String(), err)
	}
	report := fmt.Sprintf("%d queries sent over %s (switch %s, conditions %v): %d ok, %d failed %v, %d empty %v; %d documents written during the switch (%d failed)",
		q.Sent, time.Since(switchStart).Round(time.Second), switchTook.Round(time.Second), reasons, q.OK, q.Failed, q.Errors, q.Empty, q.Empties, len(written.Acked), written.Failed)
	t.Log(report)
	loadReportsMu.Lock()
	loadReports = append(loadReports, "S2 /query during the embedding-model switch: "+report)
	loadReportsMu.Unlock()
	if q.Failed != 0 || q.Empty != 0 || q.Sent < 20 {
		t.Errorf("queries during the switch: %d sent, %d failed, %d empty; want none failed or empty", q.Sent, q.Failed, q.Empty)
	}
	if written.Failed != 0 || len(written.Acked) == 0 {
		t.Errorf("writes during the switch: %s", written)
	}
	end()

	end = phase(t, "S3 after the switch: every document once, retrievable, /documents reports fake-embed-b")
	var c switchCheck
	if err := json.Unmarshal([]byte(strings.TrimSpace(switchExec(t, "check", url, fmt.Sprint(switchDocs)))), &c); err != nil || c.Error != "" {
		t.Fatalf("check: %v %s", err, c.Error)
	}
	if c.Model != "fake-embed-b" {
		t.Errorf("/documents reports embedding model %q, want fake-embed-b", c.Model)
	}
	seen := map[string]int{}
	for _, s := range c.Sources {
		seen[s]++
	}
	want := []string{"policy.md", "leave.md"}
	for k := range switchDocs {
		want = append(want, fmt.Sprintf("api-%d.md", k))
		if got := c.Top[fmt.Sprint(k)]; got != fmt.Sprintf("api-%d.md", k) {
			t.Errorf("POST /retrieve for document %d: top hit %q", k, got)
		}
	}
	for _, i := range written.Acked {
		want = append(want, fmt.Sprintf("w-%d.md", i))
	}
	for _, s := range want {
		if seen[s] != 1 {
			t.Errorf("%s listed %d times after the switch, want once", s, seen[s])
		}
	}
	if len(c.Sources) != len(want) {
		t.Errorf("%d documents after the switch, want %d", len(c.Sources), len(want))
	}
	end()
}
