//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The users' sequence, run as users run it: helm, kubectl and curl-like HTTP calls.
//
// Environment (set by `make test-e2e`):
//   KUBECONFIG                       the cluster (the local one, kind, or any other)
//   RAGOPS_KUBECTL_BIN, RAGOPS_HELM_BIN
//   RAGOPS_OPERATOR_IMAGE, RAGOPS_RAGSERVER_IMAGE, RAGOPS_FAKEOPENAI_IMAGE, RAGOPS_CHROMA_IMAGE
//   RAGOPS_E2E_ARTIFACTS             where to dump what a person would look at on failure

const (
	releaseNS = "ragops-system"
	appNS     = "ragops-e2e"
	otherNS   = "ragops-e2e-other"
	fakeName  = "fakeopenai"
	// clientPod runs the in-cluster clients in appNS; outsiderPod runs them in otherNS.
	clientPod   = "client"
	outsiderPod = "outsider"
)

var (
	kubectlBin, helmBin                                   string
	operatorImage, ragserverImage, fakeImage, chromaImage string
	repoRoot                                              = func() string { d, _ := filepath.Abs("../.."); return d }()
	timings                                               []string
	timingsMu                                             sync.Mutex
)

func mustEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the end-to-end tests with `make test-e2e`", name)
	}
	return v
}

func splitImage(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// phase times one step of the sequence and records it for the summary.
func phase(t *testing.T, name string) func() {
	t.Helper()
	start := time.Now()
	t.Logf("=== phase %q", name)
	return func() {
		d := time.Since(start).Round(100 * time.Millisecond)
		timingsMu.Lock()
		timings = append(timings, fmt.Sprintf("%-60s %8s", name, d))
		timingsMu.Unlock()
		t.Logf("=== phase %q took %s", name, d)
	}
}

func cmdRun(t *testing.T, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cmdRun(t, "", kubectlBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func kubectlApply(t *testing.T, manifest string) {
	t.Helper()
	if _, err := cmdRun(t, manifest, kubectlBin, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cmdRun(t, "", helmBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(time.Second)
	}
}

// ragStatus reads a RagService's status through kubectl, as a user would.
type ragStatus struct {
	Status struct {
		ObservedGeneration int64  `json:"observedGeneration"`
		Replicas           int32  `json:"replicas"`
		ReadyReplicas      int32  `json:"readyReplicas"`
		Endpoint           string `json:"endpoint"`
		Conditions         []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
	} `json:"status"`
	Metadata struct {
		Generation int64 `json:"generation"`
	} `json:"metadata"`
}

func getRag(t *testing.T, name string) (*ragStatus, error) { return getRagIn(t, appNS, name) }

func getRagIn(t *testing.T, ns, name string) (*ragStatus, error) {
	out, err := cmdRun(t, "", kubectlBin, "-n", ns, "get", "ragservice", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var r ragStatus
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func condition(r *ragStatus, typ string) (status, reason, message string) {
	for _, c := range r.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

func waitReady(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	waitReadyIn(t, appNS, name, timeout)
}

func waitReadyIn(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	eventually(t, "RagService "+name+" Ready", timeout, func() error {
		r, err := getRagIn(t, ns, name)
		if err != nil {
			return err
		}
		st, reason, msg := condition(r, "Ready")
		if st != "True" || r.Status.ObservedGeneration != r.Metadata.Generation {
			return fmt.Errorf("Ready=%s reason=%s message=%q observedGeneration=%d generation=%d", st, reason, msg, r.Status.ObservedGeneration, r.Metadata.Generation)
		}
		return nil
	})
}

// waitRolledOut waits until the Deployment has rolled out its current template to every replica.
func waitRolledOut(t *testing.T, ns, deploy string) {
	t.Helper()
	if _, err := cmdRun(t, "", kubectlBin, "-n", ns, "rollout", "status", "deployment/"+deploy, "--timeout=5m"); err != nil {
		t.Fatal(err)
	}
}

// serverPods counts the server pods of a RagService that exist, terminating ones included.
func serverPods(t *testing.T, rag string) int {
	out := kubectl(t, "-n", appNS, "get", "pods", "-l", "app.kubernetes.io/instance="+rag+",app.kubernetes.io/component=server", "-o", "name")
	return len(strings.Fields(out))
}

// documentSources lists the sources the server holds (GET /documents through a port-forward).
func documentSources(t *testing.T, rag string) (map[string]bool, error) {
	f := portForward(t, rag)
	defer f.stop()
	var list struct {
		Documents []struct {
			Source string `json:"source"`
		} `json:"documents"`
	}
	if _, err := f.json("GET", "/documents", nil, &list); err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, d := range list.Documents {
		m[d.Source] = true
	}
	return m, nil
}

// countWrites counts the sources the write loop added (w-N.md).
func countWrites(sources map[string]bool) int {
	n := 0
	for s := range sources {
		if strings.HasPrefix(s, "w-") {
			n++
		}
	}
	return n
}

// loadReport records the request counts of the load phases for the summary.
var (
	loadReports   []string
	loadReportsMu sync.Mutex
)

func reportLoad(t *testing.T, what string, r loadResult) {
	t.Helper()
	t.Logf("%s: %s", what, r)
	loadReportsMu.Lock()
	loadReports = append(loadReports, fmt.Sprintf("%-60s %s", what, r))
	loadReportsMu.Unlock()
}

// portForward runs `kubectl port-forward svc/NAME PORT:80` until the returned stop is called.
// The forward carries the server's API token, read from the Secret the operator
// generated (<svc>-api-token), as a user would: kubectl get secret.
type forward struct {
	cmd   *exec.Cmd
	port  int
	token string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func portForward(t *testing.T, svc string) *forward {
	t.Helper()
	return portForwardIn(t, appNS, svc)
}

func portForwardIn(t *testing.T, ns, svc string) *forward {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(kubectlBin, "-n", ns, "port-forward", "svc/"+svc, fmt.Sprintf("%d:80", port))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &forward{cmd: cmd, port: port, token: apiTokenIn(t, ns, svc)}
	t.Cleanup(f.stop)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Forwarding from") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl port-forward svc/%s did not start", svc)
	}
	return f
}

func (f *forward) stop() {
	if f.cmd.Process != nil {
		_ = f.cmd.Process.Kill()
		_ = f.cmd.Wait()
	}
}

func (f *forward) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", f.port, path) }

// json sends an authenticated request through the forward.
func (f *forward) json(method, path string, body any, out any) (int, error) {
	return httpJSON(method, f.url(path), f.token, body, out)
}

// apiToken reads the token of a RagService's server from its generated Secret.
func apiToken(t *testing.T, rag string) string {
	t.Helper()
	return apiTokenIn(t, appNS, rag)
}

func apiTokenIn(t *testing.T, ns, rag string) string {
	t.Helper()
	out := kubectl(t, "-n", ns, "get", "secret", rag+"-api-token", "-o", "jsonpath={.data.token}")
	token, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil || len(token) == 0 {
		t.Fatalf("the API token Secret %s-api-token holds no token (%q): %v", rag, out, err)
	}
	return string(token)
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

func httpJSON(method, url, token string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %s: %w", data, err)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, url, resp.StatusCode, data)
	}
	return resp.StatusCode, nil
}

type queryResponse struct {
	Answer  string `json:"answer"`
	Model   string `json:"model"`
	Mode    string `json:"mode"`
	Sources []struct {
		Source string  `json:"source"`
		Text   string  `json:"text"`
		Score  float64 `json:"score"`
	} `json:"sources"`
}

// query asks through a fresh port-forward (pods may have been replaced since the last one), retrying
// until the deadline: a just-rolled Service can refuse connections for a second.
func query(t *testing.T, svc, question string) queryResponse {
	t.Helper()
	return queryIn(t, appNS, svc, question)
}

func queryIn(t *testing.T, ns, svc, question string) queryResponse {
	t.Helper()
	var qr queryResponse
	eventually(t, "POST /query answers", 2*time.Minute, func() error {
		f := portForwardIn(t, ns, svc)
		defer f.stop()
		qr = queryResponse{}
		_, err := f.json("POST", "/query", map[string]any{"question": question}, &qr)
		if err != nil {
			return err
		}
		if qr.Answer == "" || len(qr.Sources) == 0 {
			return fmt.Errorf("answer without sources: %+v", qr)
		}
		return nil
	})
	return qr
}

// chatStream asks through POST /v1/chat/completions with "stream": true and
// returns the streamed answer and the sources of the final chunk.
func chatStream(url, token, model, question string) (string, []string, error) {
	b, _ := json.Marshal(map[string]any{"model": model, "stream": true, "messages": []map[string]string{{"role": "user", "content": question}}})
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		data, _ := io.ReadAll(resp.Body)
		return "", nil, fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	var answer strings.Builder
	var sources []string
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Sources []struct {
				Source string `json:"source"`
			} `json:"sources"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return "", nil, fmt.Errorf("chunk %q: %w", data, err)
		}
		for _, c := range chunk.Choices {
			answer.WriteString(c.Delta.Content)
		}
		for _, s := range chunk.Sources {
			sources = append(sources, s.Source)
		}
	}
	if !done {
		return answer.String(), sources, fmt.Errorf("the stream ended without data: [DONE] (%w)", sc.Err())
	}
	return answer.String(), sources, nil
}

func sourcesOf(qr queryResponse) []string {
	var s []string
	for _, src := range qr.Sources {
		s = append(s, src.Source)
	}
	return s
}

func readyServerPods(t *testing.T, rag string) int { return readyServerPodsIn(t, appNS, rag) }

func readyServerPodsIn(t *testing.T, ns, rag string) int {
	out := kubectl(t, "-n", ns, "get", "pods", "-l", "app.kubernetes.io/instance="+rag+",app.kubernetes.io/component=server",
		"-o", `jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "|True" {
			n++
		}
	}
	return n
}

// dumpOnFailure writes what a person would look at to RAGOPS_E2E_ARTIFACTS:
// the logs of the pods of the operator's namespace, of appNS and of the
// namespaces named.
func dumpOnFailure(t *testing.T, namespaces ...string) {
	if !t.Failed() {
		return
	}
	dir := os.Getenv("RAGOPS_E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot, ".e2e-artifacts")
	}
	dir = filepath.Join(dir, time.Now().UTC().Format("20060102T150405Z"))
	_ = os.MkdirAll(dir, 0o755)
	save := func(name string, args ...string) {
		out, err := cmdRun(t, "", kubectlBin, args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		_ = os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644)
	}
	save("events.txt", "get", "events", "-A", "--sort-by=.lastTimestamp")
	save("all.txt", "get", "all,pvc,pv,ragservices,configmaps,secrets", "-A", "-o", "wide")
	save("ragservices.yaml", "get", "ragservices", "-A", "-o", "yaml")
	save("describe-pods.txt", "describe", "pods", "-A")
	save("describe-ragservices.txt", "describe", "ragservices", "-A")
	for _, ns := range append([]string{releaseNS, appNS}, namespaces...) {
		out, _ := cmdRun(t, "", kubectlBin, "-n", ns, "get", "pods", "-o", "name")
		for _, p := range strings.Fields(out) {
			name := strings.TrimPrefix(p, "pod/")
			save("logs-"+ns+"-"+name+".txt", "-n", ns, "logs", p, "--all-containers", "--prefix")
			save("logs-previous-"+ns+"-"+name+".txt", "-n", ns, "logs", p, "--all-containers", "--previous")
		}
	}
	t.Logf("FAILURE ARTIFACTS: events, pod logs and descriptions are in %s", dir)
	fmt.Fprintf(os.Stderr, "\ne2e: failure artifacts in %s\n", dir)
}

var docsConfigMap = docsConfigMapIn(appNS)

// docsConfigMapIn is the documents ConfigMap the RagServices of namespace ns index.
func docsConfigMapIn(ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: finance-docs
  namespace: %s
data:
  q3-earnings-call.md: |
    # Q3 earnings call
    Revenue grew 18 percent year over year, driven by subscription renewals in the enterprise segment.
    The chief financial officer said gross margin improved to 64 percent thanks to lower hosting costs.
  risk-factors.md: |
    # Risk factors
    Our business depends on a small number of cloud providers. An outage at a provider could interrupt service.
    Currency fluctuations affect revenue from customers outside the United States.
  annual-summary.txt: |
    Annual summary. The company ended the fiscal year with 2.1 billion dollars in cash and no long-term debt.
`, ns)
}

func fakeServerManifest(acceptedKey string) string { return fakeServerManifestIn(appNS, acceptedKey) }

func fakeServerManifestIn(ns, acceptedKey string) string {
	repo, tag := splitImage(fakeImage)
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: fake
        image: %[3]s:%[4]s
        imagePullPolicy: IfNotPresent
        env:
        - {name: PORT, value: "8080"}
        - {name: FAKE_API_KEYS, value: %[5]q}
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 2}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 8080, targetPort: http}]
`, fakeName, ns, repo, tag, acceptedKey)
}

func apiKeySecret(name, key string) string { return apiKeySecretIn(appNS, name, key) }

func apiKeySecretIn(ns, name, key string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: %s
stringData:
  OPENAI_API_KEY: %q
`, name, ns, key)
}

// ragService renders a RagService that uses the in-cluster fake model API and the local Chroma image.
func ragService(name, secret, model string, replicas int, retention, extra string) string {
	return ragServiceIn(appNS, name, secret, model, replicas, retention, extra)
}

// ragServiceIn is ragService in namespace ns, with the fake model API of that namespace.
func ragServiceIn(ns, name, secret, model string, replicas int, retention, extra string) string {
	return fmt.Sprintf(`apiVersion: rag.ragops.dev/v1alpha1
kind: RagService
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  model: %[3]s
  embeddingModel: fake-embedding
  replicas: %[4]d
  baseURL: http://%[5]s.%[2]s.svc:8080/v1
  secretRef:
    name: %[6]s
  documents:
    configMapRef:
      name: finance-docs
  vectorStore:
    chroma:
      image: %[7]s
      retentionPolicy: %[8]s
      storage:
        size: 256Mi
%[9]s`, name, ns, model, replicas, fakeName, secret, chromaImage, retention, extra)
}

// operatorInstalled says whether the release ragops is installed.
func operatorInstalled(t *testing.T) bool {
	t.Helper()
	_, err := cmdRun(t, "", helmBin, "status", "ragops", "--namespace", releaseNS)
	return err == nil
}

// installOperator installs the chart as release ragops and waits for the
// operator. TestEndToEnd ends by uninstalling it (and deleting the CRD), so
// every test that needs the operator installs it when it is absent.
func installOperator(t *testing.T) {
	t.Helper()
	opRepo, opTag := splitImage(operatorImage)
	rsRepo, rsTag := splitImage(ragserverImage)
	helm(t, "install", "ragops", "charts/ragops", "--namespace", releaseNS, "--create-namespace",
		"--set", "image.repository="+opRepo, "--set", "image.tag="+opTag,
		"--set", "ragserver.image.repository="+rsRepo, "--set", "ragserver.image.tag="+rsTag,
		"--wait", "--timeout", "3m")
	kubectl(t, "-n", releaseNS, "rollout", "status", "deployment/ragops", "--timeout=2m")
}

// useOperator makes sure the operator is installed for the calling test:
// when the release is absent it installs it and registers a cleanup that
// removes the release, the CRD and the operator's namespace again, so every
// test leaves the cluster as it found it whatever order the tests run in.
// Cleanups run last in, first out: a namespace the test creates after this
// call (and registers for deletion) goes before the operator, which is still
// there to see its RagServices' children go. It reports whether it installed.
func useOperator(t *testing.T) bool {
	t.Helper()
	if operatorInstalled(t) {
		t.Log("the release ragops is installed already: using it")
		return false
	}
	installOperator(t)
	t.Cleanup(func() {
		if _, err := cmdRun(t, "", helmBin, "uninstall", "ragops", "--namespace", releaseNS, "--wait", "--timeout", "2m"); err != nil {
			t.Error(err)
		}
		for _, args := range [][]string{
			{"delete", "crd", "ragservices.rag.ragops.dev", "--wait=true", "--ignore-not-found"},
			{"delete", "namespace", releaseNS, "--wait=true", "--timeout=3m", "--ignore-not-found"},
		} {
			if _, err := cmdRun(t, "", kubectlBin, args...); err != nil {
				t.Error(err)
			}
		}
	})
	return true
}

// readEnv reads the suite's environment (see the top of this file).
func readEnv(t *testing.T) {
	t.Helper()
	kubectlBin = mustEnv(t, "RAGOPS_KUBECTL_BIN")
	helmBin = mustEnv(t, "RAGOPS_HELM_BIN")
	mustEnv(t, "KUBECONFIG")
	operatorImage = mustEnv(t, "RAGOPS_OPERATOR_IMAGE")
	ragserverImage = mustEnv(t, "RAGOPS_RAGSERVER_IMAGE")
	fakeImage = mustEnv(t, "RAGOPS_FAKEOPENAI_IMAGE")
	chromaImage = mustEnv(t, "RAGOPS_CHROMA_IMAGE")
}

func TestEndToEnd(t *testing.T) {
	readEnv(t)
	defer func() {
		timingsMu.Lock()
		defer timingsMu.Unlock()
		fmt.Fprintf(os.Stderr, "\ne2e phase timings:\n%s\n", strings.Join(timings, "\n"))
		loadReportsMu.Lock()
		defer loadReportsMu.Unlock()
		fmt.Fprintf(os.Stderr, "\ne2e in-cluster request counts:\n%s\n", strings.Join(loadReports, "\n"))
	}()
	defer dumpOnFailure(t)

	end := phase(t, "0 helm install ragops charts/ragops")
	installOperator(t)
	end()

	end = phase(t, "0 fake model API, Secret, documents ConfigMap")
	kubectl(t, "create", "namespace", appNS)
	kubectlApply(t, fakeServerManifest("key-1"))
	kubectlApply(t, apiKeySecret("openai", "key-1"))
	kubectlApply(t, docsConfigMap)
	waitRolledOut(t, appNS, fakeName)
	end()

	t.Run("1 apply, Ready, kubectl get rag, port-forward and /query", func(t *testing.T) {
		end := phase(t, "1 kubectl apply RagService; Ready; /query with sources")
		defer end()
		kubectlApply(t, ragService("demo", "openai", "fake-chat-1", 1, "Retain", ""))
		waitReady(t, "demo", 5*time.Minute)
		// The documents ConfigMap is indexed by a Job; Ready does not wait
		// for it.
		eventually(t, "RagService demo Indexed", 5*time.Minute, func() error {
			r, err := getRag(t, "demo")
			if err != nil {
				return err
			}
			if st, reason, msg := condition(r, "Indexed"); st != "True" {
				return fmt.Errorf("Indexed=%s reason=%s message=%q", st, reason, msg)
			}
			return nil
		})
		out := kubectl(t, "-n", appNS, "get", "rag")
		if !strings.Contains(out, "demo") || !strings.Contains(out, "fake-chat-1") || !strings.Contains(out, "DOCUMENTS") {
			t.Fatalf("kubectl get rag does not show demo with its model and document count:\n%s", out)
		}
		qr := query(t, "demo", "How much did revenue grow in the third quarter?")
		if qr.Mode != "generative" || qr.Model != "fake-chat-1" {
			t.Errorf("mode=%q model=%q, want generative fake-chat-1", qr.Mode, qr.Model)
		}
		if got := sourcesOf(qr); !strings.Contains(strings.Join(got, ","), "q3-earnings-call.md") {
			t.Errorf("sources %v do not include q3-earnings-call.md", got)
		}
		f := portForward(t, "demo")
		if code, err := httpJSON("GET", f.url("/readyz"), "", nil, nil); err != nil || code != 200 {
			t.Errorf("/readyz: %d %v", code, err)
		}
		// Secure by default: the API refuses a request without the token.
		if code, _ := httpJSON("POST", f.url("/query"), "", map[string]any{"question": "revenue?"}, nil); code != 401 {
			t.Errorf("POST /query without the token: HTTP %d, want 401", code)
		}
		// The OpenAI-compatible route, streamed, and the chat page, as a user opens them.
		answer, sources, err := chatStream(f.url("/v1/chat/completions"), f.token, "fake-chat-1", "How much did revenue grow in the third quarter?")
		if err != nil || !strings.Contains(answer, "Model fake-chat-1 read") || !strings.Contains(strings.Join(sources, ","), "q3-earnings-call.md") {
			t.Errorf("streamed chat completion: answer %q, sources %v, err %v", answer, sources, err)
		}
		if resp, err := httpClient.Get(f.url("/")); err != nil {
			t.Errorf("GET /: %v", err)
		} else {
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "ui/app.js") {
				t.Errorf("GET /: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
			}
		}
		f.stop()
	})
	if t.Failed() {
		return
	}

	t.Run("1b NetworkPolicies are enforced: other namespaces reach neither the server nor Chroma", func(t *testing.T) {
		end := phase(t, "1b NetworkPolicy: outsider blocked, server reaches Chroma")
		defer end()
		kubectl(t, "create", "namespace", otherNS)
		startClientPod(t, otherNS, outsiderPod)
		startClientPod(t, appNS, clientPod)
		server := "http://demo." + appNS + ".svc"
		chroma := "http://demo-chroma." + appNS + ".svc:8000"
		// Control: the outsider reaches a Service no policy guards, so a refusal below is the
		// policy's doing, not a broken network or DNS.
		if r := probe(t, otherNS, outsiderPod, "http://"+fakeName+"."+appNS+".svc:8080/healthz"); !r.OK {
			t.Fatalf("the pod in %s cannot reach the unguarded fake model API: %+v", otherNS, r)
		}
		for _, c := range []struct {
			ns, pod, url string
			allowed      bool
			why          string
		}{
			{otherNS, outsiderPod, server + "/readyz", false, "the server admits its own namespace only"},
			{otherNS, outsiderPod, chroma + "/api/v2/heartbeat", false, "Chroma admits its server pods only"},
			{appNS, clientPod, server + "/readyz", true, "the server admits its own namespace"},
			{appNS, clientPod, chroma + "/api/v2/heartbeat", false, "Chroma admits its server pods only, not other pods of the namespace"},
		} {
			r := probe(t, c.ns, c.pod, c.url)
			t.Logf("from %s/%s to %s: %+v (%s)", c.ns, c.pod, c.url, r, c.why)
			if r.OK != c.allowed {
				t.Errorf("from %s/%s to %s: reached=%v, want %v: %s", c.ns, c.pod, c.url, r.OK, c.allowed, c.why)
			}
		}
		// The server reaches Chroma: every /query retrieves from it. The loop runs while the
		// server lists its documents (read from Chroma) through a port-forward.
		l := startLoad(t, appNS, clientPod, "query", server, apiToken(t, "demo"))
		started := time.Now()
		eventually(t, "GET /documents lists the ConfigMap's documents, for 3 s of load", time.Minute, func() error {
			src, err := documentSources(t, "demo")
			switch {
			case err != nil:
				return err
			case !src["q3-earnings-call.md"]:
				return fmt.Errorf("sources %v lack q3-earnings-call.md", src)
			case time.Since(started) < 3*time.Second:
				return fmt.Errorf("the load runs for 3 s")
			}
			return nil
		})
		r := l.stop(t)
		reportLoad(t, "1b /query from the namespace, policies enforced", r)
		if r.OK < 5 || r.Failed != 0 {
			t.Errorf("queries from the namespace through the Service: %s, want all answered", r)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("2 kubectl scale rag --replicas=3", func(t *testing.T) {
		end := phase(t, "2 kubectl scale rag/demo --replicas=3")
		defer end()
		kubectl(t, "-n", appNS, "scale", "rag/demo", "--replicas=3")
		eventually(t, "3 ready server pods and status.readyReplicas=3", 4*time.Minute, func() error {
			n := readyServerPods(t, "demo")
			r, err := getRag(t, "demo")
			if err != nil {
				return err
			}
			if n != 3 || r.Status.ReadyReplicas != 3 || r.Status.Replicas != 3 {
				return fmt.Errorf("ready pods %d, status replicas %d ready %d", n, r.Status.Replicas, r.Status.ReadyReplicas)
			}
			return nil
		})
		waitReady(t, "demo", time.Minute)
	})

	t.Run("3 rotating the Secret rolls the pods; the new key works", func(t *testing.T) {
		end := phase(t, "3 rotate API key Secret; pods roll; /query")
		defer end()
		before := kubectl(t, "-n", appNS, "get", "deployment", "demo", "-o", "jsonpath={.spec.template.metadata.annotations}")
		kubectlApply(t, apiKeySecret("openai", "key-2"))
		// The fake model API now accepts only the new key.
		kubectlApply(t, fakeServerManifest("key-2"))
		waitRolledOut(t, appNS, fakeName)
		eventually(t, "the server pod template changes", 2*time.Minute, func() error {
			after := kubectl(t, "-n", appNS, "get", "deployment", "demo", "-o", "jsonpath={.spec.template.metadata.annotations}")
			if after == before {
				return fmt.Errorf("pod template annotations unchanged: %s", after)
			}
			return nil
		})
		waitRolledOut(t, appNS, "demo")
		waitReady(t, "demo", 3*time.Minute)
		qr := query(t, "demo", "What was the gross margin?")
		if qr.Mode != "generative" {
			t.Errorf("mode %q after rotation, want generative", qr.Mode)
		}
	})

	const marker = "Zephyrine"
	t.Run("4 deleting the Chroma pod under writes: one Chroma at a time, no acknowledged document lost", func(t *testing.T) {
		end := phase(t, "4 delete Chroma pod under writes; one process; nothing lost")
		defer end()
		doc := map[string]any{"documents": []map[string]any{{
			"source": "board-minutes.md",
			"text":   "Board minutes. The board approved the " + marker + " acquisition for 40 million dollars in cash.",
		}}}
		eventually(t, "POST /documents", time.Minute, func() error {
			f := portForward(t, "demo")
			defer f.stop()
			_, err := f.json("POST", "/documents", doc, nil)
			return err
		})
		pod := strings.TrimSpace(kubectl(t, "-n", appNS, "get", "pods", "-l", "app.kubernetes.io/instance=demo,app.kubernetes.io/component=vector-store", "-o", "jsonpath={.items[0].metadata.name}"))
		if pod == "" {
			t.Fatal("no Chroma pod found")
		}
		witness := watchChroma(t, "demo", os.Getenv("RAGOPS_E2E_HOST_PROCESSES") == "1")
		defer witness.stop()
		writer := startLoad(t, appNS, clientPod, "write", "http://demo."+appNS+".svc", apiToken(t, "demo"))
		eventually(t, "the writer's documents are listed", time.Minute, func() error {
			src, err := documentSources(t, "demo")
			if err == nil && countWrites(src) < 3 {
				err = fmt.Errorf("%d written so far", countWrites(src))
			}
			return err
		})
		// The Chroma test image ignores SIGTERM: the old pod runs for its whole grace period.
		kubectl(t, "-n", appNS, "delete", "pod", pod, "--wait=false")
		if _, err := cmdRun(t, "", kubectlBin, "-n", appNS, "rollout", "status", "statefulset/demo-chroma", "--timeout=5m"); err != nil {
			t.Fatal(err)
		}
		waitReady(t, "demo", 3*time.Minute)
		// Writes go on against the new Chroma before the writer stops.
		before := 0
		if src, err := documentSources(t, "demo"); err == nil {
			before = countWrites(src)
		}
		eventually(t, "writes go through to the new Chroma", 2*time.Minute, func() error {
			src, err := documentSources(t, "demo")
			if err == nil && countWrites(src) <= before+2 {
				err = fmt.Errorf("%d written, %d when Chroma came back", countWrites(src), before)
			}
			return err
		})
		r := writer.stop(t)
		witness.stop()
		reportLoad(t, "4 POST /documents while the Chroma pod is replaced", r)

		witness.mu.Lock()
		t.Logf("Chroma witness: %d pod events, at most %d pods running Chroma at once; %d /proc samples, at most %d Chroma processes",
			witness.events, witness.maxPods, witness.samples, witness.maxProcs)
		if witness.events == 0 {
			t.Error("the pod watch saw no event: the witness is broken")
		}
		if witness.maxPods > 1 || witness.maxProcs > 1 {
			t.Errorf("two Chroma processes used the volume at once:\n%s", strings.Join(witness.overlapDetail, "\n"))
		}
		if os.Getenv("RAGOPS_E2E_HOST_PROCESSES") == "1" && (!witness.sawProcess || witness.samples < 10) {
			t.Errorf("the /proc sampler saw no Chroma process in %d samples: the witness is broken", witness.samples)
		}
		witness.mu.Unlock()

		if len(r.Acked) == 0 {
			t.Fatalf("the writer had no write acknowledged: %s", r)
		}
		src, err := documentSources(t, "demo")
		if err != nil {
			t.Fatal(err)
		}
		var lost []string
		for _, i := range r.Acked {
			if name := fmt.Sprintf("w-%d.md", i); !src[name] {
				lost = append(lost, name)
			}
		}
		if len(lost) > 0 {
			t.Errorf("%d of %d acknowledged documents are lost: %v", len(lost), len(r.Acked), lost)
		}
		qr := query(t, "demo", "Which acquisition did the board approve?")
		if !strings.Contains(strings.Join(sourcesOf(qr), ","), "board-minutes.md") {
			t.Errorf("after the Chroma pod came back, sources %v lack board-minutes.md", sourcesOf(qr))
		}
	})

	t.Run("4b kubectl scale down under load loses no request", func(t *testing.T) {
		end := phase(t, "4b scale 3 -> 2 under 5 req/s; zero failed")
		defer end()
		l := startLoad(t, appNS, clientPod, "query", "http://demo."+appNS+".svc", apiToken(t, "demo"))
		kubectl(t, "-n", appNS, "scale", "rag/demo", "--replicas=2")
		// Until the removed pod is gone, drain period and shutdown included.
		eventually(t, "2 server pods left, both ready", 3*time.Minute, func() error {
			if n, ready := serverPods(t, "demo"), readyServerPods(t, "demo"); n != 2 || ready != 2 {
				return fmt.Errorf("%d pods, %d ready", n, ready)
			}
			return nil
		})
		r := l.stop(t)
		reportLoad(t, "4b /query during kubectl scale rag/demo 3 -> 2", r)
		if r.Failed != 0 || r.Sent < 10 {
			t.Errorf("scale down under load: %s, want no failure", r)
		}
	})

	t.Run("5 changing spec.model rolls the pods without losing a request; /query reports the new model", func(t *testing.T) {
		end := phase(t, "5 patch spec.model (2 replicas) under 5 req/s; zero failed")
		defer end()
		l := startLoad(t, appNS, clientPod, "query", "http://demo."+appNS+".svc", apiToken(t, "demo"))
		kubectl(t, "-n", appNS, "patch", "rag", "demo", "--type=merge", "-p", `{"spec":{"model":"fake-chat-2"}}`)
		waitReady(t, "demo", 3*time.Minute)
		waitRolledOut(t, appNS, "demo")
		// Until every old pod is gone, drain period and shutdown included.
		eventually(t, "the old pods are gone", 3*time.Minute, func() error {
			if n := serverPods(t, "demo"); n != 2 {
				return fmt.Errorf("%d server pods", n)
			}
			return nil
		})
		r := l.stop(t)
		reportLoad(t, "5 /query during the rollout of a spec.model change", r)
		if r.Failed != 0 || r.Sent < 10 {
			t.Errorf("rollout under load: %s, want no failure", r)
		}
		eventually(t, "/query reports fake-chat-2", 2*time.Minute, func() error {
			qr := query(t, "demo", "What is the cash position?")
			if qr.Model != "fake-chat-2" {
				return fmt.Errorf("model %q", qr.Model)
			}
			return nil
		})
	})

	t.Run("6 a missing Secret shows SecretNotFound, then recovers", func(t *testing.T) {
		end := phase(t, "6 missing Secret -> SecretNotFound -> Ready")
		defer end()
		kubectlApply(t, ragService("nosecret", "late-secret", "fake-chat-1", 1, "Delete", ""))
		eventually(t, "Ready=False SecretNotFound", 2*time.Minute, func() error {
			r, err := getRag(t, "nosecret")
			if err != nil {
				return err
			}
			if st, reason, _ := condition(r, "Ready"); st != "False" || reason != "SecretNotFound" {
				return fmt.Errorf("Ready=%s reason=%s", st, reason)
			}
			return nil
		})
		kubectlApply(t, apiKeySecret("late-secret", "key-2"))
		waitReady(t, "nosecret", 5*time.Minute)
		kubectl(t, "-n", appNS, "delete", "rag", "nosecret", "--wait=true")
	})

	t.Run("7 retention: Retain keeps the PVC and its data, Delete removes it", func(t *testing.T) {
		end := phase(t, "7 retention Retain (reuse data) and Delete")
		defer end()
		kubectl(t, "-n", appNS, "delete", "rag", "demo", "--wait=true")
		eventually(t, "demo's pods are gone", 3*time.Minute, func() error {
			out := kubectl(t, "-n", appNS, "get", "deploy", "-l", "app.kubernetes.io/instance=demo", "-o", "name")
			if strings.TrimSpace(out) != "" {
				return fmt.Errorf("still there: %s", out)
			}
			return nil
		})
		kubectl(t, "-n", appNS, "get", "pvc", "demo-chroma-data")
		kubectlApply(t, ragService("demo", "openai", "fake-chat-2", 1, "Retain", ""))
		waitReady(t, "demo", 5*time.Minute)
		qr := query(t, "demo", "Which acquisition did the board approve?")
		if !strings.Contains(strings.Join(sourcesOf(qr), ","), "board-minutes.md") {
			t.Errorf("the re-created RagService does not find the old data: sources %v", sourcesOf(qr))
		}

		kubectlApply(t, ragService("ephemeral", "openai", "fake-chat-2", 1, "Delete", ""))
		eventually(t, "ephemeral's PVC exists", 2*time.Minute, func() error {
			_, err := cmdRun(t, "", kubectlBin, "-n", appNS, "get", "pvc", "ephemeral-chroma-data")
			return err
		})
		kubectl(t, "-n", appNS, "delete", "rag", "ephemeral", "--wait=true")
		eventually(t, "ephemeral's PVC is deleted", 3*time.Minute, func() error {
			out, err := cmdRun(t, "", kubectlBin, "-n", appNS, "get", "pvc", "ephemeral-chroma-data", "--ignore-not-found", "-o", "name")
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) != "" {
				return fmt.Errorf("still there")
			}
			return nil
		})
	})

	t.Run("8 helm uninstall removes the operator; the cluster is left clean", func(t *testing.T) {
		end := phase(t, "8 cleanup: delete RagServices, helm uninstall, CRD, namespaces")
		defer end()
		kubectl(t, "-n", appNS, "delete", "rag", "--all", "--wait=true")
		helm(t, "uninstall", "ragops", "--namespace", releaseNS, "--wait", "--timeout", "2m")
		eventually(t, "the operator is gone", 2*time.Minute, func() error {
			out := kubectl(t, "-n", releaseNS, "get", "deploy,pods", "-o", "name")
			if strings.TrimSpace(out) != "" {
				return fmt.Errorf("left: %s", out)
			}
			return nil
		})
		// Helm keeps CRDs from crds/ on uninstall (by design); remove it like the README says.
		kubectl(t, "delete", "crd", "ragservices.rag.ragops.dev", "--wait=true")
		kubectl(t, "delete", "namespace", appNS, otherNS, releaseNS, "--wait=true", "--timeout=3m")
		out := kubectl(t, "get", "pvc,pods", "-A", "-o", "name")
		for _, l := range strings.Fields(out) {
			if !strings.HasPrefix(l, "pod/") {
				t.Errorf("left behind: %s", l)
			}
		}
		out = kubectl(t, "get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}{\"\\n\"}{end}")
		for _, ns := range strings.Fields(out) {
			if ns != "kube-system" {
				t.Errorf("a pod is left in namespace %s", ns)
			}
		}
	})
}
