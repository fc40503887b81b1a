package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"
)

// repoRoot is the ragops repository, two levels up.
var repoRoot = func() string { d, _ := filepath.Abs(filepath.Join("..", "..")); return d }()

// targetLabels are added by Prometheus when it scrapes (or by the
// ServiceMonitor's relabelling), not by the exporters: a matcher on them
// cannot be checked against /metrics.
var targetLabels = []string{"namespace", "job", "pod", "service", "instance", "container", "endpoint"}

// grafanaVariables replaces the dashboard's variables with PromQL that the
// parser accepts; a variable not listed here fails the test.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$namespace", ".*",
	"$ragservice", ".*",
)

// selector is one vector selector of an expression: the metric and the
// label matchers that name exact values.
type selector struct {
	where  string // the rule or panel
	metric string
	equal  map[string]string
}

func TestRulesAndDashboardNameRealMetrics(t *testing.T) {
	var selectors []selector
	selectors = append(selectors, ruleSelectors(t)...)
	selectors = append(selectors, dashboardSelectors(t)...)

	bins := buildBinaries(t)
	operator := scrapeOperator(t, bins)
	server := scrapeServer(t, bins)
	exposed := map[string]map[string]bool{} // metric -> set of label sets, as "k=v" strings
	for _, families := range []map[string]*dto.MetricFamily{operator, server} {
		for name, f := range families {
			addSeries(exposed, name, f)
		}
	}

	checked := map[string]bool{}
	for _, s := range selectors {
		series, ok := exposed[s.metric]
		if !ok {
			t.Errorf("%s: metric %s is not exposed by the operator or the server", s.where, s.metric)
			continue
		}
		checked[s.metric] = true
		if len(s.equal) == 0 {
			continue
		}
		found := false
		for set := range series {
			if hasAll(set, s.equal) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: no series of %s has the labels %v (exposed: %v)", s.where, s.metric, s.equal, keys(series))
		}
	}
	t.Logf("%d selectors in the rules and the dashboard; %d metrics checked: %v", len(selectors), len(checked), keys(checked))
}

// ruleSelectors loads the PrometheusRule's groups with Prometheus' rule
// parser (which also parses every expression) and returns their selectors.
func ruleSelectors(t *testing.T) []selector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "prometheus", "ragops-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Kind string         `json:"kind"`
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &rule); err != nil {
		t.Fatal(err)
	}
	if rule.Kind != "PrometheusRule" {
		t.Fatalf("ragops-rules.yaml is a %q, want a PrometheusRule", rule.Kind)
	}
	groupsYAML, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.Parse(groupsYAML, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("the rules do not load: %v", errs)
	}
	var out []selector
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := "rule " + r.Alert + r.Record
			alerts[r.Alert] = r.Alert != ""
			if r.Alert != "" && (r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.For == 0) {
				t.Errorf("%s: want a severity label, a summary annotation and a for duration", where)
			}
			out = append(out, selectorsOf(t, p, where, r.Expr)...)
		}
	}
	for _, want := range []string{"RagServerHighErrorRatio", "RagServerUpstreamFailures", "RagServiceNotReady", "RagopsReconcileErrors"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
	return out
}

// dashboardSelectors parses every query of the dashboard: panel targets
// (rows included) and the templating variables' label_values queries.
func dashboardSelectors(t *testing.T) []selector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "grafana", "ragops-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	if dash.UID == "" {
		t.Error("the dashboard has no uid (Grafana would create a copy on every import)")
	}
	p := parser.NewParser(parser.Options{})
	var out []selector
	var walk func([]panel)
	titles := map[string]bool{}
	walk = func(ps []panel) {
		for _, pn := range ps {
			if pn.Type != "row" {
				if titles[pn.Title] {
					t.Errorf("two panels are titled %q", pn.Title)
				}
				titles[pn.Title] = true
				if len(pn.Targets) == 0 {
					t.Errorf("panel %q has no query", pn.Title)
				}
			}
			for _, tg := range pn.Targets {
				out = append(out, selectorsOf(t, p, "panel "+pn.Title, tg.Expr)...)
			}
			walk(pn.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		inner, ok := strings.CutPrefix(text, "label_values(")
		if !ok {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, text)
			continue
		}
		i := strings.LastIndex(inner, ",")
		if i < 0 {
			t.Errorf("variable %s: query %q has no label", v.Name, text)
			continue
		}
		out = append(out, selectorsOf(t, p, "variable "+v.Name, inner[:i])...)
	}
	return out
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// selectorsOf parses a PromQL expression and returns its vector selectors.
func selectorsOf(t *testing.T, p parser.Parser, where, expr string) []selector {
	t.Helper()
	promql := grafanaVariables.Replace(expr)
	if strings.Contains(promql, "$") {
		t.Errorf("%s: unknown Grafana variable in %q", where, expr)
		return nil
	}
	node, err := p.ParseExpr(promql)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var out []selector
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{where: where, equal: map[string]string{}}
		for _, m := range vs.LabelMatchers {
			switch {
			case m.Name == model.MetricNameLabel:
				s.metric = m.Value
			case m.Type == labels.MatchEqual && m.Value != "" && !slices.Contains(targetLabels, m.Name):
				s.equal[m.Name] = m.Value
			}
		}
		if s.metric == "" {
			t.Errorf("%s: a selector without a metric name in %q", where, expr)
			return nil
		}
		out = append(out, s)
		return nil
	})
	if len(out) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	return out
}

// addSeries records the series of a family under the names PromQL uses:
// a histogram's _bucket, _sum and _count, a summary's _sum and _count.
func addSeries(exposed map[string]map[string]bool, name string, f *dto.MetricFamily) {
	names := []string{name}
	switch f.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		names = []string{name + "_bucket", name + "_sum", name + "_count"}
	case dto.MetricType_SUMMARY:
		names = []string{name, name + "_sum", name + "_count"}
	}
	for _, n := range names {
		if exposed[n] == nil {
			exposed[n] = map[string]bool{}
		}
		for _, m := range f.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
			}
			exposed[n][strings.Join(pairs, ",")] = true
		}
	}
}

func hasAll(set string, want map[string]string) bool {
	have := map[string]bool{}
	for _, p := range strings.Split(set, ",") {
		have[p] = true
	}
	for k, v := range want {
		if !have[k+"="+v] {
			return false
		}
	}
	return true
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// binaries are the ragops programs, built from the repository.
type binaries struct{ manager, ragserver, fakeopenai string }

func buildBinaries(t *testing.T) binaries {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/manager", "./cmd/ragserver", "./cmd/fakeopenai")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return binaries{filepath.Join(dir, "manager"), filepath.Join(dir, "ragserver"), filepath.Join(dir, "fakeopenai")}
}

// scrapeOperator runs the manager on envtest's API server, lets it
// reconcile one RagService, and returns its /metrics.
func scrapeOperator(t *testing.T, bins binaries) map[string]*dto.MetricFamily {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test-observability` (it builds kube-apiserver and etcd into bin/)")
	}
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "ragops-observability", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, doc := range []string{
		`{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "obs"}}`,
		`{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "openai", "namespace": "obs"}, "stringData": {"OPENAI_API_KEY": "sk-test"}}`,
		`{"apiVersion": "rag.ragops.dev/v1alpha1", "kind": "RagService", "metadata": {"name": "docs", "namespace": "obs"},
		  "spec": {"model": "fake-chat-1", "embeddingModel": "fake-embed-1", "secretRef": {"name": "openai"},
		           "autoscaling": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 60}, "monitoring": {"enabled": true}}}`,
	} {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, u); err != nil {
			t.Fatalf("create %s: %v", u.GetKind(), err)
		}
	}

	port := freePort(t)
	logs := &bytes.Buffer{}
	mgr := exec.Command(bins.manager, "--kubeconfig", kubeconfigPath,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--metrics-secure=false",
		"--health-probe-bind-address", "0", "--ragserver-image", "ragops/ragserver:0.0.0-test")
	mgr.Stdout, mgr.Stderr = logs, logs
	start(t, mgr)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	// The RagService's first pass has run once its Ready gauge exists.
	return scrapeUntil(t, url, logs, func(f map[string]*dto.MetricFamily) bool {
		return f["ragops_ragservice_ready"] != nil && f["controller_runtime_reconcile_time_seconds"] != nil
	})
}

// scrapeServer runs the fake model API and the RAG server on the sample
// documents, sends it traffic (queries, retrievals, a listing, a bad
// request, an unknown route) and returns its /metrics.
func scrapeServer(t *testing.T, bins binaries) map[string]*dto.MetricFamily {
	t.Helper()
	fakePort, port := freePort(t), freePort(t)
	logs := &bytes.Buffer{}
	fake := exec.Command(bins.fakeopenai)
	fake.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", fakePort))
	fake.Stdout, fake.Stderr = logs, logs
	start(t, fake)
	server := exec.Command(bins.ragserver)
	server.Env = append(os.Environ(),
		fmt.Sprintf("PORT=%d", port),
		fmt.Sprintf("OPENAI_BASE_URL=http://127.0.0.1:%d/v1", fakePort),
		"OPENAI_API_KEY=sk-test", "LLM_MODEL=fake-chat-1", "EMBEDDING_MODEL=fake-embed-1",
		"DOCS_DIR="+filepath.Join(repoRoot, "sample_docs"), "DATA_DIR="+t.TempDir(), "DRAIN_PERIOD=0s")
	server.Stdout, server.Stderr = logs, logs
	start(t, server)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(time.Minute)
	for !ok(base + "/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not become ready; logs:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}

	fakeURL := fmt.Sprintf("http://127.0.0.1:%d", fakePort)
	for i, req := range []struct {
		method, url, body string
		want              int
	}{
		// One failed chat call, so that the next query retries it.
		{"POST", fakeURL + "/_fake/fault", `{"endpoint": "chat", "status": 503, "times": 1}`, 200},
		{"POST", base + "/query", `{"question": "What are the main credit risks?"}`, 200},
		{"POST", base + "/query", `{"question": "What was the net interest margin?"}`, 200},
		{"POST", base + "/retrieve", `{"question": "dividend policy"}`, 200},
		{"GET", base + "/documents", ``, 200},
		{"POST", base + "/query", `{"question": `, 400},
		{"GET", base + "/no-such-route", ``, 404},
	} {
		r, err := http.NewRequest(req.method, req.url, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != req.want {
			t.Fatalf("request %d %s %s: status %d, want %d: %s", i, req.method, req.url, resp.StatusCode, req.want, b)
		}
	}
	return scrapeUntil(t, base+"/metrics", logs, func(f map[string]*dto.MetricFamily) bool {
		return f["ragserver_tokens_total"] != nil && f["ragserver_upstream_retries_total"] != nil
	})
}

// scrapeUntil polls a /metrics endpoint until ready accepts its families.
func scrapeUntil(t *testing.T, url string, logs *bytes.Buffer, ready func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		families, err := scrape(url)
		if err == nil && ready(families) {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after a minute (last error %v); logs:\n%s", url, err, logs)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func ok(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// start starts a process and stops it when the test ends.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
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
